#include "compress/quantize.hpp"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "compress/prune.hpp"
#include "compress/weight.hpp"
#include "random_tensor.hpp"

using namespace dcs::compress;
using dcs::compress::testing::normal_tensor;

namespace {

uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

CompressedWeight quantize(const std::vector<float>& w, const std::vector<int64_t>& shape, int64_t out_axis, int bits,
                          Scheme scheme, Granularity g, WeightClip clip = WeightClip::MaxAbs, double prune = 0.0) {
    WeightSpec spec;
    spec.scheme = scheme;
    spec.granularity = g;
    spec.clip = clip;
    return compress_weight(w.data(), shape, out_axis, LayerChoice{bits, prune}, spec);
}

}  // namespace

TEST(UniformCodes, Ranges) {
    // Symmetric: restricted range, so -x and x quantize alike and int8 never holds -128.
    EXPECT_EQ(uniform_code_min(8, Scheme::Symmetric), -127);
    EXPECT_EQ(uniform_code_max(8, Scheme::Symmetric), 127);
    EXPECT_EQ(uniform_code_min(2, Scheme::Symmetric), -1);
    EXPECT_EQ(uniform_code_max(2, Scheme::Symmetric), 1);
    EXPECT_EQ(uniform_code_min(4, Scheme::Symmetric), -7);
    // Asymmetric: the unsigned codes [0, 2^b - 1] shifted by -2^(b-1).
    EXPECT_EQ(uniform_code_min(8, Scheme::Asymmetric), -128);
    EXPECT_EQ(uniform_code_max(8, Scheme::Asymmetric), 127);
    EXPECT_EQ(uniform_code_min(3, Scheme::Asymmetric), -4);
    EXPECT_EQ(uniform_code_max(3, Scheme::Asymmetric), 3);
    EXPECT_THROW(uniform_code_min(1, Scheme::Symmetric), std::invalid_argument);
    EXPECT_THROW(uniform_code_max(9, Scheme::Asymmetric), std::invalid_argument);
    EXPECT_THROW(choose_uniform_params(nullptr, 0, 1, Scheme::Symmetric, WeightClip::MaxAbs), std::invalid_argument);
}

TEST(UniformCodes, RoundHalfToEvenAndClamp) {
    const UniformParams p{1.0f, 0};
    EXPECT_EQ(quantize_uniform(0.5f, p, -127, 127), 0);
    EXPECT_EQ(quantize_uniform(1.5f, p, -127, 127), 2);
    EXPECT_EQ(quantize_uniform(2.5f, p, -127, 127), 2);
    EXPECT_EQ(quantize_uniform(-0.5f, p, -127, 127), 0);
    EXPECT_EQ(quantize_uniform(-1.5f, p, -127, 127), -2);
    EXPECT_EQ(quantize_uniform(0.49999997f, p, -127, 127), 0);
    EXPECT_EQ(quantize_uniform(1000.0f, p, -127, 127), 127);
    EXPECT_EQ(quantize_uniform(-1e30f, p, -127, 127), -127);
    // With a zero point, round(w / s) + zp (as ONNX QuantizeLinear), not round(w / s + zp).
    EXPECT_EQ(quantize_uniform(0.5f, UniformParams{1.0f, 1}, -4, 3), 1);
    EXPECT_EQ(quantize_uniform(-9.0f, UniformParams{1.0f, 1}, -4, 3), -4);
    EXPECT_EQ(dequantize_uniform(-4, UniformParams{0.25f, 1}), -1.25f);
}

// Golden values from numpy (/usr/bin/python3, float32 arithmetic, np.round = half to even):
//   w = np.array([[0.1,-0.4,0.25,0.3],[-1.5,0.7,0.05,-0.2]], np.float32)
//   symmetric, 3 bits, per channel: s = np.float32(max|w_c| / 3); q = np.round(np.clip(w_c / s, -3, 3))
//   asymmetric, 3 bits, per tensor: lo, hi = min(0, w.min()), max(0, w.max()); s = np.float32((hi - lo) / 7)
//     z = clip(round(-lo / s), 0, 7); q = clip(round(w / s) + z, 0, 7) - 4; zp = z - 4
TEST(UniformGolden, SymmetricPerChannel3Bits) {
    const std::vector<float> w = {0.1f, -0.4f, 0.25f, 0.3f, -1.5f, 0.7f, 0.05f, -0.2f};
    const CompressedWeight cw = quantize(w, {2, 4}, 0, 3, Scheme::Symmetric, Granularity::PerChannel);
    ASSERT_EQ(cw.scales.size(), 2u);
    EXPECT_EQ(float_bits(cw.scales[0]), 1040746633u);  // 0.13333334
    EXPECT_EQ(cw.scales[1], 0.5f);
    EXPECT_EQ(cw.codes, (std::vector<int8_t>{1, -3, 2, 2, -3, 1, 0, 0}));
    EXPECT_TRUE(cw.zero_points.empty());
    const std::vector<float> dq = cw.dequantize();
    EXPECT_EQ(dq[1], -0.40000003576278687f);
    EXPECT_EQ(dq[2], 0.2666666805744171f);
    EXPECT_EQ(dq[4], -1.5f);
}

