#include "runtime/dnnl_executor.hpp"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cstdlib>
#include <cstring>
#include <emmintrin.h>
#include <exception>
#include <functional>
#include <immintrin.h>
#include <limits>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>
#include <set>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <unordered_map>
#include <utility>

#include "common/error.hpp"
#include "runtime/reference_executor.hpp"

namespace dcs {
namespace {

using dnnl::memory;
using dt = memory::data_type;

dt to_dt(QType t) {
    switch (t) {
        case QType::F32: return dt::f32;
        case QType::S8: return dt::s8;
        case QType::U8: return dt::u8;
    }
    return dt::f32;
}

bool is8(QType t) { return t != QType::F32; }

memory::dims dims_of(const std::vector<int64_t>& s) { return memory::dims(s.begin(), s.end()); }

/// Dense row-major strides, or channels-last (N, spatial..., C) for ranks 3 to 5.
memory::desc make_md(const std::vector<int64_t>& shape, dt type, bool channels_last) {
    const size_t r = shape.size();
    memory::dims strides(r, 1);
    if (channels_last && r >= 3 && r <= 5) {
        int64_t s = shape[1];  // C innermost
        for (size_t d = r; d-- > 2;) {
            strides[d] = s;
            s *= shape[d];
        }
        strides[1] = 1;
        strides[0] = s;
    } else {
        for (size_t d = r; d-- > 1;) strides[d - 1] = strides[d] * shape[d];
    }
    return memory::desc(dims_of(shape), type, strides);
}

/// Same bytes in the same places: same dims and type, and the same strides on every dim of size > 1.
bool same_physical(const memory::desc& a, const memory::desc& b) {
    if (a == b) return true;
    const auto &da = a.data, &db = b.data;
    if (da.ndims != db.ndims || da.data_type != db.data_type || da.format_kind != dnnl_blocked ||
        db.format_kind != dnnl_blocked || da.format_desc.blocking.inner_nblks != 0 ||
        db.format_desc.blocking.inner_nblks != 0 || da.extra.flags != 0 || db.extra.flags != 0)
        return false;
    for (int i = 0; i < da.ndims; ++i) {
        if (da.dims[i] != db.dims[i] || da.padded_dims[i] != db.padded_dims[i]) return false;
        if (da.dims[i] > 1 && da.format_desc.blocking.strides[i] != db.format_desc.blocking.strides[i]) return false;
    }
    return true;
}

/// The same layout with another element type.
memory::desc retype(const memory::desc& md, dt type) {
    dnnl_memory_desc_t d = md.data;
    d.data_type = static_cast<dnnl_data_type_t>(type);
    return memory::desc(d);
}

std::shared_ptr<void> aligned_buffer(size_t bytes) {
    size_t n = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    void* p = std::aligned_alloc(64, n);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, n);
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

/// Zeroed memory for a prepared layer's reordered weights, which the weight cache keeps: fresh pages
/// for every new layer choice. From 128 KB on they are mapped and populated in one call (MAP_POPULATE)
/// rather than faulted in one by one on first touch: 235 KB took 105 us through aligned_alloc and
/// memset, 61 us populated (this machine; lenet300's search overhead -8%). Page-aligned: only for
/// weights (activation buffers at the same page offsets could alias in the L1 cache).
std::shared_ptr<void> weight_buffer(size_t bytes) {
    const size_t n = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    if (n >= (size_t{128} << 10)) {
        void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (m != MAP_FAILED) return std::shared_ptr<void>(m, [n](void* q) { munmap(q, n); });
    }
    return aligned_buffer(bytes);
}

std::string where_of(const Node& n) { return "node '" + n.name + "' (" + op_name(n.op) + ")"; }

/// Reorder scale from a value stored as `src` to `dst` (the same expression the integer reference uses).
float conversion_scale(QType src, float src_scale, QType dst, float dst_scale) {
    if (is8(src) && is8(dst)) return src_scale / dst_scale;
    if (!is8(src) && is8(dst)) return 1.0f / dst_scale;
    if (is8(src) && !is8(dst)) return src_scale;
    return 1.0f;
}

/// Right padding that makes oneDNN's floor formula give the window's output size (ceil_mode).
memory::dims pad_right(const Window& w) {
    memory::dims pr(w.kernel.size());
    for (size_t i = 0; i < w.kernel.size(); ++i) {
        const int64_t eff = (w.kernel[i] - 1) * w.dilations[i] + 1;
        const int64_t floor_out = (w.in[i] + w.pad_begin[i] + w.pad_end[i] - eff) / w.strides[i] + 1;
        pr[i] = floor_out == w.out[i] ? w.pad_end[i] : (w.out[i] - 1) * w.strides[i] + eff - w.in[i] - w.pad_begin[i];
    }
    return pr;
}

memory::dims minus_one(const std::vector<int64_t>& d) {
    memory::dims r(d.size());
    for (size_t i = 0; i < d.size(); ++i) r[i] = d[i] - 1;
    return r;
}

/// 8-bit max pooling (4-D) runs on the host: oneDNN 2.6's int8 pooling (jit_int) works on 64-byte channel
/// vectors and spends most of its time on masking with few channels (LeNet's 6, the example ResNet's 16:
/// 3-6x slower than fp32 pooling), and is slower with many channels too (a 2x2 pool after a 1 -> C conv
/// at 28x28, whole model, one thread: C = 64 80k -> 99k images/s, 128 41k -> 48k, 256 15.2k -> 16.1k),
/// while a plain loop over channels-last data is memory bound. Max pooling on 8-bit codes is exact
/// either way. DCS_NO_HOST_KERNELS=1 turns it off (for benchmarks against oneDNN's own pooling).

bool host_kernels_enabled() {
    static const bool on = std::getenv("DCS_NO_HOST_KERNELS") == nullptr;
    return on;
}

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
bool max_pool_2x2_applies(const std::vector<int64_t>& xs, const std::vector<int64_t>& ys, const Window& w) {
    static const bool vbmi = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vbmi");
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
void max_pool_nhwc(const T* x, T* y, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys, const Window& w) {
    if (max_pool_2x2_applies(xs, ys, w)) return max_pool_2x2_vbmi<T>(x, y, xs, ys);
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
                   bool include_pad) {
    // DCS_PORTABLE_HOST_POOL=1: the portable loop on any CPU (CTest host_avg_pool_portable tests it).
    static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                               std::getenv("DCS_PORTABLE_HOST_POOL") == nullptr;
    if (avx512) return avg_pool_nhwc_avx512<T>(x, y, xs, ys, w, include_pad);
    switch (xs[1]) {
        case 16: return avg_pool_nhwc_c<T, 16>(x, y, xs, ys, w, include_pad);
        case 32: return avg_pool_nhwc_c<T, 32>(x, y, xs, ys, w, include_pad);
        case 64: return avg_pool_nhwc_c<T, 64>(x, y, xs, ys, w, include_pad);
        default: return avg_pool_nhwc_c<T, 0>(x, y, xs, ys, w, include_pad);
    }
}

// GCC 12 reports its own AVX-512 intrinsics (`__m512 __Y = __Y;`) as maybe uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

/// acc += the dot products of 4 u8 in x and 4 s8 in w per int32 lane (vpdpbusd), in place: with
/// _mm512_dpbusd_epi32 GCC 12 copies accumulators around every use and, with many of them, spills
/// them inside the loop (LeNet-5's conv2 with host_conv_vnni_core's output stage: 0.35 ms, 0.24-0.26
/// with this). The loops over accumulator arrays must be fully unrolled (#pragma GCC unroll), else the
/// arrays stay in memory (0.50 ms).
inline __attribute__((target("avx512f,avx512vnni"), always_inline)) void host_dpbusd(__m512i& acc, __m512i x,
                                                                                   __m512i w) {
    asm("vpdpbusd %[w], %[x], %[acc]" : [acc] "+v"(acc) : [x] "v"(x), [w] "v"(w));
}

/// A host layer's parameters, refilled whenever a candidate's weights are loaded. One per layer, shared
/// by every plan (batch size, image stream): they depend on the layer's per-image shapes only.
struct HostLayer {
    virtual ~HostLayer() = default;
    virtual void fill(const QLayer& q) = 0;
    std::shared_ptr<const void> loaded;  ///< the prepared layer it holds
};

/// A single-input-channel int8 convolution with few output channels (LeNet-5's conv1: 1 -> 6, 5x5) on
/// the host. oneDNN 2.6 serves it with jit_int8 at a fraction of its usual speed (2.8 ms per batch of
/// 256 on this CPU, more than the rest of the network): with one input channel there is no reduction to
/// vectorize and six output channels fill six lanes. Here 32 output columns of one row are two 16-lane
/// vectors, one per output channel, and every tap is a fused multiply-add of a broadcast weight (1.2 ms).
/// Integer products summed in fp32 are exact (|sum| < 2^24 for up to 256 taps), and the output stage is
/// the integer reference's: (acc + bias[c]) * scale[c], activation, clamp, round half to even.
/// Beyond 16 output channels the VNNI kernel below (HostConvVnni) or oneDNN's kernels are used.
/// DCS_NO_HOST_KERNELS=1 turns the host kernels off.
/// Up to 8 channels: 32 columns x 8 channels per pass ("rows"); 9 to 16: the 16 channels of 8 pixels
/// per pass, one broadcast input value per tap and pixel ("pixels"; oneDNN: 1.4 ms, this: 1.0 ms for the
/// example ResNet's 1 -> 16, 3x3). With AVX-512 VNNI and VBMI the row kernel sums in int32 with
/// vpdpbusd instead (host_conv_block_vnni; LeNet-5's conv1: 0.70 -> 0.46 ms at one thread).
constexpr int64_t kHostConvMaxChannels = 16;
constexpr int kHostConvBlock = 8;  ///< output channels per pass of the row kernel (16 accumulators)

struct HostConv : HostLayer {
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
        vbmi_transpose = ocp == 6 && yt != QType::F32 && __builtin_cpu_supports("avx512vbmi");
        if (!vbmi_transpose) return;
        for (int64_t b = 0; b < 32 * oc; ++b) {
            const int64_t src = (b % oc) * 32 + b / oc;
            tidx[b] = static_cast<uint8_t>(src);
            if (src >= 128) thi[b / 64] |= uint64_t{1} << (b % 64);
        }
    }
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

bool host_conv_available() {
    static const bool ok = host_kernels_enabled() && __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                           __builtin_cpu_supports("avx512dq");
    return ok;
}

#define DCS_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

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

/// Calls f(TX{}, TY{}) with the C++ types of an 8-bit input type and an output type.
template <class F>
void with_types(QType xt, QType yt, F&& f) {
    auto out = [&](auto tx) {
        switch (yt) {
            case QType::U8: return f(tx, uint8_t{});
            case QType::S8: return f(tx, int8_t{});
            case QType::F32: return f(tx, float{});
        }
    };
    if (xt == QType::U8) out(uint8_t{});
    else out(int8_t{});
}

void host_conv(const HostConv& hc, const void* x, void* y, int64_t nb) {
    with_types(hc.xt, hc.yt, [&](auto tx, auto ty) { host_conv_run<decltype(tx), decltype(ty)>(hc, x, y, nb); });
}

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
/// 0.15. Dispatch (compile_layer) follows measurements.
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

/// The output clamp of a host convolution: the activation and, for 8-bit outputs, the type's bounds as
/// one range, also when the two do not overlap: clamp(clamp(f, alo, ahi), tlo, thi).
inline void host_out_range(QAct act, float act_lo, float act_hi, QType yt, float* lo, float* hi) {
    const bool relu = act == QAct::Relu, clip = act == QAct::Clip;
    const float alo = clip ? act_lo : (relu ? 0.0f : -FLT_MAX), ahi = clip ? act_hi : FLT_MAX;
    const float tlo = yt == QType::U8 ? 0.0f : -128.0f, thi = yt == QType::U8 ? 255.0f : 127.0f;
    *lo = yt == QType::F32 ? alo : std::min(std::max(alo, tlo), thi);
    *hi = yt == QType::F32 ? ahi : std::max(std::min(ahi, thi), tlo);
}

/// What the VNNI host convolutions (HostConvVnni, HostDwConv) share: 16-channel blocks of weight bytes
/// with their s8-input corrections, and the integer reference's output stage.
struct HostVnniLayer : HostLayer {
    int64_t nblk = 0;  ///< 16-channel blocks
    QType xt = QType::U8, yt = QType::U8;
    QAct act = QAct::None;
    float act_lo = 0.0f, act_hi = 0.0f;
    std::vector<int8_t> w;           ///< [nblk][kh][groups][16 channels][4 bytes]
    std::vector<int32_t> comp;       ///< [nblk * 16]: -128 * sum(w) for s8 input, else 0
    std::vector<float> bias, scale;  ///< [nblk * 16]
    float lo = 0.0f, hi = 0.0f;      ///< the output clamp (host_out_range)
    float sum_scale = 1.0f;          ///< residual scale / output scale (a fused Add), QLayer::sum_scale
    /// The clamp is the 8-bit output type's whole range and no input can take (acc + bias) * scale to
    /// 2^31: the output stage may leave the clamp to the saturation of packs (host_pack4).
    bool packed = false;
    /// Zeroed weight bytes for `groups` 4-byte groups per kernel row, and zeroed corrections.
    void clear_weights(int64_t kh, int64_t groups) {
        w.assign(static_cast<size_t>(nblk * kh * groups * 64), 0);
        comp.assign(static_cast<size_t>(nblk * 16), 0);
    }
    /// Bias, scales, activation and clamp of candidate `q`.
    void fill_output(const QLayer& q) {
        bias.assign(static_cast<size_t>(nblk * 16), 0.0f);
        scale.assign(static_cast<size_t>(nblk * 16), 0.0f);
        std::copy(q.bias.begin(), q.bias.end(), bias.begin());
        std::copy(q.out_scale.begin(), q.out_scale.end(), scale.begin());
        act_lo = q.act_lo;
        act_hi = q.act_hi;
        sum_scale = q.sum_scale;
        host_out_range(act, act_lo, act_hi, yt, &lo, &hi);
        packed = yt != QType::F32 && lo == (yt == QType::U8 ? 0.0f : -128.0f) && hi == (yt == QType::U8 ? 255.0f : 127.0f) &&
                 sums_below_2_30(q);
    }
    /// Whether |(acc + bias) * scale| < 2^30 for every input: |acc| <= 255 * sum |w| per output channel
    /// (u8 inputs, s8 inputs shifted by 128 with their correction, or s8 inputs as they are).
    static bool sums_below_2_30(const QLayer& q) {
        const size_t oc = q.out_scale.size();
        if (oc == 0 || q.codes.size() % oc != 0 || q.bias.size() != oc) return false;
        const size_t per = q.codes.size() / oc;
        for (size_t o = 0; o < oc; ++o) {
            double s = 0.0;
            for (size_t i = 0; i < per; ++i) s += std::abs(static_cast<double>(q.codes[o * per + i]));
            const double f = (255.0 * s + std::abs(static_cast<double>(q.bias[o]))) * std::abs(static_cast<double>(q.out_scale[o]));
            if (!(f < 1073741824.0)) return false;
        }
        return true;
    }
};

/// A convolution served by host_conv_vnni: its geometry and the current candidate's parameters.
struct HostConvVnni : HostVnniLayer {
    int64_t ic = 0, oc = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0, ih = 0, iw = 0, oh = 0, ow = 0;
    int64_t g = 0;           ///< 4-byte groups per kernel row
    int64_t rb = 0, bh = 0;  ///< padded buffer: bytes per row, rows
    std::vector<int32_t> toff;  ///< [kh * g]: buffer offset of group (i, k): i * rb + 4 k
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

/// DCS_NO_HOST_VNNI_CONV=1 turns this kernel alone off (A/B benchmarks against oneDNN).
bool host_conv_vnni_available() {
    static const bool ok = host_conv_available() && __builtin_cpu_supports("avx512vnni") &&
                           std::getenv("DCS_NO_HOST_VNNI_CONV") == nullptr;
    return ok;
}

#define DCS_AVX512_VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")))

/// f rounded half to even, as int32 (no clamp; a value from 2^31 on gives 0x80000000).
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) __m512i host_round(__m512 f) {
    return _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/// The output stage of one vector of 16 channels' int32 sums (HostConv's arithmetic: (acc + bias) *
/// scale, then the clamp [lo, hi] of the activation and, for 8-bit outputs, the type's bounds, round
/// half to even), stored under `mask`. SAT (u8 output whose upper bound is 255): the lower clamp,
/// rounding and vpmovusdb's unsigned saturation give the same bytes as clamping to [lo, 255] first
/// (255 is an integer and rounding is monotone; from 2^31 on the conversion gives 0x80000000, which
/// saturates to 255 too), one instruction fewer.
template <class TY, bool SAT>
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) void host_out16_f(
    __m512 f, __m512 lo, __m512 hi, __mmask16 mask, TY* __restrict y) {
    f = _mm512_max_ps(f, lo);
    if constexpr (SAT) {
        _mm_mask_storeu_epi8(y, mask, _mm512_cvtusepi32_epi8(host_round(f)));
    } else {
        f = _mm512_min_ps(f, hi);
        if constexpr (std::is_same_v<TY, float>) {
            _mm512_mask_storeu_ps(y, mask, f);
        } else {
            _mm_mask_storeu_epi8(y, mask, _mm512_cvtepi32_epi8(host_round(f)));  // in range
        }
    }
}

/// The integer reference's (acc + bias) * scale in fp32, every output stage's first part.
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) __m512 host_scaled(__m512i acc, __m512 bv,
                                                                                                    __m512 sc) {
    return _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(acc), bv), sc);
}

