#pragma once
/// ONNX export of a calibrated int8 candidate in QDQ form (opset 13): the form ONNX Runtime, TensorRT and
/// OpenVINO recognise as a quantized model.
///
/// - every compressible layer's weight becomes an int8 initializer (the int8 runtime's codes; pruned
///   weights are 0) followed by a DequantizeLinear with per-output-channel scales (`axis` = the layer's
///   output-channel axis);
/// - every activation the int8 runtime stores as 8-bit data gets a QuantizeLinear / DequantizeLinear
///   pair right after it is produced, with the calibrated scale, zero point 0 and the runtime's type
///   (uint8 after ReLU, int8 otherwise); an fp32 value a layer reads quantized gets the pair on that edge;
/// - everything else is the imported graph (BatchNorm folded as the runtime ran it) in fp32.
///
/// A QDQ runtime computes each layer in float on dequantized values and re-quantizes with the same
/// scales and round-half-to-even, so it reproduces the int8 runtime up to float rounding of the
/// accumulation.
#include <map>
#include <string>

#include "runtime/graph.hpp"
#include "runtime/int8_reference.hpp"

namespace dcs {

/// The serialized ONNX ModelProto (opset 13, IR version 7) of `graph` quantized as `model` says.
/// @param model the executor's quantized model after calibration (DnnlExecutor::quantized_model());
///        its `layers` give the weight codes, and their biases when bias correction changed them
/// @param weights the int8 weights by layer (node) name, as given to DnnlExecutor::set_weights()
/// @throws UnsupportedError naming the node when it cannot be written at opset 13 (legacy Softmax on
///         rank > 2 input, Reshape with allowzero, AveragePool with dilations) or its operator row
///         writes nothing (every node is written by its row's export_onnx, runtime/ops/op_table.hpp);
///         InputError when a layer's weights are missing or do not match
std::string qdq_model_bytes(const Graph& graph, const QuantizedModel& model,
                            const std::map<std::string, Int8LayerWeights>& weights, bool bias_correction = false);

/// Writes qdq_model_bytes() to `path`.
/// @throws std::runtime_error naming the path when it cannot be written
void write_qdq_model(const Graph& graph, const QuantizedModel& model,
                     const std::map<std::string, Int8LayerWeights>& weights, const std::string& path,
                     bool bias_correction = false);

}  // namespace dcs
