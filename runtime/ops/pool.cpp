// MaxPool, AveragePool and GlobalAveragePool.
#include <algorithm>
#include <limits>
#include <ostream>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

void parse_pool(const OnnxNode& n, Node& node) {
    n.need_inputs(1, 1);
    n.single_output();
    PoolAttrs a;
    a.kernel = n.attr_ints("kernel_shape");
    if (a.kernel.empty()) n.fail("kernel_shape is required");
    size_t sd = a.kernel.size();
    if (sd > 3) n.fail("only 1-D to 3-D pooling is supported");
    a.strides = n.attr_ints("strides");
    a.pads = n.attr_ints("pads");
    a.dilations = n.attr_ints("dilations");
    a.auto_pad = n.auto_pad();
    a.ceil_mode = n.attr_i("ceil_mode", 0) != 0;
    a.count_include_pad = n.attr_i("count_include_pad", 0) != 0;
    if (n.attr_i("storage_order", 0) != 0) n.fail("storage_order=1 is not supported");
    n.check_spatial(a.strides, sd, 1, "strides");
    n.check_spatial(a.dilations, sd, 1, "dilations");
    if (a.pads.empty()) a.pads.assign(2 * sd, 0);
    if (a.pads.size() != 2 * sd) n.fail("pads has " + std::to_string(a.pads.size()) + " values, expected " + std::to_string(2 * sd));
    for (auto v : a.kernel) if (v < 1) n.fail("kernel_shape must be >= 1");
    for (auto v : a.strides) if (v < 1) n.fail("strides must be >= 1");
    for (auto v : a.dilations) if (v < 1) n.fail("dilations must be >= 1");
    for (auto v : a.pads) if (v < 0) n.fail("pads must be >= 0");
    node.attrs = a;
}

std::vector<int64_t> infer_pool(const ShapeArgs& s) {
    const auto& x = s.input(0);
    if (x.size() < 3) throw InputError(s.where + ": input " + shape_str(x) + " must be N x C x spatial");
    auto win = pool_window(std::get<PoolAttrs>(s.node.attrs), std::vector<int64_t>(x.begin() + 2, x.end()), s.where);
    std::vector<int64_t> out = {x[0], x[1]};
    out.insert(out.end(), win.out.begin(), win.out.end());
    return out;
}

Tensor pool(const Tensor& x, const PoolAttrs& a, bool is_max, const std::string& where) {
    if (x.rank() < 3) throw InputError(where + ": input " + shape_str(x.shape) + " must be N x C x spatial");
    Window win = pool_window(a, spatial(x.shape), where);
    Geo3 g = to_geo3(win);
    const int64_t planes = x.shape[0] * x.shape[1];
    std::vector<int64_t> yshape{x.shape[0], x.shape[1]};
    yshape.insert(yshape.end(), win.out.begin(), win.out.end());
    Tensor y = Tensor::zeros(yshape);
    const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const float* xp = x.data.data() + p * in_sz;
        float* yp = y.data.data() + p * out_sz;
        for (int64_t od = 0; od < g.out[0]; ++od)
            for (int64_t oh = 0; oh < g.out[1]; ++oh)
                for (int64_t ow = 0; ow < g.out[2]; ++ow) {
                    const int64_t o[3] = {od, oh, ow};
                    float best = -std::numeric_limits<float>::infinity(), sum = 0.0f;
                    int64_t valid = 0, padded = 1;
                    for (int i = 0; i < 3; ++i) {
                        // Elements of the window inside [-pad_begin, in + pad_end): the divisor when
                        // padding counts.
                        int64_t start = o[i] * g.s[i] - g.pb[i];
                        int64_t end = std::min(start + (g.k[i] - 1) * g.d[i] + 1, g.in[i] + g.pe[i]);
                        padded *= (end - start + g.d[i] - 1) / g.d[i];
                    }
                    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
                        const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                        if (id < 0 || id >= g.in[0]) continue;
                        for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                            const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                            if (ih < 0 || ih >= g.in[1]) continue;
                            for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                                const int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                                if (iw < 0 || iw >= g.in[2]) continue;
                                const float v = xp[(id * g.in[1] + ih) * g.in[2] + iw];
                                best = std::max(best, v);
                                sum += v;
                                ++valid;
                            }
                        }
                    }
                    float r;
                    if (is_max) r = best;
                    else r = sum / static_cast<float>(a.count_include_pad ? padded : std::max<int64_t>(valid, 1));
                    yp[(od * g.out[1] + oh) * g.out[2] + ow] = r;
                }
    }
    return y;
}

Tensor reference_max(const RefArgs& r) { return pool(r.in(0), std::get<PoolAttrs>(r.node.attrs), true, r.where); }
Tensor reference_avg(const RefArgs& r) { return pool(r.in(0), std::get<PoolAttrs>(r.node.attrs), false, r.where); }

