#include "runtime/kernels/conv_1ic.hpp"

#include <omp.h>

#include "runtime/kernels/output_stage.hpp"

namespace dcs::kernels {
namespace {

// GCC 12 reports its own AVX-512 intrinsics (`__m512 __Y = __Y;`) as maybe uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

template <bool F32OUT, int OB>
DCS_AVX512 inline void host_conv_block_out(const HostConv& hc, const __m512 (&acc)[OB][2], int64_t o0, void* tmp);

/// OB (6 or kHostConvBlock) output channels from o0 for 32 columns from c0 of row r: `buf` is the
/// zero-padded float image, `tmp` receives [OB][32] results (bytes or floats).
template <bool F32OUT, int OB>
DCS_AVX512 inline void host_conv_block(const HostConv& hc, const float* __restrict buf, int64_t bw, int64_t r,
                                       int64_t c0, int64_t o0, void* tmp) {
    __m512 acc[OB][2];
    for (int o = 0; o < OB; ++o) acc[o][0] = acc[o][1] = _mm512_setzero_ps();
    const float* __restrict w = hc.w.data();
    for (int64_t i = 0; i < hc.kh; ++i) {
        const float* xr = buf + (r + i) * bw + c0;
        for (int64_t j = 0; j < hc.kw; ++j) {
            const __m512 x0 = _mm512_loadu_ps(xr + j), x1 = _mm512_loadu_ps(xr + j + 16);
            for (int o = 0; o < OB; ++o) {
                const __m512 wv = _mm512_set1_ps(w[((o0 + o) * hc.kh + i) * hc.kw + j]);
                acc[o][0] = _mm512_fmadd_ps(wv, x0, acc[o][0]);
                acc[o][1] = _mm512_fmadd_ps(wv, x1, acc[o][1]);
            }
        }
    }
    host_conv_block_out<F32OUT, OB>(hc, acc, o0, tmp);
}

/// The output stage of host_conv_block: `acc` holds the sums (exact integers) of OB channels from o0
/// for 32 columns.
template <bool F32OUT, int OB>
DCS_AVX512 inline void host_conv_block_out(const HostConv& hc, const __m512 (&acc)[OB][2], int64_t o0, void* tmp) {
    const bool relu = hc.act == QAct::Relu, clip = hc.act == QAct::Clip;
    const float alo = clip ? hc.act_lo : (relu ? 0.0f : -FLT_MAX), ahi = clip ? hc.act_hi : FLT_MAX;
    const float tlo = hc.yt == QType::U8 ? 0.0f : -128.0f, thi = hc.yt == QType::U8 ? 255.0f : 127.0f;
    // 8-bit output: clamp(clamp(f, alo, ahi), tlo, thi) as one clamp, also when the ranges do not overlap.
    const __m512 lo = _mm512_set1_ps(F32OUT ? alo : std::min(std::max(alo, tlo), thi));
    const __m512 hi = _mm512_set1_ps(F32OUT ? ahi : std::max(std::min(ahi, thi), tlo));
    for (int o = 0; o < OB; ++o) {
        const __m512 b = _mm512_set1_ps(hc.bias[o0 + o]), sc = _mm512_set1_ps(hc.scale[o0 + o]);
        for (int v = 0; v < 2; ++v) {
            __m512 f = _mm512_mul_ps(_mm512_add_ps(acc[o][v], b), sc);
            f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
            if constexpr (F32OUT) {
                _mm512_storeu_ps(static_cast<float*>(tmp) + o * 32 + 16 * v, f);
            } else {
                const __m512i k = _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);  // half to even
                _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(tmp) + o * 32 + 16 * v),
                                 _mm512_cvtepi32_epi8(k));
            }
        }
    }
}

/// host_conv_block with AVX-512 VNNI: `buf` is the padded u8 image (s8 shifted by 128), `bw` its row
/// bytes. A 64-byte load from column c0 + 16 v + 4 k of an input row and one byte permutation (VBMI)
/// give the 4 taps 4k..4k+3 of 16 output columns (dword l = bytes l..l+3); vpdpbusd with a broadcast
/// of one channel's 4 packed weights adds them to the channel's 16 int32 sums. Per row of a 5x5 kernel
/// and 6 channels: 4 permutations and 24 vpdpbusd for 32 columns instead of 60 fused multiply-adds.
/// The integer sums equal the float kernel's (exact either way); same output stage.
struct SlideIndex {
    alignas(64) uint8_t b[64];
    constexpr SlideIndex() : b() {
        for (int i = 0; i < 64; ++i) b[i] = static_cast<uint8_t>(i / 4 + i % 4);  // dword l: bytes l..l+3
    }
};
constexpr SlideIndex kSlideIndex;

