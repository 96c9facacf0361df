#include "compress/prune.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

namespace dcs::compress {

namespace {

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

/// Large tensors: two-pass radix select on the 31-bit magnitude key (high 16 bits, then low 16 bits),
/// O(n) with no per-element allocation. Finds the k-th smallest key T; every key < T is pruned, and the
/// first (by index) keys == T until k are pruned.
std::vector<uint8_t> prune_by_radix(const float* w, int64_t n, int64_t k) {
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
    // Keep every key >= threshold (branch-free), then prune the first keys == threshold, by index, until
    // k elements are pruned.
    std::vector<uint8_t> mask(static_cast<size_t>(n));
    uint8_t* m = mask.data();
    for (int64_t i = 0; i < n; ++i) m[i] = magnitude_key(w[i]) >= threshold;
    int64_t ties_to_prune = k - below;
    for (int64_t i = 0; i < n && ties_to_prune > 0; ++i)
        if (magnitude_key(w[i]) == threshold) {
            m[i] = 0;
            --ties_to_prune;
        }
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
    const int64_t k = prune_count(n, ratio);
    if (k == 0) return {};
    return n <= 16384 ? prune_by_sort(w, n, k) : prune_by_radix(w, n, k);
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