/// The output stage from int32 sums: host_scaled, then host_out16_f.
template <class TY, bool SAT>
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) void host_out16(
    __m512i acc, __m512 bv, __m512 sc, __m512 lo, __m512 hi, __mmask16 mask, TY* __restrict y) {
    host_out16_f<TY, SAT>(host_scaled(acc, bv, sc), lo, hi, mask, y);
}

/// host_scaled rounded half to even, as int32 (host_pack4's inputs: no clamp).
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) __m512i host_code(__m512i acc, __m512 bv,
                                                                                                   __m512 sc) {
    return host_round(host_scaled(acc, bv, sc));
}

/// Four vectors of 16 int32 codes (host_code) as 64 bytes, vector i at bytes 16 i.., clamped to the
/// 8-bit type by the saturation of two packs (int32 -> int16 -> u8 / s8) and put in order with one
/// dword permutation. The same bytes as host_out16 when the layer is HostVnniLayer::packed (its clamp
/// is the type's range, which commutes with rounding, and no code comes from a conversion overflow).
/// 5 instructions per 16 outputs instead of 6 (s8) or 7 (u8: max and a two-uop vpmovusdb), and one
/// 64-byte store in place of four masked ones where the outputs are contiguous.
template <class TY>
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) __m512i host_pack4(__m512i k0, __m512i k1,
                                                                                                    __m512i k2, __m512i k3) {
    const __m512i a = _mm512_packs_epi32(k0, k1), b = _mm512_packs_epi32(k2, k3);
    const __m512i v = std::is_same_v<TY, uint8_t> ? _mm512_packus_epi16(a, b) : _mm512_packs_epi16(a, b);
    // Lane l of v: k0[4l..4l+3], k1[..], k2[..], k3[..] (one dword each).
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), v);
}

/// Stores the first N 16-byte lanes of v at y, y + stride, ... (one store when they are contiguous).
template <int N>
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) void host_store_lanes(__m512i v, void* y,
                                                                                                       int64_t stride) {
    char* d = static_cast<char*>(y);
    if (N == 4 && stride == 16) {
        _mm512_storeu_si512(d, v);
        return;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm512_castsi512_si128(v));
    if constexpr (N > 1) _mm_storeu_si128(reinterpret_cast<__m128i*>(d + stride), _mm512_extracti32x4_epi32(v, 1));
    if constexpr (N > 2) _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * stride), _mm512_extracti32x4_epi32(v, 2));
    if constexpr (N > 3) _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 3 * stride), _mm512_extracti32x4_epi32(v, 3));
}

/// P vectors of 16 sums with one bias and scale, through the packed output stage (host_pack4) into y,
/// y + stride, ...: 16 whole 8-bit channels each.
template <class TY, int P>
inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"), always_inline)) void host_out_packed(
    const __m512i (&acc)[P], __m512 bv, __m512 sc, TY* y, int64_t stride) {
#pragma GCC unroll 16
    for (int p = 0; p < P; p += 4) {
        const __m512i k0 = host_code(acc[p], bv, sc);
        const __m512i k1 = p + 1 < P ? host_code(acc[p + 1 < P ? p + 1 : p], bv, sc) : k0;
        const __m512i k2 = p + 2 < P ? host_code(acc[p + 2 < P ? p + 2 : p], bv, sc) : k0;
        const __m512i k3 = p + 3 < P ? host_code(acc[p + 3 < P ? p + 3 : p], bv, sc) : k0;
        const __m512i v = host_pack4<TY>(k0, k1, k2, k3);
        const int n = P - p < 4 ? P - p : 4;
        if (n == 4) host_store_lanes<4>(v, y + p * stride, stride);
        else if (n == 3) host_store_lanes<3>(v, y + p * stride, stride);
        else if (n == 2) host_store_lanes<2>(v, y + p * stride, stride);
        else host_store_lanes<1>(v, y + p * stride, stride);
    }
}

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

void host_conv_vnni(const HostConvVnni& hc, const void* x, void* y, int64_t nb) {
    with_types(hc.xt, hc.yt, [&](auto tx, auto ty) { host_conv_vnni_run<decltype(tx), decltype(ty)>(hc, x, y, nb); });
}

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
struct HostAmx1x1 : HostVnniLayer {
    int64_t ic = 0, oc = 0;
    int64_t kc = 0;   ///< 64-byte chunks of input channels
    int64_t pix = 0;  ///< pixels per image
    /// A fused Add: the residual's type (8-bit codes times sum_scale, or fp32). The residual (each
    /// plan's own) has the output's channels-last layout.
    bool sum = false;
    QType rt = QType::U8;
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

/// DCS_NO_HOST_AMX_CONV=1 turns this kernel alone off (A/B benchmarks; the layers go back to
/// host_conv_vnni or oneDNN). Needs the CPU's AMX-INT8 and the kernel's permission to use tile data
/// (Linux 5.16+: arch_prctl ARCH_REQ_XCOMP_PERM, which oneDNN asks for too).
bool host_amx_conv_available() {
    static const bool ok = [] {
        if (!host_conv_available() || !__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("amx-tile") ||
            !__builtin_cpu_supports("amx-int8") || std::getenv("DCS_NO_HOST_AMX_CONV") != nullptr)
            return false;
        constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
        return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
    }();
    return ok;
}

#define DCS_AMX __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,amx-tile,amx-int8")))

/// Palette 1: tiles 0-3 (sums) 16 x 64 bytes, 4-5 (input) 16 rows x `a_bytes`, 6-7 (weights)
/// a_bytes / 4 rows x 64 bytes. One chunk of up to 64 input channels: a_bytes = IC rounded up to 4
/// (16 -> 32 on 14x14: 0.182 instead of 0.206 ms in a standalone test); else 64.
struct alignas(64) AmxTileConfig {
    uint8_t palette = 1, start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
    explicit AmxTileConfig(int64_t a_bytes) {
        for (int t = 0; t < 8; ++t) {
            colsb[t] = t == 4 || t == 5 ? static_cast<uint16_t>(a_bytes) : 64;
            rows[t] = t >= 6 ? static_cast<uint8_t>(a_bytes / 4) : 16;
        }
    }
};

/// A 32-pixel x 32-channel block whose sums wait in a tile buffer for the output stage.
template <class TY>
struct AmxPending {
    const int32_t* c = nullptr;  ///< four 16 x 16 int32 tiles: pixels 0-15 / 16-31 x blocks b / b + 1
    int64_t rows = 0, b = 0;     ///< valid pixels, first 16-channel block
    TY* y = nullptr;             ///< the block's first pixel
    const void* r = nullptr;     ///< the residual's first pixel (a fused Add)
};

/// 16 residual values (8-bit codes or fp32) as floats.
DCS_AMX inline __m512 host_residual16(QType rt, const void* r, __mmask16 mask) {
    if (rt == QType::F32) return _mm512_maskz_loadu_ps(mask, r);
    const __m128i v = _mm_maskz_loadu_epi8(mask, r);
    return _mm512_cvtepi32_ps(rt == QType::U8 ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v));
}

/// host_code of 16 stored tile sums; MIN: min(f, top) before rounding (the upper bound, which keeps
/// values from 2^31 on away from the conversion's 0x80000000).
template <bool MIN>
DCS_AMX inline __m512i host_amx_code(const int32_t* acc, __m512 bv, __m512 sv, __m512 top) {
    __m512 f = host_scaled(_mm512_load_si512(acc), bv, sv);
    if constexpr (MIN) f = _mm512_min_ps(f, top);
    return host_round(f);
}

/// The output stage of `rows` pixel rows of two 16 x 16 tiles (`c`: channels 16 b.., then 16 b + 16..)
/// into 32 8-bit outputs per row at y, whose clamp is the type's range: (acc + bias) * scale, rounding
/// half to even and the saturation of host_pack4 (two rows per pack). MIN: the upper bound first,
/// which keeps values from 2^31 on away from the conversion's 0x80000000 (layers that are not
/// HostVnniLayer::packed). The same bytes as host_out16 (the clamp commutes with rounding) in 4 or 5
/// instructions per 16 outputs instead of 7 (u8) or 6 (s8).
template <class TY, bool MIN>
DCS_AMX void host_amx_out_x32(const HostAmx1x1& hc, const int32_t* c, int64_t rows, int64_t b, TY* y) {
    const __m512 b0 = _mm512_loadu_ps(hc.bias.data() + 16 * b), s0 = _mm512_loadu_ps(hc.scale.data() + 16 * b);
    const __m512 b1 = _mm512_loadu_ps(hc.bias.data() + 16 * b + 16), s1 = _mm512_loadu_ps(hc.scale.data() + 16 * b + 16);
    const __m512 top = _mm512_set1_ps(std::is_same_v<TY, uint8_t> ? 255.0f : 127.0f);
    y += 16 * b;
    int64_t r = 0;
    for (; r + 2 <= rows; r += 2) {
        const __m512i v = host_pack4<TY>(host_amx_code<MIN>(c + 16 * r, b0, s0, top), host_amx_code<MIN>(c + 256 + 16 * r, b1, s1, top),
                                         host_amx_code<MIN>(c + 16 * r + 16, b0, s0, top),
                                         host_amx_code<MIN>(c + 256 + 16 * r + 16, b1, s1, top));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + r * hc.oc), _mm512_castsi512_si256(v));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + (r + 1) * hc.oc), _mm512_extracti64x4_epi64(v, 1));
    }
    if (r < rows) {
        const __m512i k0 = host_amx_code<MIN>(c + 16 * r, b0, s0, top), k1 = host_amx_code<MIN>(c + 256 + 16 * r, b1, s1, top);
        const __m512i v = host_pack4<TY>(k0, k1, k0, k1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + r * hc.oc), _mm512_castsi512_si256(v));
    }
}

