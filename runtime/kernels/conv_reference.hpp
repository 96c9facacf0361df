#pragma once
/// The plain-loop reference of every host convolution family (conv_ic1, conv_vnni, conv_dw,
/// conv1x1_amx): the same integer arithmetic one output at a time. Channels-last input, int32 sums of
/// codes times weight codes, then the output stage of output_stage.hpp in plain C++ ((acc + bias) *
/// scale, plus sum_scale * residual for a fused Add, the clamp, rounding half to even). Slow; for tests.
#include <cstdint>

#include "runtime/kernels/host_layer.hpp"

namespace dcs::kernels {

/// Computes `nb` images of the convolution `d` (any group, stride, padding, dilation) with candidate
/// parameters `q`: x [nb, H, W, C] (d.xt), y [nb, OH, OW, OC] (d.yt), residual like y (d.rt) when d.sum.
void conv_reference(const LayerDesc& d, const QLayer& q, const void* x, void* y, int64_t nb, const void* residual);

}  // namespace dcs::kernels
