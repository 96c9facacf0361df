// Shape operators: Flatten and Reshape (data unchanged, a new shape).
#include <ostream>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

// ---- Flatten ----

void parse_flatten(const OnnxNode& n, Node& node) {
    n.need_inputs(1, 1);
    node.attrs = AxisAttrs{n.attr_i("axis", 1)};
}

std::vector<int64_t> infer_flatten(const ShapeArgs& s) {
    const auto& x = s.input(0);
    int64_t axis = norm_axis(std::get<AxisAttrs>(s.node.attrs).axis, static_cast<int64_t>(x.size()), true, s.where);
    int64_t a = 1, b = 1;
    for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
        int64_t& f = i < axis ? a : b;
        f = dim_mul(f, x[i], s.where);
    }
    return {a, b};
}

Tensor reference_flatten(const RefArgs& r) {
    const Tensor& x = r.in(0);
    int64_t axis = std::get<AxisAttrs>(r.node.attrs).axis;
    if (axis < 0) axis += x.rank();
    if (axis < 0 || axis > x.rank()) throw InputError(r.where + ": axis out of range");
    int64_t a = 1;
    for (int64_t d = 0; d < axis; ++d) a *= x.shape[d];
    Tensor y = x;
    y.shape = {a, a ? x.numel() / a : 0};
    return y;
}

void export_flatten(ExportNode& e) {
    e.emit("Flatten");
    e.set_int("axis", std::get<AxisAttrs>(e.node.attrs).axis);
}

// ---- Reshape ----

void parse_reshape(const OnnxNode& n, Node& node) {
    ReshapeAttrs a;
    if (n.opset() < 5) {
        n.need_inputs(1, 1);
        a.shape = n.attr_ints("shape");
    } else {
        n.need_inputs(2, 2);
        a.shape = n.as_ints(n.require_constant(1, "shape"));
    }
    for (size_t i = 0; i < a.shape.size(); ++i)
        if (a.shape[i] == kBatchSentinel) {
            // x.view(x.size(0), ...): the batch dimension copied from the input.
            if (i != 0 || n.attr_i("allowzero", 0) != 0) n.fail("uses the batch size other than as the first dimension");
            a.shape[i] = 0;
        }
    a.allow_zero = n.attr_i("allowzero", 0) != 0;
    node.inputs.resize(1);
    node.attrs = a;
}

std::vector<int64_t> infer_reshape(const ShapeArgs& s) {
    return reshape_target(std::get<ReshapeAttrs>(s.node.attrs), s.input(0), s.where);
}

Tensor reference_reshape(const RefArgs& r) {
    Tensor y = r.in(0);
    y.shape = reshape_target(std::get<ReshapeAttrs>(r.node.attrs), y.shape, r.where);
    return y;
}

void export_reshape(ExportNode& e) {
    const auto& a = std::get<ReshapeAttrs>(e.node.attrs);
    if (a.allow_zero) throw UnsupportedError("QDQ export: " + e.where + ": allowzero needs opset 14");
    e.inputs.resize(2);
    e.inputs[1] = e.const_i64(e.node.name + "_shape", {static_cast<int64_t>(a.shape.size())}, a.shape);
    e.emit("Reshape");
}

void describe_reshape(const Node& n, std::ostream& os) {
    const auto& a = std::get<ReshapeAttrs>(n.attrs);
    os << " shape=" << shape_str(a.shape) << " allowzero=" << a.allow_zero;
}

}  // namespace

const OpDef& flatten_op() {
    static const OpDef def{OpKind::Flatten, "Flatten", 1, 18,
                           "any `axis`, negative included",
                           Int8Class::PassScale, parse_flatten, infer_flatten, reference_flatten, export_flatten,
                           describe_axis};
    return def;
}

const OpDef& reshape_op() {
    static const OpDef def{OpKind::Reshape, "Reshape", 1, 18,
                           "constant target shape, `0` copies a dimension, `-1` infers one, `allowzero`",
                           Int8Class::PassScale, parse_reshape, infer_reshape, reference_reshape, export_reshape,
                           describe_reshape};
    return def;
}

}  // namespace dcs
