/// The "uniform" method: affine quantization at 2..8 bits (see quantize.hpp).
#include "compress/quantize.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/cpu_features.hpp"
#include "compress/method.hpp"

namespace dcs::compress {

namespace {

void check_uniform_bits(int bits) {
    if (bits < 2 || bits > 8)
        throw std::invalid_argument("uniform quantization needs 2..8 bits, got " + std::to_string(bits));
}

/// Params covering [ratio*vmin, ratio*vmax] (vmin <= 0 <= vmax), for bits in 2..8 (checked by the caller).
UniformParams params_for_range(double vmin, double vmax, double ratio, int bits, Scheme scheme) {
    UniformParams p;
    if (scheme == Scheme::Symmetric) {
        const double m = std::fmax(-vmin, vmax) * ratio;
        p.scale = static_cast<float>(m / ((1 << (bits - 1)) - 1));  // uniform_code_max
        if (!(p.scale >= FLT_MIN)) p.scale = 1.0f;
        return p;
    }
    const double lo = vmin * ratio, hi = vmax * ratio;
    const double levels = static_cast<double>((1 << bits) - 1);
    p.scale = static_cast<float>((hi - lo) / levels);
    if (!(p.scale >= FLT_MIN)) p.scale = 1.0f;
    double z = std::nearbyint(-lo / static_cast<double>(p.scale));
    z = std::fmin(std::fmax(z, 0.0), levels);
    p.zero_point = static_cast<int>(z) - (1 << (bits - 1));  // + uniform_code_min (asymmetric)
    return p;
}

}  // namespace

int uniform_code_min(int bits, Scheme scheme) {
    check_uniform_bits(bits);
    return scheme == Scheme::Symmetric ? -((1 << (bits - 1)) - 1) : -(1 << (bits - 1));
}

int uniform_code_max(int bits, Scheme) {
    check_uniform_bits(bits);
    return (1 << (bits - 1)) - 1;
}

double mse_clip_ratio(int i) { return 1.0 - (1.0 - kMseGridMin) * i / (kMseGridPoints - 1); }

namespace {

constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23, see quantize_uniform

/// Weights of at least this many elements are searched and encoded on OMP_NUM_THREADS threads, channel by
/// channel; every channel's arithmetic is the same on any thread count, so the result is too.
constexpr int64_t kParallelMin = 8192;

// The MSE search's kernels are compiled for AVX2 and the baseline (DCS_VECTOR_CLONES, common/cpu_features.hpp).

constexpr int kLanes = 8;  ///< flat_sse's float accumulators: element i of the body adds into lane i % kLanes

/// One set's result from its lanes: the tail in double, then lanes 0..kLanes-1 (flat_sse's order).
double finish_sse(const float* lanes, const float* tail, int64_t tail_n, float s, float inv, float lo, float hi) {
    double total = 0.0;
    for (int64_t i = 0; i < tail_n; ++i) {
        float x = tail[i] * inv;
        x = x > lo ? x : lo;
        x = x < hi ? x : hi;
        x = (x + kRoundMagic) - kRoundMagic;
        const float d = tail[i] - s * x;
        total += static_cast<double>(d) * d;
    }
    for (int j = 0; j < kLanes; ++j) total += lanes[j];
    return total;
}

/// Squared errors of n values under `count` parameter sets (scale s[k], clamp bounds lo[k], hi[k]) into
/// out[k]. Per set: kLanes independent float lanes over the body (the first n / kLanes * kLanes values,
/// which may be given apart from the tail: see SparseGroups), element i into lane i % kLanes, so that the
/// loop vectorizes without -ffast-math; the tail and then the lanes summed in double. Sets are taken
/// kSets at a time, their sums interleaved: one set's additions form a chain bound by the adder's
/// latency, several independent chains fill the vector units. Each set's arithmetic and order are those
/// of a single-set loop, so its result does not depend on the other sets.
constexpr int kSets = 4;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));  ///< one float per lane
DCS_VECTOR_CLONES void flat_sse_portable(const float* body, int64_t body_n, const float* tail, int64_t tail_n,
                                         int count, const float* s, const float* lo, const float* hi, double* out) {
    const Lanes magic = Lanes{} + kRoundMagic;
    for (int k0 = 0; k0 < count; k0 += kSets) {
        const int m = std::min(kSets, count - k0);
        Lanes bs[kSets], binv[kSets], blo[kSets], bhi[kSets], acc[kSets];
        for (int c = 0; c < kSets; ++c) {  // a short block repeats its last set
            const int k = k0 + std::min(c, m - 1);
            bs[c] = Lanes{} + s[k];
            binv[c] = Lanes{} + 1.0f / s[k];
            blo[c] = Lanes{} + lo[k];
            bhi[c] = Lanes{} + hi[k];
            acc[c] = Lanes{};
        }
        for (int64_t i = 0; i + kLanes <= body_n; i += kLanes) {
            Lanes v;
            std::memcpy(&v, body + i, sizeof v);
            for (int c = 0; c < kSets; ++c) {
                Lanes x = v * binv[c];
                x = x > blo[c] ? x : blo[c];
                x = x < bhi[c] ? x : bhi[c];
                x = (x + magic) - magic;
                const Lanes d = v - bs[c] * x;
                acc[c] += d * d;
            }
        }
        for (int c = 0; c < m; ++c) {
            float lanes[kLanes];
            for (int j = 0; j < kLanes; ++j) lanes[j] = acc[c][j];
            out[k0 + c] = finish_sse(lanes, tail, tail_n, bs[c][0], binv[c][0], blo[c][0], bhi[c][0]);
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// GCC 12 reports its own AVX-512 intrinsics (`__m512 __Y = __Y;`) as maybe uninitialized.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define DCS_AVX512_TARGET __attribute__((target("avx512f,avx512dq")))

/// a in the lower eight floats, b in the upper eight.
DCS_AVX512_TARGET inline __m512 two_halves(float a, float b) {
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/// P register pairs of sets over the body (see flat_sse_avx512).
template <int P>
DCS_AVX512_TARGET inline void sse_pairs(const float* body, int64_t body_n, const __m512* bs, const __m512* binv,
                                        const __m512* blo, const __m512* bhi, __m512* acc) {
    constexpr int R = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512 magic = _mm512_set1_ps(kRoundMagic);
    __m512 a[P];
    for (int p = 0; p < P; ++p) a[p] = acc[p];
    for (int64_t i = 0; i + kLanes <= body_n; i += kLanes) {
        const __m256 v8 = _mm256_loadu_ps(body + i);
        const __m512 v = _mm512_insertf32x8(_mm512_castps256_ps512(v8), v8, 1);
        for (int p = 0; p < P; ++p) {
            __m512 x = _mm512_mul_round_ps(v, binv[p], R);
            x = _mm512_max_ps(x, blo[p]);  // (x > lo ? x : lo), also for equal zeros
            x = _mm512_min_ps(x, bhi[p]);  // (x < hi ? x : hi)
            x = _mm512_sub_round_ps(_mm512_add_round_ps(x, magic, R), magic, R);
            const __m512 d = _mm512_sub_round_ps(v, _mm512_mul_round_ps(bs[p], x, R), R);
            a[p] = _mm512_add_round_ps(a[p], _mm512_mul_round_ps(d, d, R), R);
        }
    }
    for (int p = 0; p < P; ++p) acc[p] = a[p];
}

/// flat_sse_portable with AVX-512, bit-identical: a 16-float register holds the kLanes lanes of two sets
/// (the same values twice, each half with its set's parameters), and each operation is the portable
/// code's, rounded once (the *_round_ps forms are never fused into multiply-adds by the compiler), so
/// every lane sees the same arithmetic in the same order. Eight sets per pass over the values.
DCS_AVX512_TARGET void flat_sse_avx512(const float* body, int64_t body_n, const float* tail, int64_t tail_n,
                                       int count, const float* s, const float* lo, const float* hi, double* out) {
    constexpr int kPairs = 4;
    for (int k0 = 0; k0 < count; k0 += 2 * kPairs) {
        const int m = std::min(2 * kPairs, count - k0);
        float inv[2 * kPairs];
        __m512 bs[kPairs], binv[kPairs], blo[kPairs], bhi[kPairs], acc[kPairs];
        for (int c = 0; c < 2 * kPairs; ++c) inv[c] = 1.0f / s[k0 + std::min(c, m - 1)];
        for (int p = 0; p < kPairs; ++p) {  // a short block repeats its last set
            const int a = k0 + std::min(2 * p, m - 1), b = k0 + std::min(2 * p + 1, m - 1);
            bs[p] = two_halves(s[a], s[b]);
            binv[p] = two_halves(inv[2 * p], inv[2 * p + 1]);
            blo[p] = two_halves(lo[a], lo[b]);
            bhi[p] = two_halves(hi[a], hi[b]);
            acc[p] = _mm512_setzero_ps();
        }
        const int pairs = (m + 1) / 2;
        if (pairs > 2) sse_pairs<4>(body, body_n, bs, binv, blo, bhi, acc);
        else if (pairs == 2) sse_pairs<2>(body, body_n, bs, binv, blo, bhi, acc);
        else sse_pairs<1>(body, body_n, bs, binv, blo, bhi, acc);
        for (int c = 0; c < m; ++c) {
            alignas(64) float lanes[16];
            _mm512_store_ps(lanes, acc[c / 2]);
            const int k = k0 + c;
            out[k] = finish_sse(lanes + 8 * (c % 2), tail, tail_n, s[k], inv[c], lo[k], hi[k]);
        }
    }
}

/// rows_sse of a whole 16-channel block for `count` candidates at once (their parameters and sums
/// [k * channels + c]) with AVX-512, bit-identical: each lane is one channel of one candidate and sees
/// the portable code's operations, rounded once, in its order. Four candidates per walk down the rows.
DCS_AVX512_TARGET void rows_sse_avx512(const float* x, int64_t outer, size_t channels, size_t c0, size_t count,
                                       const float* s, const float* inv, const float* lo, const float* hi,
                                       float* acc) {
    constexpr int R = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    constexpr size_t kSetsPerWalk = 4;
    const __m512 magic = _mm512_set1_ps(kRoundMagic);
    for (size_t k0 = 0; k0 < count; k0 += kSetsPerWalk) {
        const size_t m = std::min(kSetsPerWalk, count - k0);
        __m512 bs[kSetsPerWalk], binv[kSetsPerWalk], blo[kSetsPerWalk], bhi[kSetsPerWalk], a[kSetsPerWalk];
        for (size_t j = 0; j < kSetsPerWalk; ++j) {  // a short walk repeats its last candidate
            const size_t at = (k0 + std::min(j, m - 1)) * channels + c0;
            bs[j] = _mm512_loadu_ps(s + at);
            binv[j] = _mm512_loadu_ps(inv + at);
            blo[j] = _mm512_loadu_ps(lo + at);
            bhi[j] = _mm512_loadu_ps(hi + at);
            a[j] = _mm512_setzero_ps();
        }
        const float* row = x + c0;
        for (int64_t o = 0; o < outer; ++o, row += channels) {
            const __m512 v = _mm512_loadu_ps(row);
            for (size_t j = 0; j < kSetsPerWalk; ++j) {
                __m512 q = _mm512_mul_round_ps(v, binv[j], R);
                q = _mm512_max_ps(q, blo[j]);
                q = _mm512_min_ps(q, bhi[j]);
                q = _mm512_sub_round_ps(_mm512_add_round_ps(q, magic, R), magic, R);
                const __m512 d = _mm512_sub_round_ps(v, _mm512_mul_round_ps(bs[j], q, R), R);
                a[j] = _mm512_add_round_ps(a[j], _mm512_mul_round_ps(d, d, R), R);
            }
        }
        for (size_t j = 0; j < m; ++j) {
            float* out = acc + (k0 + j) * channels + c0;
            _mm512_storeu_ps(out, _mm512_add_round_ps(_mm512_loadu_ps(out), a[j], R));
        }
    }
}
#pragma GCC diagnostic pop
#endif

void flat_sse(const float* body, int64_t body_n, const float* tail, int64_t tail_n, int count, const float* s,
              const float* lo, const float* hi, double* out) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (cpu::has(cpu::Isa::Avx512)) return flat_sse_avx512(body, body_n, tail, tail_n, count, s, lo, hi, out);
#endif
    flat_sse_portable(body, body_n, tail, tail_n, count, s, lo, hi, out);
}

double flat_sse(const float* v, int64_t n, float s, float lo, float hi) {
    const int64_t body = n / kLanes * kLanes;
    double sse;
    flat_sse(v, body, v + body, n - body, 1, &s, &lo, &hi, &sse);
    return sse;
}

/// The groups of a weight for flat_sse, with the zeros (pruned weights) of each group's body left out
/// where that saves work. Exact: a zero adds +0 to its lane, so each lane keeps its non-zero values in
/// their order (lanes padded with zeros to a common length) and every lane sum stays bit-identical.
class SparseGroups {
public:
    struct Group {
        const float* body;  ///< the body, or its packed lanes
        int64_t body_n;
        const float* tail;
        int64_t tail_n;
    };

    /// `count` consecutive groups of `size` values from x.
    SparseGroups(const float* x, int64_t count, int64_t size) : groups_(static_cast<size_t>(count)) {
        // Each group's packed rows (0: not packed), then the packed groups' offsets, then the packing:
        // the copies take exactly the room they need.
        std::vector<int64_t> rows(static_cast<size_t>(count));
        const bool parallel = count > 1 && count * size >= kParallelMin;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t g = 0; g < count; ++g) rows[static_cast<size_t>(g)] = packed_rows(x + g * size, size);
        std::vector<int64_t> offset(static_cast<size_t>(count), -1);
        int64_t total = 0;
        for (int64_t g = 0; g < count; ++g)
            if (rows[static_cast<size_t>(g)] > 0) {
                offset[static_cast<size_t>(g)] = total;
                total += (rows[static_cast<size_t>(g)] + 1) * kLanes;  // a spare row (see pack())
            }
        if (total > 0) packed_.reset(new float[static_cast<size_t>(total)]);
        packed_n_ = total;
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t g = 0; g < count; ++g) {
            const float* v = x + g * size;
            const int64_t body = size / kLanes * kLanes;
            const auto k = static_cast<size_t>(g);
            if (offset[k] < 0) {
                groups_[k] = {v, body, v + body, size - body};
                continue;
            }
            float* out = packed_.get() + offset[k];
            pack(v, body, rows[k], out);
            groups_[k] = {out, rows[k] * kLanes, v + body, size - body};
        }
    }
    const Group& operator[](size_t g) const { return groups_[g]; }
    size_t bytes() const {
        return sizeof(*this) + groups_.size() * sizeof(Group) + static_cast<size_t>(packed_n_) * sizeof(float);
    }

private:
    /// The rows of a group's packed lanes (the most non-zeros of a lane), or 0 when under a quarter of
    /// its body is zeros (not worth a copy).
    static int64_t packed_rows(const float* v, int64_t n) {
        const int64_t body = n / kLanes * kLanes;
        int32_t kept[kLanes] = {};
        for (int64_t i = 0; i < body; i += kLanes)
            for (int j = 0; j < kLanes; ++j) kept[j] += v[i + j] != 0.0f;
        const int64_t rows = *std::max_element(kept, kept + kLanes);
        return 4 * rows * kLanes > 3 * body ? 0 : std::max<int64_t>(rows, 1);
    }

    /// Lane j of `out` gets the non-zeros of lane j of the body, in order, then zeros.
    static void pack(const float* v, int64_t body, int64_t rows, float* out) {
        std::fill(out, out + (rows + 1) * kLanes, 0.0f);
        // Branch-free: write every value, advance only past non-zeros. A zero written last stays as
        // padding (it adds +0) or lands in the spare row after the body.
        int64_t at[kLanes] = {};
        for (int64_t i = 0; i < body; i += kLanes)
            for (int j = 0; j < kLanes; ++j) {
                out[at[j] * kLanes + j] = v[i + j];
                at[j] += v[i + j] != 0.0f;
            }
    }

    std::vector<Group> groups_;
    std::unique_ptr<float[]> packed_;  ///< the packed groups' lanes, one after the other
    int64_t packed_n_ = 0;
};

/// Squared errors of `outer` rows of `channels` values, each channel with its own parameters, added
/// into acc[c] (element-wise across the row, so it vectorizes).
/// Channels [begin, end) only (blocks of 16 from begin, then one by one).
DCS_VECTOR_CLONES void rows_sse(const float* x, int64_t outer, size_t channels, size_t begin, size_t end,
                                const float* s, const float* inv, const float* lo, const float* hi, float* acc) {
    // Blocks of 16 channels walk down the rows with parameters and sums held in registers.
    constexpr size_t kBlock = 16;
    size_t c0 = begin;
    for (; c0 + kBlock <= end; c0 += kBlock) {
        float bs[kBlock], binv[kBlock], blo[kBlock], bhi[kBlock], bacc[kBlock];
        for (size_t j = 0; j < kBlock; ++j) {
            bs[j] = s[c0 + j];
            binv[j] = inv[c0 + j];
            blo[j] = lo[c0 + j];
            bhi[j] = hi[c0 + j];
            bacc[j] = 0.0f;
        }
        const float* row = x + c0;
        for (int64_t o = 0; o < outer; ++o, row += channels)
            for (size_t j = 0; j < kBlock; ++j) {
                float q = row[j] * binv[j];
                q = q > blo[j] ? q : blo[j];
                q = q < bhi[j] ? q : bhi[j];
                q = (q + kRoundMagic) - kRoundMagic;
                const float d = row[j] - bs[j] * q;
                bacc[j] += d * d;
            }
        for (size_t j = 0; j < kBlock; ++j) acc[c0 + j] += bacc[j];
    }
    for (int64_t o = 0; o < outer; ++o) {
        const float* row = x + o * static_cast<int64_t>(channels);
        for (size_t c = c0; c < end; ++c) {
            float q = row[c] * inv[c];
            q = q > lo[c] ? q : lo[c];
            q = q < hi[c] ? q : hi[c];
            q = (q + kRoundMagic) - kRoundMagic;
            const float d = row[c] - s[c] * q;
            acc[c] += d * d;
        }
    }
}

/// The candidates of one phase of the MSE search, k = 0..count-1 per group g, in flat arrays (entry
/// k * groups + g): grid index, parameters, squared error, and whether to skip it.
struct Candidates {
    size_t count = 0, groups = 0;
    std::vector<int> idx;
    std::vector<UniformParams> params;
    std::vector<double> sse;
    std::vector<uint8_t> skip;
    void reset(size_t n, size_t g) {
        count = n;
        groups = g;
        idx.assign(n * g, 0);
        params.resize(n * g);
        sse.assign(n * g, 0.0);
        skip.assign(n * g, 0);
    }
    size_t at(size_t k, size_t g) const { return k * groups + g; }
};

/// Evaluates candidates over a weight whose rows are its channels (per channel, inner == 1: MatMul
/// [K, N]): the squared error of every candidate k of channel c, vectorized across the channels.
/// Scratch arrays are reused between calls.
class SsePass {
public:
    SsePass(const float* x, const Layout& l, int qmin, int qmax) : x_(x), l_(l), qmin_(qmin), qmax_(qmax) {}

    /// Candidates with skip set may be left out; their sse then keeps its value.
    void run(Candidates& cands) {
        const size_t count = cands.count, channels = static_cast<size_t>(l_.channels);
        s_.resize(count * channels);
        inv_.resize(count * channels);
        lo_.resize(count * channels);
        hi_.resize(count * channels);
        acc_.assign(count * channels, 0.0f);
        for (size_t e = 0; e < count * channels; ++e) {
            const UniformParams& p = cands.params[e];
            s_[e] = p.scale;
            inv_[e] = 1.0f / p.scale;
            lo_[e] = static_cast<float>(qmin_ - p.zero_point);
            hi_[e] = static_cast<float>(qmax_ - p.zero_point);
        }
        // Each thread a contiguous range of 16-channel blocks; a channel's sum does not depend on the split.
        const auto blocks = static_cast<int64_t>((channels + 15) / 16);
        const bool avx512 = cpu::has(cpu::Isa::Avx512);
#pragma omp parallel for schedule(static) if (blocks > 1 && l_.numel() >= kParallelMin)
        for (int64_t b = 0; b < blocks; ++b) {
            const auto c0 = static_cast<size_t>(16 * b), end = std::min(channels, c0 + 16);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
            if (avx512 && end - c0 == 16) {
                rows_sse_avx512(x_, l_.outer, channels, c0, count, s_.data(), inv_.data(), lo_.data(), hi_.data(),
                                acc_.data());
                continue;
            }
#endif
            for (size_t k = 0; k < count; ++k) {
                const size_t at = k * channels;
                rows_sse(x_, l_.outer, channels, c0, end, s_.data() + at, inv_.data() + at, lo_.data() + at,
                         hi_.data() + at, acc_.data() + at);
            }
        }
        (void)avx512;
        for (size_t e = 0; e < count * channels; ++e) cands.sse[e] = acc_[e];
    }

private:
    const float* x_;
    Layout l_;
    int qmin_, qmax_;
    std::vector<float> s_, inv_, lo_, hi_, acc_;
};

/// The flat groups of the MSE search: the tensor (per tensor), each (outer, channel) row (per channel),
/// none for rows of channels (inner == 1, searched across channels).
SparseGroups flat_groups(const float* x, const Layout& l, bool per_channel) {
    return SparseGroups(x, per_channel ? (l.inner > 1 ? l.outer * l.channels : 0) : 1,
                        per_channel ? l.inner : l.numel());
}

/// The MSE search of one group over its flat rows (`rows` of `flat`, from `first`, `stride` apart: a
/// channel's (outer, channel) rows, or the tensor): the coarse grid, then the descent of kMseFineSteps,
/// each candidate taken in turn (the lowest error; on a tie, the lowest index). The errors of each phase's
/// candidates come from one pass over the rows (flat_sse), so the rows stay in the cache for the group's
/// whole search.
UniformParams search_flat_group(const SparseGroups& flat, int64_t rows, int64_t stride, int64_t first, float vmin,
                                float vmax, int bits, Scheme scheme) {
    constexpr int kMax = (kMseGridPoints + kMseCoarseStep - 1) / kMseCoarseStep;
    static_assert(kMax >= 2, "a descent step evaluates two candidates");
    const int qmin = uniform_code_min(bits, scheme), qmax = uniform_code_max(bits, scheme);
    int idx[kMax];
    UniformParams p[kMax];
    float s[kMax], lo[kMax], hi[kMax];
    double sse[kMax], out[kMax];
    auto evaluate = [&](int count) {
        for (int k = 0; k < count; ++k) {
            p[k] = params_for_range(vmin, vmax, mse_clip_ratio(idx[k]), bits, scheme);
            s[k] = p[k].scale;
            lo[k] = static_cast<float>(qmin - p[k].zero_point);
            hi[k] = static_cast<float>(qmax - p[k].zero_point);
            sse[k] = 0.0;
        }
        for (int64_t o = 0; o < rows; ++o) {  // in order: a channel's rows add up as one thread would
            const SparseGroups::Group& f = flat[static_cast<size_t>(first + o * stride)];
            flat_sse(f.body, f.body_n, f.tail, f.tail_n, count, s, lo, hi, out);
            for (int k = 0; k < count; ++k) sse[k] += out[k];
        }
    };
    int count = 0;
    for (int i = 0; i < kMseGridPoints; i += kMseCoarseStep) idx[count++] = i;  // i = 0: the max-abs range
    evaluate(count);
    UniformParams best = p[0];
    double best_sse = sse[0];
    int best_i = idx[0];
    auto take = [&](int k) {
        if (sse[k] < best_sse || (sse[k] == best_sse && idx[k] < best_i)) {
            best_sse = sse[k];
            best_i = idx[k];
            best = p[k];
        }
    };
    for (int k = 1; k < count; ++k) take(k);
    for (int step : kMseFineSteps) {  // one step either side of the best so far, within the grid
        const int from = best_i;
        count = 0;
        for (int i : {from - step, from + step})
            if (i >= 0 && i < kMseGridPoints) idx[count++] = i;
        evaluate(count);
        for (int k = 0; k < count; ++k) take(k);
    }
    return best;
}

/// Each group's value range, always including 0.
struct GroupRanges {
    std::vector<float> vmin, vmax;
    size_t bytes() const { return sizeof(*this) + 8 * vmin.size(); }
};

GroupRanges group_ranges(const float* x, const Layout& l, bool per_channel) {
    const auto groups = static_cast<size_t>(per_channel ? l.channels : 1);
    std::vector<float> vmin(groups, 0.0f), vmax(groups, 0.0f);
    if (!per_channel) {
        if (l.numel() > 0) value_range(x, l.numel(), &vmin[0], &vmax[0]);
        vmin[0] = std::min(vmin[0], 0.0f);
        vmax[0] = std::max(vmax[0], 0.0f);
    } else if (l.inner == 1) {  // rows of channels: element-wise over the row, vectorizable
        float *mn = vmin.data(), *mx = vmax.data();
        for (int64_t o = 0; o < l.outer; ++o) {
            const float* row = x + o * l.channels;
            for (size_t c = 0; c < groups; ++c) {
                mn[c] = row[c] < mn[c] ? row[c] : mn[c];
                mx[c] = row[c] > mx[c] ? row[c] : mx[c];
            }
        }
    } else {
        float *mn = vmin.data(), *mx = vmax.data();
#pragma omp parallel for schedule(static) if (groups > 1 && l.numel() >= kParallelMin)
        for (int64_t ci = 0; ci < static_cast<int64_t>(groups); ++ci)
            for (int64_t o = 0; o < l.outer; ++o) {
                float lo, hi;
                value_range(x + (o * l.channels + ci) * l.inner, l.inner, &lo, &hi);
                mn[ci] = lo < mn[ci] ? lo : mn[ci];
                mx[ci] = hi > mx[ci] ? hi : mx[ci];
            }
    }
    return {std::move(vmin), std::move(vmax)};
}

/// choose_uniform_group_params from the ranges and, for the MSE search, the flat groups (`flat()`
/// returns them, made on first use).
template <class FlatGroups>
std::vector<UniformParams> choose_params(const float* x, const Layout& l, const GroupRanges& ranges,
                                         FlatGroups&& flat, Granularity granularity, int bits, Scheme scheme,
                                         WeightClip clip) {
    check_uniform_bits(bits);
    const bool per_channel = granularity == Granularity::PerChannel;
    const auto groups = static_cast<size_t>(per_channel ? l.channels : 1);
    const std::vector<float>& vmin = ranges.vmin;
    const std::vector<float>& vmax = ranges.vmax;
    std::vector<UniformParams> best(groups);
    for (size_t g = 0; g < groups; ++g) best[g] = params_for_range(vmin[g], vmax[g], 1.0, bits, scheme);
    if (clip == WeightClip::MaxAbs) return best;

    if (!per_channel || l.inner > 1) {  // flat groups: each group's whole search in turn
        const SparseGroups& rows = flat();
        const int64_t count = per_channel ? l.outer : 1, stride = per_channel ? l.channels : 1;
#pragma omp parallel for schedule(static) if (groups > 1 && l.numel() >= kParallelMin)
        for (int64_t g = 0; g < static_cast<int64_t>(groups); ++g)
            best[static_cast<size_t>(g)] = search_flat_group(rows, count, stride, g, vmin[static_cast<size_t>(g)],
                                                             vmax[static_cast<size_t>(g)], bits, scheme);
        return best;
    }

    // Rows of channels: each phase's errors are computed first (one candidate per pass over the weight,
    // vectorized across the channels), then taken in the order and with the tie rule of search_flat_group.
    SsePass pass(x, l, uniform_code_min(bits, scheme), uniform_code_max(bits, scheme));
    Candidates cands;
    auto evaluate = [&] {
        const auto count = static_cast<int64_t>(cands.idx.size());
#pragma omp parallel for schedule(static) if (count >= 4096 && l.numel() >= kParallelMin)
        for (int64_t e = 0; e < count; ++e) {
            const auto g = static_cast<size_t>(e) % groups;
            cands.params[static_cast<size_t>(e)] =
                params_for_range(vmin[g], vmax[g], mse_clip_ratio(cands.idx[static_cast<size_t>(e)]), bits, scheme);
        }
        pass.run(cands);
    };
    // Coarse: i = 0, kMseCoarseStep, ...; i = 0 is the MaxAbs range (ratio 1).
    cands.reset((kMseGridPoints + kMseCoarseStep - 1) / kMseCoarseStep, groups);
    for (size_t k = 0; k < cands.count; ++k)
        std::fill_n(cands.idx.begin() + static_cast<std::ptrdiff_t>(k * groups), groups, static_cast<int>(k) * kMseCoarseStep);
    evaluate();
    std::vector<double> best_sse(cands.sse.begin(), cands.sse.begin() + static_cast<std::ptrdiff_t>(groups));
    std::vector<int> best_i(groups, 0);
    auto take = [&](size_t k) {
        for (size_t g = 0; g < groups; ++g) {
            const size_t e = cands.at(k, g);
            if (cands.sse[e] < best_sse[g] || (cands.sse[e] == best_sse[g] && cands.idx[e] < best_i[g])) {
                best_sse[g] = cands.sse[e];
                best_i[g] = cands.idx[e];
                best[g] = cands.params[e];
            }
        }
    };
    for (size_t k = 1; k < cands.count; ++k) take(k);
    // Fine: a descent from each group's coarse best, by steps of kMseFineSteps: each step evaluates the
    // indices one step either side of the best so far and moves to the best of the three. Out of the grid,
    // the best so far stands in: its error is known, and taking it again changes nothing.
    for (int step : kMseFineSteps) {
        const std::vector<int> from = best_i;
        const std::vector<double> from_sse = best_sse;
        cands.reset(2, groups);
        for (size_t k = 0; k < 2; ++k)
            for (size_t g = 0; g < groups; ++g) {
                const int i = from[g] + (k == 0 ? -step : step);
                const size_t e = cands.at(k, g);
                cands.skip[e] = !(i >= 0 && i < kMseGridPoints);
                cands.idx[e] = cands.skip[e] ? from[g] : i;
            }
        evaluate();
        for (size_t k = 0; k < 2; ++k) {
            for (size_t g = 0; g < groups; ++g)
                if (cands.skip[cands.at(k, g)]) cands.sse[cands.at(k, g)] = from_sse[g];
            take(k);
        }
    }
    return best;
}

}  // namespace

