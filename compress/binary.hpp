#pragma once
/// The "binary" method: 1-bit weights, sign times a per-group scale (XNOR-Net / BinaryConnect style).
///
/// code = +1 when w >= 0 (also for -0), else -1; dequantized = scale * code.
/// scale = mean |w| over the group's kept values, which minimises the squared error for fixed signs; it
/// is also what the MSE clip search would find, so WeightClip does not change it. A group with no kept
/// non-zero value gets scale 0, so its codes dequantize to 0.
/// Both schemes give binary weights at 1 bit: an asymmetric 1-bit grid that must contain 0 exactly (so
/// that pruned weights stay zero) would be {0, s} or {-s, 0}, which loses the sign.
#include <cstdint>

namespace dcs::compress {

/// Mean |v| over n values, accumulated in double (0 when n == 0).
float binary_scale(const float* values, int64_t n);

}  // namespace dcs::compress
