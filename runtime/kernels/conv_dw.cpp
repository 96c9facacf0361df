#include "runtime/kernels/conv_dw.hpp"

#include <omp.h>

#include <cstring>
#include <utility>

namespace dcs::kernels {
namespace {

// GCC 12 reports its own AVX-512 intrinsics (`__m512 __Y = __Y;`) as maybe uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

template <class TY, int P>
DCS_AVX512_VBMI inline __attribute__((always_inline)) void host_dw_out(const HostDwConv& hc, const __m512i (&acc)[P], int64_t r,
                                                                       int64_t q, int64_t b, TY* __restrict yn);


/// P output pixels from (r, q) of block b: sums, then the output stage into yn (channels-last). The
/// [channel][j] bytes of each kernel row and group of 4 columns: one 64-byte load of the blocked image
/// `buf` (4 pixels x 16 channels) and vpermb; G: groups per kernel row.
template <class TY, int G, int P>
DCS_AVX512_VBMI void host_dw_pixels(const HostDwConv& hc, const uint8_t* __restrict buf, int64_t r, int64_t q,
                                    int64_t b, TY* __restrict yn) {
    __m512i acc[P];
    const __m512i c0v = _mm512_loadu_si512(hc.comp.data() + 16 * b);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p] = c0v;
    const int64_t rs = hc.bw * 16, ps = hc.sw * 16;
    const __m512i idx = _mm512_loadu_si512(hc.idx);
    const uint8_t* xr = buf + ((b * hc.bh + r * hc.sh) * hc.bw + hc.cs + q * hc.sw) * 16;
    const int8_t* wt = hc.w.data() + b * hc.kh * G * 64;
    for (int64_t i = 0; i < hc.kh; ++i, xr += rs)
#pragma GCC unroll 2
        for (int k = 0; k < G; ++k, wt += 64) {
            const __m512i wv = _mm512_loadu_si512(wt);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p)
                host_dpbusd(acc[p], _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(xr + p * ps + 64 * k)), wv);
        }
    host_dw_out<TY, P>(hc, acc, r, q, b, yn);
}

/// The output stage of P pixels' sums from (r, q) of block b into yn (channels-last).
template <class TY, int P>
DCS_AVX512_VBMI inline __attribute__((always_inline)) void host_dw_out(const HostDwConv& hc, const __m512i (&acc)[P], int64_t r,
                                                                       int64_t q, int64_t b, TY* __restrict yn) {
    const int64_t c = hc.c;
    const __m512 lo = _mm512_set1_ps(hc.lo), hi = _mm512_set1_ps(hc.hi);
    const int64_t c0 = 16 * b, rem = c - c0;
    const __mmask16 mask = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
    const __m512 bv = _mm512_loadu_ps(hc.bias.data() + c0), sc = _mm512_loadu_ps(hc.scale.data() + c0);
    TY* yo = yn + (r * hc.ow + q) * c + c0;
    if constexpr (sizeof(TY) == 1) {
        if (hc.packed && rem >= 16) {
            host_out_packed<TY, P>(acc, bv, sc, yo, c);
            return;
        }
    }
    if (std::is_same_v<TY, uint8_t> && hc.hi >= 255.0f) {
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) host_out16<TY, true>(acc[p], bv, sc, lo, hi, mask, yo + p * c);
    } else {
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) host_out16<TY, false>(acc[p], bv, sc, lo, hi, mask, yo + p * c);
    }
}

/// host_dw_pixels for output rows r and r + 1 at once (stride sh < kh, so they share input rows):
/// each of the kh + sh input rows is loaded and permuted once for both rows' sums (stride 1, 3x3:
/// 4 loads and permutations per pixel pair instead of 6).
template <class TY, int G, int P>
DCS_AVX512_VBMI void host_dw_pixels2(const HostDwConv& hc, const uint8_t* __restrict buf, int64_t r, int64_t q,
                                     int64_t b, TY* __restrict yn) {
    __m512i a0[P], a1[P];
    const __m512i c0v = _mm512_loadu_si512(hc.comp.data() + 16 * b);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) a0[p] = a1[p] = c0v;
    const int64_t rs = hc.bw * 16, ps = hc.sw * 16, kh = hc.kh, sh = hc.sh;
    const __m512i idx = _mm512_loadu_si512(hc.idx);
    const uint8_t* xr = buf + ((b * hc.bh + r * sh) * hc.bw + hc.cs + q * hc.sw) * 16;
    const int8_t* wb = hc.w.data() + b * kh * G * 64;
    for (int64_t t = 0; t < kh + sh; ++t, xr += rs) {
        const bool u0 = t < kh, u1 = t >= sh;  // kernel rows t (row r) and t - sh (row r + 1)
#pragma GCC unroll 2
        for (int k = 0; k < G; ++k) {
            if (u0 && u1) {
                const __m512i w0 = _mm512_loadu_si512(wb + (t * G + k) * 64), w1 = _mm512_loadu_si512(wb + ((t - sh) * G + k) * 64);
#pragma GCC unroll 16
                for (int p = 0; p < P; ++p) {
                    const __m512i x = _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(xr + p * ps + 64 * k));
                    host_dpbusd(a0[p], x, w0);
                    host_dpbusd(a1[p], x, w1);
                }
            } else if (u0) {
                const __m512i w0 = _mm512_loadu_si512(wb + (t * G + k) * 64);
#pragma GCC unroll 16
                for (int p = 0; p < P; ++p) host_dpbusd(a0[p], _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(xr + p * ps + 64 * k)), w0);
            } else {
                const __m512i w1 = _mm512_loadu_si512(wb + ((t - sh) * G + k) * 64);
#pragma GCC unroll 16
                for (int p = 0; p < P; ++p) host_dpbusd(a1[p], _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(xr + p * ps + 64 * k)), w1);
            }
        }
    }
    host_dw_out<TY, P>(hc, a0, r, q, b, yn);
    host_dw_out<TY, P>(hc, a1, r + 1, q, b, yn);
}

