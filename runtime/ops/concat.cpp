// Concat along any axis.
#include <algorithm>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

void parse(const OnnxNode& n, Node& node) {
    if (n.input_size() < 1) n.fail("needs at least one input");
    if (!n.has_attr("axis")) n.fail("axis is required");
    node.attrs = AxisAttrs{n.attr_i("axis", 1)};
}

std::vector<int64_t> infer_shape(const ShapeArgs& s) {
    const auto& x = s.input(0);
    const std::string& where = s.where;
    int64_t axis = norm_axis(std::get<AxisAttrs>(s.node.attrs).axis, static_cast<int64_t>(x.size()), false, where);
    std::vector<int64_t> out = x;
    for (size_t i = 1; i < s.node.inputs.size(); ++i) {
        const auto& y = s.input(i);
        if (y.size() != x.size()) throw InputError(where + ": inputs have different ranks");
        for (size_t d = 0; d < x.size(); ++d)
            if (static_cast<int64_t>(d) != axis && y[d] != x[d])
                throw InputError(where + ": inputs " + shape_str(x) + " and " + shape_str(y) + " differ off the axis");
        out[axis] = dim_add(out[axis], y[axis], where);
    }
    return out;
}

Tensor reference(const RefArgs& args) {
    std::vector<const Tensor*> xs;
    for (size_t i = 0; i < args.node.inputs.size(); ++i) xs.push_back(&args.in(i));
    const int64_t axis0 = std::get<AxisAttrs>(args.node.attrs).axis;
    const std::string& where = args.where;
    const int64_t r = xs[0]->rank();
    if (axis0 < -r || axis0 >= r) throw InputError(where + ": axis out of range");
    const int64_t axis = axis0 < 0 ? axis0 + r : axis0;
    std::vector<int64_t> out = xs[0]->shape;
    out[axis] = 0;
    for (const Tensor* t : xs) {
        if (t->rank() != r) throw InputError(where + ": inputs have different ranks");
        for (int64_t d = 0; d < r; ++d)
            if (d != axis && t->shape[d] != xs[0]->shape[d]) throw InputError(where + ": inputs differ off the axis");
        out[axis] += t->shape[axis];
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= out[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= out[d];
    Tensor y = Tensor::zeros(out);
    int64_t off = 0;
    for (const Tensor* t : xs) {
        const int64_t chunk = t->shape[axis] * inner;
        for (int64_t o = 0; o < outer; ++o)
            std::copy(t->data.begin() + o * chunk, t->data.begin() + (o + 1) * chunk,
                      y.data.begin() + o * out[axis] * inner + off);
        off += chunk;
    }
    return y;
}

void export_onnx(ExportNode& e) {
    e.emit("Concat");
    e.set_int("axis", std::get<AxisAttrs>(e.node.attrs).axis);
}

}  // namespace

const OpDef& concat_op() {
    static const OpDef def{OpKind::Concat, "Concat", 1, 18,
                           "any axis",
                           Int8Class::Rescale, parse, infer_shape, reference, export_onnx, describe_axis};
    return def;
}

}  // namespace dcs
