#include "runtime/int8_reference.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <set>

#include "common/error.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"
#include "runtime/reference_executor.hpp"

namespace dcs {

Int8LayerWeights quantize_weight_int8(const Tensor& w, int64_t out_axis) {
    if (w.dtype != DType::f32 || out_axis < 0 || out_axis >= w.rank())
        throw InputError("quantize_weight_int8: bad weight or output axis " + std::to_string(out_axis));
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < out_axis; ++d) outer *= w.shape[d];
    for (int64_t d = out_axis + 1; d < w.rank(); ++d) inner *= w.shape[d];
    const int64_t ch = w.shape[out_axis];
    Int8LayerWeights q;
    q.scales.assign(ch, 0.0f);
    q.codes.assign(w.data.size(), 0);
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < ch; ++c)
            for (int64_t i = 0; i < inner; ++i)
                q.scales[c] = std::max(q.scales[c], std::fabs(w.data[(o * ch + c) * inner + i]));
    for (float& s : q.scales) s /= 127.0f;
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < ch; ++c) {
            if (q.scales[c] == 0.0f) continue;
            for (int64_t i = 0; i < inner; ++i) {
                const int64_t k = (o * ch + c) * inner + i;
                float v = std::nearbyint(w.data[k] / q.scales[c]);
                q.codes[k] = static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, v)));
            }
        }
    return q;
}

namespace {

/// int8_weights_from; `take` moves cw's codes when they are used as they are.
Int8LayerWeights int8_weights(const compress::CompressedWeight& cw, std::vector<int8_t>* take) {
    const compress::Layout l = cw.layout();
    bool exact = cw.has_int8_codes();
    if (exact)
        for (int64_t c = 0; c < l.channels; ++c)
            if (cw.channel_zero_point(c) != 0 && cw.bits > 7) exact = false;
    Int8LayerWeights w;
    if (!exact) {
        Tensor t(cw.shape, cw.dequantize());
        return quantize_weight_int8(t, cw.out_axis);
    }
    w.scales.resize(l.channels);
    std::vector<int8_t> zp(static_cast<size_t>(l.channels));
    bool any_zp = false;
    for (int64_t c = 0; c < l.channels; ++c) {
        w.scales[c] = cw.channel_scale(c);
        zp[c] = static_cast<int8_t>(cw.channel_zero_point(c));
        any_zp |= zp[c] != 0;
    }
    if (!any_zp) {
        if (take) w.codes = std::move(*take);
        else w.codes = cw.codes;
        return w;
    }
    // Asymmetric codes of up to 7 bits: code - zero point stays within [-127, 127].
    w.codes.resize(cw.codes.size());
    const int8_t* in = cw.codes.data();
    int8_t* out = w.codes.data();
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c, in += l.inner, out += l.inner)
            for (int64_t e = 0; e < l.inner; ++e) out[e] = static_cast<int8_t>(in[e] - zp[c]);
    return w;
}

}  // namespace

Int8LayerWeights int8_weights_from(const compress::CompressedWeight& cw) { return int8_weights(cw, nullptr); }

Int8LayerWeights int8_weights_from(compress::CompressedWeight&& cw) { return int8_weights(cw, &cw.codes); }

std::vector<float> layer_bias(const Graph& graph, const Node& node, int64_t channels) {
    std::vector<float> b(channels, 0.0f);
    if (node.op == OpKind::MatMul || node.inputs.size() < 3 || node.inputs[2].empty()) return b;
    const std::string where = node_where(node);
    auto it = graph.initializers.find(node.inputs[2]);
    if (it == graph.initializers.end())
        throw UnsupportedError(where + ": a bias that is not a constant is not supported by the oneDNN executor");
    const Tensor& t = it->second;
    float beta = node.op == OpKind::Gemm ? std::get<GemmAttrs>(node.attrs).beta : 1.0f;
    if (t.numel() == channels)
        for (int64_t c = 0; c < channels; ++c) b[c] = beta * t.data[c];
    else if (t.numel() == 1)
        std::fill(b.begin(), b.end(), beta * t.data[0]);
    else
        throw UnsupportedError(where + ": bias " + shape_str(t.shape) + " is not a per-output-channel vector");
    return b;
}

