#pragma once
/// The output stage the host convolutions share, with AVX-512: the integer reference's (acc + bias) *
/// scale[c], activation clamp and rounding half to even, from int32 sums in registers (host_out16, and
/// its packed form host_out_packed), and HostVnniLayer, the weight and output parameters of the VNNI
/// convolutions (conv_vnni, conv_dw, conv1x1_amx). Included by the kernels' .cpp files only: every
/// function here is compiled for its target features, so callers run it after cpu::has() said so.
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "runtime/kernels/host_layer.hpp"

#define DCS_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define DCS_AVX512_VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")))
#define DCS_AVX512_VBMI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx512vbmi")))
#define DCS_AMX __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,amx-tile,amx-int8")))

namespace dcs::kernels {

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
#pragma GCC diagnostic pop

/// The output stage in plain C++ (the references'): f = (acc + bias) * scale (plus sum_scale * residual
/// for a fused Add, added by the caller), clamped to [lo, hi] (host_out_range) and, for 8-bit outputs,
/// rounded half to even; stored as element i of y (yt).
inline void store_reference(float f, float lo, float hi, QType yt, void* y, int64_t i) {
    f = std::min(std::max(f, lo), hi);
    if (yt == QType::F32) static_cast<float*>(y)[i] = f;
    else if (yt == QType::U8) static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(f)));
    else static_cast<int8_t*>(y)[i] = static_cast<int8_t>(static_cast<int32_t>(std::nearbyint(f)));
}

}  // namespace dcs::kernels
