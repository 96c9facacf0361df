#include "compress/weight.hpp"

#include "common/cpu_features.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.hpp"
#include "compress/method.hpp"
#include "compress/prune.hpp"
#include "random_tensor.hpp"

using namespace dcs::compress;
namespace cpu = dcs::cpu;
using dcs::compress::testing::normal_tensor;

TEST(CompressWeight, RejectsBadArguments) {
    const std::vector<float> w(12, 0.5f);
    const WeightSpec spec;
    EXPECT_THROW(compress_weight(nullptr, {3, 4}, 0, LayerChoice{8, 0.0}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {3, 4}, 2, LayerChoice{8, 0.0}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {}, 0, LayerChoice{8, 0.0}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {3, 0}, 0, LayerChoice{8, 0.0}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {3, 4}, 0, LayerChoice{0, 0.0}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {3, 4}, 0, LayerChoice{9, 0.0}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {3, 4}, 0, LayerChoice{8, 1.0}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {3, 4}, 0, LayerChoice{8, -0.5}, spec), std::invalid_argument);
    EXPECT_THROW(compress_weight(w.data(), {3, 4}, 0, LayerChoice{8, std::nan("")}, spec), std::invalid_argument);
    try {
        compress_weight(w.data(), {3, 4}, 0, LayerChoice{9, 0.0}, spec);
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("got 9"), std::string::npos) << e.what();
    }
    std::vector<float> bad = w;
    bad[7] = std::numeric_limits<float>::infinity();
    try {
        compress_weight(bad.data(), {3, 4}, 0, LayerChoice{8, 0.0}, spec);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("element 7"), std::string::npos) << e.what();
    }
    bad[7] = std::nanf("");
    EXPECT_THROW(compress_weight(bad.data(), {3, 4}, 0, LayerChoice{8, 0.0}, spec), std::invalid_argument);
}

// The int8 runtime contract: dequantized = channel_scale(c) * (code - channel_zero_point(c)), exactly.
TEST(CompressWeight, Int8RuntimeContract) {
    const std::vector<float> w = normal_tensor(12 * 5 * 3, 21);
    for (int bits = 1; bits <= 8; ++bits)
        for (Scheme s : {Scheme::Symmetric, Scheme::Asymmetric})
            for (Granularity g : {Granularity::PerChannel, Granularity::PerTensor}) {
                WeightSpec spec;
                spec.scheme = s;
                spec.granularity = g;
                const CompressedWeight cw = compress_weight(w.data(), {12, 5, 3}, 1, LayerChoice{bits, 0.25}, spec);
                ASSERT_TRUE(cw.has_int8_codes());
                const std::vector<float> dq = cw.dequantize();
                const Layout l = cw.layout();
                for (int64_t i = 0; i < l.numel(); ++i) {
                    const int64_t c = l.channel_of(i);
                    const float expect =
                        cw.channel_scale(c) * static_cast<float>(cw.codes[static_cast<size_t>(i)] - cw.channel_zero_point(c));
                    ASSERT_EQ(dq[static_cast<size_t>(i)], expect) << "bits " << bits << " element " << i;
                }
            }
}

TEST(CompressWeight, AnyRankAndAxis) {
    const std::vector<float> w = normal_tensor(2 * 3 * 4 * 5, 4);
    for (int64_t axis = 0; axis < 4; ++axis) {
        const CompressedWeight cw = compress_weight(w.data(), {2, 3, 4, 5}, axis, LayerChoice{6, 0.5}, WeightSpec{});
        EXPECT_EQ(cw.scales.size(), static_cast<size_t>(std::vector<int64_t>{2, 3, 4, 5}[static_cast<size_t>(axis)]));
        EXPECT_EQ(cw.dequantize().size(), w.size());
        EXPECT_EQ(cw.numel() - cw.kept_count(), 60);
    }
    const std::vector<float> v = {0.5f, -0.25f, 1.0f};
    const CompressedWeight r1 = compress_weight(v.data(), {3}, 0, LayerChoice{8, 0.0}, WeightSpec{});
    EXPECT_EQ(r1.dequantize(), v);  // each channel's single value is its own max
}

TEST(CompressWeight, Deterministic) {
    const std::vector<float> w = normal_tensor(300 * 100, 8);
    WeightSpec spec;
    spec.clip = WeightClip::Mse;
    EXPECT_EQ(compress_weight(w.data(), {300, 100}, 1, LayerChoice{3, 0.75}, spec),
              compress_weight(w.data(), {300, 100}, 1, LayerChoice{3, 0.75}, spec));
}