/// The output stage of a pending block.
template <class TY>
DCS_AMX void host_amx_out(const HostAmx1x1& hc, const AmxPending<TY>& p) {
    const __m512 lo = _mm512_set1_ps(hc.lo), hi = _mm512_set1_ps(hc.hi);
    const bool sat = std::is_same_v<TY, uint8_t> && hc.hi >= 255.0f;
    // 8-bit outputs clamped to the type's range (u8: Relu or none; s8: none), 32 whole channels: both
    // tiles of a pixel row at once.
    constexpr bool is8 = sizeof(TY) == 1;
    const float tlo = std::is_same_v<TY, uint8_t> ? 0.0f : -128.0f, thi = std::is_same_v<TY, uint8_t> ? 255.0f : 127.0f;
    const bool x32 = is8 && !hc.sum && hc.lo == tlo && hc.hi == thi && p.b + 1 < hc.nblk && hc.oc - 16 * p.b >= 32;
    for (int64_t t = 0; t < 4; ++t) {
        if constexpr (is8) {
            if (x32) {
                if (t & 1) continue;
                const int64_t r0 = (t >> 1) * 16, rn = std::min<int64_t>(16, p.rows - r0);
                if (rn <= 0) continue;
                if (hc.packed) host_amx_out_x32<TY, false>(hc, p.c + t * 256, rn, p.b, p.y + r0 * hc.oc);
                else host_amx_out_x32<TY, true>(hc, p.c + t * 256, rn, p.b, p.y + r0 * hc.oc);
                continue;
            }
        }
        const int64_t blk = p.b + (t & 1), r0 = (t >> 1) * 16, rn = std::min<int64_t>(16, p.rows - r0);
        if (blk >= hc.nblk || rn <= 0) continue;
        const int64_t c0 = 16 * blk, rem = hc.oc - c0;
        const __mmask16 mask = rem >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << rem) - 1u);
        const __m512 bv = _mm512_loadu_ps(hc.bias.data() + c0), sc = _mm512_loadu_ps(hc.scale.data() + c0);
        const int32_t* ct = p.c + t * 256;
        TY* yo = p.y + r0 * hc.oc + c0;
        if (hc.sum) {  // the integer reference's order: f + sum_scale * residual, then the clamp
            const int64_t rs = hc.rt == QType::F32 ? 4 : 1;
            const char* ro = static_cast<const char*>(p.r) + (r0 * hc.oc + c0) * rs;
            const __m512 ss = _mm512_set1_ps(hc.sum_scale);
            for (int64_t r = 0; r < rn; ++r) {
                const __m512 f = host_scaled(_mm512_load_si512(ct + 16 * r), bv, sc);
                const __m512 res = _mm512_mul_ps(ss, host_residual16(hc.rt, ro + r * hc.oc * rs, mask));
                host_out16_f<TY, false>(_mm512_add_ps(f, res), lo, hi, mask, yo + r * hc.oc);
            }
        } else if (sat) {
            for (int64_t r = 0; r < rn; ++r)
                host_out16<TY, true>(_mm512_load_si512(ct + 16 * r), bv, sc, lo, hi, mask, yo + r * hc.oc);
        } else {
            for (int64_t r = 0; r < rn; ++r)
                host_out16<TY, false>(_mm512_load_si512(ct + 16 * r), bv, sc, lo, hi, mask, yo + r * hc.oc);
        }
    }
}

/// 32 pixels from `a` (row stride `as`; `rows` of them are output) x every output channel into y (the
/// block's first pixel). The output stage of each 32 x 32 block runs after the tile products of the
/// next one (`pending`, across calls; cbuf: two 4 KB tile buffers, used in turn).
template <class TX, class TY>
DCS_AMX void host_amx_block(const HostAmx1x1& hc, const uint8_t* a, int64_t as, int64_t rows, TY* __restrict y,
                            const void* r, int32_t* cbuf, AmxPending<TY>& pending) {
    const int64_t kc = hc.kc;
    for (int64_t b = 0; b < hc.nblk; b += 2) {
        int32_t* cur = pending.c == cbuf ? cbuf + 1024 : cbuf;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        const int8_t* w0 = hc.w.data() + b * kc * 1024;
        const int8_t* w1 = w0 + kc * 1024;
        for (int64_t k = 0; k < kc; ++k) {
            _tile_loadd(4, a + 64 * k, as);
            _tile_loadd(6, w0 + 1024 * k, 64);
            _tile_loadd(7, w1 + 1024 * k, 64);
            _tile_loadd(5, a + 16 * as + 64 * k, as);
            if constexpr (std::is_same_v<TX, int8_t>) {
                _tile_dpbssd(0, 4, 6);
                _tile_dpbssd(1, 4, 7);
                _tile_dpbssd(2, 5, 6);
                _tile_dpbssd(3, 5, 7);
            } else {
                _tile_dpbusd(0, 4, 6);
                _tile_dpbusd(1, 4, 7);
                _tile_dpbusd(2, 5, 6);
                _tile_dpbusd(3, 5, 7);
            }
        }
        if (pending.c) host_amx_out<TY>(hc, pending);  // overlaps these products
        _tile_stored(0, cur, 64);
        _tile_stored(1, cur + 256, 64);
        _tile_stored(2, cur + 512, 64);
        _tile_stored(3, cur + 768, 64);
        pending = {cur, rows, b, y, r};
    }
}

template <class TX, class TY>
DCS_AMX void host_amx_run(const HostAmx1x1& hc, const void* xv, void* yv, int64_t nb, const void* residual) {
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    TY* y = static_cast<TY*>(yv);
    const char* res = hc.sum ? static_cast<const char*>(residual) : nullptr;
    auto res_at = [res, &hc](int64_t m) -> const void* { return res ? res + m * hc.oc * (hc.rt == QType::F32 ? 4 : 1) : nullptr; };
    const int64_t m_total = nb * hc.pix, k = hc.ic, blocks = (m_total + 31) / 32;
    // a_bytes: input tile width; kb: bytes the tile rows read from a pixel's start (all chunks).
    const int64_t a_bytes = hc.kc == 1 ? (k + 3) / 4 * 4 : 64, kb = (hc.kc - 1) * 64 + a_bytes;
#pragma omp parallel
    {
        const AmxTileConfig cfg(a_bytes);
        _tile_loadconfig(&cfg);
        alignas(64) int32_t cbuf[2048];
        AmxPending<TY> pending;
        std::shared_ptr<void> pad;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < blocks; ++i) {
            const int64_t m = 32 * i, rows = std::min<int64_t>(32, m_total - m);
            if (rows == 32 && (m + 31) * k + kb <= m_total * k) {
                host_amx_block<TX, TY>(hc, x + m * k, k, 32, y + m * hc.oc, res_at(m), cbuf, pending);
            } else {  // past the input's end: a zero-padded copy
                const int64_t ps = hc.kc * 64;
                if (!pad) pad = aligned_buffer(static_cast<size_t>(32 * ps));
                uint8_t* p = static_cast<uint8_t*>(pad.get());
                std::memset(p, 0, static_cast<size_t>(32 * ps));
                for (int64_t r = 0; r < rows; ++r) std::memcpy(p + r * ps, x + (m + r) * k, static_cast<size_t>(k));
                host_amx_block<TX, TY>(hc, p, ps, rows, y + m * hc.oc, res_at(m), cbuf, pending);
            }
        }
        if (pending.c) host_amx_out<TY>(hc, pending);
        _tile_release();
    }
}

void host_amx_conv(const HostAmx1x1& hc, const void* x, void* y, int64_t nb, const void* residual) {
    with_types(hc.xt, hc.yt, [&](auto tx, auto ty) { host_amx_run<decltype(tx), decltype(ty)>(hc, x, y, nb, residual); });
}

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

struct HostDwConv : HostVnniLayer {
    int64_t c = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0, ih = 0, iw = 0, oh = 0, ow = 0;
    int64_t bw = 0, bh = 0;  ///< padded image buffer: pixels per row (a multiple of 4), rows
    /// Zero pixels before each padded row, so that the image's first pixel, and each 4-pixel store of
    /// the copy, is 64-byte aligned (pw + cs a multiple of 4).
    int64_t cs = 0;
    int64_t g = 0;           ///< groups of 4 kernel columns per kernel row
    uint8_t idx[64] = {};    ///< byte 4 c + j of a gather: 16 j + c (pixel j's channel c)
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

#define DCS_AVX512_VBMI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx512vbmi")))

template <class TY, int P>
DCS_AVX512_VBMI inline __attribute__((always_inline)) void host_dw_out(const HostDwConv& hc, const __m512i (&acc)[P], int64_t r,
                                                                       int64_t q, int64_t b, TY* __restrict yn);

/// DCS_DW_ONE_ROW=1: the depthwise kernel computes one output row at a time (A/B benchmarks; tests).
bool host_dw_one_row() {
    static const bool on = std::getenv("DCS_DW_ONE_ROW") != nullptr;
    return on;
}

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
    const bool pairs = hc.sh < hc.kh && !host_dw_one_row();
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

/// DCS_NO_HOST_DW_CONV=1 turns this kernel alone off (A/B benchmarks against oneDNN).
bool host_dw_conv_available() {
    static const bool ok = host_conv_available() && __builtin_cpu_supports("avx512vnni") &&
                           __builtin_cpu_supports("avx512vbmi") && std::getenv("DCS_NO_HOST_DW_CONV") == nullptr;
    return ok;
}

void host_dw_conv(const HostDwConv& hc, const void* x, void* y, int64_t nb) {
    with_types(hc.xt, hc.yt, [&](auto tx, auto ty) { host_dw_run<decltype(tx), decltype(ty)>(hc, x, y, nb); });
}

#pragma GCC diagnostic pop

struct Step {
    std::string what;  ///< "<node>: <primitive kind> <implementation>"
    bool has_prim = false;
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    std::function<void()> host;
    std::vector<memory> uses;  ///< memories a host step reads or writes
};

/// A layer's weights in one primitive layout, shared by every plan (batch size) whose primitive wants
/// that layout, so a candidate's codes are reordered once per layout, not once per batch size.
struct Weights {
    memory user_w;  ///< the codes (int8) or floats in the initializer's layout; handle set on fill
    memory w;       ///< the primitive's weight layout: its own buffer or a prepared layer's
    void* w_own = nullptr;  ///< w's own buffer
    dnnl::reorder w_reorder;
    memory perm_src, perm_dst;  ///< column permutation of the codes first (folded channels-last Flatten)
    dnnl::reorder perm;
    std::vector<std::shared_ptr<void>> buffers;
    std::shared_ptr<const DnnlExecutor::PreparedLayer> loaded;  ///< whose codes w holds (int8)
    memory& codes_memory() { return perm_src ? perm_src : user_w; }
    /// Reorders `codes` (the initializer's layout) into `dst` (this layout).
    void reorder_into(dnnl::stream& s, const void* codes, memory dst) {
        codes_memory().set_data_handle(const_cast<void*>(codes));
        if (perm_src) perm.execute(s, perm_src, perm_dst);
        w_reorder.execute(s, user_w, dst);
        s.wait();
        codes_memory().set_data_handle(DNNL_MEMORY_NONE);
    }
    void fill(dnnl::stream& s, const void* codes) {
        w.set_data_handle(w_own);
        reorder_into(s, codes, w);
    }
};

/// Per plan: a layer's weights and its scale and bias buffers.
struct LayerMem {
    std::string name;
    std::shared_ptr<Weights> weights;
    std::shared_ptr<HostLayer> host;  ///< set instead of weights for a host convolution
    memory scales;  ///< per-channel output scales (int8); handle set on sync
    memory bias;    ///< int8: handle set on sync; fp32: own buffer
    std::shared_ptr<const DnnlExecutor::PreparedLayer> loaded;  ///< what scales, bias, host hold (int8)
};

/// Primitives, memories and steps for one batch size.
struct Plan {
    int64_t batch = 0;
    dnnl::stream strm;  ///< its own: plans of different image streams run concurrently
    std::map<std::string, memory> vals;  ///< canonical memory of each materialised value
    std::map<std::string, std::vector<memory>> converted;  ///< other layouts / types of a value
    std::vector<Step> steps;
    std::vector<LayerMem> layers;
    std::vector<std::string> weight_reorders;  ///< implementations of the per-candidate weight reorders
    struct Buffer {
        std::shared_ptr<void> data;
        size_t bytes = 0;
        bool persistent = false;  ///< weights, biases, padded borders: never shared
    };
    std::vector<Buffer> buffers;
    memory input;
    std::vector<memory> input_aliases;  ///< memories sharing the input's (per-run) handle
    memory output;
    uint64_t weights_version = ~uint64_t(0);
};

}  // namespace

struct DnnlExecutor::PreparedLayer {
    std::string name;
    uint64_t generation = 0;  ///< Impl::generation it was prepared for
    QLayer q;
    /// The codes in the layout of each Weights (by address) that existed when it was prepared.
    std::vector<std::pair<const Weights*, std::shared_ptr<void>>> layouts;
    size_t bytes = 0;
    bool codes_dropped = false;  ///< q.codes released (set_keep_codes(false)): only `layouts` hold them
};

