#include "runtime/image_codec.hpp"

// jpeglib.h needs FILE and size_t declared first.
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/cpu_features.hpp"
#include "common/error.hpp"

namespace dcs {
namespace {

/// Larger images are refused before any allocation (a corrupt header can claim 65500 x 65500).
constexpr int64_t kMaxPixels = int64_t{1} << 28;

void check_size(const std::string& path, int64_t h, int64_t w) {
    if (h * w > kMaxPixels)
        throw InputError(path + ": image too large (" + std::to_string(w) + " x " + std::to_string(h) +
                         " pixels; at most " + std::to_string(kMaxPixels) + ")");
}

// ---------------------------------------------------------------------------------------------------------
// JPEG. libjpeg reports errors through error_exit, which must not return: it longjmps back to the decoder,
// whose frame holds no C++ object with a destructor between setjmp and the jump (the image and the message
// live in the caller's frame).

struct JpegErrorManager {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool truncated;
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

/// libjpeg only warns about corrupt or truncated entropy data (and fills the rest of the image grey): those
/// warnings are errors here. Warnings about metadata, and junk bytes between segments (the image data is
/// intact; PIL reads such files, a few exist in ImageNet), are ignored; trace messages (level >= 0) too.
void jpeg_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return;
    const int code = cinfo->err->msg_code;
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR ||
        code == JWRN_BOGUS_ICC)
        return;
    if (code == JWRN_JPEG_EOF) reinterpret_cast<JpegErrorManager*>(cinfo->err)->truncated = true;
    jpeg_fail(cinfo);
}

void jpeg_silent(j_common_ptr) {}

void install_jpeg_errors(JpegErrorManager& err) {
    jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    err.mgr.emit_message = jpeg_message;
    err.mgr.output_message = jpeg_silent;
    err.message[0] = '\0';
    err.truncated = false;
}

enum class JpegResult { ok, libjpeg_error, cmyk, too_large };

/// The numerator M of the DCT scaling M/8 that keeps the shorter side >= min_short (8 = full size). Only
/// 1/2, 1/4 and 1/8: libjpeg-turbo has SIMD inverse DCTs for those; the others (3/8, 5/8, ...) run plain C
/// and are slower than decoding at full size (measured: docs/performance.md).
unsigned jpeg_scale_num(int64_t short_side, int64_t min_short) {
    if (min_short <= 0) return 8;
    unsigned m = 8;
    while (m > 1 && (short_side * (m / 2) + 7) / 8 >= min_short) m /= 2;
    return m;
}

JpegResult decode_jpeg(const uint8_t* data, size_t size, const JpegOptions& opt, Image& out,
                       JpegErrorManager& err) {
    jpeg_decompress_struct cinfo;
    install_jpeg_errors(err);
    cinfo.err = &err.mgr;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return JpegResult::libjpeg_error;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return JpegResult::cmyk;
    }
    const bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = opt.fast_dct ? JDCT_IFAST : JDCT_ISLOW;
    cinfo.do_fancy_upsampling = opt.fancy_upsampling ? TRUE : FALSE;
    cinfo.scale_num = jpeg_scale_num(std::min(cinfo.image_width, cinfo.image_height), opt.min_short_side);
    cinfo.scale_denom = 8;
    jpeg_calc_output_dimensions(&cinfo);
    if (int64_t{cinfo.output_height} * cinfo.output_width > kMaxPixels) {
        out.h = cinfo.output_height;
        out.w = cinfo.output_width;
        jpeg_destroy_decompress(&cinfo);
        return JpegResult::too_large;
    }
    jpeg_start_decompress(&cinfo);
    out.h = cinfo.output_height;
    out.w = cinfo.output_width;
    out.c = cinfo.output_components;
    out.pixels.resize(static_cast<size_t>(out.h * out.w * out.c));
    const size_t stride = static_cast<size_t>(out.w * out.c);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[4];
        for (int i = 0; i < 4; ++i)
            rows[i] = out.pixels.data() + std::min<size_t>(cinfo.output_scanline + i, out.h - 1) * stride;
        jpeg_read_scanlines(&cinfo, rows, std::min<JDIMENSION>(4, cinfo.output_height - cinfo.output_scanline));
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return JpegResult::ok;
}

