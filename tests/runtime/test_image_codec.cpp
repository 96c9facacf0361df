// Tests runtime/image_codec.cpp: JPEG/PNG decoding, its errors, and the Resize + CenterCrop + channel transform.
// Test images are written here with libpng and libjpeg (the test target links them); no data files.
#include "runtime/image_codec.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <jpeglib.h>
#include <png.h>
#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <stdexcept>

#include "common/error.hpp"
#include "runtime/idx_reader.hpp"
#include "support/image_files.hpp"
#include "support/process.hpp"

namespace dcs {
namespace {

using Bytes = std::vector<uint8_t>;

Image make_image(int64_t h, int64_t w, int64_t c, uint32_t seed) {
    Image img{h, w, c, Bytes(static_cast<size_t>(h * w * c))};
    std::mt19937 rng(seed);
    for (auto& v : img.pixels) v = static_cast<uint8_t>(rng() & 0xff);
    return img;
}

/// A smooth colour picture with a little noise: what a photo looks like to a JPEG coder.
Image smooth_image(int64_t h, int64_t w) {
    Image img{h, w, 3, Bytes(static_cast<size_t>(h * w * 3))};
    std::mt19937 rng(7);
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
            const int n = static_cast<int>(rng() % 5) - 2;
            uint8_t* p = &img.pixels[(y * w + x) * 3];
            p[0] = static_cast<uint8_t>(std::clamp<int64_t>(40 + 160 * x / w + n, 0, 255));
            p[1] = static_cast<uint8_t>(std::clamp<int64_t>(30 + 180 * y / h + n, 0, 255));
            p[2] = static_cast<uint8_t>(std::clamp<int64_t>(200 - 100 * (x + y) / (w + h) + n, 0, 255));
        }
    return img;
}

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& b) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

/// A PNG of any colour type and bit depth: `rows` are the raw PNG rows (big-endian samples).
void write_png_raw(const std::string& path, int w, int h, int color_type, int bit_depth, const Bytes& raw,
                   const std::vector<png_color>& palette = {}, const Bytes& trns = {}, bool interlace = false) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, bit_depth, color_type, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    if (!trns.empty()) png_set_tRNS(png, info, trns.data(), static_cast<int>(trns.size()), nullptr);
    png_write_info(png, info);
    const size_t stride = raw.size() / h;
    std::vector<png_bytep> rows(h);
    for (int y = 0; y < h; ++y) rows[y] = const_cast<uint8_t*>(raw.data()) + y * stride;
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
}