struct DnnlExecutor::Impl {
    const Graph& graph;
    Mode mode;
    int64_t batch_size;
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream strm{eng};
    QuantizedModel model;
    std::map<std::string, Int8LayerWeights> default_weights;
    bool calibrated = false;
    bool bias_correction = false;
    /// Incremented by calibrate() and by set_bias_correction() changes: a layer prepared for an earlier
    /// generation has other parameters (and, across calibrate(), layouts that no longer exist).
    uint64_t generation = 0;
    std::map<std::string, Prepared> loaded;  ///< per layer, what the plans are to hold
    bool layers_stale = false;               ///< model.layers not yet copied from `loaded`
    std::map<std::string, std::vector<float>> input_means;  ///< per layer: mean input per channel / column
    /// By (batch size, image stream): stream -1 is the plan whose steps use every OMP thread; streams
    /// 0.. are single-threaded plans that run concurrently (Split).
    std::map<std::pair<int64_t, int>, std::unique_ptr<Plan>> plans;
    int64_t sub_batch = 0;   ///< int8: larger batches run in sub-batches of this size (choose_sub_batch)
    int streams = 1;         ///< int8: image streams of run() (choose_streams)
    bool keep_codes = true;  ///< set_keep_codes()
    std::vector<std::unique_ptr<Graph>> fallback_graphs;  ///< mini graphs of host fallbacks (stable addresses)
    /// Weight memories by (layer, primitive weight layout), shared across plans.
    std::vector<std::tuple<std::string, memory::desc, std::shared_ptr<Weights>>> weight_cache;

    Impl(const Graph& g, Mode m, int64_t b, QuantPlan plan) : graph(g), mode(m), batch_size(b) {
        model.plan = std::move(plan);
        for (const auto& l : list_layers(g)) model.layer_info[l.name] = l;
    }

    /// The plan for `batch` images of image stream `stream` (-1: the plan of every thread), compiled
    /// on first use; a stream's primitives are created for one thread, as they run.
    Plan& plan_for(int64_t batch, int stream = -1) {
        const auto key = std::make_pair(batch, stream);
        auto it = plans.find(key);
        if (it != plans.end()) return *it->second;
        std::unique_ptr<Plan> p;
        if (stream >= 0) {
            const int threads = omp_get_max_threads();
            omp_set_num_threads(1);
            try {
                p = compile(batch);
            } catch (...) {
                omp_set_num_threads(threads);
                throw;
            }
            omp_set_num_threads(threads);
        } else {
            p = compile(batch);
        }
        Plan& ref = *p;
        plans[key] = std::move(p);
        return ref;
    }

    /// How run() splits a batch of nb images: chunks of `chunk` images (the last one smaller). With one
    /// stream the chunks run one after another, every step on every thread; with more, each of
    /// `streams` threads takes the next chunk through its own single-threaded plan until none is
    /// left, with no barrier between steps. The chunk count is rounded up to a multiple of the
    /// streams so that they end together.
    struct Split {
        int64_t chunk;
        int streams;
    };
    Split split(int64_t nb) const {
        if (mode != Mode::Int8) return {nb, 1};
        if (streams > 1 && nb > 1) {
            int64_t k = (nb + sub_batch - 1) / sub_batch;
            k = std::min(nb, (k + streams - 1) / streams * streams);
            return {(nb + k - 1) / k, streams};
        }
        return {std::min(nb, sub_batch), 1};
    }
    /// The plans run() uses for a batch of nb images, made (and their weights synced) if needed.
    std::vector<Plan*> plans_for(int64_t nb) {
        const Split sp = split(nb);
        std::vector<Plan*> out;
        try {
            const bool many = sp.streams > 1;
            for (int s = many ? 0 : -1; s < (many ? sp.streams : 0); ++s)
                for (int64_t n : {sp.chunk, nb % sp.chunk}) {
                    if (n == 0) continue;
                    Plan& P = plan_for(n, s);
                    if (mode == Mode::Int8 && P.weights_version != model.version) sync_weights(P);
                    out.push_back(&P);
                }
        } catch (const dnnl::error& e) {
            throw UnsupportedError(std::string("oneDNN: ") + e.what());
        }
        return out;
    }

    memory alloc(Plan& P, const memory::desc& md, bool persistent = false) {
        auto buf = aligned_buffer(md.get_size());
        P.buffers.push_back({buf, md.get_size(), persistent});
        return memory(md, eng, buf.get());
    }

    memory alias(Plan& P, const memory& base, const memory::desc& md) {
        memory m(md, eng, base.get_data_handle());
        // Only the graph input has no buffer at compile time: its views follow its per-run handle.
        if (base.get_data_handle() == nullptr) P.input_aliases.push_back(m);
        return m;
    }

    // Constants (initializers read by fp32 steps) are fp32 with scale 1.
    QType type_of(const std::string& v) const {
        auto it = model.plan.values.find(v);
        return it == model.plan.values.end() ? QType::F32 : it->second.type;
    }
    float scale_of(const std::string& v) const {
        auto it = model.plan.values.find(v);
        return it == model.plan.values.end() ? 1.0f : it->second.scale;
    }

    /// Attributes of every plan primitive: its scratchpad is the plan's (add_prim), not one that
    /// oneDNN may keep in the primitive object, which its primitive cache hands to every plan of the
    /// same shape, and plans of different image streams run at the same time.
    static dnnl::primitive_attr plan_attr() {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        return attr;
    }

    void add_prim(Plan& P, const std::string& what, const dnnl::primitive& prim, const char* impl,
                  std::unordered_map<int, memory> args) {
        const dnnl_memory_desc_t* scratch =
            dnnl_primitive_desc_query_md(prim.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
        if (scratch && dnnl_memory_desc_get_size(scratch) > 0) args[DNNL_ARG_SCRATCHPAD] = alloc(P, memory::desc(*scratch));
        Step s;
        s.what = what + " " + impl;
        s.has_prim = true;
        s.prim = prim;
        s.args = std::move(args);
        P.steps.push_back(std::move(s));
    }

    void add_reorder(Plan& P, const std::string& what, const memory& src, const memory& dst, float scale) {
        dnnl::primitive_attr attr = plan_attr();
        if (scale != 1.0f) attr.set_output_scales(0, {scale});
        dnnl::reorder::primitive_desc pd(eng, src.get_desc(), eng, dst.get_desc(), attr);
        add_prim(P, what + ": reorder", dnnl::reorder(pd), pd.impl_info_str(),
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    }

    /// The value `name` in layout and type `want` (converting once per plan, cached).
    memory get_as(Plan& P, const std::string& name, const memory::desc& want, QType want_type) {
        const memory& m = P.vals.at(name);
        if (same_physical(m.get_desc(), want)) return m.get_desc() == want ? m : alias(P, m, want);
        for (const auto& c : P.converted[name])
            if (c.get_desc() == want) return c;
        memory out = alloc(P, want);
        const QType have = static_cast<dt>(m.get_desc().data.data_type) == dt::f32 ? QType::F32 : type_of(name);
        add_reorder(P, "'" + name + "'", m, out, conversion_scale(have, scale_of(name), want_type, scale_of(name)));
        P.converted[name].push_back(out);
        return out;
    }

    /// Memory for a constant initializer (plain fp32, wrapping the graph's data).
    memory constant(Plan& P, const std::string& name) {
        auto it = P.vals.find(name);
        if (it != P.vals.end()) return it->second;
        const Tensor& t = graph.initializers.at(name);
        if (t.dtype != DType::f32) throw UnsupportedError("initializer '" + name + "' is not float");
        memory m(make_md(t.shape, dt::f32, false), eng, const_cast<float*>(t.data.data()));
        P.vals[name] = m;
        return m;
    }

    bool share_buffers = true;  ///< false for calibration, which reads every value after the run
    std::unique_ptr<Plan> compile(int64_t batch);
    void pack(Plan& P);
    void compile_layer(Plan& P, const QStep& s, const std::map<std::string, std::vector<int64_t>>& shapes);
    void compile_step(Plan& P, const QStep& s, const std::map<std::string, std::vector<int64_t>>& shapes);
    void compile_fallback(Plan& P, const QStep& s, const std::map<std::string, std::vector<int64_t>>& shapes);
    /// The step, layer and output of a host convolution: `run(x, y, batch)` computes it, `layer` takes
    /// each candidate's weights.
    void add_host_conv_step(Plan& P, const QStep& s, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys,
                            QType x_type, QType y_type, std::shared_ptr<HostLayer> layer, const std::string& kernel,
                            std::function<void(const void*, void*, int64_t)> run,
                            const std::vector<memory>& extra_inputs = {});
    void compile_host_conv(Plan& P, const QStep& s, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys,
                           const std::vector<int64_t>& ws, const Window& win, QType x_type, QType y_type);
    void compile_host_dw_conv(Plan& P, const QStep& s, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys,
                              const std::vector<int64_t>& ws, const Window& win, QType x_type, QType y_type);
    void compile_host_amx_conv(Plan& P, const QStep& s, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys,
                               QType x_type, QType y_type);
    void compile_host_conv_vnni(Plan& P, const QStep& s, const std::vector<int64_t>& xs,
                                const std::vector<int64_t>& ys, const std::vector<int64_t>& ws, const Window& win,
                                QType x_type, QType y_type);
    /// Host layers by layer (node) name, shared by every plan: per-image shapes, types and activation
    /// come from the step, so every plan makes the same one, and a candidate's weights are filled once.
    std::map<std::string, std::shared_ptr<HostLayer>> host_layers;
    template <class T>
    std::shared_ptr<T> shared_host(const QStep& s, std::shared_ptr<T> fresh) {
        auto& slot = host_layers[s.node->name];
        if (auto same = std::dynamic_pointer_cast<T>(slot)) return same;
        slot = fresh;
        return fresh;
    }
    void sync_weights(Plan& P);
    Prepared prepare(const QStep& step, Int8LayerWeights w);
    void load(const std::vector<Prepared>& layers);
    void refresh_layers();
    bool host_served(const std::string& layer) const;  ///< whether a plan runs the layer on a host kernel
    [[noreturn]] static void throw_codes_dropped(const std::string& layer, int64_t batch);
};

std::unique_ptr<Plan> DnnlExecutor::Impl::compile(int64_t batch) {
    auto P = std::make_unique<Plan>();
    P->batch = batch;
    P->strm = dnnl::stream(eng);
    const auto shapes = graph.infer_shapes(batch);
    const auto& in_name = graph.inputs.at(0).name;
    P->input = memory(make_md(shapes.at(in_name), dt::f32, false), eng, DNNL_MEMORY_NONE);
    P->vals[in_name] = P->input;
    for (const auto& s : model.plan.steps) {
        try {
            if (s.layer) compile_layer(*P, s, shapes);
            else compile_step(*P, s, shapes);
        } catch (const dnnl::error& e) {
            throw UnsupportedError(where_of(*s.node) + ": oneDNN cannot serve it: " + e.what());
        }
    }
    const auto& out = graph.outputs.at(0);
    P->output = get_as(*P, out, make_md(shapes.at(out), dt::f32, false), QType::F32);
    if (share_buffers) pack(*P);
    return P;
}

// Activations whose lifetimes do not overlap share memory: every buffer gets a slot (best fit among
// the slots free since before its first use), and every memory object pointing into it is moved.
void DnnlExecutor::Impl::pack(Plan& P) {
    const size_t nb = P.buffers.size(), ns = P.steps.size();
    auto owner = [&](const void* h) -> long {
        auto c = static_cast<const char*>(h);
        for (size_t b = 0; b < nb; ++b) {
            auto base = static_cast<const char*>(P.buffers[b].data.get());
            if (c >= base && c < base + std::max<size_t>(P.buffers[b].bytes, 1)) return static_cast<long>(b);
        }
        return -1;
    };
    // Every distinct memory object with its original handle.
    std::map<dnnl_memory_t, memory> objects;
    auto note = [&](const memory& m) {
        if (m && m.get_data_handle()) objects.emplace(m.get(), m);
    };
    std::vector<size_t> first(nb, ns + 1), last(nb, 0);
    for (size_t i = 0; i < ns; ++i) {
        std::vector<memory> ms = P.steps[i].uses;
        for (const auto& a : P.steps[i].args) ms.push_back(a.second);
        for (const auto& m : ms) {
            note(m);
            if (!m.get_data_handle()) continue;
            long b = owner(m.get_data_handle());
            if (b < 0) continue;
            first[b] = std::min(first[b], i);
            last[b] = std::max(last[b], i);
        }
    }
    for (const auto& kv : P.vals) note(kv.second);
    for (const auto& kv : P.converted)
        for (const auto& m : kv.second) note(m);
    note(P.output);
    if (P.output.get_data_handle()) {
        long b = owner(P.output.get_data_handle());
        if (b >= 0) last[b] = ns;  // read after the last step
    }
    std::vector<size_t> order;
    for (size_t b = 0; b < nb; ++b)
        if (!P.buffers[b].persistent && first[b] <= ns) order.push_back(b);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return first[a] < first[b]; });
    struct Slot {
        size_t bytes = 0, busy_until = 0;
        bool used = false;
    };
    std::vector<Slot> slots;
    std::vector<long> slot_of(nb, -1);
    for (size_t b : order) {
        long best = -1;
        for (size_t k = 0; k < slots.size(); ++k) {
            if (slots[k].used && slots[k].busy_until >= first[b]) continue;
            if (best < 0) best = static_cast<long>(k);
            const bool fits = slots[k].bytes >= P.buffers[b].bytes, best_fits = slots[best].bytes >= P.buffers[b].bytes;
            if ((fits && (!best_fits || slots[k].bytes < slots[best].bytes)) || (!fits && !best_fits && slots[k].bytes > slots[best].bytes))
                best = static_cast<long>(k);
        }
        if (best < 0) {
            slots.push_back({});
            best = static_cast<long>(slots.size() - 1);
        }
        Slot& sl = slots[best];
        sl.bytes = std::max(sl.bytes, P.buffers[b].bytes);
        sl.busy_until = last[b];
        sl.used = true;
        slot_of[b] = best;
    }
    std::vector<std::shared_ptr<void>> slot_data;
    for (const auto& sl : slots) slot_data.push_back(aligned_buffer(sl.bytes));
    // Move every memory object, computing offsets from the original handles before any change.
    std::vector<std::pair<memory, char*>> moves;
    for (auto& kv : objects) {
        const void* h = kv.second.get_data_handle();
        long b = owner(h);
        if (b < 0 || slot_of[b] < 0) continue;
        const size_t off = static_cast<const char*>(h) - static_cast<const char*>(P.buffers[b].data.get());
        moves.emplace_back(kv.second, static_cast<char*>(slot_data[slot_of[b]].get()) + off);
    }
    for (auto& mv : moves) mv.first.set_data_handle(mv.second);
    std::vector<Plan::Buffer> kept;
    for (size_t b = 0; b < nb; ++b)
        if (slot_of[b] < 0) kept.push_back(P.buffers[b]);
    for (size_t k = 0; k < slots.size(); ++k) kept.push_back({slot_data[k], slots[k].bytes, false});
    P.buffers = std::move(kept);
}

