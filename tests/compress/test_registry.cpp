// The generic test over the method table (like ggml's test-quantize-fns): every row, every bit-width it
// serves, every scheme, granularity, clip rule, pruning kind and prune ratio, on several layouts.
#include "compress/method.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "common/error.hpp"
#include "compress/dcz.hpp"
#include "compress/prune.hpp"
#include "compress/quantize.hpp"
#include "random_tensor.hpp"

using namespace dcs::compress;
using dcs::compress::testing::normal_tensor;

TEST(Registry, IdsAndNamesUnique) {
    std::set<int> ids;
    std::set<std::string> names;
    for (const WeightMethod* m : method_table()) {
        EXPECT_TRUE(ids.insert(m->id).second) << "duplicate id " << int(m->id);
        EXPECT_TRUE(names.insert(m->name).second) << "duplicate name " << m->name;
        EXPECT_NE(m->id, 0) << "id 0 is reserved";
        EXPECT_GE(m->min_bits, 1);
        EXPECT_LE(m->max_bits, 8);
        EXPECT_EQ(find_method(m->id), m);
        EXPECT_EQ(find_method(std::string(m->name)), m);
        // Every code fits the int8 container and the b-bit packed value.
        for (int bits = m->min_bits; bits <= m->max_bits; ++bits)
            for (Scheme s : {Scheme::Symmetric, Scheme::Asymmetric}) {
                const CodeMap map = m->code_map(bits, s);
                EXPECT_GE(map.code_min, -128);
                EXPECT_LE(map.code_max, 127);
                EXPECT_LE(map.symbols(), 1 << bits) << m->name << " " << bits;
                EXPECT_EQ(map.pack(map.code_min), 0u);
                EXPECT_EQ(map.unpack(map.pack(map.code_max)), map.code_max);
            }
    }
    EXPECT_EQ(find_method(uint8_t{0}), nullptr);
    EXPECT_EQ(find_method(std::string("nope")), nullptr);
}

TEST(Registry, Selection) {
    WeightSpec q, c;
    c.method = Method::Cluster;
    EXPECT_STREQ(select_method(1, q).name, "binary");
    for (int b = 2; b <= 8; ++b) EXPECT_STREQ(select_method(b, q).name, "uniform");
    for (int b = 1; b <= 8; ++b) EXPECT_STREQ(select_method(b, c).name, "cluster");
    EXPECT_THROW(select_method(0, q), std::invalid_argument);
    EXPECT_THROW(select_method(9, c), std::invalid_argument);
    WeightSpec unknown;
    unknown.method = static_cast<Method>(7);
    EXPECT_THROW(select_method(4, unknown), dcs::UnsupportedError);
}

namespace {

/// Largest relative RMS error (RMS of the error over RMS of the kept weights) accepted per bit-width on
/// N(0, 1) data, for any method, scheme, granularity, clip rule and prune ratio. The worst cases this test
/// measured (it prints them) are 0.67 at 1 bit (sign x mean|w| is about sqrt(1 - 2/pi) = 0.60), 0.90 at 2
/// bits (ternary with a max-abs scale rounds most weights to 0), 0.45, 0.15, 0.072, 0.034, 0.018, 0.0095;
/// the limits leave ~40% margin, as ggml's per-type error limits do.
constexpr double kMaxRelativeRmse[9] = {0, 0.95, 1.25, 0.65, 0.22, 0.10, 0.05, 0.025, 0.014};

struct Layer {
    std::vector<int64_t> shape;
    int64_t out_axis;
};

WeightSpec spec_of(Method method, Scheme scheme, Granularity g, WeightClip clip, Pruning pruning) {
    WeightSpec spec;
    spec.method = method;
    spec.scheme = scheme;
    spec.granularity = g;
    spec.clip = clip;
    spec.pruning = pruning;
    return spec;
}

}  // namespace

