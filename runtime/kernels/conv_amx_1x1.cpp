#include "runtime/kernels/conv_amx_1x1.hpp"

#include <omp.h>

#include <cstring>

namespace dcs::kernels {
namespace {

// GCC 12 reports its own AVX-512 intrinsics (`__m512 __Y = __Y;`) as maybe uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

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

#pragma GCC diagnostic pop

}  // namespace

void HostAmx1x1::run(const void* x, void* y, int64_t nb, const void* residual) const {
    with_types(xt, yt, [&](auto tx, auto ty) { host_amx_run<decltype(tx), decltype(ty)>(*this, x, y, nb, residual); });
}

std::string HostAmx1x1::impl() const { return std::string("host:conv1x1_amx") + (sum ? " + sum" : ""); }

std::string conv_amx_1x1_declines(const LayerDesc& d) {
    if (d.xs.size() != 4) return "not a 2-D convolution";
    if (d.xt == QType::F32) return "fp32 input";
    if (d.ws[2] != 1 || d.ws[3] != 1) return "kernel " + std::to_string(d.ws[2]) + "x" + std::to_string(d.ws[3]) + " is not 1x1";
    if (d.xs[1] > 4096) return "input channels " + std::to_string(d.xs[1]) + " > 4096 (int32 sums)";
    if (d.group != 1) return "grouped";
    for (size_t i = 0; i < 2; ++i) {
        if (d.win.strides[i] != 1) return "strided";
        if (d.win.pad_begin[i] != 0 || d.win.pad_end[i] != 0) return "padded";
    }
    return "";
}

std::shared_ptr<HostLayer> make_conv_amx_1x1(const LayerDesc& d) {
    const auto &xs = d.xs, &ys = d.ys;
    auto hc = std::make_shared<HostAmx1x1>();
    hc->ic = xs[1];
    hc->oc = ys[1];
    hc->nblk = (hc->oc + 15) / 16;
    hc->kc = (hc->ic + 63) / 64;
    hc->pix = xs[2] * xs[3];
    hc->xt = d.xt;
    hc->yt = d.yt;
    hc->act = d.act;
    hc->sum = d.sum;
    hc->rt = d.rt;
    return hc;
}

}  // namespace dcs::kernels
