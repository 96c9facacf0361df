#pragma once
/// Activation calibration: per-tensor scale and zero point from values observed on the calibration
/// subset, by min/max, percentile or MSE.
///
/// Data type: u8 with zero point 0 when the tensor was never negative (e.g. after ReLU), else s8 -
/// symmetric (zero point 0) by default, or asymmetric with a zero point when asked.
/// Quantization of an activation x: q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax) with
/// [qmin, qmax] = [0, 2^b - 1] for u8 and [-2^(b-1), 2^(b-1) - 1] for s8.
#include <cstdint>
#include <vector>

#include "compress/types.hpp"

namespace dcs::compress {

/// How to turn observed values into quantization parameters.
struct CalibrationSpec {
    Calibration method = Calibration::MinMax;
    double percentile = 99.99;                 ///< for Percentile: in (50, 100]
    int bits = 8;                              ///< 2..8
    Scheme signed_scheme = Scheme::Symmetric;  ///< for tensors with negative values
};

/// Quantization parameters of one activation tensor.
struct ActivationParams {
    float scale = 1.0f;        ///< > 0 (1 when the clip range is empty, e.g. an all-zero tensor)
    int zero_point = 0;        ///< in [qmin, qmax]; 0 for u8 and symmetric s8
    bool is_unsigned = false;  ///< u8 (never negative) or s8
    float clip_min = 0.0f;     ///< the chosen real range [clip_min, clip_max] (clip_min <= 0 <= clip_max)
    float clip_max = 0.0f;
};

/// MSE search: the clip range is tried at ratios i / kActivationMseGrid of the full range, i = 1..grid.
inline constexpr int kActivationMseGrid = 128;

/// Accumulates the values of one activation tensor over calibration batches: exact running min and max,
/// and a histogram of 2 * bins_per_side equal bins over [-R, R). R is the smallest power of two above
/// max |x|; when a batch exceeds it, R doubles and pairs of bins merge, which is exact, so the histogram
/// does not depend on how the values were split into batches or in which order they came.
class ActivationObserver {
public:
    /// @param bins_per_side histogram resolution on each side of 0; even, 2..2^24
    /// @throws std::invalid_argument otherwise
    explicit ActivationObserver(int bins_per_side = 2048);

    /// Adds n values.
    /// @throws std::invalid_argument naming the index of a non-finite value (nothing is added then)
    void observe(const float* x, int64_t n);

    int64_t count() const { return count_; }
    float min() const { return min_; }  ///< 0 before any value
    float max() const { return max_; }
    /// R: the histogram covers [-R, R); 0 while every value seen was 0.
    double range() const { return range_; }
    int bins_per_side() const { return bins_per_side_; }
    /// 2 * bins_per_side counts; bin i covers [-R + i*R/bins_per_side, -R + (i+1)*R/bins_per_side).
    const std::vector<uint64_t>& histogram() const { return hist_; }

private:
    void grow_to(double magnitude);
    int bins_per_side_;
    std::vector<uint64_t> hist_;
    double range_ = 0.0;
    uint64_t zeros_before_range_ = 0;  // zeros seen while range_ == 0
    int64_t count_ = 0;
    float min_ = 0.0f;
    float max_ = 0.0f;
};

/// The quantization parameters of the observed tensor.
///
/// MinMax: the observed range. Percentile: the clip bound(s) below which `percentile` % of the values
/// lie (|x| for symmetric s8; both tails for asymmetric s8), interpolated linearly inside a histogram
/// bin and never beyond the observed range. Mse: the range scaled by the ratio i / kActivationMseGrid
/// that minimises the squared error of the histogram (each bin at its centre).
/// @throws std::invalid_argument when nothing was observed, bits is outside 2..8 or percentile is
///         outside (50, 100]
ActivationParams calibrate_activation(const ActivationObserver& observer, const CalibrationSpec& spec);

}  // namespace dcs::compress