void DnnlExecutor::Impl::compile_layer(Plan& P, const QStep& s,
                                       const std::map<std::string, std::vector<int64_t>>& shapes) {
    const Node& n = *s.node;
    const LayerInfo& li = model.layer_info.at(n.name);
    const bool q = s.int8;
    const QValue& xv = model.plan.values.at(s.input);
    const QType x_type = q ? (is8(xv.type) ? xv.type : xv.qtype) : QType::F32;
    const QType y_type = type_of(s.output);
    const float sy = is8(y_type) ? scale_of(s.output) : 1.0f;
    const auto& xs = shapes.at(s.input);
    const auto& ys = shapes.at(s.output);
    const auto& ws = li.weight_shape;
    const int64_t ch = ws[li.out_axis];
    const dt w_dt = q ? dt::s8 : dt::f32;

    if (q && n.op == OpKind::Conv && s.sum_input.empty() && xs.size() == 4 && xs[1] == 1 &&
        ch <= kHostConvMaxChannels && ws[2] * ws[3] <= 256 && host_conv_available()) {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        ConvAttrs aa = a;
        aa.kernel.assign(ws.begin() + 2, ws.end());
        Window win = conv_window(aa, std::vector<int64_t>(xs.begin() + 2, xs.end()), where_of(n));
        bool unit = a.group == 1;
        for (size_t i = 0; i < 2; ++i) unit = unit && win.strides[i] == 1 && win.dilations[i] == 1;
        // 9-16 outputs: the VNNI convolution below is faster where it serves (resnet_bn's 1 -> 16 3x3
        // conv: whole model 74k -> 88k images/s on one thread, 137k -> 156-164k on two).
        const bool vnni_serves = is8(x_type) && ws[3] <= kVnniMaxRowBytes && ws[2] * ws[3] <= 4096 &&
                                 host_conv_vnni_available();
        if (unit && (ch <= kHostConvBlock || !vnni_serves)) return compile_host_conv(P, s, xs, ys, ws, win, x_type, y_type);
    }
    if (q && n.op == OpKind::Conv && s.sum_input.empty() && xs.size() == 4 && is8(x_type) && ws[1] == 1 &&
        ws[0] == xs[1] && ws[3] <= kDwMaxKernelWidth && (xs[1] <= kDwMaxChannels || ws[3] >= kDwWideKernel) &&
        host_dw_conv_available()) {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        ConvAttrs aa = a;
        aa.kernel.assign(ws.begin() + 2, ws.end());
        Window win = conv_window(aa, std::vector<int64_t>(xs.begin() + 2, xs.end()), where_of(n));
        if (a.group == xs[1] && win.dilations[0] == 1 && win.dilations[1] == 1)
            return compile_host_dw_conv(P, s, xs, ys, ws, win, x_type, y_type);
    }
    if (q && n.op == OpKind::Conv && xs.size() == 4 && is8(x_type) && ws[2] == 1 && ws[3] == 1 &&
        xs[1] <= 4096 /* int32 sums */ && host_amx_conv_available()) {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        ConvAttrs aa = a;
        aa.kernel.assign(ws.begin() + 2, ws.end());
        Window win = conv_window(aa, std::vector<int64_t>(xs.begin() + 2, xs.end()), where_of(n));
        bool plain = a.group == 1;
        for (size_t i = 0; i < 2; ++i) plain = plain && win.strides[i] == 1 && win.pad_begin[i] == 0 && win.pad_end[i] == 0;
        if (plain) return compile_host_amx_conv(P, s, xs, ys, x_type, y_type);
    }
    if (q && n.op == OpKind::Conv && s.sum_input.empty() && xs.size() == 4 && is8(x_type) &&
        ws[3] * xs[1] <= kVnniMaxRowBytes &&
        (xs[1] <= kVnniFewChannels || ys[2] * ys[3] <= kVnniSmallImage ||
         (ws[2] * ws[3] == 1 && xs[1] <= kVnniPointwiseChannels)) &&
        ws[2] * ws[3] * xs[1] <= 4096 /* int32 sums: 4096 * 255 * 128 < 2^31 */ && host_conv_vnni_available()) {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        ConvAttrs aa = a;
        aa.kernel.assign(ws.begin() + 2, ws.end());
        Window win = conv_window(aa, std::vector<int64_t>(xs.begin() + 2, xs.end()), where_of(n));
        if (a.group == 1 && win.dilations[0] == 1 && win.dilations[1] == 1)
            return compile_host_conv_vnni(P, s, xs, ys, ws, win, x_type, y_type);
    }

    dnnl::primitive_attr attr = plan_attr();
    dnnl::post_ops po;
    // Per-channel output scales change with every candidate. oneDNN 2.6 convolutions do not take
    // runtime output scales (DNNL_RUNTIME_F32_VAL), so the scales are a binary-multiply post-op with a
    // per-channel tensor: the same arithmetic, (acc + bias) * scale[c], with data set at run time.
    const int64_t out_rank = n.op == OpKind::Conv ? static_cast<int64_t>(ys.size()) : 2;
    std::vector<int64_t> scale_dims(out_rank, 1);
    scale_dims[1] = ch;
    const memory::desc scale_md = make_md(scale_dims, dt::f32, false);
    if (q) po.append_binary(dnnl::algorithm::binary_mul, scale_md);
    memory residual;
    if (!s.sum_input.empty()) {
        const QType rt = type_of(s.sum_input);
        residual = get_as(P, s.sum_input, make_md(ys, to_dt(rt), n.op == OpKind::Conv), rt);
        const float sum_scale = q && is8(rt) ? scale_of(s.sum_input) / sy : 1.0f;
        if (rt != y_type) po.append_sum(sum_scale, to_dt(rt));
        else po.append_sum(sum_scale);
    }
    if (s.act == QAct::Relu) {
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    } else if (s.act == QAct::Clip) {
        float lo, hi;
        act_bounds(s, sy, &lo, &hi);
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, lo, hi);
    }
    attr.set_post_ops(po);

    memory::desc x_md, w_user_md, y_md, perm_src_md, perm_dst_md;
    memory::dims w_dims;
    memory::desc b_md({ch}, dt::f32, memory::format_tag::a);
    memory x_mem;
    dnnl::primitive prim;
    memory::desc w_md;
    std::string impl;
    if (n.op == OpKind::Conv) {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        ConvAttrs aa = a;
        aa.kernel.assign(ws.begin() + 2, ws.end());
        Window win = conv_window(aa, std::vector<int64_t>(xs.begin() + 2, xs.end()), where_of(n));
        x_md = make_md(xs, to_dt(x_type), true);
        x_mem = get_as(P, s.input, x_md, x_type);
        y_md = make_md(ys, to_dt(y_type), true);
        if (a.group > 1) {
            w_dims = {a.group, ws[0] / a.group};
            w_dims.insert(w_dims.end(), ws.begin() + 1, ws.end());
        } else {
            w_dims = dims_of(ws);
        }
        w_user_md = make_md(std::vector<int64_t>(w_dims.begin(), w_dims.end()), w_dt, false);
        memory::desc w_any(w_dims, w_dt, memory::format_tag::any);
        dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                          x_md, w_any, b_md, y_md, dims_of(win.strides), minus_one(win.dilations),
                                          dims_of(win.pad_begin), dims_of(win.pad_end));
        dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
        w_md = pd.weights_desc();
        impl = pd.impl_info_str();
        prim = dnnl::convolution_forward(pd);
    } else {
        // A 2-D inner product over [rows, K]. A folded Flatten's source is read in its own layout: when
        // that is channels-last, the columns are (spatial, channel) ordered, and the weight's columns are
        // permuted to match (one extra reorder per candidate) so the fast 2-D kernels serve it.
        const int64_t k = ws[1 - li.out_axis];
        const bool folded = s.input != n.inputs[0];
        const dt xdt = to_dt(x_type);
        const std::vector<int64_t> xs2{Tensor::numel_of(xs) / k, k};
        x_md = make_md(xs2, xdt, false);
        bool permuted = false;
        if (folded) {
            const memory::desc pl = make_md(xs, xdt, false), cl = make_md(xs, xdt, true);
            const memory::desc cur = retype(P.vals.at(s.input).get_desc(), xdt);
            const bool use_cl = !same_physical(cur, pl) && same_physical(cur, cl);
            memory base = get_as(P, s.input, use_cl ? cl : pl, x_type);
            permuted = use_cl && !same_physical(cl, pl);
            x_mem = alias(P, base, x_md);
        } else {
            memory plain = get_as(P, s.input, make_md(xs, xdt, false), x_type);
            x_mem = xs.size() == 2 ? plain : alias(P, plain, x_md);
        }
        w_dims = {ch, k};
        if (permuted) {
            const int64_t c = xs[1], sp = k / c;
            // Stored element (o, c, s) of [OC, C*S] (or of [C*S, OC]) as a [OC, S, C] view.
            const memory::dims st = li.out_axis == 0 ? memory::dims{k, 1, sp} : memory::dims{1, ch, sp * ch};
            perm_src_md = memory::desc({ch, sp, c}, w_dt, st);
            perm_dst_md = make_md({ch, sp, c}, w_dt, false);
            w_user_md = make_md({ch, k}, w_dt, false);
        } else if (li.out_axis == 0) {
            w_user_md = make_md({ch, k}, w_dt, false);
        } else {
            w_user_md = memory::desc(w_dims, w_dt, memory::dims{1, ch});  // stored [K, N]
        }
        const int64_t rows = Tensor::numel_of(ys) / ch;
        y_md = make_md({rows, ch}, to_dt(y_type), false);
        memory::desc w_any(w_dims, w_dt, memory::format_tag::any);
        dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, x_md, w_any, b_md, y_md);
        dnnl::inner_product_forward::primitive_desc pd(d, attr, eng);
        w_md = pd.weights_desc();
        impl = pd.impl_info_str();
        prim = dnnl::inner_product_forward(pd);
    }
    memory y_mem = alloc(P, y_md);
    if (residual) {
        // The sum post-op reads the residual from the destination buffer (as its own type).
        memory view(residual.get_desc(), eng, y_mem.get_data_handle());
        if (residual.get_desc().get_size() != y_md.get_size())
            throw UnsupportedError(where_of(n) + ": residual and output sizes differ");
        add_reorder(P, "'" + s.sum_input + "' -> sum", residual, view, 1.0f);
    }
    LayerMem lm;
    lm.name = n.name;
    for (const auto& e : weight_cache)
        if (std::get<0>(e) == n.name && std::get<1>(e) == w_md) lm.weights = std::get<2>(e);
    if (!lm.weights) {
        auto W = std::make_shared<Weights>();
        auto own = [&](const memory::desc& md) {
            W->buffers.push_back(aligned_buffer(md.get_size()));
            return memory(md, eng, W->buffers.back().get());
        };
        W->w = own(w_md);
        W->w_own = W->w.get_data_handle();
        if (perm_src_md) {
            W->perm_src = memory(perm_src_md, eng, DNNL_MEMORY_NONE);
            W->perm_dst = own(perm_dst_md);
            W->perm = dnnl::reorder(dnnl::reorder::primitive_desc(eng, perm_src_md, eng, perm_dst_md));
            W->user_w = memory(w_user_md, eng, W->perm_dst.get_data_handle());
        } else {
            W->user_w = memory(w_user_md, eng, DNNL_MEMORY_NONE);
        }
        W->w_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(eng, w_user_md, eng, w_md));
        if (!q) {
            // Gemm's alpha scales the weight (fp32 inner products take no output scales).
            std::vector<float> wt = graph.initializers.at(li.weight).data;
            const float alpha = n.op == OpKind::Gemm ? std::get<GemmAttrs>(n.attrs).alpha : 1.0f;
            if (alpha != 1.0f)
                for (float& v : wt) v *= alpha;
            W->fill(strm, wt.data());
        }
        weight_cache.emplace_back(n.name, w_md, W);
        lm.weights = W;
    }
    P.weight_reorders.push_back(n.name + ": weights: reorder " +
                                dnnl::reorder::primitive_desc(eng, w_user_md, eng, w_md).impl_info_str());
    if (q) {
        lm.scales = memory(scale_md, eng, DNNL_MEMORY_NONE);
        lm.bias = memory(b_md, eng, DNNL_MEMORY_NONE);
    } else {
        lm.bias = alloc(P, b_md, true);
        auto b = layer_bias(graph, n, ch);
        std::memcpy(lm.bias.get_data_handle(), b.data(), b.size() * 4);
    }
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, lm.weights->w}, {DNNL_ARG_BIAS, lm.bias},
                                         {DNNL_ARG_DST, y_mem}};
    if (q) args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] = lm.scales;
    add_prim(P, n.name + (n.op == OpKind::Conv ? ": convolution" : ": inner_product"), prim, impl.c_str(), args);
    P.layers.push_back(lm);
    if (n.op != OpKind::Conv && ys.size() != 2) P.vals[s.output] = alias(P, y_mem, make_md(ys, to_dt(y_type), false));
    else P.vals[s.output] = y_mem;
}

