#pragma once
/// The operator table: one row (OpDef) per operator of the graph IR. A row holds everything one
/// operator is and does: its ONNX name and opsets, how its attributes are read from an ONNX node, its
/// shape inference, its fp32 reference implementation, how the int8 plan treats it and how it is
/// written back to ONNX. The importer, Graph::infer_shapes, the ReferenceExecutor, the quantization
/// plan, the QDQ export and serialize_structure dispatch through the rows; docs/adding-an-operator.md
/// says how to add one.
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace dcs {

class OnnxNode;    // runtime/ops/onnx_node.hpp: one ONNX node as the attribute parsers read it
class ExportNode;  // runtime/ops/export_node.hpp: one node being written to the QDQ model

/// How the quantization plan (runtime/quant_plan.hpp) treats an operator.
enum class Int8Class {
    Layer,      ///< Conv, Gemm, MatMul: a compressible layer when its weight is a constant, else fp32
    PassScale,  ///< runs on 8-bit data and keeps its input's type and scale (pooling, Relu, shape ops)
    Rescale,    ///< runs on 8-bit data, re-quantizing its inputs to its own calibrated scale (Add, Concat)
    F32Only,    ///< never reads 8-bit data: its input is produced in fp32
};

/// What the plan knows about a node when it asks a row's int8 predicates.
struct PlanQuery {
    const Graph& graph;
    const Node& node;
    const std::map<std::string, std::vector<int64_t>>& shapes;  ///< at batch 1
};

/// Inputs of shape inference for one node.
struct ShapeArgs {
    const Node& node;
    const std::string& where;  ///< node_where(node), the prefix of every error
    /// Shape of input i; throws InputError naming the input when it is unknown.
    std::function<const std::vector<int64_t>&(size_t)> input;
    bool has_input(size_t i) const { return node.inputs.size() > i && !node.inputs[i].empty(); }
};

/// Inputs of the fp32 reference implementation of one node.
struct RefArgs {
    const Node& node;
    const std::string& where;
    std::vector<const Tensor*> inputs;  ///< one per node input; null for an omitted optional input
    /// Input i; throws InputError when it is absent.
    const Tensor& in(size_t i) const;
    /// Input i or null when omitted.
    const Tensor* opt(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
};

/// A row. Rows are written as aggregates in field order, e.g.
///     static const OpDef def{OpKind::Relu, "Relu", 1, 18, "max(x, 0)", Int8Class::PassScale,
///                            parse, infer_shape, reference, export_onnx};
/// (the optional fields after export_onnx default to null).
struct OpDef {
    OpKind kind = OpKind::Conv;
    const char* onnx_name = ""; ///< also op_name(kind)
    int64_t min_opset = 1;      ///< default-domain opsets the importer accepts the operator at
    int64_t max_opset = 18;
    const char* doc = "";       ///< the notes column of docs/onnx-support.md's operator table
    Int8Class int8 = Int8Class::F32Only;
    /// Fills node.attrs (and trims node.inputs to the data inputs) from the ONNX node; fails with
    /// OnnxNode::fail on an attribute or input it does not support.
    void (*parse)(const OnnxNode& onnx, Node& node) = nullptr;
    /// Output shape; throws InputError prefixed by args.where on inconsistent shapes.
    std::vector<int64_t> (*infer_shape)(const ShapeArgs& args) = nullptr;
    /// The fp32 reference: plain loops, written to be read and trusted.
    Tensor (*reference)(const RefArgs& args) = nullptr;
    /// Writes the node to the QDQ model (runtime/onnx_export.cpp); throws UnsupportedError when it
    /// cannot be written at the export opset.
    void (*export_onnx)(ExportNode& out) = nullptr;
    /// Writes the attributes to serialize_structure's line (" key=value..."); null when there are none.
    void (*describe)(const Node& node, std::ostream& os) = nullptr;
    /// PassScale / Rescale: true when this node's input must nevertheless be fp32 (Pad with a nonzero
    /// value, Add of a constant or with broadcasting). Null: never.
    bool (*int8_reads_f32)(const PlanQuery& q) = nullptr;
    /// PassScale: an extra condition for running on 8-bit data (AveragePool dividing as ONNX does,
    /// Pad without cropping). Null: always.
    bool (*int8_accepts)(const PlanQuery& q) = nullptr;
};

/// Every row, in OpKind order.
const std::vector<const OpDef*>& op_table();
/// The row of `kind` (every OpKind has one).
const OpDef& op_def(OpKind kind);
/// The row whose ONNX name is `onnx_name`; null when none.
const OpDef* find_op(const std::string& onnx_name);

/// "node 'NAME' (OP)": the prefix of every error message about a node.
std::string node_where(const std::string& name, const std::string& op);
std::string node_where(const Node& node);

/// The ONNX spelling of an auto_pad value ("NOTSET", "SAME_UPPER", ...).
const char* auto_pad_name(AutoPad p);

}  // namespace dcs
