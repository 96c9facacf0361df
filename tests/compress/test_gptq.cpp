#include "compress/gptq.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "compress/prune.hpp"
#include "random_tensor.hpp"

using namespace dcs::compress;
using dcs::compress::testing::normal_tensor;
using dcs::compress::testing::numel;

namespace {

/// n correlated input vectors of k values for each group: x = A z with a random mixing A (plus a
/// shared component), z ~ N(0, 1); input `dead` (if >= 0) is always 0.
LayerHessian correlated_hessian(int64_t groups, int64_t k, int64_t n, uint32_t seed, int64_t dead = -1) {
    LayerHessian h(groups, k);
    for (int64_t g = 0; g < groups; ++g) {
        const std::vector<float> a = normal_tensor(k * k, seed + 100 * static_cast<uint32_t>(g), 0.5f);
        const std::vector<float> z = normal_tensor(n * k, seed + 1 + 100 * static_cast<uint32_t>(g));
        std::vector<float> x(static_cast<size_t>(n * k));
        for (int64_t s = 0; s < n; ++s)
            for (int64_t i = 0; i < k; ++i) {
                double v = 0.8 * z[s * k];  // a component every input shares
                for (int64_t j = 0; j < k; ++j) v += a[i * k + j] * z[s * k + j];
                x[s * k + i] = i == dead ? 0.0f : static_cast<float>(v);
            }
        h.add(g, x.data(), n);
    }
    return h;
}

struct Case {
    std::vector<int64_t> shape;
    int64_t out_axis;
    int64_t groups;
};

int64_t columns(const Case& c) {
    const Layout l = weight_layout(c.shape, c.out_axis);
    return l.outer * l.inner;
}

const Case kCases[] = {
    {{24, 40}, 0, 1},        // Gemm transB [N, K]
    {{40, 24}, 1, 1},        // MatMul [K, N]
    {{8, 3, 3, 3}, 0, 2},    // grouped Conv [OC, IC/group, KH, KW]
    {{6, 150}, 0, 1},        // more columns than a mask block
};

int64_t pruned_count(const CompressedWeight& cw) {
    return static_cast<int64_t>(std::count(cw.mask.begin(), cw.mask.end(), uint8_t{0}));
}

}  // namespace

TEST(Gptq, OutputErrorNeverWorseThanNearest) {
    uint32_t seed = 1;
    int cases = 0, improved = 0;  // improved: GPTQ's own result, strictly better than nearest rounding
    for (const Case& c : kCases) {
        const std::vector<float> w = normal_tensor(numel(c.shape), seed++);
        const LayerHessian h = correlated_hessian(c.groups, columns(c), 200, seed++, /*dead=*/2);
        const Layout l = weight_layout(c.shape, c.out_axis);
        for (int bits = 2; bits <= 8; ++bits)
            for (double ratio : {0.0, 0.3, 0.6})
                for (Scheme scheme : {Scheme::Symmetric, Scheme::Asymmetric})
                    for (WeightClip clip : {WeightClip::MaxAbs, WeightClip::Mse}) {
                        WeightSpec spec;
                        spec.scheme = scheme;
                        spec.clip = clip;
                        const LayerChoice choice{bits, ratio};
                        const CompressedWeight nearest = compress_weight(w.data(), c.shape, c.out_axis, choice, spec);
                        spec.rounding = Rounding::Gptq;
                        const CompressedWeight gptq = gptq_compress_weight(w.data(), c.shape, c.out_axis, choice, spec, h);
                        const std::string what = shape_string(c.shape) + " bits " + std::to_string(bits) + " ratio " +
                                                 std::to_string(ratio) + " scheme " + std::to_string(int(scheme)) +
                                                 " clip " + std::to_string(int(clip));
                        EXPECT_EQ(check_compressed_weight(gptq), "") << what;
                        EXPECT_EQ(gptq.scales.size(), nearest.scales.size()) << what;
                        EXPECT_EQ(pruned_count(gptq), prune_count(l.numel(), ratio)) << what;
                        const std::vector<float> qn = nearest.dequantize(), qg = gptq.dequantize();
                        for (int64_t i = 0; i < l.numel(); ++i)
                            if (gptq.is_pruned(i)) {
                                ASSERT_EQ(qg[i], 0.0f) << what;
                            }
                        const double en = hessian_error(w.data(), qn.data(), l, h);
                        const double eg = hessian_error(w.data(), qg.data(), l, h);
                        EXPECT_LE(eg, en) << what;
                        ++cases;
                        improved += gptq != nearest && eg < en;
                    }
    }
    EXPECT_GE(improved, cases * 95 / 100) << improved << " of " << cases;
}

