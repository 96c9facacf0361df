#include "compress/prune.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "common/cpu_features.hpp"
#include "random_tensor.hpp"

using namespace dcs::compress;
namespace cpu = dcs::cpu;
using dcs::compress::testing::normal_tensor;

namespace {

int64_t pruned(const std::vector<uint8_t>& mask) {
    return static_cast<int64_t>(std::count(mask.begin(), mask.end(), uint8_t{0}));
}

/// Reference: stable sort of indices by |w|, the first k pruned.
std::vector<uint8_t> reference_magnitude_mask(const std::vector<float>& w, int64_t k) {
    std::vector<size_t> order(w.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return std::fabs(w[a]) < std::fabs(w[b]); });
    std::vector<uint8_t> mask(w.size(), 1);
    for (int64_t j = 0; j < k; ++j) mask[order[static_cast<size_t>(j)]] = 0;
    return mask;
}

}  // namespace

// Golden counts by hand: floor(ratio * n + 1e-6).
TEST(PruneCount, FloorOfRatioTimesCount) {
    EXPECT_EQ(prune_count(100, 0.29), 29);  // 0.29 * 100 = 28.999999999999996 in double
    EXPECT_EQ(prune_count(10, 0.25), 2);    // 2.5 -> 2
    EXPECT_EQ(prune_count(10, 0.9), 9);
    EXPECT_EQ(prune_count(7, 0.5), 3);
    EXPECT_EQ(prune_count(235200, 0.75), 176400);
    EXPECT_EQ(prune_count(0, 0.5), 0);
    EXPECT_EQ(prune_count(3, 0.0), 0);
}