double uniform_sse(const float* v, int64_t n, UniformParams p, int bits, Scheme scheme) {
    return flat_sse(v, n, p.scale, static_cast<float>(uniform_code_min(bits, scheme) - p.zero_point),
                    static_cast<float>(uniform_code_max(bits, scheme) - p.zero_point));
}

std::vector<UniformParams> choose_uniform_group_params(const float* x, const Layout& l, Granularity granularity,
                                                       int bits, Scheme scheme, WeightClip clip) {
    check_uniform_bits(bits);
    const bool per_channel = granularity == Granularity::PerChannel;
    std::unique_ptr<SparseGroups> groups;
    auto flat = [&]() -> const SparseGroups& {
        if (!groups) groups = std::make_unique<SparseGroups>(flat_groups(x, l, per_channel));
        return *groups;
    };
    return choose_params(x, l, group_ranges(x, l, per_channel), flat, granularity, bits, scheme, clip);
}

void set_uniform_side_data(const std::vector<UniformParams>& params, CompressedWeight& out) {
    const bool asym = out.scheme == Scheme::Asymmetric;
    out.scales.resize(params.size());
    out.zero_points.assign(asym ? params.size() : 0, 0);
    for (size_t g = 0; g < params.size(); ++g) {
        out.scales[g] = params[g].scale;
        if (asym) out.zero_points[g] = static_cast<int8_t>(params[g].zero_point);
    }
}