/// Output pixels per call of host_dw_pixels2 (two rows: 2 P accumulators; 14 rather than 12, one
/// thread, 3 interleaved rounds: mobile 339-341k -> 352-357k, the 256-channel ad-hoc model 41.0-41.4k ->
/// 44.6-44.8k images/s).
constexpr int kDwMaxPixels2 = 14;

template <class TY, int G, int... Ps, int... Qs>
void host_dw_rows(const HostDwConv& hc, const uint8_t* buf, TY* yn, std::integer_sequence<int, Ps...>,
                  std::integer_sequence<int, Qs...>) {
    using F = void (*)(const HostDwConv&, const uint8_t*, int64_t, int64_t, int64_t, TY*);
    static constexpr F fs[] = {host_dw_pixels<TY, G, Ps + 1>...};
    static constexpr F fs2[] = {host_dw_pixels2<TY, G, Qs + 1>...};
    // Near-equal chunks of at most sizeof...(Ps) pixels (one row) or sizeof...(Qs) (two rows).
    auto row = [&](const F* f, int64_t maxp, int64_t r, int64_t b) {
        const int64_t chunks = (hc.ow + maxp - 1) / maxp;
        int64_t q = 0;
        for (int64_t k = 0; k < chunks; ++k) {
            const int64_t p = (hc.ow - q) / (chunks - k);
            f[p - 1](hc, buf, r, q, b, yn);
            q += p;
        }
    };
    const bool pairs = hc.sh < hc.kh && !hc.one_row;
    for (int64_t b = 0; b < hc.nblk; ++b) {
        int64_t r = 0;
        for (; pairs && r + 2 <= hc.oh; r += 2) row(fs2, sizeof...(Qs), r, b);
        for (; r < hc.oh; ++r) row(fs, sizeof...(Ps), r, b);
    }
}

/// One image: the padded u8 image in blocks of 16 channels, [nblk][bh][bw][16] (s8 shifted by 128;
/// the bytes of channels beyond c in the last block are never written: their weights are zero), then
/// every output row of every block.
template <class TX, class TY>
DCS_AVX512_VBMI void host_dw_image(const HostDwConv& hc, const TX* __restrict x, TY* __restrict y, int64_t n,
                                   uint8_t* __restrict buf) {
    const int64_t c = hc.c, iw = hc.iw, bw = hc.bw, bh = hc.bh, row = iw * c;
    const uint8_t* xn = reinterpret_cast<const uint8_t*>(x) + n * hc.ih * row;
    constexpr bool s8 = std::is_same_v<TX, int8_t>;
    if (c == 16) {  // one block: whole rows
        const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
        for (int64_t h = 0; h < hc.ih; ++h) {
            uint8_t* d = buf + ((h + hc.ph) * bw + hc.cs + hc.pw) * 16;
            const uint8_t* s = xn + h * row;
            for (int64_t k = 0; k < row; k += 64) {
                const int64_t left = row - k;
                const __mmask64 m = left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
                const __m512i v = _mm512_maskz_loadu_epi8(m, s + k);
                _mm512_mask_storeu_epi8(d + k, m, s8 ? _mm512_xor_si512(v, flip) : v);
            }
        }
    } else {
        // Block by block: 4 pixels of a block per 64-byte store (four 16-byte loads) where the channels
        // are a multiple of 16, one pixel per store otherwise. Perf samples of the copies, one thread,
        // against a 16-byte store per pixel: mbv2 (64, 96 and 128 channels on 28x28 to 7x7) -26%,
        // dwsep (32 to 128) -26%. Measured and not kept: pixel by pixel with every block of a pixel in
        // turn and a 4 x 4 transpose of 16-byte lanes (64-byte loads): dwsep -33%, but mbv2 +16%
        // (stores to four blocks at once).
        const __m512i flip = _mm512_set1_epi8(static_cast<char>(s8 ? 0x80 : 0));  // xor: s8 shifted by 128
        const int64_t plane = bh * bw * 16;  // bytes per block
        for (int64_t h = 0; h < hc.ih; ++h) {
            uint8_t* d = buf + ((h + hc.ph) * bw + hc.cs + hc.pw) * 16;
            const uint8_t* s = xn + h * row;
            int64_t px = 0;
            if (c % 16 == 0)
                for (int64_t b = 0; b < hc.nblk; ++b)  // 4 pixels of a block: four loads, one 64-byte store
                    for (px = 0; px + 4 <= iw; px += 4) {
                        const uint8_t* sp = s + px * c + 16 * b;
                        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sp)));
                        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(sp + c)), 1);
                        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(sp + 2 * c)), 2);
                        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(sp + 3 * c)), 3);
                        _mm512_storeu_si512(d + b * plane + 16 * px, _mm512_xor_si512(v, flip));
                    }
            const int64_t px0 = px;
            for (int64_t b = 0; b < hc.nblk; ++b) {
                const int64_t rem = c - 16 * b;
                const __mmask16 m = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
                for (px = px0; px < iw; ++px) {
                    const __m128i v = _mm_maskz_loadu_epi8(m, s + px * c + 16 * b);
                    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + b * plane + 16 * px),
                                     _mm_xor_si128(v, _mm512_castsi512_si128(flip)));
                }
            }
        }
    }
    TY* yn = y + n * hc.oh * hc.ow * c;
    constexpr auto seq = std::make_integer_sequence<int, kDwMaxPixels>{};
    constexpr auto seq2 = std::make_integer_sequence<int, kDwMaxPixels2>{};
    if (hc.g == 1) host_dw_rows<TY, 1>(hc, buf, yn, seq, seq2);
    else host_dw_rows<TY, 2>(hc, buf, yn, seq, seq2);
}