TEST(CompressedWeightCheck, DetectsInconsistencies) {
    const std::vector<float> w = normal_tensor(8 * 4, 2);
    WeightSpec asym;
    asym.scheme = Scheme::Asymmetric;
    const CompressedWeight good = compress_weight(w.data(), {8, 4}, 0, LayerChoice{4, 0.5}, asym);
    EXPECT_EQ(check_compressed_weight(good), "");
    auto expect_problem = [&](auto mutate, const char* what) {
        CompressedWeight cw = good;
        mutate(cw);
        EXPECT_NE(check_compressed_weight(cw), "") << what;
    };
    expect_problem([](CompressedWeight& c) { c.method_id = 99; }, "unknown method");
    expect_problem([](CompressedWeight& c) { c.bits = 1; }, "bits outside the method");
    expect_problem([](CompressedWeight& c) { c.codes.pop_back(); }, "code count");
    expect_problem([](CompressedWeight& c) { c.mask.pop_back(); }, "mask size");
    expect_problem([](CompressedWeight& c) { c.scales.pop_back(); }, "scale count");
    expect_problem([](CompressedWeight& c) { c.scales[0] = -1; }, "negative scale");
    expect_problem([](CompressedWeight& c) { c.zero_points.clear(); }, "zero points");
    expect_problem([](CompressedWeight& c) { c.zero_points[0] = 100; }, "zero point range");
    expect_problem([](CompressedWeight& c) { c.codebook = {1.0f}; }, "codebook");
    expect_problem([](CompressedWeight& c) { c.out_axis = 2; }, "out_axis");
    expect_problem([](CompressedWeight& c) { c.mask[0] = 2; }, "mask byte");
    expect_problem(
        [](CompressedWeight& c) {
            for (size_t i = 0; i < c.codes.size(); ++i)
                if (c.mask[i]) {
                    c.codes[i] = 8;  // above 7
                    break;
                }
        },
        "code range");
    expect_problem(
        [](CompressedWeight& c) {
            for (size_t i = 0; i < c.codes.size(); ++i)
                if (!c.mask[i]) {
                    c.codes[i] = static_cast<int8_t>(c.zero_points[i / 4] + 1);
                    break;
                }
        },
        "pruned code");
    CompressedWeight bad = good;
    bad.method_id = 99;
    EXPECT_THROW(bad.method(), std::invalid_argument);
}

TEST(MethodHelpers, MaskedWeightKeptValuesRange) {
    const std::vector<float> w = {1, -2, 3, -4};
    std::unique_ptr<float[]> storage;
    EXPECT_EQ(masked_weight(w.data(), 4, {}, storage), w.data());
    const float* m = masked_weight(w.data(), 4, {1, 0, 0, 1}, storage);
    EXPECT_EQ(std::vector<float>(m, m + 4), (std::vector<float>{1, 0, 0, -4}));
    EXPECT_FALSE(std::signbit(m[1]));
    EXPECT_EQ(kept_values(w.data(), 4, {0, 1, 1, 0}), (std::vector<float>{-2, 3}));
    EXPECT_EQ(kept_values(w.data(), 4, {}), w);
    // Every length around the 8 lanes, the extremes at every position.
    for (int64_t n : {1, 2, 7, 8, 9, 15, 16, 17, 1001}) {
        const std::vector<float> r = normal_tensor(n, static_cast<uint32_t>(n));
        for (int64_t at = 0; at < n; at += (n > 20 ? 97 : 1)) {
            std::vector<float> v = r;
            v[static_cast<size_t>(at)] = -50.0f;
            v[static_cast<size_t>(n - 1 - at)] = 60.0f + static_cast<float>(at == n - 1 - at ? -120 : 0);
            float lo, hi;
            value_range(v.data(), n, &lo, &hi);
            EXPECT_EQ(lo, *std::min_element(v.begin(), v.end())) << "n=" << n << " at=" << at;
            EXPECT_EQ(hi, *std::max_element(v.begin(), v.end())) << "n=" << n << " at=" << at;
        }
    }
}