UniformParams choose_uniform_params(const float* values, int64_t n, int bits, Scheme scheme, WeightClip clip) {
    return choose_uniform_group_params(values, Layout{1, 1, n}, Granularity::PerTensor, bits, scheme, clip)[0];
}

namespace {

const char* uniform_unsupported(int, const WeightSpec&) { return nullptr; }

/// Whether x (clamped to integer bounds) may round differently from the x' that w / scale gives, where
/// x = w * (1 / scale) is within 3.02 * 2^-24 |x| of x' (three roundings): only when x is that close to a
/// half-integer. The margin is 2^-20 |x|. A clamped x is an integer, and then so is x' rounded.
inline bool near_half(float x, float rounded) {
    const float d = x - rounded;  // exact: |d| <= 0.5 and |x| < 2^22
    return 0.5f - (d < 0.0f ? -d : d) <= (x < 0.0f ? -x : x) * 0x1p-20f;
}

/// quantize_uniform of n values (a loop kernel of its own so that it vectorizes), multiplying by 1 / scale
/// rather than dividing (a division is several times slower); returns whether any value may be off by one
/// code for it (near_half), which quantize_row then redoes with quantize_uniform.
DCS_VECTOR_CLONES bool quantize_row_fast(const float* __restrict in, int64_t n, float inv, float lo, float hi,
                                         int zero_point, int8_t* __restrict out) {
    int near = 0;
    for (int64_t i = 0; i < n; ++i) {
        float x = in[i] * inv;
        x = x > lo ? x : lo;
        x = x < hi ? x : hi;
        const float r = (x + kRoundMagic) - kRoundMagic;  // as quantize_uniform rounds
        near |= static_cast<int>(near_half(x, r));
        out[i] = static_cast<int8_t>(static_cast<int>(r) + zero_point);
    }
    return near != 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/// quantize_row_fast with AVX-512: the same operations on 16 values at a time (the same codes and the
/// same near-half-step test, element by element), then the portable loop on the last n % 16.
DCS_AVX512_TARGET bool quantize_row_avx512(const float* in, int64_t n, float inv, float lo, float hi, int zero_point,
                                           int8_t* out) {
    const __m512 vinv = _mm512_set1_ps(inv), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512 magic = _mm512_set1_ps(kRoundMagic), half = _mm512_set1_ps(0.5f), margin = _mm512_set1_ps(0x1p-20f);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    __mmask16 near = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_mul_ps(_mm512_loadu_ps(in + i), vinv);
        x = _mm512_max_ps(x, vlo);  // (x > lo ? x : lo)
        x = _mm512_min_ps(x, vhi);  // (x < hi ? x : hi)
        const __m512 r = _mm512_sub_ps(_mm512_add_ps(x, magic), magic);
        const __m512 d = _mm512_abs_ps(_mm512_sub_ps(x, r));
        near |= _mm512_cmp_ps_mask(_mm512_sub_ps(half, d), _mm512_mul_ps(_mm512_abs_ps(x), margin), _CMP_LE_OQ);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvttps_epi32(r), zp)));
    }
    return quantize_row_fast(in + i, n - i, inv, lo, hi, zero_point, out + i) || near != 0;
}
#pragma GCC diagnostic pop
#endif