Image decode_jpeg_or_throw(const uint8_t* data, size_t size, const std::string& path, const JpegOptions& opt) {
    Image out;
    JpegErrorManager err;
    const JpegResult result = decode_jpeg(data, size, opt, out, err);
    if (result == JpegResult::too_large) check_size(path, out.h, out.w);
    if (result == JpegResult::cmyk)
        throw InputError(path + ": CMYK/YCCK JPEG is not supported (expected a gray or colour JPEG; convert it "
                                "to RGB)");
    if (result == JpegResult::libjpeg_error)
        throw InputError(path + ": " + (err.truncated ? "truncated JPEG data" : "corrupt or unsupported JPEG data") +
                         " (libjpeg: " + err.message + ")");
    return out;
}

// ---------------------------------------------------------------------------------------------------------
// PNG: libpng's error function longjmps to png_jmpbuf; warnings (ancillary chunks) are ignored.

struct PngReader {
    const uint8_t* data;
    size_t size;
    size_t pos;
    char message[256];
};

[[noreturn]] void png_fail(png_structp png, png_const_charp msg) {
    auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
    std::snprintf(r->message, sizeof r->message, "%s", msg);
    png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}

void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
    auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
    if (n > r->size - r->pos) png_error(png, "truncated PNG data");
    std::memcpy(dst, r->data + r->pos, n);
    r->pos += n;
}

/// Returns false with r.message set on a libpng error. `rows` and `out` live in the caller's frame.
bool decode_png(PngReader& r, Image& out, std::vector<png_bytep>& rows) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_fail, png_warn);
    if (!png) throw std::bad_alloc();
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        return false;
    }
    png_set_read_fn(png, &r, png_read_mem);
    png_read_info(png, info);
    const int color = png_get_color_type(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_16(png);  // the high byte, as PIL reads 16-bit RGB
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    const int channels = png_get_channels(png, info);
    if (channels != 1 && channels != 3) png_error(png, "unexpected channel count after conversion");
    if (h * w > kMaxPixels) png_error(png, "image too large");
    out.h = h;
    out.w = w;
    out.c = channels;
    out.pixels.resize(static_cast<size_t>(h * w * channels));
    rows.resize(static_cast<size_t>(h));
    for (int64_t y = 0; y < h; ++y) rows[y] = out.pixels.data() + y * w * channels;
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
}

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
    return size >= n && std::memcmp(data, magic, n) == 0;
}

}  // namespace

Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& path, const JpegOptions& jpeg) {
    if (size == 0) throw InputError(path + ": empty file (expected a JPEG or PNG image)");
    if (starts_with(data, size, "\xff\xd8\xff", 3)) return decode_jpeg_or_throw(data, size, path, jpeg);
    if (starts_with(data, size, "\x89PNG\r\n\x1a\n", 8)) {
        PngReader r{data, size, 0, {0}};
        Image out;
        std::vector<png_bytep> rows;
        if (!decode_png(r, out, rows)) {
            const bool truncated = std::strcmp(r.message, "truncated PNG data") == 0;
            throw InputError(path + ": " + (truncated ? "truncated PNG data" : "corrupt PNG data (libpng: " +
                                                                                   std::string(r.message) + ")"));
        }
        return out;
    }
    throw InputError(path + ": not a JPEG or PNG image (unknown signature; the folder format reads JPEG and PNG)");
}

Image decode_image_file(const std::string& path, const JpegOptions& jpeg) {
    // One read buffer per thread: decode_images calls this for every file of a folder.
    thread_local std::vector<uint8_t> bytes;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw InputError(path + ": cannot open for reading (" + std::strerror(errno) + ")");
    bytes.clear();
    uint8_t chunk[65536];
    size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw InputError(path + ": read error (is it a directory?)");
    return decode_image_bytes(bytes.data(), bytes.size(), path, jpeg);
}

// ---------------------------------------------------------------------------------------------------------
// Resize and crop: Pillow's ImagingResample (src/libImaging/Resample.c) with the bilinear filter, restricted
// to the output rows and columns the crop keeps (each output pixel depends only on its own coefficients, so
// the kept pixels are bit-identical to resizing everything and cropping after).