/// The InputError message of decoding `path`, or "" when it decodes.
std::string decode_error(const std::string& path) {
    try {
        decode_image_file(path);
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

class ImageCodec : public ::testing::Test {
protected:
    test::TempDir dir;
};

TEST_F(ImageCodec, PngGrayAndRgbRoundTripsAreExact) {
    for (int64_t c : {1, 3}) {
        const Image img = make_image(13, 17, c, 1);
        const std::string path = dir.file("x" + std::to_string(c) + ".png");
        write_png_file(path, img);
        const Image back = decode_image_file(path);
        EXPECT_EQ(back.h, 13);
        EXPECT_EQ(back.w, 17);
        EXPECT_EQ(back.c, c);
        EXPECT_EQ(back.pixels, img.pixels);
    }
}

TEST_F(ImageCodec, PngAlphaPaletteSixteenBitAndLowDepthBecomeEightBitGrayOrRgb) {
    const int w = 5, h = 3;
    const Image rgb = make_image(h, w, 3, 2), gray = make_image(h, w, 1, 3);
    Bytes ga, rgba, g16, rgb16, pal, g1;
    for (int64_t i = 0; i < w * h; ++i) {
        ga.insert(ga.end(), {gray.pixels[i], static_cast<uint8_t>(i * 7)});
        rgba.insert(rgba.end(), {rgb.pixels[3 * i], rgb.pixels[3 * i + 1], rgb.pixels[3 * i + 2], 9});
        g16.insert(g16.end(), {gray.pixels[i], static_cast<uint8_t>(255 - i)});
        for (int ch = 0; ch < 3; ++ch) rgb16.insert(rgb16.end(), {rgb.pixels[3 * i + ch], 0x80});
        pal.push_back(static_cast<uint8_t>(i % 4));
    }
    // 1-bit gray: each row one byte, pixels 1 0 1 0 1.
    for (int y = 0; y < h; ++y) g1.push_back(0xA8);
    const std::vector<png_color> palette = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}, {255, 0, 128}};
    write_png_raw(dir.file("ga.png"), w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga);
    write_png_raw(dir.file("rgba.png"), w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba);
    write_png_raw(dir.file("g16.png"), w, h, PNG_COLOR_TYPE_GRAY, 16, g16);
    write_png_raw(dir.file("rgb16.png"), w, h, PNG_COLOR_TYPE_RGB, 16, rgb16);
    write_png_raw(dir.file("pal.png"), w, h, PNG_COLOR_TYPE_PALETTE, 8, pal, palette, {0, 128});
    write_png_raw(dir.file("g1.png"), w, h, PNG_COLOR_TYPE_GRAY, 1, g1);
    write_png_raw(dir.file("interlaced.png"), w, h, PNG_COLOR_TYPE_RGB, 8, rgb.pixels, {}, {}, true);

    EXPECT_EQ(decode_image_file(dir.file("ga.png")).pixels, gray.pixels);
    EXPECT_EQ(decode_image_file(dir.file("rgba.png")).pixels, rgb.pixels);
    EXPECT_EQ(decode_image_file(dir.file("g16.png")).pixels, gray.pixels);  // the high byte
    EXPECT_EQ(decode_image_file(dir.file("rgb16.png")).pixels, rgb.pixels);
    EXPECT_EQ(decode_image_file(dir.file("interlaced.png")).pixels, rgb.pixels);
    const Image p = decode_image_file(dir.file("pal.png"));
    ASSERT_EQ(p.c, 3);
    for (int64_t i = 0; i < w * h; ++i) {
        const png_color& col = palette[i % 4];
        EXPECT_EQ(p.pixels[3 * i], col.red);
        EXPECT_EQ(p.pixels[3 * i + 1], col.green);
        EXPECT_EQ(p.pixels[3 * i + 2], col.blue);
    }
    const Image b = decode_image_file(dir.file("g1.png"));
    ASSERT_EQ(b.c, 1);
    EXPECT_EQ(b.pixels, Bytes({255, 0, 255, 0, 255, 255, 0, 255, 0, 255, 255, 0, 255, 0, 255}));
    for (const char* name : {"ga.png", "g16.png", "g1.png"}) EXPECT_EQ(decode_image_file(dir.file(name)).c, 1) << name;
}

TEST_F(ImageCodec, JpegQuality95IsWithinAFewLevelsAndGrayStaysGray) {
    const Image img = smooth_image(48, 64);
    write_jpeg_file(dir.file("c.jpg"), img, 95);
    const Image back = decode_image_file(dir.file("c.jpg"));
    ASSERT_EQ(back.c, 3);
    ASSERT_EQ(back.pixels.size(), img.pixels.size());
    int max_diff = 0;
    double sum = 0;
    for (size_t i = 0; i < img.pixels.size(); ++i) {
        const int d = std::abs(int(back.pixels[i]) - int(img.pixels[i]));
        max_diff = std::max(max_diff, d);
        sum += d;
    }
    EXPECT_LE(max_diff, 8);
    EXPECT_LE(sum / img.pixels.size(), 2.0);

    Image gray{48, 64, 1, Bytes(48 * 64)};
    for (size_t i = 0; i < gray.pixels.size(); ++i) gray.pixels[i] = img.pixels[3 * i];
    write_jpeg_file(dir.file("g.jpg"), gray, 95);
    EXPECT_EQ(decode_image_file(dir.file("g.jpg")).c, 1);
}

