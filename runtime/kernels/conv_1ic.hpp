#pragma once
/// The one-input-channel int8 convolution (kernel table row "conv_ic1", AVX-512).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/cpu_features.hpp"
#include "runtime/kernels/host_layer.hpp"

namespace dcs::kernels {

/// A single-input-channel int8 convolution with few output channels (LeNet-5's conv1: 1 -> 6, 5x5) on
/// the host. oneDNN 2.6 serves it with jit_int8 at a fraction of its usual speed (2.8 ms per batch of
/// 256 on this CPU, more than the rest of the network): with one input channel there is no reduction to
/// vectorize and six output channels fill six lanes. Here 32 output columns of one row are two 16-lane
/// vectors, one per output channel, and every tap is a fused multiply-add of a broadcast weight (1.2 ms).
/// Integer products summed in fp32 are exact (|sum| < 2^24 for up to 256 taps), and the output stage is
/// the integer reference's: (acc + bias[c]) * scale[c], activation, clamp, round half to even.
/// Beyond 16 output channels the VNNI kernel below (HostConvVnni) or oneDNN's kernels are used.
/// Up to 8 channels: 32 columns x 8 channels per pass ("rows"); 9 to 16: the 16 channels of 8 pixels
/// per pass, one broadcast input value per tap and pixel ("pixels"; oneDNN: 1.4 ms, this: 1.0 ms for the
/// example ResNet's 1 -> 16, 3x3). With AVX-512 VNNI and VBMI the row kernel sums in int32 with
/// vpdpbusd instead (host_conv_block_vnni; LeNet-5's conv1: 0.70 -> 0.46 ms at one thread).
constexpr int64_t kHostConvMaxChannels = 16;
constexpr int kHostConvBlock = 8;  ///< output channels per pass of the row kernel (16 accumulators)

struct HostConv final : HostLayer {
    int64_t oc = 0, ocp = 0;  ///< output channels, padded to 6 (up to 6) or to kHostConvBlock
    int64_t kh = 0, kw = 0, ph = 0, pw = 0, ih = 0, iw = 0, oh = 0, ow = 0, owp = 0;  ///< owp: ow rounded up to 32
    QType xt = QType::S8, yt = QType::U8;
    QAct act = QAct::None;
    float act_lo = 0.0f, act_hi = 0.0f;
    std::vector<float> w;            ///< [ocp][kh][kw]: the codes as floats (zeros beyond oc)
    std::vector<float> wt;           ///< [kh][kw][16]: the same, channels innermost (pixel kernel)
    std::vector<float> bias, scale;  ///< [ocp]
    /// The row kernel with AVX-512 VNNI and VBMI (host_conv_block_vnni): the taps of a kernel row in
    /// groups of 4 (g4 per row), packed per channel (wq: [ocp][kh][g4], zeros beyond kw), and the
    /// compensation of s8 inputs read as u8 (comp: [ocp], -128 * sum of the channel's codes).
    bool vnni = false;
    int64_t g4 = 0;
    std::vector<int32_t> wq, comp;
    /// 8-bit output with blocks of 6 and AVX-512 VBMI: the [6][32] block result goes to channels-last
    /// order by byte permutations (tidx: source byte of each of the up to 192 output bytes; thi: which
    /// come from the third 64-byte vector) instead of a scalar loop.
    bool vbmi_transpose = false;
    alignas(64) uint8_t tidx[192] = {};
    uint64_t thi[3] = {0, 0, 0};
    void transpose_layout() {
        vbmi_transpose = ocp == 6 && yt != QType::F32 && cpu::has(cpu::Isa::Avx512Vbmi);
        if (!vbmi_transpose) return;
        for (int64_t b = 0; b < 32 * oc; ++b) {
            const int64_t src = (b % oc) * 32 + b / oc;
            tidx[b] = static_cast<uint8_t>(src);
            if (src >= 128) thi[b / 64] |= uint64_t{1} << (b % 64);
        }
    }
    void run(const void* x, void* y, int64_t nb, const void* residual) const override;
    std::string impl() const override;
    void fill(const QLayer& q) override {
        w.assign(static_cast<size_t>(ocp * kh * kw), 0.0f);
        for (int64_t i = 0; i < oc * kh * kw; ++i) w[i] = static_cast<float>(q.codes[i]);
        wt.assign(static_cast<size_t>(kh * kw * 16), 0.0f);
        if (oc <= 16)
            for (int64_t o = 0; o < oc; ++o)
                for (int64_t t = 0; t < kh * kw; ++t) wt[t * 16 + o] = w[o * kh * kw + t];
        if (vnni) {
            wq.assign(static_cast<size_t>(ocp * kh * g4), 0);
            comp.assign(static_cast<size_t>(ocp), 0);
            for (int64_t o = 0; o < oc; ++o) {
                int32_t sum = 0;
                for (int64_t i = 0; i < kh; ++i)
                    for (int64_t j = 0; j < kw; ++j) {
                        const int8_t v = q.codes[(o * kh + i) * kw + j];
                        uint32_t& packed = reinterpret_cast<uint32_t&>(wq[(o * kh + i) * g4 + j / 4]);
                        packed |= static_cast<uint32_t>(static_cast<uint8_t>(v)) << (8 * (j % 4));
                        sum += v;
                    }
                comp[o] = xt == QType::S8 ? -128 * sum : 0;
            }
        }
        bias.assign(ocp, 0.0f);
        scale.assign(ocp, 0.0f);
        std::copy(q.bias.begin(), q.bias.end(), bias.begin());
        std::copy(q.out_scale.begin(), q.out_scale.end(), scale.begin());
        act_lo = q.act_lo;
        act_hi = q.act_hi;
    }
};

/// Why the kernel does not serve `d` ("" when it does; the CPU features are the table's to check).
std::string conv_1ic_declines(const LayerDesc& d);

/// The kernel for `d` (which it serves), its variants chosen with cpu::has() now.
std::shared_ptr<HostLayer> make_conv_1ic(const LayerDesc& d);

}  // namespace dcs::kernels