namespace {

/// Pillow's 8-bit fixed point: 32 - 8 - 2 fraction bits, rounding by adding half before the shift.
constexpr int kPrecisionBits = 32 - 8 - 2;

/// One pass's filter for output positions [first, first + n): the first input index of each and `ksize`
/// fixed-point coefficients each. Every position reads exactly ksize inputs (the window is moved inside the
/// input and padded with zero coefficients), so the loops run a fixed tap count; zero taps add nothing,
/// which keeps the sums identical to Pillow's.
struct PassCoeffs {
    int ksize = 0;
    std::vector<int32_t> start;
    std::vector<int32_t> k;
};

/// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the triangle filter (support 1, scaled by the
/// downscale factor), for output positions [first, first + n) of out_size.
PassCoeffs pass_coeffs(int64_t in_size, int64_t out_size, int64_t first, int64_t n) {
    const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
    const double filterscale = std::max(scale, 1.0);
    const double support = 1.0 * filterscale;
    const int64_t pillow_ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
    PassCoeffs pc;
    pc.ksize = static_cast<int>(std::min(pillow_ksize, in_size));
    pc.start.resize(n);
    pc.k.assign(static_cast<size_t>(n * pc.ksize), 0);
    std::vector<double> w(static_cast<size_t>(pillow_ksize));
    for (int64_t i = 0; i < n; ++i) {
        const double center = (static_cast<double>(first + i) + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        const int64_t xmin = std::max<int64_t>(static_cast<int>(center - support + 0.5), 0);
        const int64_t xmax = std::min<int64_t>(static_cast<int>(center + support + 0.5), in_size) - xmin;
        double ww = 0.0;
        for (int64_t x = 0; x < xmax; ++x) {
            const double d = std::fabs((static_cast<double>(x + xmin) - center + 0.5) * ss);
            w[x] = d < 1.0 ? 1.0 - d : 0.0;
            ww += w[x];
        }
        // Move the window left where it would end past the input; its first taps are then zeros.
        const int64_t shift = std::max<int64_t>(xmin + pc.ksize - in_size, 0);
        pc.start[i] = static_cast<int32_t>(xmin - shift);
        for (int64_t x = 0; x < xmax; ++x) {
            const double kx = ww != 0.0 ? w[x] / ww : w[x];
            pc.k[i * pc.ksize + shift + x] = static_cast<int32_t>(kx < 0 ? -0.5 + kx * (1 << kPrecisionBits)
                                                                         : 0.5 + kx * (1 << kPrecisionBits));
        }
    }
    return pc;
}

inline uint8_t clip8(int32_t ss) {
    const int32_t v = ss >> kPrecisionBits;
    return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

#define DCS_ALWAYS_INLINE inline __attribute__((always_inline))

/// Horizontal pass over `rows` rows of `src` (row stride src_stride bytes) into dst (n columns, packed).
/// K > 0: the tap count as a compile-time constant; 0: pc.ksize.
template <int C, int K>
DCS_ALWAYS_INLINE void rows_kernel(const uint8_t* src, int64_t src_stride, int64_t rows, const PassCoeffs& pc,
                                   uint8_t* dst) {
    const int64_t n = static_cast<int64_t>(pc.start.size());
    const int ksize = K > 0 ? K : pc.ksize;
    for (int64_t y = 0; y < rows; ++y) {
        const uint8_t* in = src + y * src_stride;
        uint8_t* out = dst + y * n * C;
        for (int64_t x = 0; x < n; ++x) {
            const int32_t* k = &pc.k[x * ksize];
            const uint8_t* p = in + pc.start[x] * C;
            int32_t ss[C];
            for (int c = 0; c < C; ++c) ss[c] = 1 << (kPrecisionBits - 1);
            for (int t = 0; t < ksize; ++t)
                for (int c = 0; c < C; ++c) ss[c] += p[t * C + c] * k[t];
            for (int c = 0; c < C; ++c) out[x * C + c] = clip8(ss[c]);
        }
    }
}

/// Vertical pass: output row i sums rows pc.start[i] - row0 .. of `src` (width bytes each).
template <int K>
DCS_ALWAYS_INLINE void columns_kernel(const uint8_t* src, int64_t src_stride, int64_t row0, int64_t width,
                                      const PassCoeffs& pc, uint8_t* dst) {
    const int64_t n = static_cast<int64_t>(pc.start.size());
    const int ksize = K > 0 ? K : pc.ksize;
    for (int64_t i = 0; i < n; ++i) {
        const int32_t* k = &pc.k[i * ksize];
        const uint8_t* in = src + (pc.start[i] - row0) * src_stride;
        uint8_t* out = dst + i * width;
        for (int64_t x = 0; x < width; ++x) {
            int32_t ss = 1 << (kPrecisionBits - 1);
            for (int t = 0; t < ksize; ++t) ss += in[t * src_stride + x] * k[t];
            out[x] = clip8(ss);
        }
    }
}

/// Both passes for one instruction set, specialised for the common tap counts (3: upscaling; 5: down to 1/2).
#define DCS_RESAMPLE_PASSES(suffix, attributes)                                                                \
    attributes void resample_rows_##suffix(int64_t c, const uint8_t* src, int64_t stride, int64_t rows,         \
                                           const PassCoeffs& pc, uint8_t* dst) {                                \
        if (c == 1) {                                                                                          \
            if (pc.ksize == 3) return rows_kernel<1, 3>(src, stride, rows, pc, dst);                           \
            if (pc.ksize == 5) return rows_kernel<1, 5>(src, stride, rows, pc, dst);                           \
            return rows_kernel<1, 0>(src, stride, rows, pc, dst);                                              \
        }                                                                                                      \
        if (pc.ksize == 3) return rows_kernel<3, 3>(src, stride, rows, pc, dst);                               \
        if (pc.ksize == 5) return rows_kernel<3, 5>(src, stride, rows, pc, dst);                               \
        return rows_kernel<3, 0>(src, stride, rows, pc, dst);                                                  \
    }                                                                                                          \
    attributes void resample_columns_##suffix(const uint8_t* src, int64_t stride, int64_t row0, int64_t width,  \
                                              const PassCoeffs& pc, uint8_t* dst) {                             \
        if (pc.ksize == 3) return columns_kernel<3>(src, stride, row0, width, pc, dst);                        \
        if (pc.ksize == 5) return columns_kernel<5>(src, stride, row0, width, pc, dst);                        \
        return columns_kernel<0>(src, stride, row0, width, pc, dst);                                           \
    }

DCS_RESAMPLE_PASSES(portable, )
DCS_RESAMPLE_PASSES(avx2, __attribute__((target("avx2"))))

void resample_rows(int64_t c, const uint8_t* src, int64_t stride, int64_t rows, const PassCoeffs& pc, uint8_t* dst) {
    if (cpu::has(cpu::Isa::Avx2)) return resample_rows_avx2(c, src, stride, rows, pc, dst);
    resample_rows_portable(c, src, stride, rows, pc, dst);
}

void resample_columns(const uint8_t* src, int64_t stride, int64_t row0, int64_t width, const PassCoeffs& pc,
                      uint8_t* dst) {
    if (cpu::has(cpu::Isa::Avx2)) return resample_columns_avx2(src, stride, row0, width, pc, dst);
    resample_columns_portable(src, stride, row0, width, pc, dst);
}

/// A window of an image: `rows` x `cols` pixels of c bytes at `data`, rows `stride` bytes apart. A view into
/// the source image or into the thread's scratch buffers (valid until the thread's next resize).
struct Window {
    const uint8_t* data = nullptr;
    int64_t stride = 0, rows = 0, cols = 0;
};

/// The passes' buffers, kept per thread: a fresh allocation per image costs page faults and zeroing that
/// take as long as the resize itself.
struct ResizeScratch {
    std::vector<uint8_t> horizontal, vertical;
};

uint8_t* scratch_bytes(std::vector<uint8_t>& buffer, int64_t size) {
    if (buffer.size() < static_cast<size_t>(size)) buffer.resize(static_cast<size_t>(size));
    return buffer.data();
}

/// Rows [y0, y1) and columns [x0, x1) of `img` resized to rh x rw, as PIL's Image.resize(BILINEAR).
Window resized_window(const Image& img, int64_t rh, int64_t rw, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
    const int64_t c = img.c;
    Window win;
    win.rows = y1 - y0;
    win.cols = x1 - x0;
    const bool need_h = rw != img.w, need_v = rh != img.h;
    if (!need_h && !need_v) {
        win.data = img.pixels.data() + (y0 * img.w + x0) * c;
        win.stride = img.w * c;
        return win;
    }
    // Source rows the vertical pass reads (all of [y0, y1) when there is no vertical pass).
    PassCoeffs vert;
    int64_t row0 = y0, row1 = y1;
    if (need_v) {
        vert = pass_coeffs(img.h, rh, y0, win.rows);
        row0 = *std::min_element(vert.start.begin(), vert.start.end());
        row1 = *std::max_element(vert.start.begin(), vert.start.end()) + vert.ksize;
    }
    thread_local ResizeScratch scratch;
    const uint8_t* src = img.pixels.data() + row0 * img.w * c;
    int64_t src_stride = img.w * c;
    if (need_h) {
        uint8_t* horizontal = scratch_bytes(scratch.horizontal, (row1 - row0) * win.cols * c);
        resample_rows(c, src, src_stride, row1 - row0, pass_coeffs(img.w, rw, x0, win.cols), horizontal);
        src = horizontal;
        src_stride = win.cols * c;
    } else {
        src += x0 * c;
    }
    win.stride = src_stride;
    win.data = src;
    if (need_v) {
        win.stride = win.cols * c;
        uint8_t* vertical = scratch_bytes(scratch.vertical, win.rows * win.stride);
        resample_columns(src, src_stride, row0, win.stride, vert, vertical);
        win.data = vertical;
    }
    return win;
}

/// torchvision's center_crop offset of a crop of `crop` in `size`: int(round((size - crop) / 2.0)) with
/// Python's round half to even; negative (the zero padding before) when the crop is larger.
int64_t crop_offset(int64_t size, int64_t crop) {
    if (crop > size) return -((crop - size) / 2);
    const int64_t d = size - crop, q = d / 2;
    return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

void check_transform(const ImageTransform& t) {
    if (t.channels != 1 && t.channels != 3)
        throw std::invalid_argument("image transform: channels must be 1 or 3, got " + std::to_string(t.channels));
    if (t.resize < 0 || t.crop_h < 0 || t.crop_w < 0)
        throw std::invalid_argument("image transform: resize and crop must be >= 0");
}

std::pair<int64_t, int64_t> resized_size(int64_t h, int64_t w, int64_t resize) {
    if (resize <= 0) return {h, w};
    const int64_t s = std::min(h, w), l = std::max(h, w);
    const auto longer = static_cast<int64_t>(static_cast<double>(resize * l) / static_cast<double>(s));
    return w <= h ? std::pair<int64_t, int64_t>{longer, resize} : std::pair<int64_t, int64_t>{resize, longer};
}

}  // namespace

std::pair<int64_t, int64_t> transform_output_size(int64_t h, int64_t w, const ImageTransform& t) {
    const auto [rh, rw] = resized_size(h, w, t.resize);
    return {t.crop_h > 0 ? t.crop_h : rh, t.crop_w > 0 ? t.crop_w : rw};
}

Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w) {
    if (out_h <= 0 || out_w <= 0) throw std::invalid_argument("resize_bilinear: sizes must be > 0");
    const Window win = resized_window(img, out_h, out_w, 0, out_h, 0, out_w);
    Image out{out_h, out_w, img.c, {}};
    out.pixels.resize(static_cast<size_t>(out_h * out_w * img.c));
    for (int64_t y = 0; y < out_h; ++y)
        std::memcpy(out.pixels.data() + y * out_w * img.c, win.data + y * win.stride, out_w * img.c);
    return out;
}

