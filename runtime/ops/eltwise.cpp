// Elementwise operators: Add (with broadcasting), Relu, Clip.
#include <algorithm>
#include <cmath>
#include <ostream>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

std::vector<int64_t> same_shape(const ShapeArgs& s) { return s.input(0); }

// ---- Add ----

void parse_add(const OnnxNode& n, Node&) {
    n.need_inputs(2, 2);
    if (n.has_attr("broadcast") || n.has_attr("axis")) n.fail("the legacy broadcast/axis attributes are not supported");
}

std::vector<int64_t> infer_add(const ShapeArgs& s) { return broadcast_shapes(s.input(0), s.input(1), s.where); }

Tensor reference_add(const RefArgs& r) {
    const Tensor& a = r.in(0);
    const Tensor& b = r.in(1);
    if (a.shape == b.shape) {
        Tensor y = a;
        for (size_t i = 0; i < y.data.size(); ++i) y.data[i] += b.data[i];
        return y;
    }
    auto out = broadcast_shapes(a.shape, b.shape, r.where);
    Tensor y = Tensor::zeros(out);
    auto sa = broadcast_strides(a.shape, out), sb = broadcast_strides(b.shape, out);
    for_each_broadcast(out, sa, sb, [&](int64_t i, int64_t ia, int64_t ib) { y.data[i] = a.data[ia] + b.data[ib]; });
    return y;
}

void export_add(ExportNode& e) { e.emit("Add"); }

/// An Add of a constant or with broadcasting runs in fp32.
bool add_reads_f32(const PlanQuery& q) {
    const Node& n = q.node;
    return q.graph.initializers.count(n.inputs[0]) > 0 || q.graph.initializers.count(n.inputs[1]) > 0 ||
           q.shapes.at(n.inputs[0]) != q.shapes.at(n.inputs[1]);
}

// ---- Relu ----

void parse_relu(const OnnxNode& n, Node&) { n.need_inputs(1, 1); }

Tensor reference_relu(const RefArgs& r) {
    Tensor y = r.in(0);
    for (float& v : y.data) v = v > 0.0f ? v : 0.0f;
    return y;
}

void export_relu(ExportNode& e) { e.emit("Relu"); }

// ---- Clip ----

void parse_clip(const OnnxNode& n, Node& node) {
    n.need_inputs(1, 3);
    ClipAttrs a;
    if (n.opset() < 11) {
        a.min = n.attr_f("min", a.min);
        a.max = n.attr_f("max", a.max);
    } else {
        if (n.has_input(1)) a.min = n.as_scalar(n.require_constant(1, "min"), "min");
        if (n.has_input(2)) a.max = n.as_scalar(n.require_constant(2, "max"), "max");
    }
    node.inputs.resize(1);
    node.attrs = a;
}

Tensor reference_clip(const RefArgs& r) {
    const auto& c = std::get<ClipAttrs>(r.node.attrs);
    Tensor y = r.in(0);
    for (float& v : y.data) v = std::min(std::max(v, c.min), c.max);
    return y;
}

void export_clip(ExportNode& e) {
    const auto& a = std::get<ClipAttrs>(e.node.attrs);
    e.inputs.resize(3);
    if (std::isfinite(a.min)) e.inputs[1] = e.const_f32(e.node.name + "_min", {}, {a.min});
    if (std::isfinite(a.max)) e.inputs[2] = e.const_f32(e.node.name + "_max", {}, {a.max});
    while (!e.inputs.empty() && e.inputs.back().empty()) e.inputs.pop_back();
    e.emit("Clip");
}

void describe_clip(const Node& n, std::ostream& os) {
    const auto& a = std::get<ClipAttrs>(n.attrs);
    os << " min=" << a.min << " max=" << a.max;
}

}  // namespace

const OpDef& add_op() {
    static const OpDef def{OpKind::Add, "Add", 1, 18,
                           "multidirectional broadcasting",
                           Int8Class::Rescale, parse_add, infer_add, reference_add, export_add, nullptr,
                           add_reads_f32};
    return def;
}

const OpDef& relu_op() {
    static const OpDef def{OpKind::Relu, "Relu", 1, 18,
                           "max(x, 0)",
                           Int8Class::PassScale, parse_relu, same_shape, reference_relu, export_relu};
    return def;
}

const OpDef& clip_op() {
    static const OpDef def{OpKind::Clip, "Clip", 1, 18,
                           "bounds must be constants (attributes before opset 11, inputs from 11)",
                           Int8Class::PassScale, parse_clip, same_shape, reference_clip, export_clip, describe_clip};
    return def;
}

}  // namespace dcs