TEST_F(ImageCodec, FormatIsRecognisedByContentNotName) {
    const Image img = make_image(4, 4, 3, 4);
    write_png_file(dir.file("really_png.jpg"), img);
    EXPECT_EQ(decode_image_file(dir.file("really_png.jpg")).pixels, img.pixels);
}

TEST_F(ImageCodec, JpegDctScalingKeepsTheShorterSideAboveTheTarget) {
    write_jpeg_file(dir.file("big.jpg"), smooth_image(480, 640), 90);
    JpegOptions opt;
    opt.min_short_side = 224;
    const Image small = decode_image_file(dir.file("big.jpg"), opt);
    EXPECT_EQ(small.h, 240);  // 1/2: 1/4 would give 120 < 224
    EXPECT_EQ(small.w, 320);
    opt.min_short_side = 480;
    EXPECT_EQ(decode_image_file(dir.file("big.jpg"), opt).h, 480);
}

TEST_F(ImageCodec, BadFilesAreInputErrorsNamingTheFile) {
    write_bytes(dir.file("empty.png"), {});
    write_bytes(dir.file("text.jpg"), Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
    write_jpeg_file(dir.file("ok.jpg"), smooth_image(64, 64), 95);
    Bytes jpeg = read_bytes(dir.file("ok.jpg"));
    write_bytes(dir.file("trunc.jpg"), Bytes(jpeg.begin(), jpeg.begin() + jpeg.size() / 2));
    write_bytes(dir.file("header_only.jpg"), Bytes(jpeg.begin(), jpeg.begin() + 20));
    write_bytes(dir.file("no_eoi.jpg"), Bytes(jpeg.begin(), jpeg.end() - 2));
    write_png_file(dir.file("ok.png"), make_image(32, 32, 3, 5));
    Bytes png = read_bytes(dir.file("ok.png"));
    write_bytes(dir.file("trunc.png"), Bytes(png.begin(), png.begin() + png.size() / 2));
    Bytes corrupt = png;
    for (size_t i = 60; i < 80; ++i) corrupt[i] ^= 0x5a;  // inside the IDAT chunk: its CRC fails
    write_bytes(dir.file("corrupt.png"), corrupt);
    dcs::test::write_cmyk_jpeg(dir.file("cmyk.jpg"), 16, 16);

    const struct {
        const char* name;
        const char* expected;
    } cases[] = {
        {"empty.png", "empty file"},
        {"text.jpg", "not a JPEG or PNG image"},
        {"trunc.jpg", "truncated JPEG data (libjpeg: Premature end of JPEG file)"},
        {"header_only.jpg", "JPEG data"},
        {"no_eoi.jpg", "truncated JPEG data"},
        {"trunc.png", "truncated PNG data"},
        {"corrupt.png", "corrupt PNG data (libpng:"},
        {"cmyk.jpg", "CMYK/YCCK JPEG is not supported"},
        {"missing.png", "cannot open for reading"},
    };
    for (const auto& c : cases) {
        const std::string msg = decode_error(dir.file(c.name));
        EXPECT_NE(msg.find(dir.file(c.name) + ": "), std::string::npos) << c.name << ": " << msg;
        EXPECT_NE(msg.find(c.expected), std::string::npos) << c.name << ": " << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    EXPECT_NE(decode_error(dir.path.string()), "");  // a directory
}

// --- transform -------------------------------------------------------------------------------------------

std::vector<uint8_t> transform(const Image& img, const ImageTransform& t) {
    const auto [h, w] = transform_output_size(img.h, img.w, t);
    std::vector<uint8_t> out(static_cast<size_t>(t.channels * h * w), 77);
    transform_image(img, t, out.data());
    return out;
}

TEST(ImageTransform, GrayIsReplicatedAndColourBecomesPilLuma) {
    const Image gray = make_image(3, 4, 1, 6);
    const auto out = transform(gray, {0, 0, 0, 3});
    ASSERT_EQ(out.size(), 36u);
    for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(Bytes(out.begin() + ch * 12, out.begin() + ch * 12 + 12), gray.pixels);

    // PIL: Image.new("RGB", (1, 1), colour).convert("L") gives 76 for red, 150 for green, 29 for blue.
    const Image rgb{1, 5, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 10, 10}};
    EXPECT_EQ(transform(rgb, {0, 0, 0, 1}), Bytes({76, 150, 29, 255, 10}));
    const Image any = make_image(7, 9, 3, 8);
    const auto l = transform(any, {0, 0, 0, 1});
    for (int64_t i = 0; i < 63; ++i) {
        const uint8_t* p = &any.pixels[3 * i];
        EXPECT_EQ(l[i], (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    }
    const auto planar = transform(any, {0, 0, 0, 3});
    for (int64_t i = 0; i < 63; ++i)
        for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(planar[ch * 63 + i], any.pixels[3 * i + ch]);
}

TEST(ImageTransform, ResizeToTheSameSizeIsTheIdentity) {
    const Image img = make_image(28, 28, 1, 9);
    EXPECT_EQ(resize_bilinear(img, 28, 28).pixels, img.pixels);
    EXPECT_EQ(transform(img, {28, 28, 28, 1}), img.pixels);
    const Image wide = make_image(20, 30, 3, 10);
    EXPECT_EQ(resize_bilinear(wide, 20, 30).pixels, wide.pixels);
    EXPECT_EQ(transform(wide, {20, 0, 0, 3}), transform(wide, {0, 0, 0, 3}));
}

TEST(ImageTransform, OutputSizesFollowTorchvision) {
    // Shorter side to `resize`, longer int(resize * long / short).
    using Size = std::pair<int64_t, int64_t>;
    const auto size = [](int64_t h, int64_t w, ImageTransform t) { return transform_output_size(h, w, t); };
    EXPECT_EQ(size(375, 500, {256, 0, 0, 3}), Size(256, 341));
    EXPECT_EQ(size(500, 375, {256, 0, 0, 3}), Size(341, 256));
    EXPECT_EQ(size(300, 200, {256, 0, 0, 3}), Size(384, 256));
    EXPECT_EQ(size(100, 100, {7, 0, 0, 3}), Size(7, 7));
    EXPECT_EQ(size(375, 500, {256, 224, 200, 3}), Size(224, 200));
    const Image img = make_image(375, 500, 3, 11);
    const Image r = resize_bilinear(img, 256, 341);
    EXPECT_EQ(r.h, 256);
    EXPECT_EQ(r.w, 341);
    EXPECT_EQ(r.pixels.size(), 256u * 341 * 3);
}

TEST(ImageTransform, ResizeKeepsConstantsAndAveragesACheckerboard) {
    for (auto [h, w] : {std::pair<int64_t, int64_t>{30, 40}, {7, 5}, {100, 61}}) {
        Image flat{h, w, 3, Bytes(static_cast<size_t>(h * w * 3), 173)};
        for (auto [oh, ow] : {std::pair<int64_t, int64_t>{13, 17}, {64, 80}, {3, 3}, {h, 2 * w}})
            for (uint8_t v : resize_bilinear(flat, oh, ow).pixels) ASSERT_EQ(v, 173) << oh << "x" << ow;
    }
    // A 1-pixel checkerboard halved: away from the borders PIL's triangle filter (support 2 at scale 2,
    // weights 1/8 3/8 3/8 1/8) averages the two values exactly.
    Image board{16, 16, 1, Bytes(256)};
    for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 16; ++x) board.pixels[y * 16 + x] = (x + y) % 2 ? 200 : 0;
    const Image half = resize_bilinear(board, 8, 8);
    for (int y = 1; y < 7; ++y)
        for (int x = 1; x < 7; ++x) EXPECT_EQ(half.pixels[y * 8 + x], 100) << y << "," << x;
}

TEST(ImageTransform, CentreCropUsesPythonRoundingAndZeroPads) {
    Image img{5, 5, 1, Bytes(25)};
    for (int i = 0; i < 25; ++i) img.pixels[i] = static_cast<uint8_t>(i);
    // (5 - 2) / 2 = 1.5 rounds to 2; (5 - 4) / 2 = 0.5 rounds to 0.
    EXPECT_EQ(transform(img, {0, 2, 2, 1}), Bytes({12, 13, 17, 18}));
    EXPECT_EQ(transform(img, {0, 4, 4, 1}), Bytes({0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18}));
    EXPECT_EQ(transform(img, {0, 1, 3, 1}), Bytes({11, 12, 13}));
    Image seven{1, 7, 1, {0, 1, 2, 3, 4, 5, 6}};
    EXPECT_EQ(transform(seven, {0, 1, 2, 1}), Bytes({2, 3}));  // 2.5 rounds to 2
    EXPECT_EQ(transform(seven, {0, 1, 4, 1}), Bytes({2, 3, 4, 5}));  // 1.5 rounds to 2
    // Smaller than the crop: torchvision pads (crop - size) // 2 before, the rest after, with zeros.
    Image small{2, 3, 1, {1, 2, 3, 4, 5, 6}};
    EXPECT_EQ(transform(small, {0, 4, 5, 1}),
              Bytes({0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0}));
    // Padded in height ((2 - 1) // 2 = 0 rows before, 1 after), cropped in width (offset 4 / 2 = 2).
    Image wide{1, 7, 1, {1, 2, 3, 4, 5, 6, 7}};
    EXPECT_EQ(transform(wide, {0, 2, 3, 1}), Bytes({3, 4, 5, 0, 0, 0}));
    EXPECT_EQ(transform(wide, {0, 3, 3, 1}), Bytes({0, 0, 0, 3, 4, 5, 0, 0, 0}));
}

/// Pillow's ImagingResample with the bilinear filter, written as literally as Resample.c (variable tap counts,
/// every row of the horizontal pass): the oracle for the library's windowed, fixed-tap version.
Image pillow_resize_reference(const Image& in, int64_t oh, int64_t ow) {
    const auto coeffs = [](int64_t in_size, int64_t out_size, std::vector<int>& bounds, std::vector<int>& kk) {
        const double scale = double(in_size) / out_size, filterscale = std::max(scale, 1.0);
        const double support = filterscale;
        const int ksize = int(std::ceil(support)) * 2 + 1;
        bounds.assign(out_size * 2, 0);
        kk.assign(out_size * ksize, 0);
        for (int64_t xx = 0; xx < out_size; ++xx) {
            const double center = (xx + 0.5) * scale;
            int xmin = std::max(int(center - support + 0.5), 0);
            int xmax = std::min<int>(int(center + support + 0.5), int(in_size)) - xmin;
            std::vector<double> k(xmax);
            double ww = 0;
            for (int x = 0; x < xmax; ++x) {
                const double d = std::abs((x + xmin - center + 0.5) / filterscale);
                k[x] = d < 1 ? 1 - d : 0;
                ww += k[x];
            }
            for (int x = 0; x < xmax; ++x) {
                const double v = ww != 0 ? k[x] / ww : k[x];
                kk[xx * ksize + x] = int(v < 0 ? -0.5 + v * (1 << 22) : 0.5 + v * (1 << 22));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return ksize;
    };
    const auto clip = [](int ss) { return uint8_t(std::clamp(ss >> 22, 0, 255)); };
    const int64_t c = in.c;
    Image tmp = in;
    if (ow != in.w) {
        std::vector<int> b, k;
        const int ks = coeffs(in.w, ow, b, k);
        tmp = Image{in.h, ow, c, Bytes(in.h * ow * c)};
        for (int64_t y = 0; y < in.h; ++y)
            for (int64_t x = 0; x < ow; ++x)
                for (int64_t ch = 0; ch < c; ++ch) {
                    int ss = 1 << 21;
                    for (int t = 0; t < b[x * 2 + 1]; ++t)
                        ss += in.pixels[(y * in.w + b[x * 2] + t) * c + ch] * k[x * ks + t];
                    tmp.pixels[(y * ow + x) * c + ch] = clip(ss);
                }
    }
    if (oh == in.h) return tmp;
    std::vector<int> b, k;
    const int ks = coeffs(in.h, oh, b, k);
    Image out{oh, ow, c, Bytes(oh * ow * c)};
    for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow * c; ++x) {
            int ss = 1 << 21;
            for (int t = 0; t < b[y * 2 + 1]; ++t) ss += tmp.pixels[(b[y * 2] + t) * ow * c + x] * k[y * ks + t];
            out.pixels[y * ow * c + x] = clip(ss);
        }
    return out;
}

TEST(ImageTransform, ResizeMatchesALiteralPillowReference) {
    const std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t> cases[] = {
        {224, 224, 3, 256, 256}, {375, 500, 3, 256, 341}, {61, 40, 1, 13, 9}, {5, 7, 3, 40, 3},
        {3, 2, 1, 17, 11},       {100, 100, 3, 33, 100},  {28, 28, 1, 56, 56}, {480, 640, 3, 224, 298}};
    for (const auto& [h, w, c, oh, ow] : cases) {
        const Image img = make_image(h, w, c, static_cast<uint32_t>(h * w));
        EXPECT_EQ(resize_bilinear(img, oh, ow).pixels, pillow_resize_reference(img, oh, ow).pixels)
            << h << "x" << w << " -> " << oh << "x" << ow;
    }
}

TEST(ImageTransform, CroppedResizeEqualsResizeThenCrop) {
    for (auto [h, w, c] : {std::tuple<int64_t, int64_t, int64_t>{375, 500, 3}, {224, 224, 3}, {61, 40, 1}, {9, 300, 3}}) {
        const Image img = make_image(h, w, c, static_cast<uint32_t>(h + w));
        for (int64_t resize : {256, 32, 8}) {
            const ImageTransform t{resize, 24, 30, c};
            const auto [rh, rw] = transform_output_size(h, w, {resize, 0, 0, c});
            const Image full = resize_bilinear(img, rh, rw);
            EXPECT_EQ(transform(img, t), transform(full, {0, 24, 30, c})) << h << "x" << w << " -> " << resize;
        }
    }
}

TEST(ImageTransform, FashionMnistPngDecodesToTheIdxBytes) {
    const std::string images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    std::error_code ec;
    if (!std::filesystem::exists(images, ec)) GTEST_SKIP() << images << " not installed";
    const IdxArray idx = read_idx(images);
    test::TempDir dir;
    for (int64_t n = 0; n < 20; ++n) {
        Image img{28, 28, 1, Bytes(idx.payload.begin() + n * 784, idx.payload.begin() + (n + 1) * 784)};
        write_png_file(dir.file("x.png"), img);
        const Image back = decode_image_file(dir.file("x.png"));
        EXPECT_EQ(transform(back, {28, 28, 28, 1}), img.pixels);
        EXPECT_EQ(transform(back, {0, 28, 28, 1}), img.pixels);
    }
}

TEST(ImageTransform, InvalidSettingsThrow) {
    const Image img = make_image(4, 4, 3, 12);
    uint8_t out[64];
    EXPECT_THROW(transform_image(img, {0, 4, 4, 2}, out), std::invalid_argument);
    EXPECT_THROW(transform_image(img, {-1, 4, 4, 3}, out), std::invalid_argument);
    EXPECT_THROW(transform_image(make_image(4, 4, 2, 1), {0, 4, 4, 1}, out), std::invalid_argument);
}

}  // namespace
}  // namespace dcs
