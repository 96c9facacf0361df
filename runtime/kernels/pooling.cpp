#include "runtime/kernels/pooling.hpp"

#include <emmintrin.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "common/cpu_features.hpp"

namespace dcs::kernels {
namespace {

/// Max pooling of channels-last [N, H, W, C] data over a 2-D window; padded positions are skipped.
/// CC > 0 fixes the channel count at compile time (the channel loop then unrolls / vectorizes).
template <class T, int CC>
void max_pool_nhwc_c(const T* __restrict x, T* __restrict y, const std::vector<int64_t>& xs,
                     const std::vector<int64_t>& ys, const Window& w) {
    const int64_t nb = xs[0], c = CC > 0 ? CC : xs[1], ih = xs[2], iw = xs[3], oh = ys[2], ow = ys[3];
    const int64_t kh = w.kernel[0], kw = w.kernel[1], sh = w.strides[0], sw = w.strides[1];
    const int64_t dh = w.dilations[0], dw = w.dilations[1], ph = w.pad_begin[0], pw = w.pad_begin[1];
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < nb; ++n)
        for (int64_t r = 0; r < oh; ++r) {
            const int64_t h0 = std::max<int64_t>(0, (ph - r * sh + dh - 1) / dh);
            const int64_t h1 = std::min<int64_t>(kh, (ih + ph - r * sh + dh - 1) / dh);
            T* __restrict yr = y + (n * oh + r) * ow * c;
            for (int64_t q = 0; q < ow; ++q) {
                const int64_t j0 = std::max<int64_t>(0, (pw - q * sw + dw - 1) / dw);
                const int64_t j1 = std::min<int64_t>(kw, (iw + pw - q * sw + dw - 1) / dw);
                T* __restrict yo = yr + q * c;
                if constexpr (CC > 0 && CC % 16 == 0) {
                    // 16 channels per SSE2 register; s8 is compared with the sign bit flipped (SSE2 has
                    // only the unsigned byte max).
                    constexpr int NV = CC / 16;
                    const __m128i bias = _mm_set1_epi8(std::is_same_v<T, int8_t> ? static_cast<char>(0x80) : 0);
                    __m128i m[NV];
                    for (int v = 0; v < NV; ++v) m[v] = _mm_setzero_si128();
                    for (int64_t i = h0; i < h1; ++i) {
                        const int64_t row = (n * ih + r * sh - ph + i * dh) * iw + q * sw - pw;
                        for (int64_t j = j0; j < j1; ++j) {
                            const T* xi = x + (row + j * dw) * c;
                            for (int v = 0; v < NV; ++v)
                                m[v] = _mm_max_epu8(
                                    m[v], _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xi + 16 * v)), bias));
                        }
                    }
                    for (int v = 0; v < NV; ++v)
                        _mm_storeu_si128(reinterpret_cast<__m128i*>(yo + 16 * v), _mm_xor_si128(m[v], bias));
                } else if constexpr (CC > 0) {
                    // A local accumulator the compiler keeps in registers.
                    T m[CC];
                    for (int k = 0; k < CC; ++k) m[k] = std::numeric_limits<T>::lowest();
                    for (int64_t i = h0; i < h1; ++i) {
                        const int64_t row = (n * ih + r * sh - ph + i * dh) * iw + q * sw - pw;
                        for (int64_t j = j0; j < j1; ++j) {
                            const T* __restrict xi = x + (row + j * dw) * c;
                            for (int k = 0; k < CC; ++k) m[k] = std::max(m[k], xi[k]);
                        }
                    }
                    std::memcpy(yo, m, sizeof(m));
                } else {
                    for (int64_t k = 0; k < c; ++k) yo[k] = std::numeric_limits<T>::lowest();
                    for (int64_t i = h0; i < h1; ++i) {
                        const int64_t row = (n * ih + r * sh - ph + i * dh) * iw + q * sw - pw;
                        for (int64_t j = j0; j < j1; ++j) {
                            const T* __restrict xi = x + (row + j * dw) * c;
                            for (int64_t k = 0; k < c; ++k) yo[k] = std::max(yo[k], xi[k]);
                        }
                    }
                }
            }
        }
}

