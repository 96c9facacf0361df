// Pad: constant mode; negative pads crop.
#include <algorithm>
#include <ostream>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

void parse(const OnnxNode& n, Node& node) {
    PadAttrs a;
    std::string mode = n.attr_s("mode", "constant");
    if (mode != "constant") n.fail("mode '" + mode + "' is not supported (only constant)");
    if (n.opset() < 11) {
        n.need_inputs(1, 1);
        a.pads = n.attr_ints("pads");
        a.value = n.attr_f("value", 0.0f);
    } else {
        n.need_inputs(2, 4);
        a.pads = n.as_ints(n.require_constant(1, "pads"));
        if (n.has_input(2)) a.value = n.as_scalar(n.require_constant(2, "constant_value"), "constant_value");
        if (n.has_input(3)) n.fail("the axes input is not supported");
    }
    node.inputs.resize(1);
    node.attrs = a;
}

std::vector<int64_t> infer_shape(const ShapeArgs& s) {
    const auto& x = s.input(0);
    const std::string& where = s.where;
    const auto& pads = std::get<PadAttrs>(s.node.attrs).pads;
    if (pads.size() != 2 * x.size())
        throw InputError(where + ": pads has " + std::to_string(pads.size()) + " values, input rank " +
                         std::to_string(x.size()) + " needs " + std::to_string(2 * x.size()));
    std::vector<int64_t> out = x;
    for (size_t i = 0; i < x.size(); ++i) {
        out[i] = dim_add(out[i], dim_add(pads[i], pads[i + x.size()], where), where);
        if (out[i] < 0) throw InputError(where + ": negative pads crop more than the input " + shape_str(x));
    }
    return out;
}

Tensor reference(const RefArgs& args) {
    const Tensor& x = args.in(0);
    const PadAttrs& a = std::get<PadAttrs>(args.node.attrs);
    const std::string& where = args.where;
    const int64_t r = x.rank();
    if (static_cast<int64_t>(a.pads.size()) != 2 * r) throw InputError(where + ": pads do not match the input rank");
    std::vector<int64_t> out(r);
    for (int64_t d = 0; d < r; ++d) {
        out[d] = x.shape[d] + a.pads[d] + a.pads[d + r];
        if (out[d] < 0) throw InputError(where + ": pads crop more than the input");
    }
    Tensor y = Tensor::zeros(out);
    std::fill(y.data.begin(), y.data.end(), a.value);
    const int64_t total = y.numel();
    std::vector<int64_t> idx(r, 0), in_stride(r, 1);
    for (int64_t d = r - 1; d > 0; --d) in_stride[d - 1] = in_stride[d] * x.shape[d];
    for (int64_t i = 0; i < total; ++i) {
        int64_t src = 0;
        bool inside = true;
        for (int64_t d = 0; d < r; ++d) {
            int64_t s = idx[d] - a.pads[d];
            if (s < 0 || s >= x.shape[d]) {
                inside = false;
                break;
            }
            src += s * in_stride[d];
        }
        if (inside) y.data[i] = x.data[src];
        for (int64_t d = r; d-- > 0;) {
            if (++idx[d] < out[d]) break;
            idx[d] = 0;
        }
    }
    return y;
}

void export_onnx(ExportNode& e) {
    const auto& a = std::get<PadAttrs>(e.node.attrs);
    e.inputs.resize(3);
    e.inputs[1] = e.const_i64(e.node.name + "_pads", {static_cast<int64_t>(a.pads.size())}, a.pads);
    e.inputs[2] = e.const_f32(e.node.name + "_value", {}, {a.value});
    e.emit("Pad");
    e.set_string("mode", "constant");
}

void describe(const Node& n, std::ostream& os) {
    const auto& a = std::get<PadAttrs>(n.attrs);
    os << " pads=" << shape_str(a.pads) << " value=" << a.value;
}

/// Zero padding of 8-bit data is exact (zero point 0); other values are not.
bool reads_f32(const PlanQuery& q) { return std::get<PadAttrs>(q.node.attrs).value != 0.0f; }

bool int8_accepts(const PlanQuery& q) {
    const auto& pa = std::get<PadAttrs>(q.node.attrs);
    bool ok = pa.value == 0.0f;
    for (int64_t v : pa.pads) ok = ok && v >= 0;
    return ok;
}

}  // namespace

const OpDef& pad_op() {
    static const OpDef def{OpKind::Pad, "Pad", 1, 18,
                           "`constant` mode only; pads and value must be constants (negative pads crop)",
                           Int8Class::PassScale, parse, infer_shape, reference, export_onnx, describe, reads_f32,
                           int8_accepts};
    return def;
}

}  // namespace dcs