/// quantize_row_fast over a row of channels (MatMul [K, N] weights): channel c with 1 / scale inv[c],
/// bounds lo[c], hi[c] and zero point zp[c].
DCS_VECTOR_CLONES bool quantize_channels_fast(const float* __restrict in, size_t n, const float* __restrict inv,
                                              const float* __restrict lo, const float* __restrict hi,
                                              const int32_t* __restrict zp, int8_t* __restrict out) {
    int near = 0;
    for (size_t c = 0; c < n; ++c) {
        float x = in[c] * inv[c];
        x = x > lo[c] ? x : lo[c];
        x = x < hi[c] ? x : hi[c];
        const float r = (x + kRoundMagic) - kRoundMagic;
        near |= static_cast<int>(near_half(x, r));
        out[c] = static_cast<int8_t>(static_cast<int>(r) + zp[c]);
    }
    return near != 0;
}

/// quantize_uniform of n values: quantize_row_fast, exact.
void quantize_row(const float* in, int64_t n, UniformParams p, int qmin, int qmax, int8_t* out) {
    const float inv = 1.0f / p.scale, lo = static_cast<float>(qmin - p.zero_point), hi = static_cast<float>(qmax - p.zero_point);
    if (!std::isfinite(inv)) {  // a subnormal scale
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(quantize_uniform(in[i], p, qmin, qmax));
        return;
    }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const bool near = cpu::has(cpu::Isa::Avx512) ? quantize_row_avx512(in, n, inv, lo, hi, p.zero_point, out)
                                       : quantize_row_fast(in, n, inv, lo, hi, p.zero_point, out);
#else
    const bool near = quantize_row_fast(in, n, inv, lo, hi, p.zero_point, out);
#endif
    if (!near) return;
    for (int64_t i = 0; i < n; ++i) {
        float x = in[i] * inv;
        x = x > lo ? x : lo;
        x = x < hi ? x : hi;
        if (near_half(x, (x + kRoundMagic) - kRoundMagic))
            out[i] = static_cast<int8_t>(quantize_uniform(in[i], p, qmin, qmax));
    }
}