/// 2x2 windows with stride 2 and no padding, every window inside the input, an input row of at most
/// 192 bytes (LeNet-5's pools: 28 x 6 and 10 x 16 channels): one output row per pass over whole rows.
/// h = max(A[i], A[i + c], B[i], B[i + c]) over the two input rows A, B (three 64-byte vectors) holds
/// every window's maximum at byte 2qc + o; two byte permutations (AVX-512 VBMI) gather them into the
/// output row (q c + o, at most 128 bytes). Same maxima as the loop, 3-4x faster on 6 channels.
/// `vbmi`: cpu::has(Avx512Vbmi) when the kernel was made.
bool max_pool_2x2_applies(bool vbmi, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys, const Window& w) {
    return vbmi && w.kernel.size() == 2 && w.kernel[0] == 2 && w.kernel[1] == 2 && w.strides[0] == 2 &&
           w.strides[1] == 2 && w.dilations[0] == 1 && w.dilations[1] == 1 && w.pad_begin[0] == 0 &&
           w.pad_begin[1] == 0 && 2 * ys[2] <= xs[2] && 2 * ys[3] <= xs[3] && xs[3] * xs[1] <= 192 &&
           ys[3] * xs[1] <= 128 && ys[2] >= 1 && ys[3] >= 1;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
/// One output row of the 2x2 max-pool: input rows `a` and `b`, `nv` 64-byte vectors of them.
/// Takes no vector arguments, so callers (the OpenMP-outlined loop among them) need no AVX-512 target.
template <class T>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void max_pool_2x2_row(
    const T* a, const T* b, T* yr, int64_t c, int64_t ob, int nv, const __mmask64* m0, const __mmask64* mc,
    __mmask64 s0, __mmask64 s1, const uint8_t* ix0, const uint8_t* ix1) {
    const __m512i i0 = _mm512_load_si512(ix0), i1 = _mm512_load_si512(ix1);
    __m512i h[3] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int k = 0; k < nv; ++k) {
        const __m512i a0 = _mm512_maskz_loadu_epi8(m0[k], a + 64 * k);
        const __m512i a1 = _mm512_maskz_loadu_epi8(mc[k], a + 64 * k + c);
        const __m512i b0 = _mm512_maskz_loadu_epi8(m0[k], b + 64 * k);
        const __m512i b1 = _mm512_maskz_loadu_epi8(mc[k], b + 64 * k + c);
        if constexpr (std::is_same_v<T, int8_t>)
            h[k] = _mm512_max_epi8(_mm512_max_epi8(a0, a1), _mm512_max_epi8(b0, b1));
        else
            h[k] = _mm512_max_epu8(_mm512_max_epu8(a0, a1), _mm512_max_epu8(b0, b1));
    }
    _mm512_mask_storeu_epi8(yr, s0, _mm512_permutex2var_epi8(h[0], i0, h[1]));
    if (ob > 64) _mm512_mask_storeu_epi8(yr + 64, s1, _mm512_permutex2var_epi8(h[1], i1, h[2]));
}

template <class T>
void max_pool_2x2_vbmi(const T* x, T* y, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys) {
    const int64_t nb = xs[0], c = xs[1], ih = xs[2], iw = xs[3], oh = ys[2], ow = ys[3];
    const int64_t span = 2 * ow * c, ob = ow * c;  // bytes of the input rows that windows cover; output bytes
    alignas(64) uint8_t ix0[64] = {}, ix1[64] = {};
    for (int64_t b = 0; b < ob; ++b) {
        const int64_t src = 2 * (b / c) * c + b % c;
        if (b < 64) ix0[b] = static_cast<uint8_t>(src);
        else ix1[b - 64] = static_cast<uint8_t>(src - 64);
    }
    auto lanes = [](int64_t len) -> __mmask64 {
        return len >= 64 ? ~__mmask64{0} : (len <= 0 ? __mmask64{0} : (__mmask64{1} << len) - 1);
    };
    __mmask64 m0[3], mc[3];  // valid bytes of the loads at offset 0 and at offset c
    for (int k = 0; k < 3; ++k) {
        m0[k] = lanes(span - 64 * k);
        mc[k] = lanes(span - c - 64 * k);
    }
    const int nv = static_cast<int>((span + 63) / 64);
    const __mmask64 s0 = lanes(ob), s1 = lanes(ob - 64);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < nb; ++n)
        for (int64_t r = 0; r < oh; ++r) {
            const T* a = x + ((n * ih + 2 * r) * iw) * c;
            max_pool_2x2_row<T>(a, a + iw * c, y + (n * oh + r) * ob, c, ob, nv, m0, mc, s0, s1, ix0, ix1);
        }
}
#pragma GCC diagnostic pop