namespace {

/// FNV-1a over every field of a compressed weight (float side data by bit pattern).
uint64_t fingerprint(const CompressedWeight& cw, uint64_t h) {
    auto add = [&h](const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    add(&cw.bits, sizeof cw.bits);
    add(&cw.method_id, 1);
    const int scheme = static_cast<int>(cw.scheme), granularity = static_cast<int>(cw.granularity);
    add(&scheme, sizeof scheme);
    add(&granularity, sizeof granularity);
    add(cw.codes.data(), cw.codes.size());
    add(cw.scales.data(), 4 * cw.scales.size());
    add(cw.zero_points.data(), cw.zero_points.size());
    add(cw.codebook.data(), 4 * cw.codebook.size());
    add(cw.mask.data(), cw.mask.size());
    return h;
}

}  // namespace

/// compress_weight over random tensors, every method, setting and layout family, hashed.
uint64_t compress_fingerprint() {
    struct Shape {
        std::vector<int64_t> dims;
        int64_t out_axis;
    };
    const std::vector<Shape> shapes = {{{784, 300}, 1}, {{300, 100}, 1}, {{100, 10}, 1}, {{16, 6, 5, 5}, 0},
                                       {{6, 1, 5, 5}, 0}, {{10, 84}, 0},  {{37, 3}, 1},   {{5, 17, 3}, 1}};
    uint64_t h = 14695981039346656037ull;
    uint32_t seed = 100;
    for (const Shape& s : shapes)
        for (int method = 0; method < 2; ++method)
            for (int variant = 0; variant < 6; ++variant) {
                WeightSpec spec;
                spec.method = method ? Method::Cluster : Method::Quantize;
                spec.clip = variant % 2 ? WeightClip::MaxAbs : WeightClip::Mse;
                spec.scheme = variant % 3 == 1 ? Scheme::Asymmetric : Scheme::Symmetric;
                spec.granularity = variant == 4 ? Granularity::PerTensor : Granularity::PerChannel;
                spec.pruning = variant == 5 ? Pruning::Filter : Pruning::Unstructured;
                const std::vector<float> w = normal_tensor(dcs::compress::testing::numel(s.dims), seed++, 0.05f);
                for (int bits : {1, 2, 3, 4, 6, 8})
                    for (double prune : {0.0, 0.3, 0.9}) {
                        if (method == 0 && bits == 1 && spec.scheme == Scheme::Asymmetric) continue;
                        try {
                            h = fingerprint(compress_weight(w.data(), s.dims, s.out_axis, LayerChoice{bits, prune}, spec), h);
                        } catch (const dcs::UnsupportedError&) {
                            h = (h ^ 0xff) * 1099511628211ull;
                        }
                    }
            }
    return h;
}

// Pins compress_weight's output over random tensors for every method, scheme, granularity, clip rule,
// pruning kind, bit width and layout family (inner == 1 MatMul weights, conv weights, per-tensor), so
// that speed work on the quantizers cannot change a candidate. If a deliberate change of results moves
// it, record the new value and say why. Recorded when the MSE search's fine phase became a descent by
// steps of 4, 2, 1 instead of evaluating all 16 indices within 8 of the coarse best (the value before:
// 0xa8cc4688dfabbd8e, recorded at commit 3a893c6); the search's per-channel restructuring and the
// encoder's multiply-and-redo left it unchanged. Checked with the AVX-512 kernels (where the CPU has
// them) and without.
TEST(CompressWeight, OutputsPinnedOnRandomTensors) {
    for (bool avx512 : {true, false}) {
        cpu::ScopedMaxIsa cap(avx512 ? cpu::max_isa() : cpu::Isa::Avx2);
        EXPECT_EQ(compress_fingerprint(), 0x3d39cdb4715ecfa7ull) << "AVX-512 allowed: " << avx512;
    }
}

// One PrunedWeight serves every bit width, scheme, granularity, clip rule and method of its (weight,
// prune ratio, pruning kind): each result equals a fresh compress_weight, whatever the order of the
// requests (its memos are made by the first request that needs them).
TEST(PrunedWeight, ReusedForEverySettingEqualsCompressWeight) {
    struct Shape {
        std::vector<int64_t> dims;
        int64_t out_axis;
    };
    const std::vector<Shape> shapes = {{{120, 400}, 0}, {{400, 120}, 1}, {{16, 6, 5, 5}, 0}, {{5, 17, 3}, 1}};
    uint32_t seed = 7;
    for (const Shape& s : shapes)
        for (Pruning pruning : {Pruning::Unstructured, Pruning::Filter})
            for (double ratio : {0.0, 0.3, 0.9}) {
                const std::vector<float> w = normal_tensor(dcs::compress::testing::numel(s.dims), seed++, 0.05f);
                const PrunedWeight pw(w.data(), s.dims, s.out_axis, ratio, pruning);
                EXPECT_EQ(pw.mask(), prune_mask(w.data(), weight_layout(s.dims, s.out_axis), ratio, pruning));
                const size_t bytes_before = pw.bytes();
                int requests = 0;
                for (int bits : {8, 2, 5, 1, 3})
                    for (int variant = 0; variant < 10; ++variant) {
                        WeightSpec spec;
                        spec.pruning = pruning;
                        spec.method = variant == 9 ? Method::Cluster : Method::Quantize;
                        spec.clip = variant % 2 ? WeightClip::MaxAbs : WeightClip::Mse;
                        spec.scheme = variant % 3 == 1 ? Scheme::Asymmetric : Scheme::Symmetric;
                        spec.granularity = variant % 4 == 3 ? Granularity::PerTensor : Granularity::PerChannel;
                        if (bits == 1 && spec.scheme == Scheme::Asymmetric && spec.method == Method::Quantize) continue;
                        if (spec.method == Method::Cluster && bits > 3) continue;  // k-means is slow; few centroids do
                        const CompressedWeight fresh = compress_weight(w.data(), s.dims, s.out_axis, {bits, ratio}, spec);
                        EXPECT_EQ(compress_weight(pw, bits, spec), fresh)
                            << shape_string(s.dims) << " ratio " << ratio << " bits " << bits << " variant " << variant;
                        ++requests;
                    }
                EXPECT_GT(requests, 35);
                EXPECT_GT(pw.bytes(), bytes_before);  // the memos are kept
            }
}

TEST(PrunedWeight, Errors) {
    const std::vector<float> w = normal_tensor(60, 3);
    const PrunedWeight pw(w.data(), {6, 10}, 0, 0.5, Pruning::Unstructured);
    WeightSpec filter;
    filter.pruning = Pruning::Filter;
    EXPECT_THROW(compress_weight(pw, 4, filter), std::invalid_argument);
    EXPECT_THROW(compress_weight(pw, 0, WeightSpec{}), std::invalid_argument);
    EXPECT_THROW(compress_weight(pw, 9, WeightSpec{}), std::invalid_argument);
    EXPECT_THROW(PrunedWeight(nullptr, {6, 10}, 0, 0.5, Pruning::Unstructured), std::invalid_argument);
    EXPECT_THROW(PrunedWeight(w.data(), {6, 10}, 2, 0.5, Pruning::Unstructured), std::invalid_argument);
    EXPECT_THROW(PrunedWeight(w.data(), {6, 10}, 0, 1.0, Pruning::Unstructured), std::invalid_argument);
    std::vector<float> bad = w;
    bad[17] = std::numeric_limits<float>::infinity();
    try {
        PrunedWeight(bad.data(), {6, 10}, 0, 0.5, Pruning::Unstructured);
        ADD_FAILURE() << "no error for an infinite weight";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("element 17"), std::string::npos) << e.what();
    }
}

