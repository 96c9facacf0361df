#pragma once
/// The AMX pointwise int8 convolution (kernel table row "conv1x1_amx").
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernels/output_stage.hpp"

namespace dcs::kernels {

/// Pointwise int8 convolutions (1x1 kernel, stride 1, no padding, group 1) with AMX (Sapphire Rapids
/// and later): a 1x1 convolution over channels-last data is the product of the [pixels][IC] input
/// and the [IC][OC] weights. Every 32 pixels x 32 output channels are four 16 x 16 int32 tiles: per
/// 64 input channels two input tiles (16 pixels x 64 bytes, read in place with the row stride IC),
/// two weight tiles (16 rows of [16 channels][4 bytes], zero beyond IC and OC) and four TDPBUSD (u8
/// input) or TDPBSSD (s8 input: no shift, no correction). Integer sums are exact. The tiles are
/// stored to a 4 KB buffer and go through the integer reference's output stage (host_out16), while
/// the next 32 x 32 block's tile products run (the stage of block i comes after the products of
/// block i + 1 in program order). A row's last chunk reads up to 63 bytes past its IC bytes (the next
/// pixel's: their weights are zero); blocks whose reads would pass the end of the input, and the
/// last partial block, are copied to a zero-padded buffer first.
/// Measured per batch of 256 at one thread, against what served these shapes before (IC -> OC, size):
///   16 -> 32, 14x14: 0.19 ms vs 0.25 (host_conv_vnni); 32 -> 64, 14x14: 0.40 vs 0.66 (host_conv_vnni);
///   64 -> 128, 7x7: 0.21 vs 0.56 (oneDNN brgconv_1x1 AMX); 128 -> 128, 7x7: 0.28 vs 0.60.

struct HostAmx1x1 final : HostVnniLayer {
    int64_t ic = 0, oc = 0;
    int64_t kc = 0;   ///< 64-byte chunks of input channels
    int64_t pix = 0;  ///< pixels per image
    /// A fused Add: the residual's type (8-bit codes times sum_scale, or fp32). The residual (each
    /// plan's own) has the output's channels-last layout.
    bool sum = false;
    QType rt = QType::U8;
    void run(const void* x, void* y, int64_t nb, const void* residual) const override;
    std::string impl() const override;
    /// Weights: [nblk rounded up to even][kc][16 rows: 4 input channels each][16 output channels][4].
    void fill(const QLayer& q) override {
        w.assign(static_cast<size_t>((nblk + 1) / 2 * 2 * kc * 1024), 0);
        comp.assign(static_cast<size_t>(nblk * 16), 0);
        for (int64_t o = 0; o < oc; ++o)
            for (int64_t c = 0; c < ic; ++c)
                w[((o / 16) * kc + c / 64) * 1024 + ((c % 64) / 4) * 64 + (o % 16) * 4 + c % 4] = q.codes[o * ic + c];
        fill_output(q);
    }
};

/// Why the kernel does not serve `d` ("" when it does; the CPU features are the table's to check).
std::string conv_amx_1x1_declines(const LayerDesc& d);

/// The kernel for `d` (which it serves).
std::shared_ptr<HostLayer> make_conv_amx_1x1(const LayerDesc& d);

}  // namespace dcs::kernels