void uniform_encode(const PrunedWeight& pw, const WeightSpec& spec, CompressedWeight& out) {
    out.scheme = spec.scheme;
    out.granularity = spec.granularity;
    const Layout l = out.layout();
    const float* x = pw.masked();
    // The ranges and the MSE search's packed rows depend on the pruned weight only: made once per
    // PrunedWeight and reused for every bit width and scheme.
    const bool per_channel = out.granularity == Granularity::PerChannel;
    const std::string key = per_channel ? "uniform/channel" : "uniform/tensor";
    const GroupRanges& ranges = pw.memo<GroupRanges>(key + "/ranges", [&] { return group_ranges(x, l, per_channel); });
    auto flat = [&]() -> const SparseGroups& {
        return pw.memo<SparseGroups>(key + "/rows", [&] { return flat_groups(x, l, per_channel); });
    };
    const std::vector<UniformParams> params =
        choose_params(x, l, ranges, flat, out.granularity, out.bits, out.scheme, spec.clip);
    set_uniform_side_data(params, out);
    const int qmin = uniform_code_min(out.bits, out.scheme), qmax = uniform_code_max(out.bits, out.scheme);
    out.codes.resize(static_cast<size_t>(l.numel()));
    int8_t* code = out.codes.data();
    if (per_channel && l.inner == 1) {  // rows of channels: per-channel arrays, vectorizable
        const auto channels = static_cast<size_t>(l.channels);
        std::vector<float> inv(channels), lo(channels), hi(channels);
        std::vector<int32_t> zp(channels);
        bool finite = true;
        for (size_t c = 0; c < channels; ++c) {
            inv[c] = 1.0f / params[c].scale;
            finite &= std::isfinite(inv[c]);
            zp[c] = params[c].zero_point;
            lo[c] = static_cast<float>(qmin - params[c].zero_point);
            hi[c] = static_cast<float>(qmax - params[c].zero_point);
        }
#pragma omp parallel for schedule(static) if (l.outer > 1 && l.numel() >= kParallelMin)
        for (int64_t o = 0; o < l.outer; ++o) {
            const float* row = x + o * l.channels;
            int8_t* out_row = code + o * l.channels;
            if (finite && !quantize_channels_fast(row, channels, inv.data(), lo.data(), hi.data(), zp.data(), out_row))
                continue;
            for (size_t c = 0; c < channels; ++c) {  // the values near a half step, or a subnormal scale
                float q = row[c] * inv[c];
                q = q > lo[c] ? q : lo[c];
                q = q < hi[c] ? q : hi[c];
                if (!finite || near_half(q, (q + kRoundMagic) - kRoundMagic))
                    out_row[c] = static_cast<int8_t>(quantize_uniform(row[c], params[c], qmin, qmax));
            }
        }
        return;
    }
    const int64_t groups = l.outer * l.channels, channels = l.channels, inner = l.inner;
    const UniformParams* group_params = params.data();
#pragma omp parallel for schedule(static) if (groups > 1 && l.numel() >= kParallelMin)
    for (int64_t g = 0; g < groups; ++g) {
        quantize_row(x + g * inner, inner, group_params[per_channel ? g % channels : 0], qmin, qmax, code + g * inner);
    }
}