TEST(Registry, EveryMethodEveryCase) {
    const Layer layers[] = {{{16, 3, 3, 3}, 0}, {{40, 24}, 1}, {{7, 6, 5}, 1}};
    int cases = 0, skipped = 0;
    uint32_t seed = 100;
    double worst[9] = {};
    for (const WeightMethod* m : method_table())
        for (int bits = m->min_bits; bits <= m->max_bits; ++bits)
            for (Scheme scheme : {Scheme::Symmetric, Scheme::Asymmetric})
                for (Granularity g : {Granularity::PerChannel, Granularity::PerTensor})
                    for (WeightClip clip : {WeightClip::MaxAbs, WeightClip::Mse})
                        for (Pruning pruning : {Pruning::Unstructured, Pruning::Filter})
                            for (double ratio : {0.0, 0.25, 0.5, 0.75, 0.9})
                                for (const Layer& layer : layers) {
                                    const WeightSpec spec = spec_of(m->method, scheme, g, clip, pruning);
                                    const std::string where = std::string(m->name) + " bits=" + std::to_string(bits) +
                                                              " scheme=" + std::to_string(int(scheme)) + " gran=" +
                                                              std::to_string(int(g)) + " clip=" + std::to_string(int(clip)) +
                                                              " pruning=" + std::to_string(int(pruning)) +
                                                              " ratio=" + std::to_string(ratio);
                                    SCOPED_TRACE(where);
                                    if (m->unsupported(bits, spec)) {  // the row says it cannot serve this
                                        ++skipped;
                                        continue;
                                    }
                                    ASSERT_EQ(&select_method(bits, spec), m);
                                    const Layout l = weight_layout(layer.shape, layer.out_axis);
                                    const std::vector<float> w = normal_tensor(l.numel(), seed++);
                                    const CompressedWeight cw =
                                        compress_weight(w.data(), layer.shape, layer.out_axis, LayerChoice{bits, ratio}, spec);
                                    ++cases;
                                    ASSERT_EQ(cw.method_id, m->id);
                                    ASSERT_EQ(check_compressed_weight(cw), "");

                                    // Exact prune counts.
                                    const int64_t pruned = cw.numel() - cw.kept_count();
                                    if (pruning == Pruning::Unstructured)
                                        ASSERT_EQ(pruned, prune_count(l.numel(), ratio));
                                    else
                                        ASSERT_EQ(pruned, prune_count(l.channels, ratio) * l.outer * l.inner);

                                    // Pruned weights are exactly +0; the error of the kept ones is bounded.
                                    const std::vector<float> dq = cw.dequantize();
                                    double err2 = 0, ref2 = 0;
                                    for (size_t i = 0; i < w.size(); ++i) {
                                        if (cw.is_pruned(static_cast<int64_t>(i))) {
                                            uint32_t bits_of;
                                            std::memcpy(&bits_of, &dq[i], 4);
                                            ASSERT_EQ(bits_of, 0u) << "element " << i;
                                            continue;
                                        }
                                        err2 += (w[i] - dq[i]) * static_cast<double>(w[i] - dq[i]);
                                        ref2 += w[i] * static_cast<double>(w[i]);
                                    }
                                    if (ref2 > 0) {
                                        EXPECT_LE(std::sqrt(err2 / ref2), kMaxRelativeRmse[bits]);
                                        worst[bits] = std::max(worst[bits], std::sqrt(err2 / ref2));
                                    }

                                    // Pack, then unpack: the same codes, mask and side data, so the
                                    // same weights bit for bit; the size is the byte count.
                                    DczContents c;
                                    c.huffman = (cases % 2) == 0;
                                    c.layers.emplace_back("layer", cw);
                                    const std::vector<uint8_t> bytes = dcz_bytes(c);
                                    ASSERT_EQ(bytes.size(), dcz_size(c));
                                    const DczContents back = parse_dcz(bytes.data(), bytes.size(), "memory");
                                    ASSERT_EQ(back.layers.size(), 1u);
                                    ASSERT_EQ(back.layers[0].second, cw);
                                    const std::vector<float> dq2 = back.layers[0].second.dequantize();
                                    ASSERT_EQ(std::memcmp(dq.data(), dq2.data(), dq.size() * 4), 0);
                                }
    int bit_widths = 0;
    for (const WeightMethod* m : method_table()) bit_widths += m->max_bits - m->min_bits + 1;
    EXPECT_EQ(cases + skipped, bit_widths * 2 * 2 * 2 * 2 * 5 * 3);
    EXPECT_EQ(skipped, 0);  // the current rows serve every combination
    for (int b = 1; b <= 8; ++b) std::printf("worst relative RMSE at %d bits: %.4f\n", b, worst[b]);
}

// Every row encodes a reused PrunedWeight (one per weight, pruning kind and prune ratio, shared by every
// row, bit width, scheme, granularity and clip rule, so that a method's memos meet all of them) exactly
// as a fresh compress_weight: what the search's cache relies on.
TEST(Registry, EveryMethodReusesAPrunedWeight) {
    const Layer layers[] = {{{16, 3, 3, 3}, 0}, {{40, 24}, 1}, {{7, 6, 5}, 1}};
    uint32_t seed = 500;
    int compared = 0;
    for (const Layer& layer : layers)
        for (Pruning pruning : {Pruning::Unstructured, Pruning::Filter})
            for (double ratio : {0.0, 0.5, 0.9}) {
                const std::vector<float> w = normal_tensor(weight_layout(layer.shape, layer.out_axis).numel(), seed++);
                const PrunedWeight pw(w.data(), layer.shape, layer.out_axis, ratio, pruning);
                for (const WeightMethod* m : method_table())
                    for (int bits = m->max_bits; bits >= m->min_bits; --bits)
                        for (Scheme scheme : {Scheme::Asymmetric, Scheme::Symmetric})
                            for (Granularity g : {Granularity::PerTensor, Granularity::PerChannel})
                                for (WeightClip clip : {WeightClip::Mse, WeightClip::MaxAbs}) {
                                    const WeightSpec spec = spec_of(m->method, scheme, g, clip, pruning);
                                    if (m->unsupported(bits, spec) || &select_method(bits, spec) != m) continue;
                                    ASSERT_EQ(compress_weight(pw, bits, spec),
                                              compress_weight(w.data(), layer.shape, layer.out_axis, {bits, ratio}, spec))
                                        << m->name << " bits " << bits << " ratio " << ratio;
                                    ++compared;
                                }
            }
    EXPECT_GT(compared, 1000);
}