/// The window of a 2-D host convolution (HostConvVnni, HostDwConv): kernel, strides, leading pads,
/// input and output sizes.
template <class H>
void set_conv_geometry(H& hc, const std::vector<int64_t>& xs, const std::vector<int64_t>& ys,
                       const std::vector<int64_t>& ws, const Window& win) {
    hc.kh = ws[2];
    hc.kw = ws[3];
    hc.sh = win.strides[0];
    hc.sw = win.strides[1];
    hc.ph = win.pad_begin[0];
    hc.pw = win.pad_begin[1];
    hc.ih = xs[2];
    hc.iw = xs[3];
    hc.oh = ys[2];
    hc.ow = ys[3];
}

void DnnlExecutor::Impl::add_host_conv_step(Plan& P, const QStep& s, const std::vector<int64_t>& xs,
                                            const std::vector<int64_t>& ys, QType x_type, QType y_type,
                                            std::shared_ptr<HostLayer> layer, const std::string& kernel,
                                            std::function<void(const void*, void*, int64_t)> run,
                                            const std::vector<memory>& extra_inputs) {
    const Node& n = *s.node;
    memory x = get_as(P, s.input, make_md(xs, to_dt(x_type), true), x_type);
    memory y = alloc(P, make_md(ys, to_dt(y_type), true));
    Step st;
    st.what = n.name + ": convolution " + kernel + " (" + qtype_name(x_type) + " -> " + qtype_name(y_type) + ")";
    st.uses = {x, y};
    st.uses.insert(st.uses.end(), extra_inputs.begin(), extra_inputs.end());
    const int64_t nb = xs[0];
    dnnl::stream* sp = &P.strm;
    st.host = [run, x, y, nb, sp]() {
        sp->wait();
        run(x.get_data_handle(), y.get_data_handle(), nb);
    };
    P.steps.push_back(std::move(st));
    LayerMem lm;
    lm.name = n.name;
    lm.host = std::move(layer);
    P.layers.push_back(lm);
    P.weight_reorders.push_back(n.name + ": weights: host copy");
    P.vals[s.output] = y;
}

void DnnlExecutor::Impl::compile_host_conv(Plan& P, const QStep& s, const std::vector<int64_t>& xs,
                                           const std::vector<int64_t>& ys, const std::vector<int64_t>& ws,
                                           const Window& win, QType x_type, QType y_type) {
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
    hc->xt = x_type;
    hc->yt = y_type;
    hc->act = s.act;
    hc->vnni = hc->ocp <= kHostConvBlock && host_conv_vnni_available() && __builtin_cpu_supports("avx512vbmi");
    hc->g4 = (hc->kw + 3) / 4;
    hc->transpose_layout();
    hc = shared_host(s, hc);
    add_host_conv_step(P, s, xs, ys, x_type, y_type, hc, std::string("host:conv_ic1_avx512") + (hc->vnni ? "_vnni" : ""),
                       [hc](const void* x, void* y, int64_t nb) { host_conv(*hc, x, y, nb); });
}

void DnnlExecutor::Impl::compile_host_conv_vnni(Plan& P, const QStep& s, const std::vector<int64_t>& xs,
                                                const std::vector<int64_t>& ys, const std::vector<int64_t>& ws,
                                                const Window& win, QType x_type, QType y_type) {
    auto hc = std::make_shared<HostConvVnni>();
    hc->ic = xs[1];
    hc->oc = ws[0];
    hc->nblk = (hc->oc + 15) / 16;
    set_conv_geometry(*hc, xs, ys, ws, win);
    hc->g = (hc->kw * hc->ic + 3) / 4;
    hc->rb = std::max(hc->iw + hc->pw, (hc->ow - 1) * hc->sw + hc->kw) * hc->ic;
    hc->bh = std::max(hc->ih + hc->ph, (hc->oh - 1) * hc->sh + hc->kh);
    for (int64_t i = 0; i < hc->kh; ++i)
        for (int64_t k = 0; k < hc->g; ++k) hc->toff.push_back(static_cast<int32_t>(i * hc->rb + 4 * k));
    hc->xt = x_type;
    hc->yt = y_type;
    hc->act = s.act;
    hc = shared_host(s, hc);
    add_host_conv_step(P, s, xs, ys, x_type, y_type, hc, "host:conv_vnni_avx512",
                       [hc](const void* x, void* y, int64_t nb) { host_conv_vnni(*hc, x, y, nb); });
}

void DnnlExecutor::Impl::compile_host_amx_conv(Plan& P, const QStep& s, const std::vector<int64_t>& xs,
                                               const std::vector<int64_t>& ys, QType x_type, QType y_type) {
    auto hc = std::make_shared<HostAmx1x1>();
    hc->ic = xs[1];
    hc->oc = ys[1];
    hc->nblk = (hc->oc + 15) / 16;
    hc->kc = (hc->ic + 63) / 64;
    hc->pix = xs[2] * xs[3];
    hc->xt = x_type;
    hc->yt = y_type;
    hc->act = s.act;
    memory residual;  // read in place: no copy into the output first
    if (!s.sum_input.empty()) {
        hc->sum = true;
        hc->rt = type_of(s.sum_input);
        residual = get_as(P, s.sum_input, make_md(ys, to_dt(hc->rt), true), hc->rt);
    }
    hc = shared_host(s, hc);
    add_host_conv_step(P, s, xs, ys, x_type, y_type, hc, std::string("host:conv1x1_amx") + (hc->sum ? " + sum" : ""),
                       [hc, residual](const void* x, void* y, int64_t nb) {
                           host_amx_conv(*hc, x, y, nb, residual ? residual.get_data_handle() : nullptr);
                       },
                       residual ? std::vector<memory>{residual} : std::vector<memory>{});
}

void DnnlExecutor::Impl::compile_host_dw_conv(Plan& P, const QStep& s, const std::vector<int64_t>& xs,
                                              const std::vector<int64_t>& ys, const std::vector<int64_t>& ws,
                                              const Window& win, QType x_type, QType y_type) {
    auto hc = std::make_shared<HostDwConv>();
    hc->c = xs[1];
    hc->nblk = (hc->c + 15) / 16;
    set_conv_geometry(*hc, xs, ys, ws, win);
    hc->g = (hc->kw + 3) / 4;
    hc->cs = (4 - hc->pw % 4) % 4;
    hc->bw = (hc->cs + std::max(hc->iw + hc->pw, (hc->ow - 1) * hc->sw + hc->kw) + 3) / 4 * 4;
    hc->bh = std::max(hc->ih + hc->ph, (hc->oh - 1) * hc->sh + hc->kh);
    hc->layout();
    hc->xt = x_type;
    hc->yt = y_type;
    hc->act = s.act;
    hc = shared_host(s, hc);
    add_host_conv_step(P, s, xs, ys, x_type, y_type, hc, "host:conv_dw_avx512",
                       [hc](const void* x, void* y, int64_t nb) { host_dw_conv(*hc, x, y, nb); });
}

void DnnlExecutor::Impl::compile_fallback(Plan& P, const QStep& s,
                                          const std::map<std::string, std::vector<int64_t>>& shapes) {
    const Node& n = *s.node;
    fallback_graphs.push_back(std::make_unique<Graph>(single_node_graph(graph, n)));
    const Graph* mini = fallback_graphs.back().get();
    auto ex = std::make_shared<ReferenceExecutor>(*mini);
    std::vector<memory> ins;
    std::vector<std::vector<int64_t>> in_shapes;
    for (const auto& gi : mini->inputs) {
        ins.push_back(get_as(P, gi.name, make_md(shapes.at(gi.name), dt::f32, false), QType::F32));
        in_shapes.push_back(shapes.at(gi.name));
    }
    const auto& ys = shapes.at(s.output);
    memory y = alloc(P, make_md(ys, dt::f32, false));
    Step st;
    st.what = n.name + ": host fallback (reference " + op_name(n.op) + ")";
    st.uses = ins;
    st.uses.push_back(y);
    dnnl::stream* sp = &P.strm;
    st.host = [ex, ins, in_shapes, y, ys, sp]() {
        sp->wait();
        std::vector<Tensor> ts;
        for (size_t i = 0; i < ins.size(); ++i) {
            const float* p = static_cast<const float*>(ins[i].get_data_handle());
            ts.emplace_back(in_shapes[i], std::vector<float>(p, p + Tensor::numel_of(in_shapes[i])));
        }
        auto out = ex->run(ts);
        std::memcpy(y.get_data_handle(), out.at(0).data.data(), out[0].data.size() * sizeof(float));
    };
    P.steps.push_back(std::move(st));
    P.vals[s.output] = y;
}

