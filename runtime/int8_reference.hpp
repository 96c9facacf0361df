#pragma once
/// The quantized model shared by the oneDNN int8 executor (runtime/dnnl_executor.hpp) and the integer
/// reference executor: the plan (runtime/quant_plan.hpp: which nodes are fused into which, the data
/// type and scale of every activation) and each layer's integer parameters for a candidate. The integer reference runs it with plain loops
/// and the same integer arithmetic and rounding as the oneDNN path, so the two can be compared exactly.
///
/// Arithmetic of a quantized layer (Conv, Gemm, MatMul with a constant weight), per output element of
/// channel c (all float operations in fp32, rounding half to even, saturating to the output type):
///
///     acc = sum(x_q * w_q)                      (int32, exact)
///     f   = (float(acc) + bias[c]) * out_scale[c]
///     f   = f + sum_scale * float(residual_q)   (when an Add is fused as a sum post-op)
///     f   = relu(f) or clip(f, lo, hi)          (when a Relu / Clip is fused)
///     y_q = saturate(round(f))                  (or y = f for an fp32 output)
///
/// with out_scale[c] = alpha * s_x * s_w[c] / s_y and bias[c] = beta * b[c] / (alpha * s_x * s_w[c])
/// (bias in accumulator units: oneDNN 2.x applies the bias before the output scales).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/calibrate.hpp"
#include "compress/weight.hpp"
#include "runtime/graph.hpp"
#include "runtime/quant_plan.hpp"

namespace dcs {

/// Weights of one compressible layer as signed 8-bit codes with per-output-channel scales:
/// w = scales[c] * codes[i] (symmetric, zero point 0). `codes` follow the weight initializer's own
/// layout (the layout compress_weight uses); `scales` has one entry per output channel.
struct Int8LayerWeights {
    std::vector<int8_t> codes;
    std::vector<float> scales;
};

/// 8-bit symmetric per-output-channel quantization of a float weight (max-abs scale / 127, round half
/// to even). `out_axis` is the output-channel axis (LayerInfo::out_axis).
Int8LayerWeights quantize_weight_int8(const Tensor& weight, int64_t out_axis);

/// The int8 runtime form of a compressed weight. Symmetric codes (uniform, binary) are used as they are;
/// asymmetric codes of up to 7 bits become code - zero_point (exact, within [-127, 127]); clustered and
/// 8-bit asymmetric weights are dequantized and re-quantized to 8 bits per channel (approximate).
Int8LayerWeights int8_weights_from(const compress::CompressedWeight& cw);
/// Same, taking the codes over from `cw` where they are used as they are (no copy).
Int8LayerWeights int8_weights_from(compress::CompressedWeight&& cw);

/// Integer parameters of one layer for one candidate (see the arithmetic at the top of this file).
struct QLayer {
    std::vector<int8_t> codes;       ///< the weight codes in the initializer's layout
    std::vector<float> out_scale;    ///< per output channel
    std::vector<float> bias;         ///< per output channel, accumulator units (fp32 mode: real bias)
    float sum_scale = 1.0f;          ///< s_residual / s_y
    float act_lo = 0.0f, act_hi = 0.0f;  ///< eltwise bounds in output units (Clip)
};

/// A plan with scales and the current candidate's layer parameters.
struct QuantizedModel {
    QuantPlan plan;
    std::map<std::string, LayerInfo> layer_info;  ///< by node name (list_layers)
    std::map<std::string, QLayer> layers;         ///< by node name, for every layer step
    uint64_t version = 0;                         ///< incremented whenever `layers` change
};

/// Computes a layer's QLayer from its weights and the plan's scales. `bias_shift`, when given (one per
/// output channel, real units), is subtracted from the layer's bias (bias correction). Throws
/// InputError when the codes, scales or shift do not match the weight's shape. Takes the weights by value:
/// pass an rvalue to hand the codes over without a copy.
QLayer make_qlayer(const Graph& graph, const QuantPlan& plan, const QStep& step, const LayerInfo& info,
                   Int8LayerWeights weights, const std::vector<float>* bias_shift = nullptr);

/// Bias correction (Nagel et al., "Data-Free Quantization", 2019, empirical variant): the expected
/// change of a layer's output caused by quantizing its weight, alpha * (W_q - W) E[x], from the mean of
/// its input per input channel (Conv; borders ignored) or per input feature (Gemm / MatMul) on the
/// calibration set. Subtracting it from the bias removes the mean output shift.
/// @param input_mean per input channel (Conv) or per column of K (Gemm / MatMul)
/// @return one value per output channel
/// @throws InputError when the sizes do not match the layer
std::vector<float> bias_shift(const Graph& graph, const Node& node, const LayerInfo& info,
                              const Int8LayerWeights& weights, const std::vector<float>& input_mean);

/// Output-channel count and per-channel bias (beta * C or the Conv bias; zeros when absent) of a layer.
std::vector<float> layer_bias(const Graph& graph, const Node& node, int64_t channels);

/// A graph holding one node of `graph` (its initializers and inputs), so any step can fall back to
/// the fp32 ReferenceExecutor's semantics. Non-initializer inputs become graph inputs in node order.
Graph single_node_graph(const Graph& graph, const Node& node);

/// Runs a quantized model with plain loops on NCHW data: the integer ground truth for the oneDNN int8
/// path. Keeps a reference to `graph` and `model`, which must outlive it.
class Int8ReferenceExecutor {
public:
    Int8ReferenceExecutor(const Graph& graph, const QuantizedModel& model);
    ~Int8ReferenceExecutor();

    /// Runs one batch (graph input 0, fp32) and returns graph output 0 as fp32.
    /// Throws InputError when the input's per-sample shape does not match the model.
    Tensor run(const Tensor& input) const;

    /// When set, run() also keeps every materialised value (dequantized to fp32) for inspection.
    void keep_values(bool keep) { keep_ = keep; }
    /// Values kept by the last run() (name -> fp32 tensor, NCHW).
    const std::map<std::string, Tensor>& kept() const { return kept_; }

private:
    const Graph& graph_;
    const QuantizedModel& model_;
    struct Fallback;
    std::vector<std::unique_ptr<Fallback>> fallbacks_;  ///< per step; null for native steps
    bool keep_ = false;
    mutable std::map<std::string, Tensor> kept_;
};

}  // namespace dcs
