#pragma once
/// The depthwise int8 convolution with AVX-512 VNNI and VBMI (kernel table row "conv_dw").
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernels/output_stage.hpp"

namespace dcs::kernels {

/// Depthwise int8 convolutions (group == input channels == output channels) on the host with AVX-512
/// VNNI and VBMI. oneDNN 2.6 serves them with brdgmm_dw at a small fraction of the machine's speed on
/// small images (MobileNet-style 16 channels on 14x14: 0.53 ms per batch of 256 at one thread).
/// Every image is first copied into a zero-padded u8 buffer in blocks of 16 channels, [block][row]
/// [column][16] (s8 shifted by 128, as in host_conv_vnni). For an output pixel, a block, a kernel row
/// and a group of 4 kernel columns, one 64-byte load (4 pixels x 16 channels) and one byte permutation
/// (vpermb) give the 64 bytes [channel][j] = buffer[row][column + j][channel], and vpdpbusd adds their
/// products with the [channel][j] weight codes (zero for taps beyond the kernel: those bytes do not
/// count) to the block's 16 int32 sums: KH * ceil(KW / 4) permutations and vpdpbusd per pixel and
/// block, up to 16 pixels per weight load. Where the stride is below the kernel height, two output rows
/// share each permuted input row (host_dw_pixels2, up to 14 pixels of each). Integer sums (exact); s8
/// inputs get -128 * sum(w) per channel; the output stage is the integer reference's (host_out16, or
/// its packed form, host_out_packed).
/// Where it runs (measured per batch of 256 at one thread against oneDNN's brdgmm_dw, u8 -> u8, ReLU;
/// channels, input size, kernel, stride):
///   16, 14x14, 3x3: 0.16-0.17 vs 0.53 ms; stride 2: 0.068-0.078 vs 0.20; 16, 14x14, 5x5: 0.33 vs 0.95;
///   32, 14x14: 0.34-0.36 vs 0.84, stride 2: 0.17-0.18 vs 0.29; 32, 28x28: 1.63 vs 2.72, stride 2:
///   0.68 vs 0.83; 32, 14x14, 5x5: 0.68 vs 1.24;
///   64, 14x14: 0.80 vs 1.42, stride 2: 0.39 vs 0.46; 64, 14x14, 5x5: 1.40 vs 2.39-2.50;
///   128, 7x7: 0.52 vs 0.71; 128, 14x14: 1.98 vs 2.59; 256, 14x14, 5x5: 7.08 vs 8.53-8.68.
/// At first not at 256 channels with 3x3 (14x14: 5.41 vs 5.07-5.29 ms). Since the packed output stage
/// and the two-row mode, whole models with a 3x3 depthwise layer of 192 to 960 channels (1 -> 32 stride
/// 2, pointwise to C, depthwise, pointwise to 64, FC) run 27-37% faster at one thread with it than with
/// oneDNN's brdgmm_dw (e.g. 256 channels on 14x14 then 7x7: 31.1-31.6k -> 41.6-43.0k images/s; 960 on
/// 7x7: 33.9-34.3k -> 43.2-45.7k). Hence: kernels 3 to 8 wide at any channel count; narrower kernels
/// (not measured beyond 128 channels) up to 128.
/// Measured alternatives: the padded image channels-last, the [channel][j] bytes gathered from one,
/// two (vpermt2b) or four 16-byte loads depending on the channel count: 32 channels, 14x14: 0.51 ms,
/// 64: 1.16, 256 (5x5): slower than oneDNN, but at stride 2, where the blocked copy of every input
/// pixel weighs more, 32 channels 0.13-0.16 instead of 0.16-0.17; fp32 sums (an fp32 copy of the padded
/// image, one FMA per tap: exact below 2^24): 16 channels, 14x14: 0.24 ms, stride 2: 0.10; a buffer of
/// the permuted bytes (built once per buffer row and column, read by KH output rows): 0.26 and 0.09;
/// four output pixels packed into one 64-byte store (vpackssdw / vpackuswb): no change.
constexpr int64_t kDwMaxChannels = 128;
constexpr int64_t kDwMaxKernelWidth = 8;
constexpr int64_t kDwWideKernel = 3;  ///< from this kernel width on, any channel count
/// Output pixels per weight load (16 channels, 14x14, 3x3: 0.16 ms, 0.22 with up to 8).
constexpr int kDwMaxPixels = 16;

struct HostDwConv final : HostVnniLayer {
    int64_t c = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0, ih = 0, iw = 0, oh = 0, ow = 0;
    int64_t bw = 0, bh = 0;  ///< padded image buffer: pixels per row (a multiple of 4), rows
    /// Zero pixels before each padded row, so that the image's first pixel, and each 4-pixel store of
    /// the copy, is 64-byte aligned (pw + cs a multiple of 4).
    int64_t cs = 0;
    int64_t g = 0;           ///< groups of 4 kernel columns per kernel row
    /// One output row at a time, not two (DCS_DW_ONE_ROW=1, read when the kernel is made: A/B runs).
    bool one_row = false;
    uint8_t idx[64] = {};    ///< byte 4 c + j of a gather: 16 j + c (pixel j's channel c)
    void run(const void* x, void* y, int64_t nb, const void* residual) const override;
    std::string impl() const override;
    void layout() {
        for (int64_t ch = 0; ch < 16; ++ch)
            for (int64_t j = 0; j < 4; ++j) idx[4 * ch + j] = static_cast<uint8_t>(16 * j + ch);
    }
    void fill(const QLayer& q) override {
        clear_weights(kh, g);
        for (int64_t o = 0; o < c; ++o) {
            int32_t sum = 0;
            for (int64_t i = 0; i < kh; ++i)
                for (int64_t j = 0; j < kw; ++j) {
                    const int8_t v = q.codes[(o * kh + i) * kw + j];
                    w[(((o / 16) * kh + i) * g + j / 4) * 64 + (o % 16) * 4 + j % 4] = v;
                    sum += v;
                }
            comp[o] = xt == QType::S8 ? -128 * sum : 0;
        }
        fill_output(q);
    }
};

/// Why the kernel does not serve `d` ("" when it does; the CPU features are the table's to check).
std::string conv_dw_declines(const LayerDesc& d);

/// The kernel for `d` (which it serves).
std::shared_ptr<HostLayer> make_conv_dw(const LayerDesc& d);

}  // namespace dcs::kernels
