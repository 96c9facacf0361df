#include "runtime/kernels/conv_vnni.hpp"

#include <omp.h>

#include <utility>

namespace dcs::kernels {
namespace {

// GCC 12 reports its own AVX-512 intrinsics (`__m512 __Y = __Y;`) as maybe uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

/// R output rows x P pixels from (r, q) and OB 16-channel blocks from b: int32 sums in registers, then
/// the output stage (host_out16) into yn. `buf`: the padded u8 image.
template <class TY, int R, int P, int OB>
DCS_AVX512_VNNI void host_conv_vnni_core(const HostConvVnni& hc, const uint8_t* __restrict buf, int64_t r,
                                         int64_t q, int64_t b, TY* __restrict yn) {
    __m512i acc[OB][R][P];
#pragma GCC unroll 16
    for (int o = 0; o < OB; ++o) {
        const __m512i c0 = _mm512_loadu_si512(hc.comp.data() + 16 * (b + o));
#pragma GCC unroll 16
        for (int a = 0; a < R; ++a)
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) acc[o][a][p] = c0;
    }
    const int64_t ws = hc.kh * hc.g * 64, ps = hc.sw * hc.ic, rs = hc.sh * hc.rb, nt = hc.kh * hc.g;
    const int8_t* w = hc.w.data() + b * ws;
    const uint8_t* x0 = buf + r * rs + q * ps;
    const int32_t* off = hc.toff.data();
    for (int64_t t = 0; t < nt; ++t) {  // one loop over (kernel row, group): fewer loop exits
        const uint8_t* xt = x0 + off[t];
        __m512i wv[OB];
#pragma GCC unroll 16
        for (int o = 0; o < OB; ++o) wv[o] = _mm512_loadu_si512(w + o * ws + t * 64);
#pragma GCC unroll 16
        for (int a = 0; a < R; ++a)
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) {
                int32_t v;
                std::memcpy(&v, xt + a * rs + p * ps, 4);
                const __m512i xv = _mm512_set1_epi32(v);
#pragma GCC unroll 16
                for (int o = 0; o < OB; ++o) host_dpbusd(acc[o][a][p], xv, wv[o]);
            }
    }
    const __m512 lo = _mm512_set1_ps(hc.lo), hi = _mm512_set1_ps(hc.hi);
    const bool sat = std::is_same_v<TY, uint8_t> && hc.hi >= 255.0f;
#pragma GCC unroll 16
    for (int o = 0; o < OB; ++o) {
        const int64_t c0 = 16 * (b + o), rem = hc.oc - c0;
        const __mmask16 mask = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
        const __m512 bv = _mm512_loadu_ps(hc.bias.data() + c0), sc = _mm512_loadu_ps(hc.scale.data() + c0);
#pragma GCC unroll 16
        for (int a = 0; a < R; ++a) {
            TY* yo = yn + ((r + a) * hc.ow + q) * hc.oc + c0;
            if constexpr (sizeof(TY) == 1) {
                if (hc.packed && rem >= 16) {
                    host_out_packed<TY, P>(acc[o][a], bv, sc, yo, hc.oc);
                    continue;
                }
            }
            if (sat) {
#pragma GCC unroll 16
                for (int p = 0; p < P; ++p) host_out16<TY, true>(acc[o][a][p], bv, sc, lo, hi, mask, yo + p * hc.oc);
            } else {
#pragma GCC unroll 16
                for (int p = 0; p < P; ++p) host_out16<TY, false>(acc[o][a][p], bv, sc, lo, hi, mask, yo + p * hc.oc);
            }
        }
    }
}

template <class TY>
using HostConvVnniCore = void (*)(const HostConvVnni&, const uint8_t*, int64_t, int64_t, int64_t, TY*);

template <class TY, int R, int OB, int... Ps>
HostConvVnniCore<TY> host_conv_vnni_pick(int p, std::integer_sequence<int, Ps...>) {
    static constexpr HostConvVnniCore<TY> fs[] = {host_conv_vnni_core<TY, R, Ps + 1, OB>...};
    return fs[p - 1];
}