void DnnlExecutor::Impl::compile_step(Plan& P, const QStep& s,
                                      const std::map<std::string, std::vector<int64_t>>& shapes) {
    const Node& n = *s.node;
    const std::string where = where_of(n);
    const QType y_type = type_of(s.output);
    const auto& ys = shapes.at(s.output);
    // Inputs of fp32 steps are read as fp32; int8 steps keep their inputs' types.
    auto in_type = [&](const std::string& v) { return s.int8 ? type_of(v) : QType::F32; };
    switch (n.op) {
        case OpKind::MaxPool:
        case OpKind::AveragePool:
        case OpKind::GlobalAveragePool: {
            const auto& xs = shapes.at(n.inputs[0]);
            PoolAttrs a;
            if (n.op == OpKind::GlobalAveragePool) {
                a.kernel.assign(xs.begin() + 2, xs.end());
                a.strides.assign(a.kernel.size(), 1);
                a.dilations.assign(a.kernel.size(), 1);
                a.pads.assign(2 * a.kernel.size(), 0);
            } else {
                a = std::get<PoolAttrs>(n.attrs);
            }
            Window win = pool_window(a, std::vector<int64_t>(xs.begin() + 2, xs.end()), where);
            if (n.op == OpKind::AveragePool && a.count_include_pad) {
                for (size_t i = 0; i < win.kernel.size(); ++i) {
                    const int64_t eff = (win.kernel[i] - 1) * win.dilations[i] + 1;
                    if ((win.out[i] - 1) * win.strides[i] + eff > win.in[i] + win.pad_begin[i] + win.pad_end[i])
                        return compile_fallback(P, s, shapes);
                }
            }
            const QType t = in_type(n.inputs[0]);
            memory x = get_as(P, n.inputs[0], make_md(xs, to_dt(t), true), t);
            memory::desc y_md = make_md(ys, to_dt(t), true);
            if (is8(t) && xs.size() == 4 && host_kernels_enabled()) {
                memory y = alloc(P, y_md);
                Step st;
                const bool is_max = n.op == OpKind::MaxPool;
                const bool include_pad = n.op == OpKind::AveragePool && a.count_include_pad;
                st.what = n.name + ": pooling host:" + (is_max ? "max" : "avg") + "_nhwc_" +
                          (t == QType::U8 ? "u8" : "s8") + " (" + std::to_string(xs[1]) + " channels)";
                st.uses = {x, y};
                dnnl::stream* sp = &P.strm;
                st.host = [x, y, xs, ys, win, t, sp, is_max, include_pad]() {
                    sp->wait();
                    const void* xp = x.get_data_handle();
                    void* yp = y.get_data_handle();
                    if (t == QType::U8) {
                        if (is_max) max_pool_nhwc(static_cast<const uint8_t*>(xp), static_cast<uint8_t*>(yp), xs, ys, win);
                        else avg_pool_nhwc(static_cast<const uint8_t*>(xp), static_cast<uint8_t*>(yp), xs, ys, win, include_pad);
                    } else {
                        if (is_max) max_pool_nhwc(static_cast<const int8_t*>(xp), static_cast<int8_t*>(yp), xs, ys, win);
                        else avg_pool_nhwc(static_cast<const int8_t*>(xp), static_cast<int8_t*>(yp), xs, ys, win, include_pad);
                    }
                };
                P.steps.push_back(std::move(st));
                P.vals[s.output] = y;
                return;
            }
            auto alg = n.op == OpKind::MaxPool ? dnnl::algorithm::pooling_max
                       : a.count_include_pad   ? dnnl::algorithm::pooling_avg_include_padding
                                               : dnnl::algorithm::pooling_avg_exclude_padding;
            dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, x.get_desc(), y_md,
                                             dims_of(win.strides), dims_of(win.kernel), minus_one(win.dilations),
                                             dims_of(win.pad_begin), pad_right(win));
            dnnl::pooling_v2_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, y_md);
            add_prim(P, n.name + ": pooling", dnnl::pooling_v2_forward(pd), pd.impl_info_str(),
                     {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Relu:
        case OpKind::Clip: {
            const QType t = in_type(n.inputs[0]);
            const memory& base = P.vals.at(n.inputs[0]);
            memory x = get_as(P, n.inputs[0],
                              retype(base.get_desc(), to_dt(t)), t);
            float lo = 0.0f, hi = 0.0f;
            auto alg = dnnl::algorithm::eltwise_relu;
            if (n.op == OpKind::Clip) {
                const auto& c = std::get<ClipAttrs>(n.attrs);
                clip_bounds_in_units(c.min, c.max, is8(t) ? scale_of(n.inputs[0]) : 1.0f, &lo, &hi);
                alg = dnnl::algorithm::eltwise_clip;
            }
            dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, x.get_desc(), lo, hi);
            dnnl::eltwise_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, x.get_desc());
            add_prim(P, n.name + ": eltwise", dnnl::eltwise_forward(pd), pd.impl_info_str(),
                     {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Flatten:
        case OpKind::Reshape: {
            const QType t = in_type(n.inputs[0]);
            memory x = get_as(P, n.inputs[0], make_md(shapes.at(n.inputs[0]), to_dt(t), false), t);
            P.vals[s.output] = alias(P, x, make_md(ys, to_dt(t), false));
            return;
        }
        case OpKind::Pad: {
            // A reorder into the interior of a buffer whose border was filled once at compile time.
            const auto& pa = std::get<PadAttrs>(n.attrs);
            bool crop = false;
            for (int64_t v : pa.pads) crop = crop || v < 0;
            if (crop) return compile_fallback(P, s, shapes);
            const auto& xs = shapes.at(n.inputs[0]);
            const QType t = in_type(n.inputs[0]);
            const memory::desc cur = P.vals.at(n.inputs[0]).get_desc();
            const bool cl = xs.size() >= 3 && same_physical(retype(cur, to_dt(t)), make_md(xs, to_dt(t), true));
            memory x = get_as(P, n.inputs[0], make_md(xs, to_dt(t), cl), t);
            if (std::all_of(pa.pads.begin(), pa.pads.end(), [](int64_t v) { return v == 0; })) {
                P.vals[s.output] = x;  // no padding (PyTorch's avg_pool2d exports one): the input itself
                return;
            }
            memory::desc y_md = make_md(ys, to_dt(t), cl);
            memory y = alloc(P, y_md, true);
            if (!is8(t)) {
                float* p = static_cast<float*>(y.get_data_handle());
                std::fill(p, p + Tensor::numel_of(ys), pa.value);
            }
            memory::dims off(pa.pads.begin(), pa.pads.begin() + static_cast<long>(xs.size()));
            memory view(y_md.submemory_desc(dims_of(xs), off), eng, y.get_data_handle());
            add_reorder(P, n.name + ": pad", x, view, 1.0f);
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Concat: {
            int64_t axis = std::get<AxisAttrs>(n.attrs).axis;
            if (axis < 0) axis += static_cast<int64_t>(ys.size());
            memory::desc y_md = make_md(ys, to_dt(y_type), true);
            memory y = alloc(P, y_md);
            memory::dims off(ys.size(), 0);
            for (const auto& in : n.inputs) {
                memory x = graph.initializers.count(in) ? constant(P, in) : P.vals.at(in);
                const auto& xs = shapes.at(in);
                memory::desc sub = y_md.submemory_desc(dims_of(xs), off);
                memory view(sub, eng, y.get_data_handle());
                const QType have = x.get_desc().data_type() == dt::f32 ? QType::F32 : type_of(in);
                add_reorder(P, n.name + ": concat '" + in + "'", x, view,
                            conversion_scale(have, scale_of(in), y_type, scale_of(s.output)));
                off[axis] += xs[axis];
            }
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Add: {
            const std::string &a = n.inputs[0], &b = n.inputs[1];
            if (s.int8) {
                const memory& ma = P.vals.at(a);
                memory::desc a_md = ma.get_desc();
                memory::desc b_md = retype(a_md, to_dt(type_of(b)));
                memory mb = get_as(P, b, b_md, type_of(b));
                memory::desc y_md = retype(a_md, to_dt(y_type));
                dnnl::primitive_attr attr = plan_attr();
                const float sy = scale_of(s.output);
                attr.set_scales(DNNL_ARG_SRC_0, 0, {scale_of(a) / sy});
                attr.set_scales(DNNL_ARG_SRC_1, 0, {scale_of(b) / sy});
                dnnl::binary::desc d(dnnl::algorithm::binary_add, a_md, b_md, y_md);
                dnnl::binary::primitive_desc pd(d, attr, eng);
                memory y = alloc(P, y_md);
                add_prim(P, n.name + ": binary", dnnl::binary(pd), pd.impl_info_str(),
                         {{DNNL_ARG_SRC_0, ma}, {DNNL_ARG_SRC_1, mb}, {DNNL_ARG_DST, y}});
                P.vals[s.output] = y;
                return;
            }
            // fp32, numpy broadcasting: src0 must have the output's dims.
            std::vector<int64_t> as = shapes.at(a), bs = shapes.at(b);
            std::string s0 = a, s1 = b;
            if (as != ys) {
                std::swap(s0, s1);
                std::swap(as, bs);
            }
            if (as != ys) return compile_fallback(P, s, shapes);
            while (bs.size() < ys.size()) bs.insert(bs.begin(), 1);
            memory m0 = graph.initializers.count(s0) ? constant(P, s0) : P.vals.at(s0);
            if (graph.initializers.count(s0) == 0 && is8(type_of(s0)))
                m0 = get_as(P, s0, make_md(ys, dt::f32, false), QType::F32);
            memory m1;
            if (graph.initializers.count(s1)) {
                memory c = constant(P, s1);
                m1 = memory(make_md(bs, dt::f32, false), eng, c.get_data_handle());
            } else {
                const bool same = bs == ys;
                memory::desc want = same ? retype(m0.get_desc(), dt::f32)
                                         : make_md(shapes.at(s1), dt::f32, false);
                m1 = get_as(P, s1, want, QType::F32);
                if (!same) m1 = alias(P, m1, make_md(bs, dt::f32, false));
            }
            memory::desc y_md = retype(m0.get_desc(), dt::f32);
            dnnl::binary::desc d(dnnl::algorithm::binary_add, m0.get_desc(), m1.get_desc(), y_md);
            dnnl::binary::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, y_md);
            add_prim(P, n.name + ": binary", dnnl::binary(pd), pd.impl_info_str(),
                     {{DNNL_ARG_SRC_0, m0}, {DNNL_ARG_SRC_1, m1}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Softmax: {
            const auto& a = std::get<AxisAttrs>(n.attrs);
            const auto& xs = shapes.at(n.inputs[0]);
            const int64_t r = static_cast<int64_t>(xs.size());
            const int64_t axis = a.axis < 0 ? a.axis + r : a.axis;
            memory x = get_as(P, n.inputs[0], make_md(xs, dt::f32, false), QType::F32);
            memory::desc md = x.get_desc();
            int sm_axis = static_cast<int>(axis);
            if (a.legacy_softmax) {
                int64_t outer = 1, len = 1;
                for (int64_t d = 0; d < r; ++d) (d < axis ? outer : len) *= xs[d];
                md = make_md({outer, len}, dt::f32, false);
                x = alias(P, x, md);
                sm_axis = 1;
            }
            dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, md, sm_axis);
            dnnl::softmax_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, md);
            add_prim(P, n.name + ": softmax", dnnl::softmax_forward(pd), pd.impl_info_str(),
                     {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = md == make_md(ys, dt::f32, false) ? y : alias(P, y, make_md(ys, dt::f32, false));
            return;
        }
        case OpKind::BatchNorm: {
            const auto& xs = shapes.at(n.inputs[0]);
            const bool cl = xs.size() >= 3;
            memory x = get_as(P, n.inputs[0], make_md(xs, dt::f32, cl), QType::F32);
            const int64_t c = xs[1];
            const float eps = std::get<BatchNormAttrs>(n.attrs).epsilon;
            memory::desc v_md({c}, dt::f32, memory::format_tag::a);
            std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x}};
            const int arg_ids[4] = {DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
            for (int i = 0; i < 4; ++i) {
                const std::string& pn = n.inputs.at(1 + i);
                if (!graph.initializers.count(pn)) return compile_fallback(P, s, shapes);
                memory m = constant(P, pn);
                args[arg_ids[i]] = memory(v_md, eng, m.get_data_handle());
            }
            dnnl::batch_normalization_forward::desc d(
                dnnl::prop_kind::forward_inference, x.get_desc(), eps,
                dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                    dnnl::normalization_flags::use_shift);
            dnnl::batch_normalization_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, x.get_desc());
            args[DNNL_ARG_DST] = y;
            add_prim(P, n.name + ": batch_normalization", dnnl::batch_normalization_forward(pd), pd.impl_info_str(), args);
            P.vals[s.output] = y;
            return;
        }
        default: return compile_fallback(P, s, shapes);
    }
}

void DnnlExecutor::Impl::sync_weights(Plan& P) {
    for (auto& lm : P.layers) {
        const Prepared& pl = loaded.at(lm.name);
        if (lm.loaded == pl) continue;
        lm.loaded = pl;
        const QLayer& q = pl->q;
        if (lm.host) {
            if (lm.host->loaded == pl) continue;  // another plan filled it already
            if (pl->codes_dropped) throw_codes_dropped(pl->name, P.batch);
            lm.host->fill(q);
            lm.host->loaded = pl;
            continue;
        }
        lm.scales.set_data_handle(const_cast<float*>(q.out_scale.data()));
        lm.bias.set_data_handle(const_cast<float*>(q.bias.data()));
        Weights& W = *lm.weights;
        if (W.loaded == pl) continue;  // another plan sharing the layout swapped it already
        W.loaded = pl;
        const void* ready = nullptr;
        for (const auto& [layout, buf] : pl->layouts)
            if (layout == &W) ready = buf.get();
        if (ready) {
            W.w.set_data_handle(const_cast<void*>(ready));
        } else {  // a layout made after the layer was prepared
            if (pl->codes_dropped) throw_codes_dropped(pl->name, P.batch);
            W.fill(strm, q.codes.data());
        }
    }
    P.weights_version = model.version;
}

DnnlExecutor::Prepared DnnlExecutor::Impl::prepare(const QStep& st, Int8LayerWeights w) {
    const std::string& name = st.node->name;
    const LayerInfo& li = model.layer_info.at(name);
    auto pl = std::make_shared<PreparedLayer>();
    pl->name = name;
    pl->generation = generation;
    if (bias_correction) {
        const auto shift = bias_shift(graph, *st.node, li, w, input_means.at(name));
        pl->q = make_qlayer(graph, model.plan, st, li, std::move(w), &shift);
    } else {
        pl->q = make_qlayer(graph, model.plan, st, li, std::move(w));
    }
    const QLayer& q = pl->q;
    pl->bytes = sizeof(PreparedLayer) + name.size() + q.codes.size() + 4 * (q.out_scale.size() + q.bias.size());
    for (const auto& [layer, md, W] : weight_cache) {
        if (layer != name) continue;
        std::shared_ptr<void> buf = weight_buffer(md.get_size());
        W->reorder_into(strm, q.codes.data(), memory(md, eng, buf.get()));
        pl->layouts.emplace_back(W.get(), std::move(buf));
        pl->bytes += md.get_size();
    }
    if (!keep_codes && !pl->layouts.empty() && !host_served(name)) {
        pl->bytes -= pl->q.codes.size();
        std::vector<int8_t>().swap(pl->q.codes);
        pl->codes_dropped = true;
    }
    return pl;
}

bool DnnlExecutor::Impl::host_served(const std::string& layer) const {
    for (const auto& [key, P] : plans)
        for (const auto& lm : P->layers)
            if (lm.name == layer && lm.host) return true;
    return false;
}

void DnnlExecutor::Impl::throw_codes_dropped(const std::string& layer, int64_t batch) {
    throw std::logic_error("DnnlExecutor: layer '" + layer + "' was prepared without keeping its codes, and the "
                           "primitives for batch size " + std::to_string(batch) +
                           " were made after it: call prepare() for every batch size before set_keep_codes(false)");
}

void DnnlExecutor::Impl::load(const std::vector<Prepared>& layers) {
    for (const auto& pl : layers) {
        if (!pl) throw std::logic_error("DnnlExecutor::load: null prepared layer");
        if (pl->generation != generation)
            throw std::logic_error("DnnlExecutor::load: layer '" + pl->name +
                                   "' was prepared before the latest calibration or bias-correction change");
    }
    for (const auto& pl : layers) loaded[pl->name] = pl;
    ++model.version;
    layers_stale = true;
}

void DnnlExecutor::Impl::refresh_layers() {
    if (!layers_stale) return;
    for (const auto& [name, pl] : loaded) model.layers[name] = pl->q;
    layers_stale = false;
}

namespace {

void check_input(const Graph& g, const QuantPlan& plan, const Tensor& input) {
    const auto& name = g.inputs.at(0).name;
    const auto& sample = plan.sample_shapes.at(name);
    if (input.dtype != DType::f32 || input.rank() != static_cast<int64_t>(sample.size()) || input.shape[0] < 1 ||
        !std::equal(sample.begin() + 1, sample.end(), input.shape.begin() + 1) ||
        static_cast<int64_t>(input.data.size()) != input.numel())
        throw InputError("input '" + name + "' " + shape_str(input.shape) + " does not match the model's " +
                         shape_str(sample) + " (any batch size >= 1)");
    const auto& declared = g.inputs.at(0).shape;
    if (!declared.empty() && declared[0] > 0 && declared[0] != input.shape[0])
        throw InputError("input '" + name + "' has a fixed batch size of " + std::to_string(declared[0]) + ", got " +
                         std::to_string(input.shape[0]));
}

/// Runs the plan on `input` (its batch of images); the output is in P.output.
void execute(Plan& P, const float* input) {
    void* h = const_cast<float*>(input);
    P.input.set_data_handle(h);
    for (auto& a : P.input_aliases) a.set_data_handle(h);
    for (auto& st : P.steps) {
        if (st.has_prim) st.prim.execute(P.strm, st.args);
        else st.host();
    }
    P.strm.wait();
}

/// The sub-batch size of int8 runs: the network runs over sub-batches of this many images (the last
/// one smaller) when a batch is larger, so that the activations of the step with the most bytes
/// (input, residual and output per image) fit the L2 caches of the OMP threads, each working on its
/// share of the sub-batch: threads x L2 / bytes, rounded down to a power of two, at least 16 per
/// thread. Results do not depend on it (images are independent). Measured, images per second of
/// `bench_runtime --int8-only --batch N` (one pinned thread / two), N = 16, 32, 64, 256: the survey's
/// mbv2 (100 KB a step at 28x28) 15.2k, 15.3k, 15.2k, 11.2k / 28.7k, 29.3k, 26.6k, 22.3k; dwsep
/// (19 KB) 98k, 95k, 102k, 90k / 152k, 176k, 194k, 185k; but lenet5 (5.5 KB) 246k, 254k, 272k, 266k
/// / 376k, 441k, 469k, 530k: whole batches where they fit. DCS_SUB_BATCH=N sets it (0: whole batches).
/// `threads`: the threads sharing each sub-batch (1 when every thread runs its own image stream).
int64_t choose_sub_batch(const QuantPlan& plan, int threads) {
    if (const char* e = std::getenv("DCS_SUB_BATCH")) {
        const long long v = std::atoll(e);
        return v > 0 ? static_cast<int64_t>(v) : std::numeric_limits<int64_t>::max();
    }
    auto bytes = [&plan](const std::string& v) -> int64_t {
        if (v.empty() || !plan.sample_shapes.count(v) || !plan.values.count(v)) return 0;
        const auto& sh = plan.sample_shapes.at(v);
        int64_t n = 1;
        for (size_t i = 1; i < sh.size(); ++i) n *= sh[i];
        return n * (is8(plan.values.at(v).type) ? 1 : 4);
    };
    int64_t w = 1;
    for (const auto& st : plan.steps) w = std::max(w, bytes(st.input) + bytes(st.sum_input) + bytes(st.output));
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 <= 0) l2 = 1L << 20;
    const int64_t t = std::max(1, threads);
    const int64_t fit = t * static_cast<int64_t>(l2) / w;
    int64_t c = 1;
    while (c * 2 <= fit) c *= 2;
    return std::max(c, 16 * t);
}

/// The image streams of int8 runs: OMP_NUM_THREADS by default, each thread taking whole sub-batches
/// through the network alone (Impl::split). With every thread in every step instead, each step ends
/// with a barrier, and on a shared machine one of the threads is often late: two threads gave 1.4-1.6x
/// one thread's speed on the median batch of mobile's host steps, while two single-threaded processes
/// each kept their solo speed (docs/performance.md). DCS_STREAMS=N sets the count (1: every thread
/// in every step).
int choose_streams() {
    if (const char* e = std::getenv("DCS_STREAMS")) {
        const long long v = std::atoll(e);
        if (v >= 1) return static_cast<int>(std::min<long long>(v, 1024));
    }
    return std::max(1, omp_get_max_threads());
}

}  // namespace

DnnlExecutor::DnnlExecutor(const Graph& graph, Mode mode, int64_t batch_size) {
    if (batch_size < 1) throw InputError("batch size must be >= 1, got " + std::to_string(batch_size));
    if (graph.inputs.size() != 1)
        throw InputError("the oneDNN executor runs models with one input, this one has " +
                         std::to_string(graph.inputs.size()));
    impl_ = std::make_unique<Impl>(graph, mode, batch_size, plan_graph(graph, mode == Mode::Int8));
    if (mode == Mode::Fp32) {
        try {
            impl_->plan_for(batch_size);
        } catch (const dnnl::error& e) {
            throw UnsupportedError(std::string("oneDNN: ") + e.what());
        }
    } else {
        for (const auto& kv : impl_->model.layer_info)
            impl_->default_weights[kv.first] =
                quantize_weight_int8(graph.initializers.at(kv.second.weight), kv.second.out_axis);
    }
}

DnnlExecutor::~DnnlExecutor() = default;
DnnlExecutor::DnnlExecutor(DnnlExecutor&&) noexcept = default;
DnnlExecutor& DnnlExecutor::operator=(DnnlExecutor&&) noexcept = default;

DnnlExecutor::Mode DnnlExecutor::mode() const { return impl_->mode; }

const QuantizedModel& DnnlExecutor::quantized_model() const {
    for (const auto& [name, pl] : impl_->loaded)
        if (pl->codes_dropped)
            throw std::logic_error("DnnlExecutor::quantized_model: layer '" + name +
                                   "' was prepared without keeping its codes (set_keep_codes(false))");
    impl_->refresh_layers();
    return impl_->model;
}

void DnnlExecutor::calibrate(const std::vector<Tensor>& batches, const compress::CalibrationSpec& spec) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::calibrate: only in int8 mode");
    if (batches.empty()) throw InputError("calibration needs at least one batch");
    // The fp32 twin of the int8 plan: same fusions, so it materialises the same values.
    QuantPlan fp = I.model.plan;
    fp.int8 = false;
    for (auto& st : fp.steps) st.int8 = false;
    for (auto& kv : fp.values) kv.second.type = QType::F32;
    Impl cal(I.graph, Mode::Fp32, I.batch_size, fp);
    cal.share_buffers = false;
    std::map<std::string, compress::ActivationObserver> observed;
    // Per layer: sums of its input per input channel (Conv) or per column of K (Gemm / MatMul).
    std::map<std::string, std::pair<std::vector<double>, int64_t>> sums;
    std::vector<std::string> names;
    for (const auto& in : I.graph.inputs) names.push_back(in.name);
    for (const auto& st : fp.steps) names.push_back(st.output);
    for (const auto& b : batches) {
        check_input(I.graph, fp, b);
        Plan& P = cal.plan_for(b.shape[0]);
        execute(P, b.data.data());
        for (const auto& name : names) {
            const memory& m = P.vals.at(name);
            const int64_t n = static_cast<int64_t>(m.get_desc().get_size() / sizeof(float));
            observed[name].observe(static_cast<const float*>(m.get_data_handle()), n);
        }
        for (const auto& st : fp.steps) {
            if (!st.layer) continue;
            const LayerInfo& li = I.model.layer_info.at(st.node->name);
            const memory& m = P.vals.at(st.input);
            const memory::desc md = m.get_desc();
            const memory::dims dims = md.dims();
            const auto* strides = md.data.format_desc.blocking.strides;
            const size_t r = dims.size();
            int64_t per = 1, spatial = 1;
            for (size_t d = 1; d < r; ++d) per *= dims[d];
            for (size_t d = 2; d < r; ++d) spatial *= dims[d];
            const bool conv = st.node->op == OpKind::Conv;
            const int64_t buckets = conv ? dims[1] : li.weight_shape[1 - li.out_axis];
            auto& acc = sums[st.node->name];
            acc.first.resize(buckets, 0.0);
            acc.second += dims[0] * (per / buckets);
            const float* p = static_cast<const float*>(m.get_data_handle());
            std::vector<int64_t> idx(r, 0);
            for (int64_t nb = 0; nb < dims[0]; ++nb) {
                std::fill(idx.begin(), idx.end(), 0);
                for (int64_t f = 0; f < per; ++f) {
                    int64_t off = nb * strides[0];
                    for (size_t d = 1; d < r; ++d) off += idx[d] * strides[d];
                    acc.first[conv ? f / spatial : f % buckets] += p[off];
                    for (size_t d = r; d-- > 1;) {
                        if (++idx[d] < dims[d]) break;
                        idx[d] = 0;
                    }
                }
            }
        }
    }
    I.input_means.clear();
    for (const auto& kv : sums) {
        std::vector<float> mean(kv.second.first.size());
        for (size_t i = 0; i < mean.size(); ++i)
            mean[i] = static_cast<float>(kv.second.first[i] / static_cast<double>(std::max<int64_t>(kv.second.second, 1)));
        I.input_means[kv.first] = std::move(mean);
    }
    assign_scales(I.model.plan, observed, spec);
    I.calibrated = true;
    I.streams = choose_streams();
    I.sub_batch = choose_sub_batch(I.model.plan, I.streams > 1 ? 1 : omp_get_max_threads());
    ++I.generation;
    I.plans.clear();
    I.weight_cache.clear();
    I.host_layers.clear();
    I.loaded.clear();
    set_weights({});
}

void DnnlExecutor::set_weights(const std::map<std::string, Int8LayerWeights>& layers) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::set_weights: only in int8 mode");
    if (!I.calibrated) throw std::logic_error("DnnlExecutor::set_weights: calibrate() first");
    for (const auto& kv : layers)
        if (!I.model.layer_info.count(kv.first))
            throw InputError("set_weights: '" + kv.first + "' is not a compressible layer of the model");
    std::vector<Prepared> next;
    for (const auto& st : I.model.plan.steps) {
        if (!st.layer) continue;
        auto it = layers.find(st.node->name);
        next.push_back(I.prepare(st, it != layers.end() ? it->second : I.default_weights.at(st.node->name)));
    }
    I.load(next);
    I.refresh_layers();
}

DnnlExecutor::Prepared DnnlExecutor::prepare_layer(const std::string& layer, Int8LayerWeights weights) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::prepare_layer: only in int8 mode");
    if (!I.calibrated) throw std::logic_error("DnnlExecutor::prepare_layer: calibrate() first");
    for (const auto& st : I.model.plan.steps)
        if (st.layer && st.node->name == layer) return I.prepare(st, std::move(weights));
    throw InputError("prepare_layer: '" + layer + "' is not a compressible layer of the model");
}

