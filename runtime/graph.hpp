#pragma once
/// The graph IR: what the ONNX importer produces and every executor consumes.
/// Nodes are typed (attributes parsed once at import) and kept in topological order.
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "runtime/tensor.hpp"

namespace dcs {

/// The operators of the IR; each has one row in the operator table (runtime/ops/op_table.hpp), in
/// this order (docs/adding-an-operator.md).
enum class OpKind {
    Conv,
    Gemm,
    MatMul,
    Add,
    Relu,
    Clip,
    MaxPool,
    AveragePool,
    GlobalAveragePool,
    Flatten,
    Reshape,
    Pad,
    Concat,
    Softmax,
    BatchNorm,  ///< only when it could not be folded into a preceding Conv/Gemm
    Sigmoid,
};

/// The operator's ONNX name (its row's onnx_name); "?" for a value outside the enum.
const char* op_name(OpKind op);

enum class AutoPad { NotSet, SameUpper, SameLower, Valid };

struct ConvAttrs {
    int64_t group = 1;
    std::vector<int64_t> kernel;     ///< spatial kernel shape (from the weight when absent)
    std::vector<int64_t> strides;    ///< one per spatial dim
    std::vector<int64_t> pads;       ///< begins then ends, 2 per spatial dim
    std::vector<int64_t> dilations;  ///< one per spatial dim
    AutoPad auto_pad = AutoPad::NotSet;
};

struct GemmAttrs {
    bool trans_a = false;
    bool trans_b = false;
    float alpha = 1.0f;
    float beta = 1.0f;
};

struct PoolAttrs {
    std::vector<int64_t> kernel;
    std::vector<int64_t> strides;
    std::vector<int64_t> pads;
    std::vector<int64_t> dilations;
    AutoPad auto_pad = AutoPad::NotSet;
    bool ceil_mode = false;
    bool count_include_pad = false;
};

struct ClipAttrs {
    float min = -std::numeric_limits<float>::infinity();
    float max = std::numeric_limits<float>::infinity();
};

struct AxisAttrs {
    int64_t axis = 1;
    bool legacy_softmax = false;  ///< Softmax before opset 13: coerce to 2-D at `axis`
};

struct PadAttrs {
    std::vector<int64_t> pads;  ///< begins then ends, one pair per dim (resolved at import)
    float value = 0.0f;
};

struct BatchNormAttrs {
    float epsilon = 1e-5f;
};

struct ReshapeAttrs {
    std::vector<int64_t> shape;  ///< the constant target shape (0 copies, -1 infers)
    bool allow_zero = false;
};

using NodeAttrs = std::variant<std::monostate, ConvAttrs, GemmAttrs, PoolAttrs, ClipAttrs, AxisAttrs,
                               PadAttrs, BatchNormAttrs, ReshapeAttrs>;

struct Node {
    std::string name;  ///< unique within the graph (generated as "<Op>_<index>" when the file has none)
    OpKind op;
    std::vector<std::string> inputs;  ///< value names; "" for an omitted optional input
    std::vector<std::string> outputs;
    NodeAttrs attrs;
};

struct ValueInfo {
    std::string name;
    std::vector<int64_t> shape;  ///< -1 for a dynamic dimension (usually the batch)
};

struct Graph {
    int64_t opset = 0;
    std::vector<ValueInfo> inputs;                 ///< graph inputs that are not initializers
    std::vector<std::string> outputs;
    std::map<std::string, Tensor> initializers;    ///< weights and other constants
    std::vector<Node> nodes;                       ///< topological order

    const Node* find_node(const std::string& name) const;
    /// Shape of every value for a given batch size (static shape inference); throws InputError on
    /// inconsistent shapes, naming the node.
    std::map<std::string, std::vector<int64_t>> infer_shapes(int64_t batch = 1) const;
};

/// Resolved geometry of a sliding window (Conv, MaxPool, AveragePool) on a given input.
struct Window {
    std::vector<int64_t> in, kernel, strides, dilations, pad_begin, pad_end, out;  ///< per spatial dim
};

/// Output size and padding of a Conv over spatial input `in` (kernel taken from attrs).
/// Throws InputError (prefixed by `where`) when the window does not fit.
Window conv_window(const ConvAttrs& a, const std::vector<int64_t>& in, const std::string& where);
/// Same for MaxPool / AveragePool, honouring ceil_mode.
Window pool_window(const PoolAttrs& a, const std::vector<int64_t>& in, const std::string& where);
/// Numpy-style broadcast of two shapes; throws InputError (prefixed by `where`) when incompatible.
std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      const std::string& where);
/// Reshape's target shape for an input shape (0 copies a dim unless allow_zero, -1 infers one).
std::vector<int64_t> reshape_target(const ReshapeAttrs& a, const std::vector<int64_t>& in, const std::string& where);

/// A layer the search can compress: a Conv, Gemm or MatMul whose weight is a constant.
struct LayerInfo {
    std::string name;                   ///< node name
    OpKind op;
    std::string weight;                 ///< initializer name of the weight
    std::string bias;                   ///< initializer name of the bias, "" if none
    std::vector<int64_t> weight_shape;  ///< as stored in the initializer
    int64_t out_axis = 0;               ///< axis of output channels in the stored weight
    int64_t params = 0;                 ///< weight elements (+ bias elements)
    int64_t macs = 0;                   ///< multiply-accumulates per sample
};

/// The compressible layers in graph order.
std::vector<LayerInfo> list_layers(const Graph& graph);

}  // namespace dcs