template <bool F32OUT, int OB>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,avx512vnni,avx512vbmi"))) void host_conv_block_vnni(
    const HostConv& hc, const uint8_t* __restrict buf, int64_t bw, int64_t r, int64_t c0, void* tmp) {
    __m512i acc[OB][2];
    for (int o = 0; o < OB; ++o) acc[o][0] = acc[o][1] = _mm512_set1_epi32(hc.comp[o]);
    const __m512i idx = _mm512_load_si512(kSlideIndex.b);
    const int32_t* __restrict wq = hc.wq.data();
    for (int64_t i = 0; i < hc.kh; ++i) {
        const uint8_t* xr = buf + (r + i) * bw + c0;
        for (int64_t k = 0; k < hc.g4; ++k) {
            const __m512i x0 = _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(xr + 4 * k));
            const __m512i x1 = _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(xr + 16 + 4 * k));
            for (int o = 0; o < OB; ++o) {
                const __m512i wv = _mm512_set1_epi32(wq[(o * hc.kh + i) * hc.g4 + k]);
                acc[o][0] = _mm512_dpbusd_epi32(acc[o][0], x0, wv);
                acc[o][1] = _mm512_dpbusd_epi32(acc[o][1], x1, wv);
            }
        }
    }
    __m512 f[OB][2];
    for (int o = 0; o < OB; ++o)
        for (int v = 0; v < 2; ++v) f[o][v] = _mm512_cvtepi32_ps(acc[o][v]);
    host_conv_block_out<F32OUT, OB>(hc, f, 0, tmp);
}

/// `nbytes` (cols x oc) channels-last bytes of a [6][32] block result (see HostConv::vbmi_transpose).
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void host_conv_transpose(const HostConv& hc,
                                                                               const void* tmp, void* out,
                                                                               int64_t nbytes) {
    const uint8_t* t = static_cast<const uint8_t*>(tmp);
    uint8_t* o = static_cast<uint8_t*>(out);
    const __m512i t0 = _mm512_loadu_si512(t), t1 = _mm512_loadu_si512(t + 64), t2 = _mm512_loadu_si512(t + 128);
    for (int k = 0; k < 3 && 64 * k < nbytes; ++k) {
        const __m512i idx = _mm512_loadu_si512(hc.tidx + 64 * k);
        const __m512i v = _mm512_mask_blend_epi8(hc.thi[k], _mm512_permutex2var_epi8(t0, idx, t1),
                                                 _mm512_permutexvar_epi8(idx, t2));
        const int64_t rem = nbytes - 64 * k;
        const __mmask64 m = rem >= 64 ? ~__mmask64{0} : (__mmask64{1} << rem) - 1;
        _mm512_mask_storeu_epi8(o + 64 * k, m, v);
    }
}

/// QB pixels from column q of row r, all (<= 16) channels: the pixel kernel.
template <class TY, int QB>
DCS_AVX512 inline void host_conv_pixels(const HostConv& hc, const float* __restrict buf, int64_t bw, int64_t r,
                                        int64_t q, TY* __restrict yrow) {
    __m512 acc[QB];
    for (int p = 0; p < QB; ++p) acc[p] = _mm512_setzero_ps();
    const float* __restrict wt = hc.wt.data();
    for (int64_t i = 0; i < hc.kh; ++i) {
        const float* xr = buf + (r + i) * bw + q;
        for (int64_t j = 0; j < hc.kw; ++j) {
            const __m512 wv = _mm512_loadu_ps(wt + (i * hc.kw + j) * 16);
            for (int p = 0; p < QB; ++p) acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(xr[j + p]), wv, acc[p]);
        }
    }
    const bool relu = hc.act == QAct::Relu, clip = hc.act == QAct::Clip;
    const __m512 alo = _mm512_set1_ps(clip ? hc.act_lo : (relu ? 0.0f : -FLT_MAX));
    const __m512 ahi = _mm512_set1_ps(clip ? hc.act_hi : FLT_MAX);
    const __m512 lo = _mm512_set1_ps(hc.yt == QType::U8 ? 0.0f : -128.0f);
    const __m512 hi = _mm512_set1_ps(hc.yt == QType::U8 ? 255.0f : 127.0f);
    const __m512 b = _mm512_loadu_ps(hc.bias.data()), sc = _mm512_loadu_ps(hc.scale.data());
    const __mmask16 mask = static_cast<__mmask16>((1u << hc.oc) - 1u);
    for (int p = 0; p < QB; ++p) {
        __m512 f = _mm512_mul_ps(_mm512_add_ps(acc[p], b), sc);
        f = _mm512_min_ps(_mm512_max_ps(f, alo), ahi);
        TY* yo = yrow + (q + p) * hc.oc;
        if constexpr (std::is_same_v<TY, float>) {
            _mm512_mask_storeu_ps(yo, mask, f);
        } else {
            f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
            f = _mm512_roundscale_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);  // half to even
            _mm_mask_storeu_epi8(yo, mask, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(f)));
        }
    }
}