size_t DnnlExecutor::prepared_bytes(const PreparedLayer& layer) { return layer.bytes; }

void DnnlExecutor::set_keep_codes(bool keep) { impl_->keep_codes = keep; }

void DnnlExecutor::load(const std::vector<Prepared>& layers) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::load: only in int8 mode");
    if (!I.calibrated) throw std::logic_error("DnnlExecutor::load: calibrate() first");
    I.load(layers);
}

void DnnlExecutor::set_bias_correction(bool on) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::set_bias_correction: only in int8 mode");
    if (on != I.bias_correction) ++I.generation;
    I.bias_correction = on;
}

int64_t DnnlExecutor::sub_batch() const { return impl_->sub_batch; }

int DnnlExecutor::streams() const { return impl_->streams; }

Tensor DnnlExecutor::run(const Tensor& input) {
    Impl& I = *impl_;
    if (I.mode == Mode::Int8 && !I.calibrated) throw std::logic_error("DnnlExecutor::run: calibrate() first");
    check_input(I.graph, I.model.plan, input);
    const auto& out_name = I.graph.outputs.at(0);
    std::vector<int64_t> shape = I.model.plan.sample_shapes.at(out_name);
    const int64_t nb = input.shape[0];
    shape[0] = nb;
    Tensor out = Tensor::zeros(shape);
    const size_t in_per = input.data.size() / static_cast<size_t>(nb), out_per = out.data.size() / static_cast<size_t>(nb);
    I.plans_for(nb);  // made and synced here: the streams below only run them
    const Impl::Split sp = I.split(nb);
    const int64_t chunks = (nb + sp.chunk - 1) / sp.chunk;
    auto run_chunk = [&](int64_t i, int stream) {
        const int64_t off = i * sp.chunk, n = std::min(sp.chunk, nb - off);
        Plan& P = *I.plans.at({n, stream});
        execute(P, input.data.data() + static_cast<size_t>(off) * in_per);
        std::memcpy(out.data.data() + static_cast<size_t>(off) * out_per, P.output.get_data_handle(),
                    static_cast<size_t>(n) * out_per * sizeof(float));
    };
    if (sp.streams == 1) {
        for (int64_t i = 0; i < chunks; ++i) run_chunk(i, -1);
        return out;
    }
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
#pragma omp parallel num_threads(sp.streams)
    {
        const int stream = omp_get_thread_num();
        omp_set_num_threads(1);  // this thread's steps (and oneDNN's) run on it alone
        try {
            for (int64_t i = next++; i < chunks; i = next++) run_chunk(i, stream);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next = chunks;
        }
    }
    if (error) std::rethrow_exception(error);
    return out;
}

void DnnlExecutor::prepare(int64_t batch_size) {
    Impl& I = *impl_;
    if (I.mode == Mode::Int8 && !I.calibrated) throw std::logic_error("DnnlExecutor::prepare: calibrate() first");
    if (batch_size < 1) throw InputError("batch size must be >= 1, got " + std::to_string(batch_size));
    I.plans_for(batch_size);
}

std::vector<std::string> DnnlExecutor::implementations(int64_t batch_size) {
    Impl& I = *impl_;
    if (I.mode == Mode::Int8 && !I.calibrated) throw std::logic_error("DnnlExecutor::implementations: calibrate() first");
    const Plan& P = *I.plans_for(batch_size).at(0);
    std::vector<std::string> out;
    for (const auto& st : P.steps) out.push_back(st.what);
    out.insert(out.end(), P.weight_reorders.begin(), P.weight_reorders.end());
    return out;
}

}  // namespace dcs
