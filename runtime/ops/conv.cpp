// Conv: 1-D to 3-D convolution with groups, strides, pads, dilations and auto_pad.
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
    n.need_inputs(2, 3);
    n.single_output();
    ConvAttrs a;
    a.group = n.attr_i("group", 1);
    if (a.group < 1) n.fail("group must be >= 1, got " + std::to_string(a.group));
    a.kernel = n.attr_ints("kernel_shape");
    a.strides = n.attr_ints("strides");
    a.pads = n.attr_ints("pads");
    a.dilations = n.attr_ints("dilations");
    a.auto_pad = n.auto_pad();
    size_t sd = a.kernel.size();
    if (const Tensor* w = n.constant(n.input(1))) {
        if (w->rank() < 3) n.fail("weight must have rank >= 3, got " + shape_str(w->shape));
        if (sd && sd != size_t(w->rank() - 2)) n.fail("kernel_shape does not match the weight " + shape_str(w->shape));
        std::vector<int64_t> k(w->shape.begin() + 2, w->shape.end());
        if (sd && a.kernel != k) n.fail("kernel_shape " + shape_str(a.kernel) + " does not match the weight " + shape_str(w->shape));
        a.kernel = k;
        sd = k.size();
    }
    if (sd == 0) sd = std::max(a.strides.size(), std::max(a.dilations.size(), a.pads.size() / 2));
    if (sd == 0) n.fail("cannot tell the kernel's rank: give kernel_shape or a constant weight");
    if (sd > 3) n.fail("only 1-D to 3-D convolutions are supported");
    n.check_spatial(a.strides, sd, 1, "strides");
    n.check_spatial(a.dilations, sd, 1, "dilations");
    if (a.pads.empty()) a.pads.assign(2 * sd, 0);
    if (a.pads.size() != 2 * sd) n.fail("pads has " + std::to_string(a.pads.size()) + " values, expected " + std::to_string(2 * sd));
    for (auto v : a.strides) if (v < 1) n.fail("strides must be >= 1");
    for (auto v : a.dilations) if (v < 1) n.fail("dilations must be >= 1");
    for (auto v : a.pads) if (v < 0) n.fail("pads must be >= 0");
    node.attrs = a;
}

std::vector<int64_t> infer_shape(const ShapeArgs& s) {
    const Node& n = s.node;
    const std::string& where = s.where;
    const auto& x = s.input(0);
    const auto& a = std::get<ConvAttrs>(n.attrs);
    const auto& w = s.input(1);
    if (x.size() != w.size() || x.size() < 3)
        throw InputError(where + ": input " + shape_str(x) + " and weight " + shape_str(w) + " ranks differ");
    if (x[1] != dim_mul(w[1], a.group, where))
        throw InputError(where + ": input has " + std::to_string(x[1]) + " channels, weight " + shape_str(w) +
                         " with group " + std::to_string(a.group) + " expects " + std::to_string(w[1] * a.group));
    if (w[0] % a.group != 0) throw InputError(where + ": output channels not divisible by group");
    ConvAttrs aa = a;
    aa.kernel.assign(w.begin() + 2, w.end());
    auto win = conv_window(aa, std::vector<int64_t>(x.begin() + 2, x.end()), where);
    std::vector<int64_t> out = {x[0], w[0]};
    out.insert(out.end(), win.out.begin(), win.out.end());
    if (s.has_input(2) && Tensor::numel_of(s.input(2)) != w[0])
        throw InputError(where + ": bias " + shape_str(s.input(2)) + " does not match " + std::to_string(w[0]) + " output channels");
    return out;
}