std::vector<float> bias_shift(const Graph& graph, const Node& node, const LayerInfo& info,
                              const Int8LayerWeights& w, const std::vector<float>& mean) {
    const Tensor& wt = graph.initializers.at(info.weight);
    const auto& ws = info.weight_shape;
    const int64_t ch = ws.at(info.out_axis);
    const std::string where = node_where(node);
    if (w.codes.size() != wt.data.size() || static_cast<int64_t>(w.scales.size()) != ch)
        throw InputError(where + ": weight codes or scales do not match the weight " + shape_str(ws));
    std::vector<double> shift(ch, 0.0);
    if (node.op == OpKind::Conv) {
        const int64_t group = std::get<ConvAttrs>(node.attrs).group, cig = ws[1], cog = ch / group;
        const int64_t k = wt.numel() / (ch * cig);
        if (static_cast<int64_t>(mean.size()) != cig * group)
            throw InputError(where + ": " + std::to_string(mean.size()) + " input means, expected " + std::to_string(cig * group));
        for (int64_t o = 0; o < ch; ++o)
            for (int64_t i = 0; i < cig; ++i) {
                double d = 0.0;
                for (int64_t j = 0; j < k; ++j) {
                    const int64_t e = (o * cig + i) * k + j;
                    d += static_cast<double>(w.scales[o]) * w.codes[e] - wt.data[e];
                }
                shift[o] += d * mean[(o / cog) * cig + i];
            }
    } else {
        const int64_t kk = ws[1 - info.out_axis];
        if (static_cast<int64_t>(mean.size()) != kk)
            throw InputError(where + ": " + std::to_string(mean.size()) + " input means, expected " + std::to_string(kk));
        for (int64_t o = 0; o < ch; ++o)
            for (int64_t i = 0; i < kk; ++i) {
                const int64_t e = info.out_axis == 0 ? o * kk + i : i * ch + o;
                shift[o] += (static_cast<double>(w.scales[o]) * w.codes[e] - wt.data[e]) * mean[i];
            }
    }
    const double alpha = node.op == OpKind::Gemm ? std::get<GemmAttrs>(node.attrs).alpha : 1.0;
    std::vector<float> out(ch);
    for (int64_t o = 0; o < ch; ++o) out[o] = static_cast<float>(alpha * shift[o]);
    return out;
}

QLayer make_qlayer(const Graph& graph, const QuantPlan& plan, const QStep& step, const LayerInfo& info,
                   Int8LayerWeights w, const std::vector<float>* shift) {
    const int64_t ch = info.weight_shape.at(info.out_axis);
    const std::string where = node_where(*step.node);
    if (static_cast<int64_t>(w.codes.size()) != Tensor::numel_of(info.weight_shape))
        throw InputError(where + ": " + std::to_string(w.codes.size()) + " weight codes, the weight " +
                         shape_str(info.weight_shape) + " needs " +
                         std::to_string(Tensor::numel_of(info.weight_shape)));
    if (static_cast<int64_t>(w.scales.size()) != ch)
        throw InputError(where + ": " + std::to_string(w.scales.size()) + " weight scales, expected one per " +
                         std::to_string(ch) + " output channels");
    for (size_t c = 0; c < w.scales.size(); ++c)
        if (!(w.scales[c] >= 0.0f) || !std::isfinite(w.scales[c]))
            throw InputError(where + ": weight scale " + std::to_string(c) + " is " + std::to_string(w.scales[c]) +
                             ", expected a finite value >= 0");
    QLayer q;
    q.codes = std::move(w.codes);
    const QValue& x = plan.values.at(step.input);
    const QValue& y = plan.values.at(step.output);
    const float sx = x.scale, sy = y.type == QType::F32 ? 1.0f : y.scale;
    const float alpha = step.node->op == OpKind::Gemm ? std::get<GemmAttrs>(step.node->attrs).alpha : 1.0f;
    if (alpha == 0.0f || !std::isfinite(alpha))
        throw UnsupportedError(where + ": alpha " + std::to_string(alpha) + " is not supported by the int8 runtime");
    std::vector<float> b = layer_bias(graph, *step.node, ch);
    if (shift) {
        if (static_cast<int64_t>(shift->size()) != ch)
            throw InputError(where + ": " + std::to_string(shift->size()) + " bias shifts, expected " + std::to_string(ch));
        for (int64_t c = 0; c < ch; ++c) b[c] -= (*shift)[c];
    }
    q.out_scale.resize(ch);
    q.bias.resize(ch);
    for (int64_t c = 0; c < ch; ++c) {
        // An all-zero (pruned) channel has scale 0: any scale serves, its codes are 0.
        const float sw = w.scales[c] > 0.0f ? w.scales[c] : 1.0f;
        // alpha scales the product only: the bias (beta * C) is divided by it before the output scale.
        q.out_scale[c] = alpha * (sx * sw) / sy;
        q.bias[c] = b[c] / (alpha * sx * sw);
    }
    if (!step.sum_input.empty()) {
        const QValue& r = plan.values.at(step.sum_input);
        q.sum_scale = r.type == QType::F32 ? 1.0f : r.scale / sy;
    }
    act_bounds(step, sy, &q.act_lo, &q.act_hi);
    return q;
}