/// Stores a [oc][32] block result (`cols` columns) to channels-last output row `yr`.
template <class TY>
DCS_AVX512 inline void host_conv_store(const HostConv& hc, const TY* tmp, TY* yr, int64_t cols) {
    if constexpr (!std::is_same_v<TY, float>) {
        if (hc.vbmi_transpose) {
            host_conv_transpose(hc, tmp, yr, cols * hc.oc);
            return;
        }
    }
    for (int64_t q = 0; q < cols; ++q)
        for (int64_t o = 0; o < hc.oc; ++o) yr[q * hc.oc + o] = tmp[o * 32 + q];
}

/// host_conv_image with the VNNI row kernel: the image goes to a padded byte buffer.
template <class TX, class TY>
DCS_AVX512 void host_conv_image_vnni(const HostConv& hc, const TX* __restrict x, TY* __restrict y, int64_t n,
                                     std::vector<uint8_t>& buf) {
    // Room for the image at its padding offset and for the 64-byte loads of every (32-padded) column.
    const int64_t bw = std::max(hc.owp + 4 * hc.g4 + 64, hc.iw + hc.pw), bh = std::max(hc.oh + hc.kh, hc.ih + hc.ph);
    // Only the image's own positions are written: the padding keeps its value (zero, or s8 zero
    // shifted: 128) from the first image on.
    if (buf.size() != static_cast<size_t>(bw * bh)) buf.assign(static_cast<size_t>(bw * bh), hc.xt == QType::S8 ? 0x80 : 0);
    const uint8_t* xn = reinterpret_cast<const uint8_t*>(x) + n * hc.ih * hc.iw;
    for (int64_t h = 0; h < hc.ih; ++h) {
        const uint8_t* xr = xn + h * hc.iw;
        uint8_t* br = buf.data() + (h + hc.ph) * bw + hc.pw;
        if constexpr (std::is_same_v<TX, int8_t>) {
            for (int64_t k = 0; k < hc.iw; k += 64) {
                const int64_t rem = hc.iw - k;
                const __mmask64 m = rem >= 64 ? ~__mmask64{0} : (__mmask64{1} << rem) - 1;
                _mm512_mask_storeu_epi8(br + k, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, xr + k),
                                                                    _mm512_set1_epi8(static_cast<char>(0x80))));
            }
        } else {
            std::memcpy(br, xr, static_cast<size_t>(hc.iw));
        }
    }
    constexpr bool f32 = std::is_same_v<TY, float>;
    TY* yn = y + n * hc.oh * hc.ow * hc.oc;
    alignas(64) TY tmp[kHostConvBlock * 32];
    for (int64_t r = 0; r < hc.oh; ++r)
        for (int64_t c0 = 0; c0 < hc.ow; c0 += 32) {
            if (hc.ocp == 6) host_conv_block_vnni<f32, 6>(hc, buf.data(), bw, r, c0, tmp);
            else host_conv_block_vnni<f32, kHostConvBlock>(hc, buf.data(), bw, r, c0, tmp);
            host_conv_store(hc, tmp, yn + (r * hc.ow + c0) * hc.oc, std::min<int64_t>(32, hc.ow - c0));
        }
}