TEST(UniformGolden, AsymmetricPerTensor3Bits) {
    const std::vector<float> w = {0.1f, -0.4f, 0.25f, 0.3f, -1.5f, 0.7f, 0.05f, -0.2f};
    const CompressedWeight cw = quantize(w, {2, 4}, 0, 3, Scheme::Asymmetric, Granularity::PerTensor);
    ASSERT_EQ(cw.scales.size(), 1u);
    EXPECT_EQ(cw.scales[0], 0.3142857253551483f);
    ASSERT_EQ(cw.zero_points.size(), 1u);
    EXPECT_EQ(cw.zero_points[0], 1);  // z = 5 unsigned
    EXPECT_EQ(cw.codes, (std::vector<int8_t>{1, 0, 2, 2, -4, 3, 1, 0}));
    const std::vector<float> dq = cw.dequantize();
    EXPECT_EQ(dq[0], 0.0f);
    EXPECT_EQ(dq[4], -1.571428656578064f);
    EXPECT_EQ(dq[5], 0.6285714507102966f);
}

TEST(UniformGolden, Symmetric8BitsPerTensor) {
    // numpy: s = np.float32(1.5 / 127); np.clip(np.round(w / s), -127, 127)
    const std::vector<float> w = {0.1f, -0.4f, 0.25f, 0.3f, -1.5f, 0.7f, 0.05f, -0.2f};
    const CompressedWeight cw = quantize(w, {2, 4}, 0, 8, Scheme::Symmetric, Granularity::PerTensor);
    EXPECT_EQ(cw.scales[0], 0.011811023578047752f);
    EXPECT_EQ(cw.codes, (std::vector<int8_t>{8, -34, 21, 25, -127, 59, 4, -17}));
}

// By hand: seven values 0.35 and one 1.0, 2 bits symmetric (codes -1, 0, 1; scale = ratio * 1.0).
// For ratio r < 0.7 every value rounds to code 1, error 7 (0.35 - r)^2 + (1 - r)^2, minimal at
// r = 6.9 / 16 = 0.43125. Grid ratios are 1 - 0.7 i / 99: i = 80 gives 43/99 (error 0.369764), i = 81
// gives 0.427273 (0.369815). The coarse pass finds 81, the fine pass 80. The maximum (r = 1) rounds the
// 0.35s to 0, error 0.8575.
TEST(UniformGolden, MseClipSearch) {
    std::vector<float> w(7, 0.35f);
    w.push_back(1.0f);
    const UniformParams maxabs = choose_uniform_params(w.data(), 8, 2, Scheme::Symmetric, WeightClip::MaxAbs);
    EXPECT_EQ(maxabs.scale, 1.0f);
    EXPECT_NEAR(uniform_sse(w.data(), 8, maxabs, 2, Scheme::Symmetric), 0.8575, 1e-6);
    const UniformParams mse = choose_uniform_params(w.data(), 8, 2, Scheme::Symmetric, WeightClip::Mse);
    EXPECT_EQ(float_bits(mse.scale), 1054761539u);  // np.float32(43 / 99)
    EXPECT_EQ(mse.scale, static_cast<float>(mse_clip_ratio(80)));
    EXPECT_NEAR(uniform_sse(w.data(), 8, mse, 2, Scheme::Symmetric), 0.369764, 1e-5);
    EXPECT_DOUBLE_EQ(mse_clip_ratio(0), 1.0);
    EXPECT_NEAR(mse_clip_ratio(kMseGridPoints - 1), kMseGridMin, 1e-15);
}

TEST(UniformParams, ZeroGroupsGetScaleOne) {
    const std::vector<float> zeros(5, 0.0f);
    for (Scheme s : {Scheme::Symmetric, Scheme::Asymmetric})
        for (WeightClip c : {WeightClip::MaxAbs, WeightClip::Mse}) {
            const UniformParams p = choose_uniform_params(zeros.data(), 5, 4, s, c);
            EXPECT_EQ(p.scale, 1.0f);
            EXPECT_EQ(quantize_uniform(0.0f, p, uniform_code_min(4, s), uniform_code_max(4, s)), p.zero_point);
        }
    EXPECT_EQ(choose_uniform_params(nullptr, 0, 8, Scheme::Symmetric, WeightClip::Mse).scale, 1.0f);
    const float tiny = 1e-44f;  // scale would be subnormal
    EXPECT_EQ(choose_uniform_params(&tiny, 1, 8, Scheme::Symmetric, WeightClip::MaxAbs).scale, 1.0f);
}

