#include "compress/calibrate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "random_tensor.hpp"

using namespace dcs::compress;

namespace {

ActivationObserver observe(const std::vector<float>& v) {
    ActivationObserver o;
    o.observe(v.data(), static_cast<int64_t>(v.size()));
    return o;
}

CalibrationSpec spec_of(Calibration m, Scheme signed_scheme = Scheme::Symmetric) {
    CalibrationSpec s;
    s.method = m;
    s.signed_scheme = signed_scheme;
    return s;
}

}  // namespace

// By hand: {-1, 0.5, 2}: symmetric s8 covers [-2, 2] with scale 2 / 127.
TEST(CalibrateGolden, MinMaxSymmetricS8) {
    const ActivationParams p = calibrate_activation(observe({-1.0f, 0.5f, 2.0f}), spec_of(Calibration::MinMax));
    EXPECT_FALSE(p.is_unsigned);
    EXPECT_EQ(p.scale, static_cast<float>(2.0 / 127));
    EXPECT_EQ(p.zero_point, 0);
    EXPECT_EQ(p.clip_min, -2.0f);
    EXPECT_EQ(p.clip_max, 2.0f);
}

// By hand: [-1, 2] over 255 steps: scale 3/255; zero point round(-128 + 1 / (3/255)) = round(-128 + 85)
// = -43.
TEST(CalibrateGolden, MinMaxAsymmetricS8) {
    const ActivationParams p =
        calibrate_activation(observe({-1.0f, 0.5f, 2.0f}), spec_of(Calibration::MinMax, Scheme::Asymmetric));
    EXPECT_FALSE(p.is_unsigned);
    EXPECT_EQ(p.scale, static_cast<float>(3.0 / 255));
    EXPECT_EQ(p.zero_point, -43);
}

// By hand: non-negative (after ReLU): u8, zero point 0, scale max / 255.
TEST(CalibrateGolden, MinMaxU8) {
    for (Scheme s : {Scheme::Symmetric, Scheme::Asymmetric}) {
        const ActivationParams p = calibrate_activation(observe({0.0f, 1.0f, 3.0f}), spec_of(Calibration::MinMax, s));
        EXPECT_TRUE(p.is_unsigned);
        EXPECT_EQ(p.scale, static_cast<float>(3.0 / 255));
        EXPECT_EQ(p.zero_point, 0);
    }
    CalibrationSpec four = spec_of(Calibration::MinMax);
    four.bits = 4;
    EXPECT_EQ(calibrate_activation(observe({0.0f, 1.0f, 3.0f}), four).scale, 0.2f);  // 3 / 15
}

TEST(Calibrate, AllZeroTensor) {
    for (Calibration m : {Calibration::MinMax, Calibration::Percentile, Calibration::Mse}) {
        const ActivationParams p = calibrate_activation(observe(std::vector<float>(10, 0.0f)), spec_of(m));
        EXPECT_TRUE(p.is_unsigned);
        EXPECT_EQ(p.scale, 1.0f);
        EXPECT_EQ(p.zero_point, 0);
    }
}

// By hand: the values 1..10000 fill histogram bins of width 8 (R = 16384, 2048 bins a side) with 8
// values each. 99 % = 9900 values lie below the bin [9896, 9904) plus 5 of its 8 values, so the
// interpolated clip is 9896 + 8 * 5/8 = 9901.
TEST(CalibrateGolden, PercentileU8) {
    std::vector<float> v(10000);
    std::iota(v.begin(), v.end(), 1.0f);
    CalibrationSpec s = spec_of(Calibration::Percentile);
    s.percentile = 99.0;
    const ActivationParams p = calibrate_activation(observe(v), s);
    EXPECT_TRUE(p.is_unsigned);
    EXPECT_NEAR(p.clip_max, 9901.0f, 1e-3);
    EXPECT_EQ(p.scale, static_cast<float>(static_cast<double>(p.clip_max) / 255));
    s.percentile = 100.0;  // never beyond the observed maximum
    EXPECT_EQ(calibrate_activation(observe(v), s).clip_max, 10000.0f);
}

// By hand: values -5000..4999 (10000 values). |x| reaches 4950 at 99 % (9900 values have |x| < 4950),
// give or take one histogram bin (width 4: R = 8192).
TEST(CalibrateGolden, PercentileSigned) {
    std::vector<float> v(10000);
    std::iota(v.begin(), v.end(), -5000.0f);
    CalibrationSpec s = spec_of(Calibration::Percentile);
    s.percentile = 99.0;
    const ActivationParams sym = calibrate_activation(observe(v), s);
    EXPECT_NEAR(sym.clip_max, 4950.0f, 4.0f);
    EXPECT_EQ(sym.clip_min, -sym.clip_max);
    s.signed_scheme = Scheme::Asymmetric;
    const ActivationParams asym = calibrate_activation(observe(v), s);
    EXPECT_NEAR(asym.clip_min, -4900.0f, 4.0f);  // 1 % of the values below
    EXPECT_NEAR(asym.clip_max, 4900.0f, 4.0f);   // 99 % below
}