void uniform_decode(const CompressedWeight& cw, float* out) {
    const Layout l = cw.layout();
    const bool per_channel = cw.granularity == Granularity::PerChannel;
    const bool asym = cw.scheme == Scheme::Asymmetric;
    const int8_t* code = cw.codes.data();
    if (per_channel && l.inner == 1) {  // rows of channels, vectorizable
        const auto channels = static_cast<size_t>(l.channels);
        std::vector<int32_t> zp(channels, 0);
        if (asym)
            for (size_t c = 0; c < channels; ++c) zp[c] = cw.zero_points[c];
        const float* s = cw.scales.data();
        for (int64_t o = 0; o < l.outer; ++o, code += l.channels, out += l.channels)
            for (size_t c = 0; c < channels; ++c) out[c] = s[c] * static_cast<float>(code[c] - zp[c]);
        return;
    }
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c) {
            const size_t g = per_channel ? static_cast<size_t>(c) : 0;
            const UniformParams p{cw.scales[g], asym ? cw.zero_points[g] : 0};
            for (int64_t i = 0; i < l.inner; ++i) out[i] = dequantize_uniform(code[i], p);
            code += l.inner;
            out += l.inner;
        }
}

CodeMap uniform_code_map(int bits, Scheme scheme) {
    return CodeMap{uniform_code_min(bits, scheme), uniform_code_max(bits, scheme), 1};
}

