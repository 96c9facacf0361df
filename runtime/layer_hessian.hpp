#pragma once
/// The input Hessians GPTQ rounding needs (compress/gptq.hpp): per compressible layer, H = sum x x^T
/// over the layer's fp32 inputs on the calibration batches, as the fp32 reference executor computes
/// them (the model itself, uncompressed). For Gemm and MatMul x is one input row (a Gemm with transA
/// reads the input's columns); for a Conv, x is one im2col column of a group: its IC/group input
/// channels x kernel positions, in (ic, kh, kw) order, with the layer's padding (zeros), strides and
/// dilations, one per output position.
#include <vector>

#include "compress/gptq.hpp"
#include "runtime/graph.hpp"

namespace dcs {

/// One LayerHessian per layer of `layers` (list_layers(graph)), from one reference pass per batch, with
/// its GPTQ factors made (LayerHessian::factor()).
/// @throws InputError when a batch does not fit the model (naming the node)
std::vector<compress::LayerHessian> layer_hessians(const Graph& graph, const std::vector<LayerInfo>& layers,
                                                   const std::vector<Tensor>& batches);

/// An empty Hessian of the right size for `layer` (groups and columns), and the one that adds the
/// layer's input `x` (the value the node reads as input 0; `weight_shape` the layer's weight) to it.
/// @throws InputError when x does not fit the layer (naming the node)
compress::LayerHessian empty_hessian(const Graph& graph, const LayerInfo& layer);
void add_layer_input(const Node& node, const std::vector<int64_t>& weight_shape, const Tensor& x,
                     compress::LayerHessian& h);

}  // namespace dcs
