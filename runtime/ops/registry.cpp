// The list of operator rows, and lookup by OpKind and by ONNX name.
#include <stdexcept>

#include "common/error.hpp"
#include "runtime/ops/op_table.hpp"

namespace dcs {

// One row per operator, each defined in its family's file of runtime/ops/.
const OpDef& conv_op();
const OpDef& gemm_op();
const OpDef& matmul_op();
const OpDef& add_op();
const OpDef& relu_op();
const OpDef& clip_op();
const OpDef& max_pool_op();
const OpDef& average_pool_op();
const OpDef& global_average_pool_op();
const OpDef& flatten_op();
const OpDef& reshape_op();
const OpDef& pad_op();
const OpDef& concat_op();
const OpDef& softmax_op();
const OpDef& batch_norm_op();
const OpDef& sigmoid_op();

const std::vector<const OpDef*>& op_table() {
    static const std::vector<const OpDef*> table = [] {
        std::vector<const OpDef*> t = {
            &conv_op(),        &gemm_op(),        &matmul_op(),
            &add_op(),         &relu_op(),        &clip_op(),
            &max_pool_op(),    &average_pool_op(), &global_average_pool_op(),
            &flatten_op(),     &reshape_op(),     &pad_op(),
            &concat_op(),      &softmax_op(),     &batch_norm_op(),
            &sigmoid_op(),
        };
        // Rows are indexed by OpKind: the list must follow the enum.
        for (size_t i = 0; i < t.size(); ++i)
            if (static_cast<size_t>(t[i]->kind) != i)
                throw std::logic_error(std::string("operator table: row ") + t[i]->onnx_name + " is out of OpKind order");
        return t;
    }();
    return table;
}

const OpDef& op_def(OpKind kind) {
    const auto& t = op_table();
    const auto i = static_cast<size_t>(kind);
    if (i >= t.size()) throw std::logic_error("operator table: no row for OpKind " + std::to_string(i));
    return *t[i];
}

const OpDef* find_op(const std::string& onnx_name) {
    for (const OpDef* d : op_table())
        if (onnx_name == d->onnx_name) return d;
    return nullptr;
}

std::string node_where(const std::string& name, const std::string& op) { return "node '" + name + "' (" + op + ")"; }

std::string node_where(const Node& node) { return node_where(node.name, op_name(node.op)); }

const char* auto_pad_name(AutoPad p) {
    switch (p) {
        case AutoPad::NotSet: return "NOTSET";
        case AutoPad::SameUpper: return "SAME_UPPER";
        case AutoPad::SameLower: return "SAME_LOWER";
        case AutoPad::Valid: return "VALID";
    }
    return "NOTSET";
}

const Tensor& RefArgs::in(size_t i) const {
    const Tensor* t = opt(i);
    if (!t) throw InputError(where + ": value '" + (i < node.inputs.size() ? node.inputs[i] : std::string()) +
                             "' is not available");
    return *t;
}

}  // namespace dcs