template <class T>
void max_pool_nhwc(const T* x, T* y, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys, const Window& w,
                   bool vbmi) {
    if (max_pool_2x2_applies(vbmi, xs, ys, w)) return max_pool_2x2_vbmi<T>(x, y, xs, ys);
    switch (xs[1]) {
        case 4: return max_pool_nhwc_c<T, 4>(x, y, xs, ys, w);
        case 6: return max_pool_nhwc_c<T, 6>(x, y, xs, ys, w);
        case 8: return max_pool_nhwc_c<T, 8>(x, y, xs, ys, w);
        case 16: return max_pool_nhwc_c<T, 16>(x, y, xs, ys, w);
        case 32: return max_pool_nhwc_c<T, 32>(x, y, xs, ys, w);
        case 48: return max_pool_nhwc_c<T, 48>(x, y, xs, ys, w);
        case 64: return max_pool_nhwc_c<T, 64>(x, y, xs, ys, w);
        case 96: return max_pool_nhwc_c<T, 96>(x, y, xs, ys, w);
        case 128: return max_pool_nhwc_c<T, 128>(x, y, xs, ys, w);
        default: return max_pool_nhwc_c<T, 0>(x, y, xs, ys, w);
    }
}

/// Average pooling of channels-last [N, H, W, C] 8-bit data over a 2-D window with the integer
/// reference's arithmetic: the int32 sum over the window's positions inside the input, times
/// 1 / divisor in float (the window's size with count_include_pad, else the positions summed), rounded
/// half to even and saturated to the type. oneDNN's jit_int average pooling took 0.9-1.0 ms per batch
/// of 256 for 32 channels 28x28 -> 14x14; this loop is memory bound like the max pool.
/// CC > 0 fixes the channel count at compile time (the channel loops then vectorize).
template <class T, int CC>
void avg_pool_nhwc_c(const T* __restrict x, T* __restrict y, const std::vector<int64_t>& xs,
                     const std::vector<int64_t>& ys, const Window& w, bool include_pad) {
    const int64_t nb = xs[0], c = CC > 0 ? CC : xs[1], ih = xs[2], iw = xs[3], oh = ys[2], ow = ys[3];
    const int64_t kh = w.kernel[0], kw = w.kernel[1], sh = w.strides[0], sw = w.strides[1];
    const int64_t dh = w.dilations[0], dw = w.dilations[1], ph = w.pad_begin[0], pw = w.pad_begin[1];
    constexpr float lo = std::is_same_v<T, uint8_t> ? 0.0f : -128.0f, hi = std::is_same_v<T, uint8_t> ? 255.0f : 127.0f;
#pragma omp parallel
    {
        std::vector<int32_t> sums(static_cast<size_t>(c));
        int32_t* __restrict acc = sums.data();
#pragma omp for collapse(2) schedule(static)
        for (int64_t n = 0; n < nb; ++n)
            for (int64_t r = 0; r < oh; ++r) {
                const int64_t h0 = std::max<int64_t>(0, (ph - r * sh + dh - 1) / dh);
                const int64_t h1 = std::min<int64_t>(kh, (ih + ph - r * sh + dh - 1) / dh);
                T* __restrict yr = y + (n * oh + r) * ow * c;
                for (int64_t q = 0; q < ow; ++q) {
                    const int64_t j0 = std::max<int64_t>(0, (pw - q * sw + dw - 1) / dw);
                    const int64_t j1 = std::min<int64_t>(kw, (iw + pw - q * sw + dw - 1) / dw);
                    const int64_t valid = std::max<int64_t>(h1 - h0, 0) * std::max<int64_t>(j1 - j0, 0);
                    const float inv = 1.0f / static_cast<float>(include_pad ? kh * kw : std::max<int64_t>(valid, 1));
                    for (int64_t k = 0; k < c; ++k) acc[k] = 0;
                    for (int64_t i = h0; i < h1; ++i) {
                        const int64_t row = (n * ih + r * sh - ph + i * dh) * iw + q * sw - pw;
                        for (int64_t j = j0; j < j1; ++j) {
                            const T* __restrict xi = x + (row + j * dw) * c;
                            for (int64_t k = 0; k < c; ++k) acc[k] += xi[k];
                        }
                    }
                    T* __restrict yo = yr + q * c;
                    for (int64_t k = 0; k < c; ++k) {
                        float f = static_cast<float>(acc[k]) * inv;
                        f = f < lo ? lo : (f > hi ? hi : f);
                        f = (f + 12582912.0f) - 12582912.0f;  // nearbyint: half to even (|f| < 2^22)
                        yo[k] = static_cast<T>(static_cast<int32_t>(f));
                    }
                }
            }
    }
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
/// avg_pool_nhwc_c with AVX-512, the same arithmetic: 16 channels per register (int32 sums, then the
/// float product, clamp and rounding half to even), masked for the last channels.
template <class T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) void avg_pool_nhwc_avx512(
    const T* __restrict x, T* __restrict y, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys,
    const Window& w, bool include_pad) {
    const int64_t nb = xs[0], c = xs[1], ih = xs[2], iw = xs[3], oh = ys[2], ow = ys[3];
    const int64_t kh = w.kernel[0], kw = w.kernel[1], sh = w.strides[0], sw = w.strides[1];
    const int64_t dh = w.dilations[0], dw = w.dilations[1], ph = w.pad_begin[0], pw = w.pad_begin[1];
    constexpr bool u8 = std::is_same_v<T, uint8_t>;
    const __m512 lo = _mm512_set1_ps(u8 ? 0.0f : -128.0f), hi = _mm512_set1_ps(u8 ? 255.0f : 127.0f);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < nb; ++n)
        for (int64_t r = 0; r < oh; ++r) {
            const int64_t h0 = std::max<int64_t>(0, (ph - r * sh + dh - 1) / dh);
            const int64_t h1 = std::min<int64_t>(kh, (ih + ph - r * sh + dh - 1) / dh);
            T* yr = y + (n * oh + r) * ow * c;
            for (int64_t q = 0; q < ow; ++q) {
                const int64_t j0 = std::max<int64_t>(0, (pw - q * sw + dw - 1) / dw);
                const int64_t j1 = std::min<int64_t>(kw, (iw + pw - q * sw + dw - 1) / dw);
                const int64_t valid = std::max<int64_t>(h1 - h0, 0) * std::max<int64_t>(j1 - j0, 0);
                const __m512 inv =
                    _mm512_set1_ps(1.0f / static_cast<float>(include_pad ? kh * kw : std::max<int64_t>(valid, 1)));
                for (int64_t c0 = 0; c0 < c; c0 += 16) {
                    const int64_t rem = c - c0;
                    const __mmask16 m = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
                    __m512i acc = _mm512_setzero_si512();
                    for (int64_t i = h0; i < h1; ++i) {
                        const int64_t row = (n * ih + r * sh - ph + i * dh) * iw + q * sw - pw;
                        for (int64_t j = j0; j < j1; ++j) {
                            const __m128i v = _mm_maskz_loadu_epi8(m, x + (row + j * dw) * c + c0);
                            acc = _mm512_add_epi32(acc, u8 ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v));
                        }
                    }
                    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), inv);
                    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
                    const __m512i k = _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                    _mm_mask_storeu_epi8(yr + q * c + c0, m, _mm512_cvtepi32_epi8(k));
                }
            }
        }
}
#pragma GCC diagnostic pop