Graph single_node_graph(const Graph& graph, const Node& node) {
    Graph g;
    g.opset = graph.opset;
    std::set<std::string> seen;
    for (const auto& in : node.inputs) {
        if (in.empty() || !seen.insert(in).second) continue;
        auto it = graph.initializers.find(in);
        if (it != graph.initializers.end()) g.initializers[in] = it->second;
        else g.inputs.push_back(ValueInfo{in, {}});
    }
    g.nodes.push_back(node);
    g.outputs.push_back(node.outputs.at(0));
    return g;
}

// ---------------------------------------------------------------------------------------------
// The integer reference executor.

struct Int8ReferenceExecutor::Fallback {
    Graph graph;
    std::unique_ptr<ReferenceExecutor> ex;
};

namespace {

/// A value held by the reference: fp32 data or 8-bit codes (stored widened), NCHW row-major.
struct RVal {
    QType type = QType::F32;
    float scale = 1.0f;
    std::vector<int64_t> shape;
    std::vector<float> f;
    std::vector<int32_t> q;
};

int32_t saturate_round(float f, QType t) {
    const float lo = t == QType::U8 ? 0.0f : -128.0f, hi = t == QType::U8 ? 255.0f : 127.0f;
    f = std::min(hi, std::max(lo, f));
    return static_cast<int32_t>(std::nearbyint(f));
}

std::vector<float> to_f32(const RVal& v) {
    if (v.type == QType::F32) return v.f;
    std::vector<float> out(v.q.size());
    for (size_t i = 0; i < v.q.size(); ++i) out[i] = static_cast<float>(v.q[i]) * v.scale;
    return out;
}

/// The value as 8-bit codes of the type and scale a quantizing reader uses (its own when int8).
std::vector<int32_t> to_q(const RVal& v, const QValue& qv, QType* type) {
    if (v.type != QType::F32) {
        *type = v.type;
        return v.q;
    }
    *type = qv.qtype;
    const float inv = 1.0f / qv.scale;
    std::vector<int32_t> out(v.f.size());
    for (size_t i = 0; i < v.f.size(); ++i) out[i] = saturate_round(v.f[i] * inv, qv.qtype);
    return out;
}

/// The post-op stage shared by every layer: scale, sum, activation, rounding.
struct OutStage {
    const QLayer& ql;
    const QStep& step;
    QType out_type;
    float apply(int64_t c, int32_t acc, const float* residual, int64_t idx) const {
        float f = (static_cast<float>(acc) + ql.bias[c]) * ql.out_scale[c];
        if (residual) f = f + ql.sum_scale * residual[idx];
        if (step.act == QAct::Relu) f = std::max(f, 0.0f);
        else if (step.act == QAct::Clip) f = std::min(std::max(f, ql.act_lo), ql.act_hi);
        return f;
    }
};

void store(RVal& y, int64_t idx, float f) {
    if (y.type == QType::F32) y.f[idx] = f;
    else y.q[idx] = saturate_round(f, y.type);
}

}  // namespace

Int8ReferenceExecutor::Int8ReferenceExecutor(const Graph& graph, const QuantizedModel& model)
    : graph_(graph), model_(model) {
    for (const auto& s : model.plan.steps) {
        if (s.layer || s.int8) {
            fallbacks_.push_back(nullptr);
            continue;
        }
        auto fb = std::make_unique<Fallback>();
        fb->graph = single_node_graph(graph, *s.node);
        fb->ex = std::make_unique<ReferenceExecutor>(fb->graph);
        fallbacks_.push_back(std::move(fb));
    }
}

