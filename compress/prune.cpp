#include "compress/prune.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/cpu_features.hpp"

namespace dcs::compress {

namespace {

/// Up to this many elements the threshold comes from sorting (key, index) pairs; beyond, from a bracket
/// of a 2,048-key sample (bracket_select), which is faster from a few thousand elements on.
constexpr int64_t kSortMax = 4096;

/// |w| as its IEEE-754 bit pattern: for non-negative floats the integer order is the numeric order.
inline uint32_t magnitude_key(float v) {
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return u & 0x7fffffffu;
}

/// Small tensors: sort (key, index) pairs; the pair order is total, so the result is deterministic.
std::vector<uint8_t> prune_by_sort(const float* w, int64_t n, int64_t k) {
    std::vector<uint64_t> keys(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        keys[static_cast<size_t>(i)] = (uint64_t{magnitude_key(w[i])} << 32) | static_cast<uint64_t>(i);
    std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end());
    std::vector<uint8_t> mask(static_cast<size_t>(n), 1);
    const uint64_t last = keys[static_cast<size_t>(k - 1)];
    for (int64_t i = 0; i < n; ++i)
        if (((uint64_t{magnitude_key(w[i])} << 32) | static_cast<uint64_t>(i)) <= last)
            mask[static_cast<size_t>(i)] = 0;
    return mask;
}

/// The k-th smallest (key, index) pair as (T, cut): every element with key < T, or key == T and index <=
/// cut, is pruned (exactly k elements). Two-pass radix select on the 31-bit magnitude key (high 16 bits,
/// then low 16 bits), O(n); the fallback of bracket_select.
std::pair<uint32_t, int64_t> radix_select(const float* w, int64_t n, int64_t k) {
    std::vector<uint32_t> hist(1u << 16, 0);
    for (int64_t i = 0; i < n; ++i) ++hist[magnitude_key(w[i]) >> 16];
    int64_t below = 0;  // keys in buckets before `hi`
    uint32_t hi = 0;
    while (below + hist[hi] < k) below += hist[hi++];
    std::fill(hist.begin(), hist.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t key = magnitude_key(w[i]);
        if ((key >> 16) == hi) ++hist[key & 0xffffu];
    }
    uint32_t lo = 0;
    while (below + hist[lo] < k) below += hist[lo++];
    const uint32_t threshold = (hi << 16) | lo;
    // The (k - below)-th element whose key equals the threshold, by index.
    int64_t ties = k - below, cut = -1;
    for (int64_t i = 0; i < n && ties > 0; ++i)
        if (magnitude_key(w[i]) == threshold) {
            cut = i;
            --ties;
        }
    return {threshold, cut};
}

/// Keys of w[begin, n) in [lo, hi] and their indices, gathered in index order; returns how many (-1 when
/// more than cap), and counts the keys below lo into *below. keys and idx have room for cap + 16 values.
int64_t gather_portable(const float* w, int64_t begin, int64_t n, uint32_t lo, uint32_t hi, uint32_t* keys,
                        uint32_t* idx, int64_t cap, int64_t* below) {
    int64_t count = 0, under = 0;
    for (int64_t i = begin; i < n; ++i) {  // branch-free compaction: write always, advance when inside
        const uint32_t key = magnitude_key(w[i]);
        keys[count] = key;
        idx[count] = static_cast<uint32_t>(i);
        under += key < lo;
        count += (key >= lo) & (key <= hi);
        if (count > cap) return -1;
    }
    *below = under;
    return count;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/// gather_portable with AVX-512: 16 keys per step, the inside ones compressed into a register.
__attribute__((target("avx512f"))) int64_t gather_avx512(const float* w, int64_t n, uint32_t lo, uint32_t hi,
                                                         uint32_t* keys, uint32_t* idx, int64_t cap,
                                                         int64_t* below) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo)), vhi = _mm512_set1_epi32(static_cast<int>(hi));
    const __m512i step = _mm512_set1_epi32(16);
    __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int64_t count = 0, under = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i key = _mm512_and_si512(_mm512_loadu_si512(w + i), abs_mask);
        const __mmask16 low = _mm512_cmplt_epu32_mask(key, vlo);
        const __mmask16 in = _mm512_mask_cmple_epu32_mask(static_cast<__mmask16>(~low), key, vhi);
        under += __builtin_popcount(low);
        // Full-width stores of the compressed vectors (the buffers have 16 spare slots).
        _mm512_storeu_si512(keys + count, _mm512_maskz_compress_epi32(in, key));
        _mm512_storeu_si512(idx + count, _mm512_maskz_compress_epi32(in, index));
        count += __builtin_popcount(in);
        if (count > cap) return -1;
        index = _mm512_add_epi32(index, step);
    }
    int64_t tail_below = 0;
    const int64_t tail = gather_portable(w, i, n, lo, hi, keys + count, idx + count, cap - count, &tail_below);
    if (tail < 0) return -1;
    *below = under + tail_below;
    return count + tail;
}
#endif

