#pragma once
/// How a weight tensor's elements are grouped by output channel.
///
/// A weight of shape [d0, ..., d(r-1)] with output-channel axis `a` is viewed as [outer, channels, inner]
/// with outer = d0*...*d(a-1), channels = d(a), inner = d(a+1)*...*d(r-1). Element (o, c, i) sits at
/// flat index (o*channels + c)*inner + i, so the loops `for o, for c, for i` walk memory in order.
/// Conv [OC, IC, KH, KW] and Gemm-transB [N, K] use out_axis 0 (outer = 1); MatMul [K, N] uses out_axis 1
/// (inner = 1).
#include <cstdint>
#include <string>
#include <vector>

namespace dcs::compress {

struct Layout {
    int64_t outer = 1;     ///< product of the dimensions before the output-channel axis
    int64_t channels = 1;  ///< size of the output-channel axis
    int64_t inner = 1;     ///< product of the dimensions after it
    /// Element count.
    int64_t numel() const { return outer * channels * inner; }
    /// Output channel of flat index `i`.
    int64_t channel_of(int64_t i) const { return (i / inner) % channels; }
};

/// Largest element count accepted for one weight tensor (2^40): products beyond it are rejected before
/// they can overflow.
inline constexpr int64_t kMaxWeightElements = int64_t{1} << 40;

/// The [outer, channels, inner] view of a weight.
/// @param shape    the weight's dimensions; rank >= 1, every dimension >= 1
/// @param out_axis index of the output-channel axis, in [0, rank)
/// @throws std::invalid_argument naming the offending shape or axis (rank 0, a dimension < 1, an element
///         count above kMaxWeightElements, out_axis out of range)
Layout weight_layout(const std::vector<int64_t>& shape, int64_t out_axis);

/// A shape for messages: "[784, 300]".
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace dcs::compress
