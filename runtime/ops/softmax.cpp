// Softmax: per axis from opset 13, flattened to 2-D at `axis` before.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

void parse(const OnnxNode& n, Node& node) {
    n.need_inputs(1, 1);
    // Before opset 13 Softmax flattened to 2-D at `axis` (default 1); from 13 it is per-axis (default -1).
    node.attrs = AxisAttrs{n.attr_i("axis", n.opset() < 13 ? 1 : -1), n.opset() < 13};
}

std::vector<int64_t> infer_shape(const ShapeArgs& s) {
    const auto& x = s.input(0);
    norm_axis(std::get<AxisAttrs>(s.node.attrs).axis, static_cast<int64_t>(x.size()), false, s.where);
    return x;
}

Tensor reference(const RefArgs& args) {
    const Tensor& x = args.in(0);
    const AxisAttrs& a = std::get<AxisAttrs>(args.node.attrs);
    const int64_t r = x.rank();
    if (a.axis < -r || a.axis >= r) throw InputError(args.where + ": axis " + std::to_string(a.axis) + " out of range");
    const int64_t axis = a.axis < 0 ? a.axis + r : a.axis;
    int64_t outer = 1, len = 1, inner = 1;
    for (int64_t d = 0; d < r; ++d) {
        if (d < axis) outer *= x.shape[d];
        else if (d == axis || a.legacy_softmax) len *= x.shape[d];
        else inner *= x.shape[d];
    }
    Tensor y = x;
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            float* p = y.data.data() + o * len * inner + i;
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < len; ++j) mx = std::max(mx, p[j * inner]);
            double sum = 0.0;
            for (int64_t j = 0; j < len; ++j) {
                p[j * inner] = std::exp(p[j * inner] - mx);
                sum += p[j * inner];
            }
            for (int64_t j = 0; j < len; ++j) p[j * inner] = static_cast<float>(p[j * inner] / sum);
        }
    return y;
}

void export_onnx(ExportNode& e) {
    const auto& a = std::get<AxisAttrs>(e.node.attrs);
    int64_t axis = a.axis;
    if (a.legacy_softmax) {
        // Before opset 13 Softmax coerced to 2-D at `axis`: the same as opset 13 only when `axis` is
        // the last dimension.
        const int64_t rank = static_cast<int64_t>(e.shapes.at(e.node.inputs.at(0)).size());
        if (axis < 0) axis += rank;
        if (axis != rank - 1)
            throw UnsupportedError("QDQ export: " + e.where + ": a pre-opset-13 Softmax over axis " +
                                   std::to_string(a.axis) + " of a rank-" + std::to_string(rank) + " input");
    }
    e.emit("Softmax");
    e.set_int("axis", axis);
}

}  // namespace

const OpDef& softmax_op() {
    static const OpDef def{OpKind::Softmax, "Softmax", 1, 18,
                           "along one axis from opset 13; before 13 flattened to 2-D at `axis`",
                           Int8Class::F32Only, parse, infer_shape, reference, export_onnx, describe_axis};
    return def;
}

}  // namespace dcs