/// Large tensors: the k-th smallest (key, index) pair (as radix_select) from a bracket. The k-th key lies
/// between two keys lo <= hi of a strided sample of 2,048 keys (ranks 80 apart from the expected one:
/// 3.5 standard deviations of the sample rank or more); one pass counts the keys below lo and gathers
/// the keys in [lo, hi] with their indices (about 8% of the tensor), and the pair is selected among
/// those. If the bracket misses, or holds more than an eighth of the keys, radix_select finds the same
/// pair.
std::pair<uint32_t, int64_t> bracket_select(const float* w, int64_t n, int64_t k, detail::SelectPath* path) {
    constexpr int64_t kSample = 2048, kMargin = 80;
    const int64_t stride = n / kSample;
    std::vector<uint32_t> sample(kSample);
    for (int64_t s = 0; s < kSample; ++s) sample[static_cast<size_t>(s)] = magnitude_key(w[s * stride]);
    const auto rank = static_cast<int64_t>(static_cast<double>(k) / static_cast<double>(n) * kSample);
    uint32_t lo = 0, hi = 0xffffffffu;
    if (rank - kMargin >= 0) {
        const auto at = sample.begin() + (rank - kMargin);
        std::nth_element(sample.begin(), at, sample.end());
        lo = *at;
    }
    if (rank + kMargin < kSample) {
        const auto from = sample.begin() + std::max<int64_t>(rank - kMargin, 0);
        const auto at = sample.begin() + (rank + kMargin);
        std::nth_element(from, at, sample.end());
        hi = *at;
    }
    // Room for an eighth of the keys (the bracket expects 7.8%; more, e.g. with many equal magnitudes,
    // goes to radix_select), uninitialized so that only what is written is touched, plus 16 spare slots
    // for the full-width stores of the AVX-512 gather.
    const int64_t cap = n / 8 + 256;
    std::unique_ptr<uint32_t[]> buffer(new uint32_t[2 * static_cast<size_t>(cap + 16)]);
    uint32_t* keys = buffer.get();
    uint32_t* idx = keys + cap + 16;
    int64_t below = 0, count = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const bool use_avx512 = cpu::has(cpu::Isa::Avx512);
    if (use_avx512) count = gather_avx512(w, n, lo, hi, keys, idx, cap, &below);
    else count = gather_portable(w, 0, n, lo, hi, keys, idx, cap, &below);
#else
    const bool use_avx512 = false;
    count = gather_portable(w, 0, n, lo, hi, keys, idx, cap, &below);
#endif
    if (count < 0 || k <= below || k > below + count) {
        *path = detail::SelectPath::Radix;
        return radix_select(w, n, k);
    }
    *path = use_avx512 ? detail::SelectPath::BracketAvx512 : detail::SelectPath::Bracket;
    // Among the gathered keys, a histogram of (key - lo) >> shift over at most 4096 buckets finds the
    // bucket of the (k - below)-th key; the pairs of that bucket (a handful) are selected from.
    int shift = 0;
    while (((hi - lo) >> shift) >= 4096u) ++shift;
    std::vector<uint32_t> hist(4096, 0);
    for (int64_t j = 0; j < count; ++j) ++hist[(keys[j] - lo) >> shift];
    int64_t r = k - below;  // 1-based rank among the gathered keys
    uint32_t b = 0;
    while (r > hist[b]) r -= hist[b++];
    std::vector<uint64_t> pairs;
    pairs.reserve(hist[b]);
    for (int64_t j = 0; j < count; ++j)
        if (((keys[j] - lo) >> shift) == b) pairs.push_back((uint64_t{keys[j]} << 32) | idx[j]);
    const auto nth = pairs.begin() + (r - 1);
    std::nth_element(pairs.begin(), nth, pairs.end());
    return {static_cast<uint32_t>(*nth >> 32), static_cast<int64_t>(*nth & 0xffffffffu)};
}