Tensor reference(const RefArgs& r) {
    const Tensor& x = r.in(0);
    const Tensor& w = r.in(1);
    const Tensor* b = r.opt(2);
    const std::string& where = r.where;
    ConvAttrs a = std::get<ConvAttrs>(r.node.attrs);
    a.kernel = spatial(w.shape);
    if (x.rank() != w.rank()) throw InputError(where + ": input and weight ranks differ");
    Window win = conv_window(a, spatial(x.shape), where);
    Geo3 g = to_geo3(win);
    const int64_t n_batch = x.shape[0], c_in = x.shape[1], c_out = w.shape[0], group = a.group;
    const int64_t cig = c_in / group, cog = c_out / group;
    if (cig != w.shape[1] || c_out % group != 0) throw InputError(where + ": channels do not match the weight and group");
    std::vector<int64_t> yshape{n_batch, c_out};
    yshape.insert(yshape.end(), win.out.begin(), win.out.end());
    Tensor y = Tensor::zeros(yshape);
    const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
    const int64_t k_sz = g.k[0] * g.k[1] * g.k[2];
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < n_batch; ++n)
        for (int64_t oc = 0; oc < c_out; ++oc) {
            float* yp = y.data.data() + (n * c_out + oc) * out_sz;
            const float bias = b ? b->data[oc] : 0.0f;
            std::fill(yp, yp + out_sz, bias);
            const int64_t grp = oc / cog;
            for (int64_t ic = 0; ic < cig; ++ic) {
                const float* xp = x.data.data() + (n * c_in + grp * cig + ic) * in_sz;
                const float* wp = w.data.data() + (oc * cig + ic) * k_sz;
                for (int64_t kd = 0; kd < g.k[0]; ++kd)
                    for (int64_t kh = 0; kh < g.k[1]; ++kh)
                        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                            const float wv = wp[(kd * g.k[1] + kh) * g.k[2] + kw];
                            // Output columns whose input column lies inside the image.
                            const int64_t off_w = kw * g.d[2] - g.pb[2];
                            int64_t ow_lo = off_w >= 0 ? 0 : (-off_w + g.s[2] - 1) / g.s[2];
                            int64_t ow_hi = g.in[2] - off_w <= 0 ? 0 : (g.in[2] - off_w - 1) / g.s[2] + 1;
                            ow_hi = std::min(ow_hi, g.out[2]);
                            for (int64_t od = 0; od < g.out[0]; ++od) {
                                const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                                if (id < 0 || id >= g.in[0]) continue;
                                for (int64_t oh = 0; oh < g.out[1]; ++oh) {
                                    const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                                    if (ih < 0 || ih >= g.in[1]) continue;
                                    float* yr = yp + (od * g.out[1] + oh) * g.out[2];
                                    const float* xr = xp + (id * g.in[1] + ih) * g.in[2] + off_w;
                                    if (g.s[2] == 1)
                                        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) yr[ow] += wv * xr[ow];
                                    else
                                        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) yr[ow] += wv * xr[ow * g.s[2]];
                                }
                            }
                        }
            }
        }
    return y;
}

void export_onnx(ExportNode& e) {
    const auto& a = std::get<ConvAttrs>(e.node.attrs);
    if (!e.corrected_bias.empty()) {
        e.inputs.resize(3);
        e.inputs[2] = e.corrected_bias;
    }
    e.emit("Conv");
    e.set_int("group", a.group);
    e.set_ints("kernel_shape", a.kernel);
    e.set_ints("strides", a.strides);
    e.set_ints("dilations", a.dilations);
    if (a.auto_pad == AutoPad::NotSet)
        e.set_ints("pads", a.pads);
    else
        e.set_string("auto_pad", auto_pad_name(a.auto_pad));
}

void describe(const Node& n, std::ostream& os) {
    const auto& a = std::get<ConvAttrs>(n.attrs);
    os << " group=" << a.group << " strides=" << shape_str(a.strides) << " pads=" << shape_str(a.pads)
       << " dilations=" << shape_str(a.dilations) << " auto_pad=" << auto_pad_name(a.auto_pad);
}

}  // namespace

const OpDef& conv_op() {
    static const OpDef def{OpKind::Conv, "Conv", 1, 18,
                           "1-D to 3-D, `group`, `strides`, `pads`, `dilations`, `auto_pad` (SAME_UPPER, "
                           "SAME_LOWER, VALID)",
                           Int8Class::Layer, parse, infer_shape, reference, export_onnx, describe};
    return def;
}

}  // namespace dcs
