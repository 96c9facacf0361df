#pragma once
/// Uniform (affine) weight quantization at 2..8 bits: the primitives and the "uniform" method row.
///
/// code = clamp(round_half_even(w / scale) + zero_point, code_min, code_max)
/// dequantized = scale * (code - zero_point)
///
/// Symmetric codes use the restricted range [-(2^(b-1)-1), 2^(b-1)-1] and zero_point 0, so that -x and x
/// quantize alike and an int8 product never sees -128. Asymmetric codes are the unsigned b-bit values
/// [0, 2^b-1] shifted by -2^(b-1) so they fit an int8 container: code in [-2^(b-1), 2^(b-1)-1], and the
/// zero point is shifted alike. The real range [lo, hi] always includes 0, so 0 (and every pruned
/// weight) is represented exactly by code == zero_point.
#include <cstdint>
#include <vector>

#include "compress/layout.hpp"
#include "compress/types.hpp"

namespace dcs::compress {

/// Scale and zero point of one group (channel or tensor). zero_point is in container units (0 when
/// symmetric).
struct UniformParams {
    float scale = 1.0f;
    int zero_point = 0;
};

/// Smallest and largest container code of uniform quantization.
/// @param bits 2..8
/// @throws std::invalid_argument when bits is outside 2..8
int uniform_code_min(int bits, Scheme scheme);
int uniform_code_max(int bits, Scheme scheme);

/// The clip ratios the MSE search may pick: kMseGridPoints values from 1 down to kMseGridMin, evenly
/// spaced: ratio_i = 1 - (1 - kMseGridMin) * i / (kMseGridPoints - 1), i = 0..99.
inline constexpr int kMseGridPoints = 100;
inline constexpr double kMseGridMin = 0.3;
/// The search is coarse to fine: it evaluates i = 0, 9, 18, ..., 99, then descends from the best of those
/// by steps of 4, 2 and 1 (each step: the two indices one step either side of the best so far; at most 18
/// evaluations instead of 100). Assumes the error is roughly unimodal in the ratio near its minimum.
inline constexpr int kMseCoarseStep = 9;
inline constexpr int kMseFineSteps[] = {4, 2, 1};
double mse_clip_ratio(int i);

/// Chooses the scale (and zero point) of every group of a weight: one per output channel
/// (PerChannel) or one for the tensor (PerTensor).
///
/// The real range of a group is [lo, hi] = [min(0, min x), max(0, max x)].
/// MaxAbs: symmetric scale = max(-lo, hi) / code_max; asymmetric scale = (hi - lo) / (2^b - 1) and zero
/// point round_half_even(-lo / scale), clamped to [0, 2^b - 1], then shifted by -2^(b-1). Scales are
/// computed in double and rounded to float once.
/// Mse: the range times mse_clip_ratio(i), for the i (searched as described at kMseCoarseStep) with the
/// smallest squared error over the group (ties: the smaller i, i.e. the wider range). The search
/// measures the error with x * (1/scale) instead of x / scale, for speed; the final codes divide.
/// A group whose range is 0 or whose scale would be subnormal gets scale 1.
/// @param x    the weight with pruned elements set to 0 (masked_weight); zeros change neither the range
///             nor the error, so pruned elements are in effect left out
/// @param bits 2..8
/// @throws std::invalid_argument when bits is outside 2..8
std::vector<UniformParams> choose_uniform_group_params(const float* x, const Layout& l, Granularity granularity,
                                                       int bits, Scheme scheme, WeightClip clip);

struct CompressedWeight;
/// Sets out.scales (and out.zero_points when out.scheme is asymmetric, else none) from one
/// UniformParams per group.
void set_uniform_side_data(const std::vector<UniformParams>& params, CompressedWeight& out);

/// choose_uniform_group_params for a single group of n values.
UniformParams choose_uniform_params(const float* values, int64_t n, int bits, Scheme scheme, WeightClip clip);

/// Sum of squared quantization errors of `values` under `p` (the MSE search's metric, with the same
/// reciprocal shortcut; float lanes, summed in double).
double uniform_sse(const float* values, int64_t n, UniformParams p, int bits, Scheme scheme);

/// code = clamp(round_half_even(w / p.scale) + p.zero_point, code_min, code_max), for a finite w and
/// p.scale > 0 (ONNX QuantizeLinear's formula, in float).
inline int quantize_uniform(float w, UniformParams p, int code_min, int code_max) {
    float x = w / p.scale;
    const auto lo = static_cast<float>(code_min - p.zero_point);
    const auto hi = static_cast<float>(code_max - p.zero_point);
    x = x > lo ? x : lo;
    x = x < hi ? x : hi;
    // Adding and subtracting 1.5 * 2^23 rounds |x| < 2^22 to the nearest integer, ties to even, in the
    // default rounding mode: what std::nearbyint does, but vectorizable.
    x = (x + 12582912.0f) - 12582912.0f;
    return static_cast<int>(x) + p.zero_point;
}

/// scale * (code - zero_point).
inline float dequantize_uniform(int code, UniformParams p) {
    return p.scale * static_cast<float>(code - p.zero_point);
}

}  // namespace dcs::compress