TEST(Gptq, SameScalesAsNearestWithoutPruning) {
    const Case c = kCases[0];
    const std::vector<float> w = normal_tensor(numel(c.shape), 7);
    const LayerHessian h = correlated_hessian(1, columns(c), 100, 8);
    WeightSpec spec;
    spec.clip = WeightClip::Mse;
    const CompressedWeight nearest = compress_weight(w.data(), c.shape, c.out_axis, {3, 0.0}, spec);
    const CompressedWeight gptq = gptq_compress_weight(w.data(), c.shape, c.out_axis, {3, 0.0}, spec, h);
    EXPECT_EQ(gptq.scales, nearest.scales);
    EXPECT_TRUE(gptq.mask.empty());
    EXPECT_EQ(gptq.method_id, nearest.method_id);
}

TEST(Gptq, Deterministic) {
    const Case c = kCases[3];
    const std::vector<float> w = normal_tensor(numel(c.shape), 11);
    const LayerHessian h = correlated_hessian(1, columns(c), 300, 12);
    WeightSpec spec;
    const CompressedWeight a = gptq_compress_weight(w.data(), c.shape, c.out_axis, {4, 0.5}, spec, h);
    const CompressedWeight b = gptq_compress_weight(w.data(), c.shape, c.out_axis, {4, 0.5}, spec, h);
    EXPECT_TRUE(a == b);
}

TEST(Gptq, FilterPruningKeepsTheMagnitudeFilters) {
    const Case c = kCases[2];
    const std::vector<float> w = normal_tensor(numel(c.shape), 13);
    const LayerHessian h = correlated_hessian(c.groups, columns(c), 100, 14);
    WeightSpec spec;
    spec.pruning = Pruning::Filter;
    const CompressedWeight nearest = compress_weight(w.data(), c.shape, c.out_axis, {4, 0.5}, spec);
    const CompressedWeight gptq = gptq_compress_weight(w.data(), c.shape, c.out_axis, {4, 0.5}, spec, h);
    EXPECT_EQ(gptq.mask, nearest.mask);
    EXPECT_EQ(check_compressed_weight(gptq), "");
}

TEST(Gptq, OtherMethodsFallBackToNearest) {
    const Case c = kCases[0];
    const std::vector<float> w = normal_tensor(numel(c.shape), 15);
    const LayerHessian h = correlated_hessian(1, columns(c), 50, 16);
    WeightSpec spec;
    EXPECT_TRUE(gptq_compress_weight(w.data(), c.shape, c.out_axis, {1, 0.0}, spec, h) ==
                compress_weight(w.data(), c.shape, c.out_axis, {1, 0.0}, spec));
    spec.method = Method::Cluster;
    EXPECT_TRUE(gptq_compress_weight(w.data(), c.shape, c.out_axis, {3, 0.25}, spec, h) ==
                compress_weight(w.data(), c.shape, c.out_axis, {3, 0.25}, spec));
}

TEST(Gptq, RejectsAHessianThatDoesNotFit) {
    const std::vector<float> w = normal_tensor(24 * 40, 17);
    const LayerHessian h(1, 39);
    EXPECT_THROW(gptq_compress_weight(w.data(), {24, 40}, 0, {4, 0.0}, WeightSpec{}, h), std::invalid_argument);
    EXPECT_THROW(LayerHessian(0, 4), std::invalid_argument);
}

TEST(Gptq, DeadInputsAreZeroedAndHarmless) {
    const Case c = kCases[0];
    const std::vector<float> w = normal_tensor(numel(c.shape), 19);
    const LayerHessian h = correlated_hessian(1, columns(c), 100, 20, /*dead=*/5);
    const CompressedWeight gptq = gptq_compress_weight(w.data(), c.shape, c.out_axis, {8, 0.0}, WeightSpec{}, h);
    for (int64_t r = 0; r < c.shape[0]; ++r) EXPECT_EQ(gptq.codes[static_cast<size_t>(r * c.shape[1] + 5)], 0);
}