TEST(PruneCount, RejectsBadRatios) {
    EXPECT_THROW(prune_count(10, -0.1), std::invalid_argument);
    EXPECT_THROW(prune_count(10, 1.0), std::invalid_argument);
    EXPECT_THROW(prune_count(10, std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
    EXPECT_THROW(prune_count(-1, 0.5), std::invalid_argument);
    EXPECT_THROW(magnitude_prune_mask(nullptr, 0, 1.5), std::invalid_argument);
}

// By hand: magnitudes 0.5 .1 .1 0 0 .3 .1 2; order by (|w|, index): 3 4 1 2 6 5 0 7.
TEST(MagnitudePrune, GoldenWithTies) {
    const std::vector<float> w = {0.5f, -0.1f, 0.1f, 0.0f, -0.0f, 0.3f, -0.1f, 2.0f};
    EXPECT_TRUE(magnitude_prune_mask(w.data(), 8, 0.0).empty());
    EXPECT_TRUE(magnitude_prune_mask(w.data(), 8, 0.1).empty());  // floor(0.8) = 0
    EXPECT_EQ(magnitude_prune_mask(w.data(), 8, 0.25), (std::vector<uint8_t>{1, 1, 1, 0, 0, 1, 1, 1}));
    EXPECT_EQ(magnitude_prune_mask(w.data(), 8, 0.4), (std::vector<uint8_t>{1, 0, 1, 0, 0, 1, 1, 1}));
    EXPECT_EQ(magnitude_prune_mask(w.data(), 8, 0.5), (std::vector<uint8_t>{1, 0, 0, 0, 0, 1, 1, 1}));
    EXPECT_EQ(magnitude_prune_mask(w.data(), 8, 0.75), (std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 0, 1}));
}

// Every implementation (sort up to 4,096 elements, the bracket or the radix select above) against the
// reference, with and without many ties.
TEST(MagnitudePrune, MatchesReferenceAndCountIsExact) {
    for (int64_t n : {1, 7, 100, 4096, 4097, 5000, 16384, 16385, 40000, 100003})
        for (bool ties : {false, true})
            for (double ratio : {0.0, 0.25, 0.5, 0.75, 0.9, 0.999}) {
                std::vector<float> w = normal_tensor(n, static_cast<uint32_t>(n) + (ties ? 1 : 0));
                if (ties)
                    for (float& x : w) x = std::round(x * 4) / 4;  // few distinct magnitudes
                const int64_t k = prune_count(n, ratio);
                const std::vector<uint8_t> mask = magnitude_prune_mask(w.data(), n, ratio);
                if (k == 0) {
                    EXPECT_TRUE(mask.empty());
                    continue;
                }
                ASSERT_EQ(static_cast<int64_t>(mask.size()), n);
                EXPECT_EQ(pruned(mask), k) << "n=" << n << " ratio=" << ratio;
                EXPECT_EQ(mask, reference_magnitude_mask(w, k)) << "n=" << n << " ratio=" << ratio << " ties=" << ties;
            }
}

// Above 4,096 elements the threshold comes from a bracket around a strided sample's keys (AVX-512 or
// portable gather), or from the radix select when the bracket misses. Every path against the reference:
// Gaussian weights, weights with few distinct magnitudes (ties across the bracket's bounds and the
// threshold), tensors whose sampled elements (every n / 2048-th) are far larger or smaller than the
// rest, so that the bracket misses, and tensors of mostly one magnitude, whose bracket holds too many.
TEST(MagnitudePrune, EveryLargeTensorPathMatchesTheReference) {
    using detail::SelectPath;
    std::set<SelectPath> seen;
    for (int64_t n : {4097, 10080, 16385, 40000, 100003, 235200})
        for (int kind = 0; kind < 5; ++kind)
            for (double ratio : {0.1, 0.5, 0.9, 0.999})
                for (bool avx512 : {true, false}) {
                    std::vector<float> w = normal_tensor(n, static_cast<uint32_t>(n + kind));
                    const int64_t stride = n / 2048;
                    if (kind == 1)
                        for (float& x : w) x = std::round(x * 8) / 8;
                    if (kind == 2)  // sampled elements huge: every bracket lies too high
                        for (int64_t i = 0; i < 2048; ++i) w[static_cast<size_t>(i * stride)] = 100.0f + i;
                    if (kind == 3)  // sampled elements tiny: too low
                        for (int64_t i = 0; i < 2048; ++i) w[static_cast<size_t>(i * stride)] = 1e-6f * i;
                    if (kind == 4)  // +-0.5 but every tenth element
                        for (size_t i = 0; i < w.size(); ++i)
                            if (i % 10) w[i] = w[i] < 0 ? -0.5f : 0.5f;
                    SelectPath path;
                    std::vector<uint8_t> mask;
                    {
                        cpu::ScopedMaxIsa cap(avx512 ? cpu::max_isa() : cpu::Isa::Avx2);
                        mask = detail::magnitude_prune_mask(w.data(), n, ratio, &path);
                    }
                    seen.insert(path);
                    const int64_t k = prune_count(n, ratio);
                    ASSERT_EQ(static_cast<int64_t>(mask.size()), n);
                    EXPECT_EQ(mask, reference_magnitude_mask(w, k))
                        << "n=" << n << " kind=" << kind << " ratio=" << ratio << " avx512=" << avx512
                        << " path=" << static_cast<int>(path);
                    // (At 0.999 the bracket's upper bound is the largest key, so it holds the threshold.)
                    if ((kind == 2 || kind == 3) && ratio < 0.99) {
                        EXPECT_EQ(path, SelectPath::Radix) << "n=" << n << " kind=" << kind << " ratio=" << ratio;
                    }
                    if (kind == 4 && ratio > 0.1 && ratio < 0.99) {
                        EXPECT_EQ(path, SelectPath::Radix) << "n=" << n << " ratio=" << ratio;
                    }
                    if (kind == 0) {
                        EXPECT_NE(path, SelectPath::Radix) << "n=" << n << " ratio=" << ratio;
                    }
                    if (!avx512) {
                        EXPECT_NE(path, SelectPath::BracketAvx512);
                    }
                }
    EXPECT_TRUE(seen.count(SelectPath::Bracket));
    EXPECT_TRUE(seen.count(SelectPath::Radix));
    if (cpu::has(cpu::Isa::Avx512)) {
        EXPECT_TRUE(seen.count(SelectPath::BracketAvx512));
    }
}

// By hand: channel L1 norms 3, 1, 2, 1.
TEST(FilterPrune, GoldenOutAxis0) {
    const std::vector<float> w = {1, 1, 1, 0.5f, -0.5f, 0, -2, 0, 0, 0.5f, 0.5f, 0};
    const Layout l = weight_layout({4, 3}, 0);
    EXPECT_TRUE(filter_prune_mask(w.data(), l, 0.2).empty());  // floor(0.8) = 0 channels
    EXPECT_EQ(filter_prune_mask(w.data(), l, 0.25), (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
    EXPECT_EQ(filter_prune_mask(w.data(), l, 0.5), (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0}));
    EXPECT_EQ(filter_prune_mask(w.data(), l, 0.75), (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

// By hand: [[1, .1, -3], [1, .2, 0]] with out_axis 1 has column L1 norms 2, 0.3, 3.
TEST(FilterPrune, GoldenOutAxis1) {
    const std::vector<float> w = {1, 0.1f, -3, 1, 0.2f, 0};
    const Layout l = weight_layout({2, 3}, 1);
    EXPECT_EQ(filter_prune_mask(w.data(), l, 0.34), (std::vector<uint8_t>{1, 0, 1, 1, 0, 1}));
    EXPECT_EQ(filter_prune_mask(w.data(), l, 0.67), (std::vector<uint8_t>{0, 0, 1, 0, 0, 1}));
    EXPECT_EQ(prune_mask(w.data(), l, 0.67, dcs::compress::Pruning::Filter), filter_prune_mask(w.data(), l, 0.67));
    EXPECT_EQ(prune_mask(w.data(), l, 0.5, dcs::compress::Pruning::Unstructured), magnitude_prune_mask(w.data(), 6, 0.5));
}

TEST(FilterPrune, ExactChannelCountAndSmallestNorms) {
    struct Case {
        std::vector<int64_t> shape;
        int64_t out_axis;
    };
    for (const Case& cs : {Case{{64, 3, 3, 3}, 0}, Case{{784, 300}, 1}, Case{{5, 12, 7}, 1}, Case{{9}, 0}})
        for (double ratio : {0.0, 0.25, 0.5, 0.75, 0.9}) {
            const Layout l = weight_layout(cs.shape, cs.out_axis);
            const std::vector<float> w = normal_tensor(l.numel(), 42);
            const std::vector<uint8_t> mask = filter_prune_mask(w.data(), l, ratio);
            const int64_t k = prune_count(l.channels, ratio);
            if (k == 0) {
                EXPECT_TRUE(mask.empty());
                continue;
            }
            // Whole channels, k of them, and none kept has a smaller L1 norm than one pruned.
            std::vector<double> l1(static_cast<size_t>(l.channels), 0.0);
            std::vector<int> kept_in(static_cast<size_t>(l.channels), 0), pruned_in(static_cast<size_t>(l.channels), 0);
            for (int64_t i = 0; i < l.numel(); ++i) {
                const auto c = static_cast<size_t>(l.channel_of(i));
                l1[c] += std::fabs(w[static_cast<size_t>(i)]);
                (mask[static_cast<size_t>(i)] ? kept_in : pruned_in)[c]++;
            }
            int64_t pruned_channels = 0;
            double max_pruned = 0, min_kept = 1e300;
            for (size_t c = 0; c < l1.size(); ++c) {
                ASSERT_TRUE(kept_in[c] == 0 || pruned_in[c] == 0) << "channel " << c << " partly pruned";
                if (pruned_in[c]) {
                    ++pruned_channels;
                    max_pruned = std::max(max_pruned, l1[c]);
                } else {
                    min_kept = std::min(min_kept, l1[c]);
                }
            }
            EXPECT_EQ(pruned_channels, k);
            EXPECT_LE(max_pruned, min_kept);
            EXPECT_EQ(pruned(mask), k * (l.numel() / l.channels));
        }
}