Int8ReferenceExecutor::~Int8ReferenceExecutor() = default;

Tensor Int8ReferenceExecutor::run(const Tensor& input) const {
    const QuantPlan& plan = model_.plan;
    if (graph_.inputs.size() != 1) throw InputError("the integer reference runs models with one input");
    const auto& in_info = graph_.inputs[0];
    const auto& sample = plan.sample_shapes.at(in_info.name);
    if (input.rank() != static_cast<int64_t>(sample.size()) ||
        !std::equal(sample.begin() + 1, sample.end(), input.shape.begin() + 1))
        throw InputError("input " + shape_str(input.shape) + " does not match the model's " + shape_str(sample));
    if (!in_info.shape.empty() && in_info.shape[0] > 0 && in_info.shape[0] != input.shape[0])
        throw InputError("input '" + in_info.name + "' has a fixed batch size of " + std::to_string(in_info.shape[0]) +
                         ", got " + std::to_string(input.shape[0]));
    std::map<std::string, RVal> vals;
    {
        RVal v;
        v.shape = input.shape;
        v.f = input.data;
        vals[in_info.name] = std::move(v);
    }
    kept_.clear();
    const int64_t batch = input.shape[0];
    for (size_t si = 0; si < plan.steps.size(); ++si) {
        const QStep& s = plan.steps[si];
        const Node& n = *s.node;
        const std::string where = node_where(n);
        const QValue& out_qv = plan.values.at(s.output);
        std::vector<int64_t> out_shape = plan.sample_shapes.at(s.output);
        out_shape[0] = batch;
        RVal y;
        y.type = out_qv.type;
        y.scale = out_qv.scale;
        y.shape = out_shape;
        const int64_t out_numel = Tensor::numel_of(out_shape);
        if (y.type == QType::F32) y.f.assign(out_numel, 0.0f);
        else y.q.assign(out_numel, 0);
        auto val = [&](const std::string& name) -> const RVal& {
            auto it = vals.find(name);
            if (it == vals.end()) throw InputError(where + ": value '" + name + "' is not available");
            return it->second;
        };
        if (s.layer) {
            const QLayer& ql = model_.layers.at(n.name);
            const RVal& xv = val(s.input);
            QType xt;  // the codes' type: only their values matter to the integer arithmetic
            std::vector<int32_t> xq = to_q(xv, plan.values.at(s.input), &xt);
            const float* res = nullptr;
            std::vector<float> res_f;
            if (!s.sum_input.empty()) {
                // The residual as the sum post-op reads it: codes (times sum_scale) or fp32 values.
                const RVal& rv = val(s.sum_input);
                if (rv.type == QType::F32) {
                    res_f = rv.f;
                } else {
                    res_f.resize(rv.q.size());
                    for (size_t i = 0; i < rv.q.size(); ++i) res_f[i] = static_cast<float>(rv.q[i]);
                }
                res = res_f.data();
            }
            OutStage os{ql, s, y.type};
            const auto& ws = model_.layer_info.at(n.name).weight_shape;
            if (n.op == OpKind::Conv) {
                ConvAttrs a = std::get<ConvAttrs>(n.attrs);
                a.kernel.assign(ws.begin() + 2, ws.end());
                Window win = conv_window(a, std::vector<int64_t>(xv.shape.begin() + 2, xv.shape.end()), where);
                Geo3 g = to_geo3(win);
                const int64_t c_in = xv.shape[1], c_out = ws[0], cig = ws[1], cog = c_out / a.group;
                const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
                const int64_t k_sz = g.k[0] * g.k[1] * g.k[2];
#pragma omp parallel for collapse(2) schedule(static)
                for (int64_t b = 0; b < batch; ++b)
                    for (int64_t oc = 0; oc < c_out; ++oc) {
                        const int64_t grp = oc / cog;
                        std::vector<int32_t> acc(out_sz, 0);
                        for (int64_t ic = 0; ic < cig; ++ic) {
                            const int32_t* xp = xq.data() + (b * c_in + grp * cig + ic) * in_sz;
                            const int8_t* wp = ql.codes.data() + (oc * cig + ic) * k_sz;
                            for (int64_t od = 0; od < g.out[0]; ++od)
                                for (int64_t oh = 0; oh < g.out[1]; ++oh)
                                    for (int64_t ow = 0; ow < g.out[2]; ++ow) {
                                        int32_t sum = 0;
                                        for (int64_t kd = 0; kd < g.k[0]; ++kd) {
                                            const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                                            if (id < 0 || id >= g.in[0]) continue;
                                            for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                                                const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                                                if (ih < 0 || ih >= g.in[1]) continue;
                                                for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                                                    const int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                                                    if (iw < 0 || iw >= g.in[2]) continue;
                                                    sum += xp[(id * g.in[1] + ih) * g.in[2] + iw] *
                                                           wp[(kd * g.k[1] + kh) * g.k[2] + kw];
                                                }
                                            }
                                        }
                                        acc[(od * g.out[1] + oh) * g.out[2] + ow] += sum;
                                    }
                        }
                        const int64_t base = (b * c_out + oc) * out_sz;
                        for (int64_t i = 0; i < out_sz; ++i) store(y, base + i, os.apply(oc, acc[i], res, base + i));
                    }
            } else {
                // Gemm / MatMul: rows x K times the weight ([N, K] when out_axis is 0, else [K, N]).
                const LayerInfo& li = model_.layer_info.at(n.name);
                const int64_t n_out = ws[li.out_axis], k = ws[1 - li.out_axis];
                const int64_t rows = static_cast<int64_t>(xq.size()) / k;
                if (rows * k != static_cast<int64_t>(xq.size()) || rows * n_out != out_numel)
                    throw InputError(where + ": input " + shape_str(xv.shape) + " does not match the weight " + shape_str(ws));
#pragma omp parallel for schedule(static)
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t o = 0; o < n_out; ++o) {
                        int32_t acc = 0;
                        const int32_t* xr = xq.data() + r * k;
                        if (li.out_axis == 0) {
                            const int8_t* wr = ql.codes.data() + o * k;
                            for (int64_t i = 0; i < k; ++i) acc += xr[i] * wr[i];
                        } else {
                            for (int64_t i = 0; i < k; ++i) acc += xr[i] * ql.codes[i * n_out + o];
                        }
                        store(y, r * n_out + o, os.apply(o, acc, res, r * n_out + o));
                    }
            }
        } else if (s.int8) {
            const RVal& x = val(n.inputs[0]);
            switch (n.op) {
                case OpKind::MaxPool:
                case OpKind::AveragePool:
                case OpKind::GlobalAveragePool: {
                    PoolAttrs a;
                    bool is_max = n.op == OpKind::MaxPool;
                    if (n.op == OpKind::GlobalAveragePool) {
                        a.kernel.assign(x.shape.begin() + 2, x.shape.end());
                        a.strides.assign(a.kernel.size(), 1);
                        a.dilations.assign(a.kernel.size(), 1);
                        a.pads.assign(2 * a.kernel.size(), 0);
                    } else {
                        a = std::get<PoolAttrs>(n.attrs);
                    }
                    Window win = pool_window(a, std::vector<int64_t>(x.shape.begin() + 2, x.shape.end()), where);
                    Geo3 g = to_geo3(win);
                    const int64_t planes = x.shape[0] * x.shape[1];
                    const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
                    const int64_t k_full = g.k[0] * g.k[1] * g.k[2];
#pragma omp parallel for schedule(static)
                    for (int64_t pl = 0; pl < planes; ++pl)
                        for (int64_t od = 0; od < g.out[0]; ++od)
                            for (int64_t oh = 0; oh < g.out[1]; ++oh)
                                for (int64_t ow = 0; ow < g.out[2]; ++ow) {
                                    int32_t best = INT32_MIN, sum = 0, valid = 0;
                                    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
                                        const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                                        if (id < 0 || id >= g.in[0]) continue;
                                        for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                                            const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                                            if (ih < 0 || ih >= g.in[1]) continue;
                                            for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                                                const int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                                                if (iw < 0 || iw >= g.in[2]) continue;
                                                const int32_t v = x.q[pl * in_sz + (id * g.in[1] + ih) * g.in[2] + iw];
                                                best = std::max(best, v);
                                                sum += v;
                                                ++valid;
                                            }
                                        }
                                    }
                                    const int64_t oi = pl * out_sz + (od * g.out[1] + oh) * g.out[2] + ow;
                                    if (is_max) {
                                        y.q[oi] = best;
                                    } else {
                                        const int64_t div = a.count_include_pad ? k_full : std::max<int32_t>(valid, 1);
                                        y.q[oi] = saturate_round(static_cast<float>(sum) * (1.0f / static_cast<float>(div)), y.type);
                                    }
                                }
                    break;
                }
                case OpKind::Relu:
                    for (size_t i = 0; i < x.q.size(); ++i) y.q[i] = std::max(x.q[i], 0);
                    break;
                case OpKind::Clip: {
                    const auto& ca = std::get<ClipAttrs>(n.attrs);
                    float lo, hi;
                    clip_bounds_in_units(ca.min, ca.max, x.scale, &lo, &hi);
                    for (size_t i = 0; i < x.q.size(); ++i)
                        y.q[i] = saturate_round(std::min(std::max(static_cast<float>(x.q[i]), lo), hi), y.type);
                    break;
                }
                case OpKind::Flatten:
                case OpKind::Reshape: y.q = x.q; break;
                case OpKind::Pad: {
                    const auto& pads = std::get<PadAttrs>(n.attrs).pads;
                    const size_t r = x.shape.size();
                    std::vector<int64_t> idx(r, 0);
                    for (size_t i = 0; i < x.q.size(); ++i) {
                        int64_t o = 0;
                        for (size_t d = 0; d < r; ++d) o = o * out_shape[d] + idx[d] + pads[d];
                        y.q[o] = x.q[i];
                        for (size_t d = r; d-- > 0;) {
                            if (++idx[d] < x.shape[d]) break;
                            idx[d] = 0;
                        }
                    }
                    break;
                }
                case OpKind::Concat: {
                    int64_t axis = std::get<AxisAttrs>(n.attrs).axis;
                    if (axis < 0) axis += static_cast<int64_t>(out_shape.size());
                    int64_t outer = 1, inner = 1;
                    for (int64_t d = 0; d < axis; ++d) outer *= out_shape[d];
                    for (size_t d = axis + 1; d < out_shape.size(); ++d) inner *= out_shape[d];
                    int64_t off = 0;
                    for (const auto& in : n.inputs) {
                        const RVal& xi = val(in);
                        const float f = xi.scale / y.scale;
                        const int64_t chunk = xi.shape[axis] * inner;
                        for (int64_t o = 0; o < outer; ++o)
                            for (int64_t i = 0; i < chunk; ++i)
                                y.q[o * out_shape[axis] * inner + off + i] =
                                    saturate_round(static_cast<float>(xi.q[o * chunk + i]) * f, y.type);
                        off += chunk;
                    }
                    break;
                }
                case OpKind::Add: {
                    const RVal& b = val(n.inputs[1]);
                    const float fa = x.scale / y.scale, fb = b.scale / y.scale;
                    for (size_t i = 0; i < y.q.size(); ++i)
                        y.q[i] = saturate_round(fa * static_cast<float>(x.q[i]) + fb * static_cast<float>(b.q[i]), y.type);
                    break;
                }
                default: throw InputError(where + ": no integer implementation");
            }
        } else {
            const Fallback& fb = *fallbacks_[si];
            std::vector<Tensor> ins;
            for (const auto& gi : fb.graph.inputs) {
                const RVal& v = val(gi.name);
                ins.emplace_back(v.shape, to_f32(v));
            }
            auto outs = fb.ex->run(ins);
            if (outs.at(0).shape != out_shape)
                throw InputError(where + ": fallback produced " + shape_str(outs[0].shape) + ", expected " + shape_str(out_shape));
            if (y.type != QType::F32) throw InputError(where + ": fp32 step with an 8-bit output");
            y.f = std::move(outs[0].data);
        }
        if (keep_) kept_[s.output] = Tensor(y.shape, to_f32(y));
        vals[s.output] = std::move(y);
    }
    const RVal& out = vals.at(graph_.outputs.at(0));
    return Tensor(out.shape, to_f32(out));
}

}  // namespace dcs