// The MSE search, the ranges, the row packing and the encoding run channel by channel on the OpenMP
// threads for weights of 8k+ elements; the result must not depend on the thread count (the tests
// otherwise run with OMP_NUM_THREADS=1). Layouts: channel rows (Gemm), rows of channels (MatMul), conv,
// and outer > 1 with inner > 1.
TEST(CompressWeight, SameResultOnAnyThreadCount) {
    struct Shape {
        std::vector<int64_t> dims;
        int64_t out_axis;
    };
    const std::vector<Shape> shapes = {{{300, 784}, 0}, {{784, 300}, 1}, {{64, 32, 3, 3}, 0}, {{20, 30, 40}, 1}};
    const int saved = omp_get_max_threads();
    uint32_t seed = 900;
    int compared = 0;
    for (const Shape& s : shapes) {
        const std::vector<float> w = normal_tensor(dcs::compress::testing::numel(s.dims), seed++, 0.05f);
        for (int variant = 0; variant < 6; ++variant)
            for (double ratio : {0.0, 0.6})
                for (int bits : {2, 4, 8}) {
                    WeightSpec spec;
                    spec.clip = variant % 2 ? WeightClip::MaxAbs : WeightClip::Mse;
                    spec.scheme = variant % 3 == 1 ? Scheme::Asymmetric : Scheme::Symmetric;
                    spec.granularity = variant == 4 ? Granularity::PerTensor : Granularity::PerChannel;
                    spec.pruning = variant == 5 ? Pruning::Filter : Pruning::Unstructured;
                    omp_set_num_threads(1);
                    const CompressedWeight one = compress_weight(w.data(), s.dims, s.out_axis, {bits, ratio}, spec);
                    for (int threads : {2, 3}) {
                        omp_set_num_threads(threads);
                        EXPECT_EQ(compress_weight(w.data(), s.dims, s.out_axis, {bits, ratio}, spec), one)
                            << shape_string(s.dims) << " variant " << variant << " ratio " << ratio << " bits " << bits
                            << " threads " << threads;
                        ++compared;
                    }
                }
    }
    omp_set_num_threads(saved);
    EXPECT_EQ(compared, 4 * 6 * 2 * 3 * 2);
}