template <class T>
void avg_pool_nhwc(const T* x, T* y, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys, const Window& w,
                   bool include_pad, bool avx512) {
    // avx512: cpu::has(Avx512) when the kernel was made (DCS_MAX_CPU_ISA=avx2: the portable loop on any
    // CPU; CTest host_avg_pool_portable tests it).
    if (avx512) return avg_pool_nhwc_avx512<T>(x, y, xs, ys, w, include_pad);
    switch (xs[1]) {
        case 16: return avg_pool_nhwc_c<T, 16>(x, y, xs, ys, w, include_pad);
        case 32: return avg_pool_nhwc_c<T, 32>(x, y, xs, ys, w, include_pad);
        case 64: return avg_pool_nhwc_c<T, 64>(x, y, xs, ys, w, include_pad);
        default: return avg_pool_nhwc_c<T, 0>(x, y, xs, ys, w, include_pad);
    }
}

template <class T>
void pool_as(const HostPool& p, const void* x, void* y, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys) {
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    if (p.max) max_pool_nhwc(xp, yp, xs, ys, p.win, p.simd);
    else avg_pool_nhwc(xp, yp, xs, ys, p.win, p.include_pad, p.simd);
}

}  // namespace

void HostPool::run(const void* x, void* y, int64_t nb, const void*) const {
    std::vector<int64_t> xn, yn;  // another batch size (tests)
    if (nb != xs[0]) {
        xn = xs;
        yn = ys;
        xn[0] = yn[0] = nb;
    }
    const auto& xa = xn.empty() ? xs : xn;
    const auto& ya = yn.empty() ? ys : yn;
    if (t == QType::U8) pool_as<uint8_t>(*this, x, y, xa, ya);
    else pool_as<int8_t>(*this, x, y, xa, ya);
}