/// One image n: x is [N, H, W] (one channel), y channels-last [N, OH, OW, OC].
template <class TX, class TY>
DCS_AVX512 void host_conv_image(const HostConv& hc, const TX* __restrict x, TY* __restrict y, int64_t n,
                                std::vector<float>& buf) {
    // Room for the image at its padding offset and for every tap of every (32-padded) output column.
    const int64_t bw = std::max(hc.owp + hc.kw, hc.iw + hc.pw), bh = std::max(hc.oh + hc.kh, hc.ih + hc.ph);
    // Only the image's own positions are written: the padding stays zero from the first image on.
    if (buf.size() != static_cast<size_t>(bw * bh)) buf.assign(static_cast<size_t>(bw * bh), 0.0f);
    const TX* xn = x + n * hc.ih * hc.iw;
    for (int64_t h = 0; h < hc.ih; ++h) {
        const TX* xr = xn + h * hc.iw;
        float* br = buf.data() + (h + hc.ph) * bw + hc.pw;
        for (int64_t k = 0; k < hc.iw; k += 16) {
            const int64_t rem = hc.iw - k;
            const __mmask16 m = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
            const __m128i v = _mm_maskz_loadu_epi8(m, xr + k);
            const __m512i wide = std::is_same_v<TX, uint8_t> ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
            _mm512_mask_storeu_ps(br + k, m, _mm512_cvtepi32_ps(wide));
        }
    }
    constexpr bool f32 = std::is_same_v<TY, float>;
    TY* yn = y + n * hc.oh * hc.ow * hc.oc;
    if (hc.oc > kHostConvBlock) {
        for (int64_t r = 0; r < hc.oh; ++r) {
            TY* yrow = yn + r * hc.ow * hc.oc;
            int64_t q = 0;
            for (; q + 8 <= hc.ow; q += 8) host_conv_pixels<TY, 8>(hc, buf.data(), bw, r, q, yrow);
            for (; q < hc.ow; ++q) host_conv_pixels<TY, 1>(hc, buf.data(), bw, r, q, yrow);
        }
        return;
    }
    alignas(64) TY tmp[kHostConvBlock * 32];
    for (int64_t r = 0; r < hc.oh; ++r)
        for (int64_t c0 = 0; c0 < hc.ow; c0 += 32) {
            if (hc.ocp == 6) host_conv_block<f32, 6>(hc, buf.data(), bw, r, c0, 0, tmp);
            else host_conv_block<f32, kHostConvBlock>(hc, buf.data(), bw, r, c0, 0, tmp);
            host_conv_store(hc, tmp, yn + (r * hc.ow + c0) * hc.oc, std::min<int64_t>(32, hc.ow - c0));
        }
}

template <class TX, class TY>
void host_conv_run(const HostConv& hc, const void* xv, void* yv, int64_t nb) {
    const TX* x = static_cast<const TX*>(xv);
    TY* y = static_cast<TY*>(yv);
#pragma omp parallel
    {
        std::vector<float> buf;
        std::vector<uint8_t> bytes;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < nb; ++n) {
            if (hc.vnni) host_conv_image_vnni<TX, TY>(hc, x, y, n, bytes);
            else host_conv_image<TX, TY>(hc, x, y, n, buf);
        }
    }
}

#pragma GCC diagnostic pop

}  // namespace

void HostConv::run(const void* x, void* y, int64_t nb, const void*) const {
    with_types(xt, yt, [&](auto tx, auto ty) { host_conv_run<decltype(tx), decltype(ty)>(*this, x, y, nb); });
}

std::string HostConv::impl() const { return std::string("host:conv_ic1_avx512") + (vnni ? "_vnni" : ""); }

std::string conv_1ic_declines(const LayerDesc& d) {
    if (d.sum) return "has a residual sum";
    if (d.xs.size() != 4) return "not a 2-D convolution";
    if (d.xs[1] != 1) return "input channels " + std::to_string(d.xs[1]) + " > 1";
    if (d.ws[0] > kHostConvMaxChannels)
        return "output channels " + std::to_string(d.ws[0]) + " > " + std::to_string(kHostConvMaxChannels);
    if (d.ws[2] * d.ws[3] > 256) return "kernel of " + std::to_string(d.ws[2] * d.ws[3]) + " taps > 256";
    if (d.group != 1) return "grouped";
    for (size_t i = 0; i < 2; ++i) {
        if (d.win.strides[i] != 1) return "strided";
        if (d.win.dilations[i] != 1) return "dilated";
    }
    return "";
}

std::shared_ptr<HostLayer> make_conv_1ic(const LayerDesc& d) {
    const auto &xs = d.xs, &ys = d.ys, &ws = d.ws;
    const Window& win = d.win;
    auto hc = std::make_shared<HostConv>();
    hc->oc = ws[0];
    // Up to 8 channels: blocks of 6 (LeNet-5's conv1: 12 instead of 16 multiply-adds per tap) or 8.
    hc->ocp = hc->oc <= 6 ? 6 : (hc->oc + kHostConvBlock - 1) / kHostConvBlock * kHostConvBlock;
    hc->kh = ws[2];
    hc->kw = ws[3];
    hc->ph = win.pad_begin[0];
    hc->pw = win.pad_begin[1];
    hc->ih = xs[2];
    hc->iw = xs[3];
    hc->oh = ys[2];
    hc->ow = ys[3];
    hc->owp = (hc->ow + 31) / 32 * 32;
    hc->xt = d.xt;
    hc->yt = d.yt;
    hc->act = d.act;
    hc->vnni = hc->ocp <= kHostConvBlock && cpu::has(cpu::Isa::Avx512Vnni) && cpu::has(cpu::Isa::Avx512Vbmi);
    hc->g4 = (hc->kw + 3) / 4;
    hc->transpose_layout();
    return hc;
}

}  // namespace dcs::kernels
