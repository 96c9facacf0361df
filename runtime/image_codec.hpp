#pragma once
/// One image file: JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit gray or RGB, the preprocessing of
/// torchvision's Resize + CenterCrop on a PIL image, and JPEG/PNG writers for tests, benchmarks and tools.
/// Why these libraries and the exact semantics: docs/datasets-images.md.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dcs {

/// An 8-bit image, interleaved HWC (c = 1: gray, c = 3: RGB).
struct Image {
    int64_t h = 0, w = 0, c = 0;
    std::vector<uint8_t> pixels;  ///< h * w * c bytes, row-major
};

/// JPEG decoder settings. The defaults decode exactly as PIL (same libjpeg-turbo calls: integer slow DCT,
/// fancy upsampling, full size); the others trade exactness for speed and exist to be measured
/// (bench/bench_decode.cpp, docs/performance.md "Decoding image folders").
struct JpegOptions {
    bool fast_dct = false;          ///< JDCT_IFAST instead of JDCT_ISLOW
    bool fancy_upsampling = true;   ///< false: libjpeg's cheaper (box) chroma upsampling
    int64_t min_short_side = 0;     ///< > 0: let libjpeg scale down in the DCT (by 1/2, 1/4 or 1/8) while
                                    ///< the shorter side stays >= this; 0 = full size
};

/// Decodes a JPEG or PNG file, recognised by its magic bytes (not the extension). Grayscale, grayscale+alpha,
/// RGB, RGBA, palette and 16-bit PNGs become 8-bit gray (c=1) or RGB (c=3) (alpha dropped, 16-bit reduced to
/// the high byte); JPEG gray or YCbCr (and Adobe RGB) likewise.
/// Throws InputError naming `path` for CMYK/YCCK JPEGs and for empty, truncated, corrupt and non-image files
/// (libjpeg's warnings about corrupt or truncated data are errors, see docs/datasets-images.md).
Image decode_image_file(const std::string& path, const JpegOptions& jpeg = {});

/// As decode_image_file for bytes already in memory; `path` is used only in messages.
Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& path, const JpegOptions& jpeg = {});

/// Preprocessing as torchvision's Resize(resize) + CenterCrop((crop_h, crop_w)) on a PIL image, then to
/// `channels`.
struct ImageTransform {
    int64_t resize = 0;  ///< shorter side after resizing (aspect kept, longer side = int(resize*long/short) as
                         ///< torchvision); 0 = no resize. PIL's bilinear filter with antialiasing, bit-exact.
    int64_t crop_h = 0, crop_w = 0;  ///< centre crop (torchvision's offsets: int(round((h-crop_h)/2.0)), Python's
                                     ///< round half to even); an image smaller than the crop is zero-padded as
                                     ///< torchvision's CenterCrop does. 0 = the resized size in that dimension.
    int64_t channels = 3;  ///< 1: colour -> luma as PIL convert("L"); 3: gray replicated
};

/// The (height, width) transform_image gives an h x w image.
std::pair<int64_t, int64_t> transform_output_size(int64_t h, int64_t w, const ImageTransform& t);

/// Applies the transform; output planar CHW uint8 of channels x out_h x out_w (transform_output_size) written
/// to `out_chw`. Throws std::invalid_argument when channels is not 1 or 3 or the image has c not 1 or 3.
void transform_image(const Image& img, const ImageTransform& t, uint8_t* out_chw);

/// PIL's bilinear resize (Image.resize(size, BILINEAR)) of an HWC image to out_h x out_w, bit-exact; the
/// identity when the size is unchanged.
Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w);

/// Writes `img` (c = 1 or 3) as a baseline JPEG of `quality` (1..100) with libjpeg's default 4:2:0 chroma
/// subsampling for colour. Throws InputError naming `path` when it cannot be written.
void write_jpeg_file(const std::string& path, const Image& img, int quality = 95);

/// Writes `img` (c = 1 or 3) as an 8-bit gray or RGB PNG. Throws InputError naming `path` when it cannot be
/// written.
void write_png_file(const std::string& path, const Image& img);

}  // namespace dcs
