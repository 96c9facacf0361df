#pragma once
/// The quantization plan shared by the oneDNN int8 executor, the integer reference executor and the
/// QDQ export: which nodes are fused into which, which steps run on 8-bit data and the type and scale
/// of every materialised activation. How each operator takes part is its row's Int8Class in the
/// operator table (runtime/ops/op_table.hpp). The arithmetic of a quantized layer is described in
/// runtime/int8_reference.hpp.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compress/calibrate.hpp"
#include "runtime/graph.hpp"

namespace dcs {

/// Element type of an activation.
enum class QType { F32, S8, U8 };

const char* qtype_name(QType t);

/// Type and scale of one materialised activation value: real = scale * q (zero point 0).
struct QValue {
    QType type = QType::F32;   ///< how the value is stored
    QType qtype = QType::S8;   ///< the 8-bit type it is quantized to when an int8 step reads it (== type unless F32)
    float scale = 1.0f;        ///< > 0; for F32 values the scale used when quantizing
    bool calibrated = false;   ///< the scale comes from calibration (else inherited from the input)
};

/// Post-op activation fused into a layer.
enum class QAct { None, Relu, Clip };

/// One step of the quantized model: a graph node and the nodes fused into it.
struct QStep {
    const Node* node = nullptr;      ///< the main node (owned by the graph)
    bool layer = false;              ///< a compressible Conv/Gemm/MatMul (constant weight), run as a oneDNN layer
    bool int8 = false;               ///< computes on 8-bit data; else on fp32 (inputs dequantized)
    std::string input;               ///< main data input (a folded Flatten's source for layers)
    std::string output;              ///< the value produced (output of the last fused node)
    std::string sum_input;           ///< residual added by a fused Add (sum post-op); "" when none
    QAct act = QAct::None;           ///< fused activation after the (optional) sum
    float clip_min = 0.0f, clip_max = 0.0f;  ///< real clip bounds for QAct::Clip
    std::vector<std::string> fused;  ///< names of the nodes folded into this step
};

/// Fusion and type decisions for a graph. The same plan serves the fp32 and the int8 executors, so
/// calibration observes exactly the values the int8 path materialises.
struct QuantPlan {
    bool int8 = false;
    std::vector<QStep> steps;               ///< execution order
    std::map<std::string, QValue> values;   ///< every materialised value (graph inputs, step outputs)
    std::map<std::string, std::vector<int64_t>> sample_shapes;  ///< shapes at batch 1
};

/// Builds the plan: fuses Add (sum) and Relu/Clip into the layer that produces their input where the
/// graph allows, folds a Flatten/Reshape to [N, -1] into a following Gemm/MatMul, and chooses which
/// steps run on 8-bit data (`int8`) and the structural types of their outputs (u8 after Relu, s8
/// otherwise, f32 for values only fp32 consumers or graph outputs read). Scales are not set.
/// Throws InputError / UnsupportedError on a graph the executors cannot run.
QuantPlan plan_graph(const Graph& graph, bool int8);

/// Sets every value's scale (and the quantization type of fp32 values) from calibration observers
/// (one per materialised value; values not observed keep scale 1), in step order: pooling, Relu, Clip,
/// Flatten, Reshape inherit their input's scale; other outputs get the calibrated range / 127 (s8) or
/// / 255 (u8). Throws std::invalid_argument from calibrate_activation.
void assign_scales(QuantPlan& plan, const std::map<std::string, compress::ActivationObserver>& observed,
                   const compress::CalibrationSpec& spec);

/// Output-stage bounds of a fused Clip in output units (±FLT_MAX for infinite bounds).
void act_bounds(const QStep& step, float out_scale, float* lo, float* hi);
/// Clip bounds [mn, mx] divided by `scale` (±FLT_MAX where infinite): the eltwise clip parameters on
/// data quantized with `scale`.
void clip_bounds_in_units(float mn, float mx, float scale, float* lo, float* hi);

}  // namespace dcs