void transform_image(const Image& img, const ImageTransform& t, uint8_t* out_chw) {
    check_transform(t);
    if (img.c != 1 && img.c != 3) throw std::invalid_argument("transform_image: image must have 1 or 3 channels");
    const auto [rh, rw] = resized_size(img.h, img.w, t.resize);
    const auto [oh, ow] = transform_output_size(img.h, img.w, t);
    const int64_t oy = crop_offset(rh, oh), ox = crop_offset(rw, ow);
    // The part of the output inside the resized image; the rest is torchvision's zero padding.
    const int64_t y0 = std::max<int64_t>(oy, 0), y1 = std::min(oy + oh, rh);
    const int64_t x0 = std::max<int64_t>(ox, 0), x1 = std::min(ox + ow, rw);
    const int64_t plane = oh * ow;
    if (y0 >= y1 || x0 >= x1 || y0 != oy || x0 != ox || y1 != oy + oh || x1 != ox + ow)
        std::memset(out_chw, 0, static_cast<size_t>(t.channels * plane));
    if (y0 >= y1 || x0 >= x1) return;
    const Window win = resized_window(img, rh, rw, y0, y1, x0, x1);
    for (int64_t y = 0; y < win.rows; ++y) {
        const uint8_t* in = win.data + y * win.stride;
        uint8_t* out = out_chw + (y0 - oy + y) * ow + (x0 - ox);
        if (img.c == 1) {
            for (int64_t ch = 0; ch < t.channels; ++ch) std::memcpy(out + ch * plane, in, win.cols);
        } else if (t.channels == 3) {
            for (int64_t x = 0; x < win.cols; ++x) {
                out[x] = in[3 * x];
                out[plane + x] = in[3 * x + 1];
                out[2 * plane + x] = in[3 * x + 2];
            }
        } else {
            // PIL's convert("L"): ITU-R 601-2 luma in 16-bit fixed point (Convert.c, L24), rounded.
            for (int64_t x = 0; x < win.cols; ++x)
                out[x] = static_cast<uint8_t>(
                    (in[3 * x] * 19595 + in[3 * x + 1] * 38470 + in[3 * x + 2] * 7471 + 0x8000) >> 16);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Writers.

namespace {

bool encode_jpeg(const Image& img, int quality, unsigned char** buf, unsigned long* len, JpegErrorManager& err) {
    jpeg_compress_struct cinfo;
    install_jpeg_errors(err);
    cinfo.err = &err.mgr;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        return false;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, buf, len);
    cinfo.image_width = static_cast<JDIMENSION>(img.w);
    cinfo.image_height = static_cast<JDIMENSION>(img.h);
    cinfo.input_components = static_cast<int>(img.c);
    cinfo.in_color_space = img.c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<uint8_t*>(img.pixels.data()) + cinfo.next_scanline * img.w * img.c;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return true;
}

void check_writable(const Image& img, const std::string& path) {
    if ((img.c != 1 && img.c != 3) || img.h <= 0 || img.w <= 0 ||
        img.pixels.size() != static_cast<size_t>(img.h * img.w * img.c))
        throw std::invalid_argument(path + ": can only write a non-empty gray or RGB image");
}

void write_bytes(const std::string& path, const void* data, size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw InputError(path + ": cannot open for writing (" + std::strerror(errno) + ")");
    const bool ok = std::fwrite(data, 1, size, f) == size;
    if (std::fclose(f) != 0 || !ok) throw InputError(path + ": write error");
}

void png_write_mem(png_structp png, png_bytep src, png_size_t n) {
    auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
    out->insert(out->end(), src, src + n);
}

void png_flush_mem(png_structp) {}

bool encode_png(const Image& img, std::vector<uint8_t>& out, std::vector<png_bytep>& rows, PngReader& err) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_fail, png_warn);
    if (!png) throw std::bad_alloc();
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_set_write_fn(png, &out, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, static_cast<png_uint_32>(img.w), static_cast<png_uint_32>(img.h), 8,
                 img.c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return true;
}

}  // namespace

void write_jpeg_file(const std::string& path, const Image& img, int quality) {
    check_writable(img, path);
    unsigned char* buf = nullptr;
    unsigned long len = 0;
    JpegErrorManager err;
    const bool ok = encode_jpeg(img, std::clamp(quality, 1, 100), &buf, &len, err);
    if (!ok) {
        std::free(buf);
        throw InputError(path + ": JPEG encoding failed (libjpeg: " + err.message + ")");
    }
    try {
        write_bytes(path, buf, len);
    } catch (...) {
        std::free(buf);
        throw;
    }
    std::free(buf);
}

void write_png_file(const std::string& path, const Image& img) {
    check_writable(img, path);
    std::vector<uint8_t> out;
    std::vector<png_bytep> rows(static_cast<size_t>(img.h));
    for (int64_t y = 0; y < img.h; ++y) rows[y] = const_cast<uint8_t*>(img.pixels.data()) + y * img.w * img.c;
    PngReader err{nullptr, 0, 0, {0}};
    if (!encode_png(img, out, rows, err)) throw InputError(path + ": PNG encoding failed (libpng: " + err.message + ")");
    write_bytes(path, out.data(), out.size());
}

}  // namespace dcs
