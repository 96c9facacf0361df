#include "compress/binary.hpp"

#include <gtest/gtest.h>

#include "compress/method.hpp"
#include "compress/weight.hpp"
#include "random_tensor.hpp"

using namespace dcs::compress;

namespace {

CompressedWeight binarize(const std::vector<float>& w, const std::vector<int64_t>& shape, int64_t out_axis, WeightSpec spec,
                          double prune = 0.0) {
    return compress_weight(w.data(), shape, out_axis, LayerChoice{1, prune}, spec);
}

}  // namespace

// By hand: channel 0 = {0.5, -1, 0}: scale (0.5 + 1 + 0) / 3 = 0.5, codes +1 -1 +1 (0 counts as +);
// channel 1 = {-0.25, -0.25, 0.5}: scale 1/3, codes -1 -1 +1.
TEST(BinaryGolden, PerChannel) {
    const std::vector<float> w = {0.5f, -1.0f, 0.0f, -0.25f, -0.25f, 0.5f};
    const CompressedWeight cw = binarize(w, {2, 3}, 0, WeightSpec{});
    EXPECT_STREQ(cw.method().name, "binary");
    EXPECT_EQ(cw.scales, (std::vector<float>{0.5f, static_cast<float>(1.0 / 3)}));
    EXPECT_EQ(cw.codes, (std::vector<int8_t>{1, -1, 1, -1, -1, 1}));
    const float third = static_cast<float>(1.0 / 3);
    EXPECT_EQ(cw.dequantize(), (std::vector<float>{0.5f, -0.5f, 0.5f, -third, -third, third}));
    EXPECT_TRUE(cw.has_int8_codes());
    EXPECT_EQ(cw.channel_zero_point(1), 0);
}

// By hand: mean |w| over all six = 2.5 / 6.
TEST(BinaryGolden, PerTensor) {
    const std::vector<float> w = {0.5f, -1.0f, 0.0f, -0.25f, -0.25f, 0.5f};
    WeightSpec spec;
    spec.granularity = Granularity::PerTensor;
    const CompressedWeight cw = binarize(w, {2, 3}, 0, spec);
    EXPECT_EQ(cw.scales, (std::vector<float>{static_cast<float>(2.5 / 6)}));
    EXPECT_EQ(cw.channel_scale(0), cw.channel_scale(1));
}

// By hand: pruning half (3 of 6) removes the magnitudes 0, 0.25, 0.25 (indices 2, 3, 4); the scales are
// means over the kept values only: (0.5 + 1) / 2 and 0.5 / 1.
TEST(BinaryGolden, PrunedExcludedFromScale) {
    const std::vector<float> w = {0.5f, -1.0f, 0.0f, -0.25f, -0.25f, 0.5f};
    const CompressedWeight cw = binarize(w, {2, 3}, 0, WeightSpec{}, 0.5);
    EXPECT_EQ(cw.mask, (std::vector<uint8_t>{1, 1, 0, 0, 0, 1}));
    EXPECT_EQ(cw.scales, (std::vector<float>{0.75f, 0.5f}));
    EXPECT_EQ(cw.codes, (std::vector<int8_t>{1, -1, 0, 0, 0, 1}));
    EXPECT_EQ(cw.dequantize(), (std::vector<float>{0.75f, -0.75f, 0.0f, 0.0f, 0.0f, 0.5f}));
}

TEST(Binary, FullyPrunedChannelHasScaleZero) {
    const std::vector<float> w = {0.5f, -1.0f, 0.1f, 0.2f, -0.3f, 0.05f};  // column L1: 0.7, 1.2, 0.15
    WeightSpec spec;
    spec.pruning = Pruning::Filter;
    const CompressedWeight cw = binarize(w, {2, 3}, 1, spec, 0.34);  // one channel: column 2
    EXPECT_EQ(cw.scales[2], 0.0f);
    EXPECT_EQ(cw.dequantize()[2], 0.0f);
    EXPECT_EQ(cw.dequantize()[5], 0.0f);
    EXPECT_EQ(binary_scale(nullptr, 0), 0.0f);
}

// Both schemes and both clip rules give the same binary weights at 1 bit.
TEST(Binary, SchemeAndClipDoNotMatter) {
    const std::vector<float> w = dcs::compress::testing::normal_tensor(64, 5);
    const CompressedWeight base = binarize(w, {8, 8}, 0, WeightSpec{});
    for (Scheme s : {Scheme::Symmetric, Scheme::Asymmetric})
        for (WeightClip c : {WeightClip::MaxAbs, WeightClip::Mse}) {
            WeightSpec spec;
            spec.scheme = s;
            spec.clip = c;
            const CompressedWeight cw = binarize(w, {8, 8}, 0, spec);
            EXPECT_EQ(cw, base);
            EXPECT_EQ(cw.scheme, Scheme::Symmetric);
        }
}

TEST(Binary, CodeMapPacksOneBit) {
    const WeightMethod& m = *find_method("binary");
    const CodeMap map = m.code_map(1, Scheme::Symmetric);
    EXPECT_EQ(map.symbols(), 2);
    EXPECT_EQ(map.pack(-1), 0u);
    EXPECT_EQ(map.pack(1), 1u);
    EXPECT_EQ(map.unpack(0), -1);
    EXPECT_EQ(map.unpack(1), 1);
    EXPECT_FALSE(map.valid(0));
}