bool all_ones(const std::vector<int64_t>& v) {
    for (int64_t x : v)
        if (x != 1) return false;
    return true;
}

void export_pool(ExportNode& e) {
    const auto& a = std::get<PoolAttrs>(e.node.attrs);
    const bool mx = e.node.op == OpKind::MaxPool;
    if (!mx && !all_ones(a.dilations))
        throw UnsupportedError("QDQ export: " + e.where + ": dilations need opset 19");
    e.emit(mx ? "MaxPool" : "AveragePool");
    e.set_ints("kernel_shape", a.kernel);
    e.set_ints("strides", a.strides);
    if (mx) e.set_ints("dilations", a.dilations);
    if (a.auto_pad == AutoPad::NotSet)
        e.set_ints("pads", a.pads);
    else
        e.set_string("auto_pad", auto_pad_name(a.auto_pad));
    if (a.ceil_mode) e.set_int("ceil_mode", 1);
    if (!mx) e.set_int("count_include_pad", a.count_include_pad);
}

void describe_pool(const Node& n, std::ostream& os) {
    const auto& a = std::get<PoolAttrs>(n.attrs);
    os << " kernel=" << shape_str(a.kernel) << " strides=" << shape_str(a.strides) << " pads=" << shape_str(a.pads)
       << " dilations=" << shape_str(a.dilations) << " auto_pad=" << auto_pad_name(a.auto_pad)
       << " ceil=" << a.ceil_mode << " count_include_pad=" << a.count_include_pad;
}

/// True when oneDNN's average pooling divides exactly as ONNX does: with count_include_pad, ONNX
/// leaves out window positions beyond the end padding (possible with ceil_mode), oneDNN does not.
bool avg_pool_matches_onnx(const PlanQuery& q) {
    const Node& n = q.node;
    const auto& in_shape = q.shapes.at(n.inputs[0]);
    const auto& a = std::get<PoolAttrs>(n.attrs);
    if (!a.count_include_pad) return true;
    Window w = pool_window(a, std::vector<int64_t>(in_shape.begin() + 2, in_shape.end()), node_where(n));
    for (size_t i = 0; i < w.kernel.size(); ++i) {
        const int64_t eff = (w.kernel[i] - 1) * w.dilations[i] + 1;
        if ((w.out[i] - 1) * w.strides[i] + eff > w.in[i] + w.pad_begin[i] + w.pad_end[i]) return false;
    }
    return true;
}

void parse_global(const OnnxNode& n, Node&) { n.need_inputs(1, 1); }

std::vector<int64_t> infer_global(const ShapeArgs& s) {
    const auto& x = s.input(0);
    if (x.size() < 3) throw InputError(s.where + ": input " + shape_str(x) + " must be N x C x spatial");
    std::vector<int64_t> out = x;
    std::fill(out.begin() + 2, out.end(), 1);
    return out;
}

Tensor reference_global(const RefArgs& r) {
    const Tensor& x = r.in(0);
    if (x.rank() < 3) throw InputError(r.where + ": input must be N x C x spatial");
    std::vector<int64_t> out = x.shape;
    std::fill(out.begin() + 2, out.end(), 1);
    Tensor y = Tensor::zeros(out);
    const int64_t planes = x.shape[0] * x.shape[1], sz = x.numel() / std::max<int64_t>(planes, 1);
    for (int64_t p = 0; p < planes; ++p) {
        double s = 0.0;
        for (int64_t i = 0; i < sz; ++i) s += x.data[p * sz + i];
        y.data[p] = static_cast<float>(s / static_cast<double>(sz));
    }
    return y;
}

void export_global(ExportNode& e) { e.emit("GlobalAveragePool"); }

}  // namespace

const OpDef& max_pool_op() {
    static const OpDef def{OpKind::MaxPool, "MaxPool", 1, 18,
                           "1-D to 3-D, `ceil_mode`, `dilations`, `auto_pad`; not the Indices output, not `storage_order=1`",
                           Int8Class::PassScale, parse_pool, infer_pool, reference_max, export_pool, describe_pool};
    return def;
}

const OpDef& average_pool_op() {
    static const OpDef def{OpKind::AveragePool, "AveragePool", 1, 18,
                           "1-D to 3-D, `ceil_mode`, `dilations`, `count_include_pad`, `auto_pad`",
                           Int8Class::PassScale, parse_pool, infer_pool, reference_avg, export_pool, describe_pool,
                           nullptr, avg_pool_matches_onnx};
    return def;
}

const OpDef& global_average_pool_op() {
    static const OpDef def{OpKind::GlobalAveragePool, "GlobalAveragePool", 1, 18,
                           "any spatial rank",
                           Int8Class::PassScale, parse_global, infer_global, reference_global, export_global};
    return def;
}

}  // namespace dcs
