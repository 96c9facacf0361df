// Sigmoid: y = 1 / (1 + exp(-x)), elementwise; fp32 only (the int8 executors run it in fp32).
#include <cmath>

#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"

namespace dcs {
namespace {

void parse(const OnnxNode& n, Node&) { n.need_inputs(1, 1); }

std::vector<int64_t> infer_shape(const ShapeArgs& s) { return s.input(0); }

Tensor reference(const RefArgs& r) {
    Tensor y = r.in(0);
    for (float& v : y.data) v = 1.0f / (1.0f + std::exp(-v));
    return y;
}

void export_onnx(ExportNode& e) { e.emit("Sigmoid"); }

}  // namespace

const OpDef& sigmoid_op() {
    static const OpDef def{OpKind::Sigmoid, "Sigmoid", 1, 18,
                           "1 / (1 + exp(-x)); runs in fp32 in the int8 executors",
                           Int8Class::F32Only, parse, infer_shape, reference, export_onnx};
    return def;
}

}  // namespace dcs