template <class TX, class TY>
void host_dw_run(const HostDwConv& hc, const void* xv, void* yv, int64_t nb) {
    const TX* x = static_cast<const TX*>(xv);
    TY* y = static_cast<TY*>(yv);
    // A gather reads 64 bytes from ((b * bh + row) * bw + column) * 16 on, b < nblk, row < bh, column <=
    // (ow - 1) * sw + 4 (g - 1) < bw: within nblk * bh * bw * 16 + 48 bytes.
    const size_t bytes = static_cast<size_t>(hc.nblk * hc.bh * hc.bw * 16 + 64);
#pragma omp parallel
    {
        // Only the images' own positions are written: the padding keeps its value (s8: 128 = zero).
        const auto buf = aligned_buffer(bytes);
        if (hc.xt == QType::S8) std::memset(buf.get(), 0x80, bytes);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < nb; ++n) host_dw_image<TX, TY>(hc, x, y, n, static_cast<uint8_t*>(buf.get()));
    }
}

#pragma GCC diagnostic pop

}  // namespace

void HostDwConv::run(const void* x, void* y, int64_t nb, const void*) const {
    with_types(xt, yt, [&](auto tx, auto ty) { host_dw_run<decltype(tx), decltype(ty)>(*this, x, y, nb); });
}

std::string HostDwConv::impl() const { return "host:conv_dw_avx512"; }

std::string conv_dw_declines(const LayerDesc& d) {
    if (d.sum) return "has a residual sum";
    if (d.xs.size() != 4) return "not a 2-D convolution";
    if (d.xt == QType::F32) return "fp32 input";
    if (d.ws[1] != 1 || d.ws[0] != d.xs[1] || d.group != d.xs[1]) return "not depthwise";
    if (d.ws[3] > kDwMaxKernelWidth)
        return "kernel width " + std::to_string(d.ws[3]) + " > " + std::to_string(kDwMaxKernelWidth);
    if (d.xs[1] > kDwMaxChannels && d.ws[3] < kDwWideKernel)
        return "channels " + std::to_string(d.xs[1]) + " > " + std::to_string(kDwMaxChannels) + " with a kernel narrower than " +
               std::to_string(kDwWideKernel);
    if (d.win.dilations[0] != 1 || d.win.dilations[1] != 1) return "dilated";
    return "";
}

std::shared_ptr<HostLayer> make_conv_dw(const LayerDesc& d) {
    const auto& xs = d.xs;
    auto hc = std::make_shared<HostDwConv>();
    hc->c = xs[1];
    hc->nblk = (hc->c + 15) / 16;
    set_conv_geometry(*hc, d);
    hc->g = (hc->kw + 3) / 4;
    hc->cs = (4 - hc->pw % 4) % 4;
    hc->bw = (hc->cs + std::max(hc->iw + hc->pw, (hc->ow - 1) * hc->sw + hc->kw) + 3) / 4 * 4;
    hc->bh = std::max(hc->ih + hc->ph, (hc->oh - 1) * hc->sh + hc->kh);
    hc->layout();
    hc->xt = d.xt;
    hc->yt = d.yt;
    hc->act = d.act;
    hc->one_row = std::getenv("DCS_DW_ONE_ROW") != nullptr;
    return hc;
}

}  // namespace dcs::kernels