// At 4 bits an outlier stretches the min/max range so far that the bulk of the values gets few levels:
// MSE clips it (the squared error of the data is smaller), and so does the 99.99th percentile.
TEST(Calibrate, MseClipsOutliers) {
    std::vector<float> v = dcs::compress::testing::normal_tensor(20000, 4);
    for (float& x : v) x = std::fabs(x);  // post-ReLU-like
    v.push_back(8.0f);
    CalibrationSpec s = spec_of(Calibration::MinMax);
    s.bits = 4;
    auto data_sse = [&](const ActivationParams& p) {
        double e = 0;
        for (float x : v) {
            const double q = std::clamp(std::nearbyint(static_cast<double>(x) / p.scale) + p.zero_point, 0.0, 15.0);
            const double d = x - p.scale * (q - p.zero_point);
            e += d * d;
        }
        return e;
    };
    const ActivationParams mm = calibrate_activation(observe(v), s);
    s.method = Calibration::Mse;
    const ActivationParams mse = calibrate_activation(observe(v), s);
    EXPECT_EQ(mm.clip_max, 8.0f);
    EXPECT_LT(mse.clip_max, 6.0f);
    EXPECT_LT(data_sse(mse), data_sse(mm));
    s.method = Calibration::Percentile;
    EXPECT_LT(calibrate_activation(observe(v), s).clip_max, 5.0f);  // 99.99 % of N(0,1) magnitudes lie below ~3.9
}

// The histogram is the same however the values are split into batches and in whatever order.
TEST(ActivationObserver, BatchAndOrderInvariant) {
    const std::vector<float> v = dcs::compress::testing::normal_tensor(10007, 8, 3.0f);
    const ActivationObserver whole = observe(v);
    ActivationObserver parts;  // batches out of order, one empty
    parts.observe(v.data() + 9000, 1007);
    parts.observe(v.data(), 17);
    parts.observe(v.data() + 17, 0);
    parts.observe(v.data() + 3000, 6000);
    parts.observe(v.data() + 17, 2983);
    EXPECT_EQ(parts.count(), whole.count());
    EXPECT_EQ(parts.min(), whole.min());
    EXPECT_EQ(parts.max(), whole.max());
    EXPECT_EQ(parts.range(), whole.range());
    EXPECT_EQ(parts.histogram(), whole.histogram());
    for (Calibration m : {Calibration::MinMax, Calibration::Percentile, Calibration::Mse}) {
        const ActivationParams a = calibrate_activation(whole, spec_of(m)), b = calibrate_activation(parts, spec_of(m));
        EXPECT_EQ(a.scale, b.scale);
        EXPECT_EQ(a.zero_point, b.zero_point);
    }
}

TEST(ActivationObserver, GrowsByPowersOfTwo) {
    ActivationObserver o(4);
    const float zeros[3] = {0, 0, 0};
    o.observe(zeros, 3);
    EXPECT_EQ(o.range(), 0.0);
    const float a[1] = {0.75f};
    o.observe(a, 1);
    EXPECT_EQ(o.range(), 1.0);  // smallest power of two above 0.75
    EXPECT_EQ(o.histogram(), (std::vector<uint64_t>{0, 0, 0, 0, 3, 0, 0, 1}));
    const float b[1] = {-3.0f};
    o.observe(b, 1);
    EXPECT_EQ(o.range(), 4.0);  // bins of width 1 over [-4, 4)
    EXPECT_EQ(o.histogram(), (std::vector<uint64_t>{0, 1, 0, 0, 4, 0, 0, 0}));
    const float c[1] = {1.0f};  // exactly a power of two: R stays above it
    ActivationObserver p(2);
    p.observe(c, 1);
    EXPECT_EQ(p.range(), 2.0);
}

TEST(Calibrate, RejectsBadInput) {
    ActivationObserver empty;
    EXPECT_THROW(calibrate_activation(empty, CalibrationSpec{}), std::invalid_argument);
    const ActivationObserver o = observe({1.0f, -1.0f});
    CalibrationSpec s;
    s.bits = 1;
    EXPECT_THROW(calibrate_activation(o, s), std::invalid_argument);
    s.bits = 9;
    EXPECT_THROW(calibrate_activation(o, s), std::invalid_argument);
    s = spec_of(Calibration::Percentile);
    s.percentile = 50.0;
    EXPECT_THROW(calibrate_activation(o, s), std::invalid_argument);
    s.percentile = 100.5;
    EXPECT_THROW(calibrate_activation(o, s), std::invalid_argument);
    EXPECT_THROW(ActivationObserver(3), std::invalid_argument);
    EXPECT_THROW(ActivationObserver(0), std::invalid_argument);
    ActivationObserver bad;
    const float nan[2] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
    try {
        bad.observe(nan, 2);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("value 1"), std::string::npos) << e.what();
    }
    EXPECT_EQ(bad.count(), 0);  // nothing added
}
