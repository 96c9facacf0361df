#pragma once
/// One ONNX node as the operator table's attribute parsers read it. Keeps the protobuf types out of
/// the rows: only runtime/ops/onnx_node.cpp and runtime/onnx_import.cpp see onnx::NodeProto.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace onnx {
class NodeProto;
class AttributeProto;
class TensorProto;
}  // namespace onnx

namespace dcs {

class OnnxNode {
public:
    using ConstantFn = std::function<const Tensor*(const std::string&)>;
    using ConvertFn = std::function<Tensor(const onnx::TensorProto&, const std::string&)>;
    /// `constant` resolves a value name to its constant tensor (null when it is not a constant);
    /// `convert` converts a tensor attribute as the importer converts initializers.
    OnnxNode(const onnx::NodeProto& node, const std::string& path, int64_t opset, ConstantFn constant,
             ConvertFn convert = nullptr);

    const onnx::NodeProto& proto() const { return n_; }
    const std::string& op_type() const;
    /// The node's name, or "output <first output>" when it has none.
    std::string label() const;
    int64_t opset() const { return opset_; }
    int input_size() const;
    const std::string& input(int i) const;
    /// True when input i is given (present and not "").
    bool has_input(int i) const { return input_size() > i && !input(i).empty(); }
    int output_size() const;
    const std::string& output(int i) const;

    /// Throws InputError "<path>: node 'X' (Op): <msg>".
    [[noreturn]] void fail(const std::string& msg) const;

    const onnx::AttributeProto* attr(const char* name) const;
    bool has_attr(const char* name) const { return attr(name) != nullptr; }
    int64_t attr_i(const char* name, int64_t dflt) const;
    float attr_f(const char* name, float dflt) const;
    std::vector<int64_t> attr_ints(const char* name) const;
    std::string attr_s(const char* name, const std::string& dflt) const;
    AutoPad auto_pad() const;
    /// The tensor attribute `name` converted into `*out` (`what` names it in messages); false, `*out`
    /// unchanged, when the node has no such attribute.
    bool attr_tensor(const char* name, const std::string& what, Tensor* out) const;

    /// The constant behind a value name; null when it is not a constant.
    const Tensor* constant(const std::string& name) const { return constant_(name); }
    /// Input `index` as a constant; fails naming `what` when it is missing or not a constant.
    const Tensor& require_constant(int index, const char* what) const;
    /// Integer values of a constant (float tensors must hold whole numbers in range).
    std::vector<int64_t> as_ints(const Tensor& t) const;
    /// The single value of a one-element constant; fails naming `what` otherwise.
    float as_scalar(const Tensor& t, const char* what) const;

    /// Fails unless the node has lo..hi inputs, the first lo of them given.
    void need_inputs(int lo, int hi) const;
    /// Fails when an optional output beyond the first is used.
    void single_output() const;
    /// Fills an empty per-spatial-dim list with `dflt`; fails when it has another length than `count`.
    void check_spatial(std::vector<int64_t>& v, size_t count, int64_t dflt, const char* what) const;

private:
    const onnx::NodeProto& n_;
    const std::string& path_;
    int64_t opset_;
    ConstantFn constant_;
    ConvertFn convert_;
};

}  // namespace dcs