TEST(UniformParams, AsymmetricRangeAlwaysContainsZero) {
    const std::vector<float> positive = {1.0f, 2.0f, 3.0f};
    const UniformParams p = choose_uniform_params(positive.data(), 3, 8, Scheme::Asymmetric, WeightClip::MaxAbs);
    EXPECT_EQ(p.zero_point, -128);  // unsigned zero point 0
    EXPECT_EQ(p.scale, static_cast<float>(3.0 / 255));
    const std::vector<float> negative = {-1.0f, -2.0f};
    const UniformParams n = choose_uniform_params(negative.data(), 2, 8, Scheme::Asymmetric, WeightClip::MaxAbs);
    EXPECT_EQ(n.zero_point, 127);  // unsigned zero point 255
}

// Property: every element within the clip range is within half a step of its dequantized value, for
// every bit-width, scheme and granularity, on random tensors of several layouts (fixed seeds).
TEST(UniformProperty, ErrorWithinHalfStep) {
    struct Case {
        std::vector<int64_t> shape;
        int64_t out_axis;
    };
    uint32_t seed = 1;
    for (const Case& cs : {Case{{32, 3, 3, 3}, 0}, Case{{100, 40}, 1}, Case{{40, 100}, 0}, Case{{3, 10, 7}, 1}, Case{{50}, 0}})
        for (int bits = 2; bits <= 8; ++bits)
            for (Scheme scheme : {Scheme::Symmetric, Scheme::Asymmetric})
                for (Granularity g : {Granularity::PerChannel, Granularity::PerTensor})
                    for (WeightClip clip : {WeightClip::MaxAbs, WeightClip::Mse}) {
                        const std::vector<float> w = normal_tensor(dcs::compress::testing::numel(cs.shape), seed++, 0.1f);
                        const CompressedWeight cw = quantize(w, cs.shape, cs.out_axis, bits, scheme, g, clip);
                        const std::vector<float> dq = cw.dequantize();
                        const Layout l = cw.layout();
                        const int qmin = uniform_code_min(bits, scheme), qmax = uniform_code_max(bits, scheme);
                        for (int64_t i = 0; i < l.numel(); ++i) {
                            const int64_t c = l.channel_of(i);
                            const float s = cw.channel_scale(c);
                            const int zp = cw.channel_zero_point(c);
                            const float x = w[static_cast<size_t>(i)];
                            const float lo = s * static_cast<float>(qmin - zp), hi = s * static_cast<float>(qmax - zp);
                            const float err = std::fabs(x - dq[static_cast<size_t>(i)]);
                            // Half a step, plus float rounding of the quotient and the product.
                            const float bound = 0.5f * s * (1 + 1e-5f) + 4 * FLT_EPSILON * std::fabs(x);
                            // Max-abs covers every value (an asymmetric grid may end up to half a
                            // step short of the minimum or maximum, as its zero point is rounded).
                            if (clip == WeightClip::MaxAbs || (x >= lo && x <= hi)) {
                                ASSERT_LE(err, bound) << "bits=" << bits << " element " << i;
                            } else {
                                ASSERT_EQ(dq[static_cast<size_t>(i)], x > hi ? hi : lo);  // clipped to the bound
                            }
                        }
                    }
}