/// The keep mask of the pair (T, cut): kept when key > T, or key == T and index > cut (branch-free).
/// Keys are below 2^31, so they compare as signed integers (which SSE2 vectorizes).
/// Elements [begin, end) of the mask; `cut` is an absolute index.
DCS_VECTOR_CLONES void mask_loops(const float* __restrict w, int64_t begin, int64_t end, int32_t threshold,
                                  int64_t cut, uint8_t* __restrict m) {
    int64_t i = begin;
    // Below the cut a tie is pruned, above it kept: two loops without the index test.
    const int64_t split = std::max(begin, std::min(cut + 1, end));
    for (; i < split; ++i) m[i] = static_cast<int32_t>(magnitude_key(w[i])) > threshold;
    for (; i < end; ++i) m[i] = static_cast<int32_t>(magnitude_key(w[i])) >= threshold;
}

std::vector<uint8_t> mask_above(const float* w, int64_t n, uint32_t threshold, int64_t cut) {
    std::vector<uint8_t> mask(static_cast<size_t>(n));
    // Chunks of 64K elements on the OpenMP threads (the same mask on any thread count).
    constexpr int64_t kChunk = 65536;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    uint8_t* m = mask.data();
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c)
        mask_loops(w, c * kChunk, std::min(n, (c + 1) * kChunk), static_cast<int32_t>(threshold), cut, m);
    return mask;
}

}  // namespace

int64_t prune_count(int64_t n, double ratio) {
    if (!(ratio >= 0.0 && ratio < 1.0))
        throw std::invalid_argument("prune_ratio must be in [0, 1), got " + std::to_string(ratio));
    if (n < 0) throw std::invalid_argument("prune_count: negative item count " + std::to_string(n));
    const auto k = static_cast<int64_t>(std::floor(ratio * static_cast<double>(n) + 1e-6));
    return std::min(k, n);
}

std::vector<uint8_t> magnitude_prune_mask(const float* w, int64_t n, double ratio) {
    detail::SelectPath path;
    return detail::magnitude_prune_mask(w, n, ratio, &path);
}

std::vector<uint8_t> detail::magnitude_prune_mask(const float* w, int64_t n, double ratio, SelectPath* path) {
    const int64_t k = prune_count(n, ratio);
    *path = SelectPath::None;
    if (k == 0) return {};
    if (n <= kSortMax) {
        *path = SelectPath::Sort;
        return prune_by_sort(w, n, k);
    }
    const auto [threshold, cut] = bracket_select(w, n, k, path);
    return mask_above(w, n, threshold, cut);
}

std::vector<uint8_t> filter_prune_mask(const float* w, const Layout& l, double ratio) {
    const int64_t k = prune_count(l.channels, ratio);
    if (k == 0) return {};
    std::vector<double> l1(static_cast<size_t>(l.channels), 0.0);
    const float* p = w;
    if (l.inner == 1) {  // rows of channels, vectorizable
        double* acc = l1.data();
        for (int64_t o = 0; o < l.outer; ++o, p += l.channels)
            for (int64_t c = 0; c < l.channels; ++c) acc[c] += std::fabs(static_cast<double>(p[c]));
    } else {
        for (int64_t o = 0; o < l.outer; ++o)
            for (int64_t c = 0; c < l.channels; ++c) {
                double s = 0.0;
                for (int64_t i = 0; i < l.inner; ++i) s += std::fabs(static_cast<double>(p[i]));
                l1[static_cast<size_t>(c)] += s;
                p += l.inner;
            }
    }
    std::vector<int64_t> order(static_cast<size_t>(l.channels));
    std::iota(order.begin(), order.end(), int64_t{0});
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const double la = l1[static_cast<size_t>(a)], lb = l1[static_cast<size_t>(b)];
        return la < lb || (la == lb && a < b);
    });
    std::vector<uint8_t> keep_channel(static_cast<size_t>(l.channels), 1);
    for (int64_t j = 0; j < k; ++j) keep_channel[static_cast<size_t>(order[static_cast<size_t>(j)])] = 0;
    std::vector<uint8_t> mask(static_cast<size_t>(l.numel()));
    uint8_t* m = mask.data();
    for (int64_t o = 0; o < l.outer; ++o) {
        if (l.inner == 1) {
            std::memcpy(m, keep_channel.data(), keep_channel.size());
            m += l.channels;
            continue;
        }
        for (int64_t c = 0; c < l.channels; ++c) {
            std::memset(m, keep_channel[static_cast<size_t>(c)], static_cast<size_t>(l.inner));
            m += l.inner;
        }
    }
    return mask;
}

std::vector<uint8_t> prune_mask(const float* w, const Layout& l, double ratio, Pruning kind) {
    return kind == Pruning::Filter ? filter_prune_mask(w, l, ratio) : magnitude_prune_mask(w, l.numel(), ratio);
}

}  // namespace dcs::compress