template <class TX, class TY>
DCS_AVX512_VNNI void host_conv_vnni_image(const HostConvVnni& hc, const TX* __restrict x, TY* __restrict y,
                                          int64_t n, std::vector<uint8_t>& buf) {
    // Reads reach (bh - 1) * rb + ((ow - 1) * sw + kw) * ic + 3 < bh * rb + 64.
    const size_t size = static_cast<size_t>(hc.bh * hc.rb + 64);
    const uint8_t pad = hc.xt == QType::S8 ? 0x80 : 0;  // s8 zero, shifted
    // Only the image's own positions are written: the padding keeps its value from the first image on.
    if (buf.size() != size) buf.assign(size, pad);
    const int64_t row = hc.iw * hc.ic;
    const uint8_t* xn = reinterpret_cast<const uint8_t*>(x) + n * hc.ih * row;
    for (int64_t h = 0; h < hc.ih; ++h) {
        uint8_t* d = buf.data() + (h + hc.ph) * hc.rb + hc.pw * hc.ic;
        const uint8_t* s = xn + h * row;
        if constexpr (std::is_same_v<TX, int8_t>) {
            const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
            for (int64_t k = 0; k < row; k += 64) {
                const int64_t rem = row - k;
                const __mmask64 m = rem >= 64 ? ~__mmask64{0} : (__mmask64{1} << rem) - 1;
                _mm512_mask_storeu_epi8(d + k, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + k), flip));
            }
        } else {
            std::memcpy(d, s, static_cast<size_t>(row));
        }
    }
    TY* yn = y + n * hc.oh * hc.ow * hc.oc;
    constexpr auto seq = std::make_integer_sequence<int, kVnniMaxPixels>{};
    const int64_t chunks = (hc.ow + kVnniMaxPixels - 1) / kVnniMaxPixels;
    // R rows x OB blocks from (r, b): the row's chunks.
    auto rows = [&](int R, int OB, int64_t r, int64_t b) {
        int64_t q = 0;
        for (int64_t c = 0; c < chunks; ++c) {
            const int p = static_cast<int>((hc.ow - q) / (chunks - c));
            const HostConvVnniCore<TY> core = OB == 2  ? host_conv_vnni_pick<TY, 1, 2>(p, seq)
                                              : R == 2 ? host_conv_vnni_pick<TY, 2, 1>(p, seq)
                                                       : host_conv_vnni_pick<TY, 1, 1>(p, seq);
            core(hc, buf.data(), r, q, b, yn);
            q += p;
        }
    };
    int64_t b = 0;
    for (; b + 2 <= hc.nblk; b += 2)
        for (int64_t r = 0; r < hc.oh; ++r) rows(1, 2, r, b);
    for (; b < hc.nblk; ++b) {
        int64_t r = 0;
        for (; r + 2 <= hc.oh; r += 2) rows(2, 1, r, b);
        if (r < hc.oh) rows(1, 1, r, b);
    }
}

template <class TX, class TY>
void host_conv_vnni_run(const HostConvVnni& hc, const void* xv, void* yv, int64_t nb) {
    const TX* x = static_cast<const TX*>(xv);
    TY* y = static_cast<TY*>(yv);
#pragma omp parallel
    {
        std::vector<uint8_t> buf;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < nb; ++n) host_conv_vnni_image<TX, TY>(hc, x, y, n, buf);
    }
}

#pragma GCC diagnostic pop

}  // namespace

void HostConvVnni::run(const void* x, void* y, int64_t nb, const void*) const {
    with_types(xt, yt, [&](auto tx, auto ty) { host_conv_vnni_run<decltype(tx), decltype(ty)>(*this, x, y, nb); });
}

std::string HostConvVnni::impl() const { return "host:conv_vnni_avx512"; }

std::string conv_vnni_declines(const LayerDesc& d) {
    if (d.sum) return "has a residual sum";
    if (d.xs.size() != 4) return "not a 2-D convolution";
    if (d.xt == QType::F32) return "fp32 input";
    const auto &xs = d.xs, &ys = d.ys, &ws = d.ws;
    if (ws[3] * xs[1] > kVnniMaxRowBytes)
        return "kernel rows of " + std::to_string(ws[3] * xs[1]) + " bytes > " + std::to_string(kVnniMaxRowBytes);
    if (!(xs[1] <= kVnniFewChannels || ys[2] * ys[3] <= kVnniSmallImage ||
          (ws[2] * ws[3] == 1 && xs[1] <= kVnniPointwiseChannels)))
        return "input channels " + std::to_string(xs[1]) + " > " + std::to_string(kVnniFewChannels) + " with " +
               std::to_string(ys[2] * ys[3]) + " output pixels > " + std::to_string(kVnniSmallImage);
    if (ws[2] * ws[3] * xs[1] > 4096) return "more than 4096 products per sum (int32)";  // 4096 * 255 * 128 < 2^31
    if (d.group != 1) return "grouped";
    if (d.win.dilations[0] != 1 || d.win.dilations[1] != 1) return "dilated";
    return "";
}

std::shared_ptr<HostLayer> make_conv_vnni(const LayerDesc& d) {
    const auto &xs = d.xs, &ws = d.ws;
    auto hc = std::make_shared<HostConvVnni>();
    hc->ic = xs[1];
    hc->oc = ws[0];
    hc->nblk = (hc->oc + 15) / 16;
    set_conv_geometry(*hc, d);
    hc->g = (hc->kw * hc->ic + 3) / 4;
    hc->rb = std::max(hc->iw + hc->pw, (hc->ow - 1) * hc->sw + hc->kw) * hc->ic;
    hc->bh = std::max(hc->ih + hc->ph, (hc->oh - 1) * hc->sh + hc->kh);
    for (int64_t i = 0; i < hc->kh; ++i)
        for (int64_t k = 0; k < hc->g; ++k) hc->toff.push_back(static_cast<int32_t>(i * hc->rb + 4 * k));
    hc->xt = d.xt;
    hc->yt = d.yt;
    hc->act = d.act;
    return hc;
}

}  // namespace dcs::kernels