// The encoder multiplies by 1 / scale rather than dividing; values within a few ulps of a half step
// (where the two can round apart) must still get quantize_uniform's code, element by element, for every
// bit width and scheme, including the layout whose rows are the channels (MatMul [K, N]).
TEST(UniformCodes, EncodeEqualsQuantizeUniformNearHalfSteps) {
    uint32_t seed = 7;
    for (int bits = 2; bits <= 8; ++bits)
        for (Scheme scheme : {Scheme::Symmetric, Scheme::Asymmetric})
            for (int64_t out_axis : {0, 1}) {
                const int64_t channels = 8, per = 512;
                const std::vector<float> base = normal_tensor(channels, seed++, 1.0f);
                const int qmin = uniform_code_min(bits, scheme), qmax = uniform_code_max(bits, scheme);
                // Channel c's values: its max first (which fixes the scale, as found by
                // choose_uniform_params), then half steps k + 1/2 of that scale, nudged by -2..2 ulps.
                std::vector<std::vector<float>> rows(channels);
                std::vector<UniformParams> params(channels);
                for (int64_t c = 0; c < channels; ++c) {
                    const float m = 0.05f + std::fabs(base[static_cast<size_t>(c)]);
                    const std::vector<float> range = {-m, m};
                    params[c] = choose_uniform_params(range.data(), 2, bits, scheme, WeightClip::MaxAbs);
                    rows[c] = range;
                    for (int64_t i = 2; i < per; ++i) {
                        const int k = qmin - params[c].zero_point + static_cast<int>(i % (qmax - qmin));
                        float v = (static_cast<float>(k) + 0.5f) * params[c].scale;
                        for (int64_t u = i / (qmax - qmin) % 5; u > 0; --u) v = std::nextafter(v, 2.0f * m);
                        if (i / (qmax - qmin) % 2) v = std::nextafter(v, -2.0f * m);
                        rows[c].push_back(std::fmin(std::fmax(v, -m), m));
                    }
                }
                std::vector<int64_t> shape = {channels, per};
                if (out_axis == 1) shape = {per, channels};
                std::vector<float> w(static_cast<size_t>(channels * per));
                for (int64_t c = 0; c < channels; ++c)
                    for (int64_t i = 0; i < per; ++i) w[static_cast<size_t>(out_axis == 0 ? c * per + i : i * channels + c)] = rows[c][i];
                const CompressedWeight cw = quantize(w, shape, out_axis, bits, scheme, Granularity::PerChannel);
                for (int64_t c = 0; c < channels; ++c) {
                    ASSERT_EQ(cw.channel_scale(c), params[c].scale);
                    ASSERT_EQ(cw.channel_zero_point(c), params[c].zero_point);
                    for (int64_t i = 0; i < per; ++i) {
                        const size_t at = static_cast<size_t>(out_axis == 0 ? c * per + i : i * channels + c);
                        ASSERT_EQ(cw.codes[at], quantize_uniform(w[at], params[c], qmin, qmax))
                            << "bits=" << bits << " channel " << c << " value " << w[at];
                    }
                }
            }
}

// Property: the MSE clip never does worse than max-abs on the error it minimises, and on heavy-tailed
// data it clips.
TEST(UniformProperty, MseNeverWorseThanMaxAbs) {
    for (uint32_t seed = 1; seed <= 20; ++seed)
        for (int bits = 2; bits <= 8; ++bits)
            for (Scheme scheme : {Scheme::Symmetric, Scheme::Asymmetric}) {
                std::vector<float> w = normal_tensor(500, seed);
                w[7] = 5.0f;  // an outlier
                const UniformParams a = choose_uniform_params(w.data(), 500, bits, scheme, WeightClip::MaxAbs);
                const UniformParams b = choose_uniform_params(w.data(), 500, bits, scheme, WeightClip::Mse);
                EXPECT_LE(uniform_sse(w.data(), 500, b, bits, scheme), uniform_sse(w.data(), 500, a, bits, scheme));
                if (bits <= 4) {
                    EXPECT_LT(b.scale, a.scale) << "bits=" << bits;
                }
            }
}

// Per-channel scales depend only on each channel's values, whatever the axis.
TEST(UniformProperty, ChannelScalesFollowOutAxis) {
    const std::vector<float> w = normal_tensor(6 * 4, 3);
    const CompressedWeight a = quantize(w, {6, 4}, 1, 4, Scheme::Symmetric, Granularity::PerChannel);
    ASSERT_EQ(a.scales.size(), 4u);
    for (int64_t c = 0; c < 4; ++c) {
        float m = 0;
        for (int64_t r = 0; r < 6; ++r) m = std::max(m, std::fabs(w[static_cast<size_t>(r * 4 + c)]));
        EXPECT_EQ(a.scales[static_cast<size_t>(c)], static_cast<float>(static_cast<double>(m) / 7));
    }
}

// Pruned weights leave the range and error computations: they are exactly zero after quantization,
// and with an asymmetric scheme their code is the zero point.
TEST(UniformProperty, PrunedStayZero) {
    const std::vector<float> w = normal_tensor(30 * 20, 9);
    for (int bits = 2; bits <= 8; ++bits) {
        const CompressedWeight cw =
            quantize(w, {30, 20}, 1, bits, Scheme::Asymmetric, Granularity::PerChannel, WeightClip::Mse, 0.5);
        const std::vector<float> dq = cw.dequantize();
        ASSERT_EQ(cw.numel() - cw.kept_count(), prune_count(600, 0.5));
        for (int64_t i = 0; i < 600; ++i)
            if (cw.is_pruned(i)) {
                EXPECT_EQ(float_bits(dq[static_cast<size_t>(i)]), 0u);
                EXPECT_EQ(cw.codes[static_cast<size_t>(i)], cw.zero_points[static_cast<size_t>(i % 20)]);
            }
    }
}
