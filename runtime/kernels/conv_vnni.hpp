#pragma once
/// The VNNI int8 convolution for few input bytes per kernel row (kernel table row "conv_vnni").
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernels/output_stage.hpp"

namespace dcs::kernels {

/// Int8 convolutions with few input bytes per kernel row (KW x IC channels-last bytes, at most 40) on
/// the host with AVX-512 VNNI. Channels-last input: the KW taps of one kernel row are KW * IC contiguous
/// bytes, read as G = ceil(KW * IC / 4) groups of 4; vpdpbusd multiplies a broadcast group (u8) by 16
/// output channels x 4 weight codes (s8; zero beyond KW * IC, so the bytes read past a row do not
/// count) and adds to int32 accumulators: exact. Each weight vector serves up to 24 accumulators (two
/// output rows of up to 12 pixels, or 12 pixels of two 16-channel blocks); rows are cut into near-equal
/// chunks of at most 12 pixels. Every image is first copied into a zero-padded buffer; s8 inputs are
/// shifted to u8 (x + 128, padding 128) and 128 * sum(w) is subtracted per channel. The sums stay in
/// registers (host_dpbusd) and go through the output stage (host_out16: the integer reference's, as in
/// HostConv) in the same function: with the sums stored to memory and a separate output function, and
/// GCC's copies around _mm512_dpbusd_epi32, MobileNet-style layers took 0.21 (1 -> 16, 3x3 stride 2,
/// 28x28), 0.32 (16 -> 32, 1x1, 14x14) and 0.20 ms (32 -> 64, 1x1, 7x7) instead of 0.12, 0.23 and
/// 0.15. Dispatch (conv_vnni_declines) follows measurements.
constexpr int64_t kVnniMaxPixels = 12;  ///< pixels per chunk of an output row
/// Where it runs (2-D, group 1, no dilation, no residual sum): KW * IC <= 40 bytes per kernel row, and
/// at most 4 input channels or at most 144 output pixels per image. Measured per batch of 256 at one
/// thread against oneDNN's own choice (Xeon with AMX; IC -> OC, input size, kernel):
///   6 -> 16, 14x14, 5x5 (LeNet-5's conv2): 0.27 ms, oneDNN brgconv AMX 0.63 (jit AMX 0.29);
///   6 -> 32, 12x12, 5x5: 0.35 vs 0.66; 12 -> 16, 12x12, 3x3: 0.23 vs 0.39; 8 -> 16, 12x12, 5x5: 0.22 vs 0.41;
///   1 -> 32, 28x28, 5x5: 1.5 vs 3.9 (brgconv VNNI); 3 -> 16, 32x32, 3x3: 1.2 vs 2.1;
///   4 -> 16, 28x28, 3x3: 0.89 vs 1.30 (jit AMX); 4 -> 32: 1.6 vs 2.1; 4 -> 64: 3.1 vs 4.8;
///   3 -> 32, 32x32, 5x5 stride 2: 0.90 vs 0.99; 2 -> 16, 28x28, 5x5: 1.30 vs 1.32.
/// Not used where oneDNN's AMX kernels were faster: 8 -> 32, 14x14, 3x3 pad 1 (0.62 vs 0.55),
/// 10 -> 16, 14x14, 3x3 pad 1 (0.38 vs 0.34), 16 -> 16, 28x28, 3x3 (48 bytes a row: 2.2 vs 1.8).
/// (The figures above are from before the output stage moved into host_conv_vnni_core.)
/// Also 1x1 kernels with up to 32 input channels at any image size (oneDNN pads K = 16 to AMX's 64;
/// with the output stage in registers, host_conv_vnni_core):
///   16 -> 32, 14x14 (MobileNet-style pointwise): 0.25 vs 0.41 (brgconv_1x1 AMX); 16 -> 32, 28x28:
///   1.0 vs 1.38-1.45; 32 -> 64, 14x14: 0.65-0.68 vs 0.74-0.76; 32 -> 128, 14x14: 1.28-1.32 vs 1.49-1.53.
/// Not with 64 input channels: 64 -> 32, 14x14 (64 bytes a row): 0.55-0.57 vs 0.44; 64 -> 128, 7x7:
/// 0.48 vs 0.46-0.48.
constexpr int64_t kVnniMaxRowBytes = 40;
constexpr int64_t kVnniFewChannels = 4;
constexpr int64_t kVnniSmallImage = 144;
constexpr int64_t kVnniPointwiseChannels = 32;

/// A convolution served by host_conv_vnni: its geometry and the current candidate's parameters.
struct HostConvVnni final : HostVnniLayer {
    int64_t ic = 0, oc = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0, ih = 0, iw = 0, oh = 0, ow = 0;
    int64_t g = 0;           ///< 4-byte groups per kernel row
    int64_t rb = 0, bh = 0;  ///< padded buffer: bytes per row, rows
    std::vector<int32_t> toff;  ///< [kh * g]: buffer offset of group (i, k): i * rb + 4 k
    void run(const void* x, void* y, int64_t nb, const void* residual) const override;
    std::string impl() const override;
    void fill(const QLayer& q) override {
        clear_weights(kh, g);
        for (int64_t o = 0; o < oc; ++o) {
            int32_t sum = 0;
            for (int64_t c = 0; c < ic; ++c)
                for (int64_t i = 0; i < kh; ++i)
                    for (int64_t j = 0; j < kw; ++j) {
                        const int8_t v = q.codes[((o * ic + c) * kh + i) * kw + j];
                        const int64_t r = j * ic + c;  // byte of the kernel row (channels-last)
                        w[(((o / 16) * kh + i) * g + r / 4) * 64 + (o % 16) * 4 + r % 4] = v;
                        sum += v;
                    }
            comp[o] = xt == QType::S8 ? -128 * sum : 0;
        }
        fill_output(q);
    }
};

/// Why the kernel does not serve `d` ("" when it does; the CPU features are the table's to check).
std::string conv_vnni_declines(const LayerDesc& d);

/// The kernel for `d` (which it serves).
std::shared_ptr<HostLayer> make_conv_vnni(const LayerDesc& d);

}  // namespace dcs::kernels