std::string HostPool::impl() const {
    return std::string("host:") + (max ? "max" : "avg") + "_nhwc_" + (t == QType::U8 ? "u8" : "s8");
}

namespace {

std::string pool_declines(const LayerDesc& d) {
    if (d.xt == QType::F32) return "fp32 data";
    if (d.xs.size() != 4) return "not a 2-D pooling";
    return "";
}

}  // namespace

std::string max_pool_declines(const LayerDesc& d) { return d.kind != LayerKind::MaxPool ? "not a max pooling" : pool_declines(d); }

std::string avg_pool_declines(const LayerDesc& d) {
    return d.kind != LayerKind::AvgPool ? "not an average pooling" : pool_declines(d);
}

std::shared_ptr<HostLayer> make_pool(const LayerDesc& d) {
    auto p = std::make_shared<HostPool>();
    p->max = d.kind == LayerKind::MaxPool;
    p->t = d.xt;
    p->xs = d.xs;
    p->ys = d.ys;
    p->win = d.win;
    p->include_pad = d.include_pad;
    p->simd = p->max ? cpu::has(cpu::Isa::Avx512Vbmi) : cpu::has(cpu::Isa::Avx512);
    return p;
}

void pool_reference(const LayerDesc& d, const QLayer&, const void* x, void* y, int64_t nb, const void*) {
    std::vector<int64_t> xs = d.xs, ys = d.ys;
    xs[0] = ys[0] = nb;
    auto run = [&](auto zero) {
        using T = decltype(zero);
        const T* xp = static_cast<const T*>(x);
        T* yp = static_cast<T*>(y);
        if (d.kind == LayerKind::MaxPool) max_pool_nhwc_c<T, 0>(xp, yp, xs, ys, d.win);
        else avg_pool_nhwc_c<T, 0>(xp, yp, xs, ys, d.win, d.include_pad);
    };
    if (d.xt == QType::U8) run(uint8_t{});
    else run(int8_t{});
}

}  // namespace dcs::kernels