std::string uniform_check(const CompressedWeight& cw) {
    const auto groups = static_cast<size_t>(cw.group_count());
    if (cw.scales.size() != groups)
        return "expected " + std::to_string(groups) + " scales, got " + std::to_string(cw.scales.size());
    for (float s : cw.scales)
        if (!(std::isfinite(s) && s > 0.0f)) return "scale " + std::to_string(s) + " is not finite and positive";
    if (cw.scheme == Scheme::Asymmetric) {
        if (cw.zero_points.size() != groups)
            return "expected " + std::to_string(groups) + " zero points, got " + std::to_string(cw.zero_points.size());
        const int lo = uniform_code_min(cw.bits, cw.scheme), hi = uniform_code_max(cw.bits, cw.scheme);
        for (int z : cw.zero_points)
            if (z < lo || z > hi) return "zero point " + std::to_string(z) + " outside the code range";
    } else if (!cw.zero_points.empty()) {
        return "symmetric weight with zero points";
    }
    if (!cw.codebook.empty()) return "uniform weight with a codebook";
    return "";
}

}  // namespace

/// Row of method_table(): 2..8 bits, symmetric or asymmetric, per channel or per tensor.
extern const WeightMethod uniform_method;
const WeightMethod uniform_method = {
    /*id=*/2, "uniform", Method::Quantize, /*min_bits=*/2, /*max_bits=*/8, /*int8_codes=*/true,
    uniform_unsupported, uniform_encode, uniform_decode, uniform_code_map, uniform_check,
};

}  // namespace dcs::compress
