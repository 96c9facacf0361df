// The quantization plan (see quant_plan.hpp).
#include "runtime/quant_plan.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <set>

#include "common/error.hpp"
#include "runtime/ops/op_table.hpp"

namespace dcs {

const char* qtype_name(QType t) {
    switch (t) {
        case QType::F32: return "f32";
        case QType::S8: return "s8";
        case QType::U8: return "u8";
    }
    return "?";
}

namespace {

bool is8(QType t) { return t != QType::F32; }

bool is_initializer(const Graph& g, const std::string& v) { return g.initializers.count(v) > 0; }

/// Ops that never run on 8-bit data: the value feeding only them is produced in fp32.
bool f32_only(const Graph& g, const Node& n, const std::map<std::string, std::vector<int64_t>>& shapes,
              const std::set<std::string>& layer_nodes) {
    const OpDef& def = op_def(n.op);
    switch (def.int8) {
        case Int8Class::F32Only: return true;
        case Int8Class::Layer: return layer_nodes.count(n.name) == 0;
        case Int8Class::PassScale:
        case Int8Class::Rescale: return def.int8_reads_f32 && def.int8_reads_f32(PlanQuery{g, n, shapes});
    }
    return true;
}

}  // namespace

void clip_bounds_in_units(float mn, float mx, float scale, float* lo, float* hi) {
    float l = mn / scale, h = mx / scale;
    *lo = std::isfinite(l) ? l : (l < 0 ? -FLT_MAX : FLT_MAX);
    *hi = std::isfinite(h) ? h : (h < 0 ? -FLT_MAX : FLT_MAX);
}

void act_bounds(const QStep& step, float out_scale, float* lo, float* hi) {
    if (step.act != QAct::Clip) {
        *lo = 0.0f;
        *hi = 0.0f;
        return;
    }
    clip_bounds_in_units(step.clip_min, step.clip_max, out_scale, lo, hi);
}

QuantPlan plan_graph(const Graph& g, bool int8) {
    QuantPlan p;
    p.int8 = int8;
    p.sample_shapes = g.infer_shapes(1);
    const auto shapes2 = g.infer_shapes(2);
    std::set<std::string> layer_nodes;
    for (const auto& l : list_layers(g)) layer_nodes.insert(l.name);
    const std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());

    std::map<std::string, std::vector<size_t>> consumers;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        std::set<std::string> seen;
        for (const auto& in : g.nodes[i].inputs)
            if (!in.empty() && seen.insert(in).second) consumers[in].push_back(i);
    }
    auto single_consumer = [&](const std::string& v) -> const Node* {
        if (outputs.count(v)) return nullptr;
        auto it = consumers.find(v);
        if (it == consumers.end() || it->second.size() != 1) return nullptr;
        const Node* c = &g.nodes[it->second[0]];
        // An op reading the value twice (Add(x, x)) cannot be fused.
        int uses = 0;
        for (const auto& in : c->inputs) uses += in == v;
        return uses == 1 ? c : nullptr;
    };
    // Values only fp32 consumers (or the graph outputs) read: produced in fp32 directly.
    std::map<std::string, bool> want_f32;
    for (size_t i = g.nodes.size(); i-- > 0;) {
        const std::string& v = g.nodes[i].outputs[0];
        bool w = outputs.count(v) > 0;
        if (!w) {
            auto it = consumers.find(v);
            w = it != consumers.end() && !it->second.empty();
            if (w)
                for (size_t ci : it->second) {
                    const Node& c = g.nodes[ci];
                    bool f = f32_only(g, c, p.sample_shapes, layer_nodes) ||
                             ((c.op == OpKind::Flatten || c.op == OpKind::Reshape) && want_f32[c.outputs[0]]);
                    if (!f) w = false;
                }
        }
        want_f32[v] = w;
    }

    for (const auto& in : g.inputs) p.values[in.name] = QValue{};
    std::set<std::string> skip;
    std::map<std::string, std::pair<std::string, std::string>> folded;  // layer -> (flatten node, source)
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& n = g.nodes[i];
        if (skip.count(n.name)) continue;
        const std::string where = node_where(n);
        QStep s;
        s.node = &n;
        s.input = n.inputs.at(0);
        s.output = n.outputs.at(0);
        // Fold Flatten / Reshape-to-2-D into the Gemm/MatMul reading it: the inner product reads the
        // N-D source directly (and no reorder to a plain layout is needed).
        if (n.op == OpKind::Flatten || n.op == OpKind::Reshape) {
            const Node* c = single_consumer(n.outputs[0]);
            const auto& in1 = p.sample_shapes.at(n.inputs[0]);
            const auto& out1 = p.sample_shapes.at(n.outputs[0]);
            const auto& out2 = shapes2.at(n.outputs[0]);
            if (c && layer_nodes.count(c->name) && (c->op == OpKind::Gemm || c->op == OpKind::MatMul) &&
                c->inputs[0] == n.outputs[0] && in1.size() >= 3 && in1.size() <= 5 && out1.size() == 2 &&
                out1[0] == 1 && out2 == std::vector<int64_t>{2, out1[1]} && p.values.count(n.inputs[0])) {
                folded[c->name] = {n.name, n.inputs[0]};
                continue;
            }
        }
        const bool is_layer = layer_nodes.count(n.name) > 0;
        for (const auto& in : n.inputs)
            if (!in.empty() && !is_initializer(g, in) && !p.values.count(in) && !(is_layer && folded.count(n.name)))
                throw InputError(where + ": input '" + in + "' is not available");
        QType out_type = QType::F32;
        if (is_layer) {
            s.layer = true;
            s.int8 = int8;
            if (n.op == OpKind::Gemm && std::get<GemmAttrs>(n.attrs).trans_a)
                throw UnsupportedError(where + ": transA=1 is not supported by the oneDNN executor");
            auto fo = folded.find(n.name);
            if (fo != folded.end()) {
                s.input = fo->second.second;
                s.fused.push_back(fo->second.first);
            }
            auto try_fuse = [&](bool allow_sum) {
                QStep t = s;
                std::string v = n.outputs[0];
                const Node* c = single_consumer(v);
                if (allow_sum && c && c->op == OpKind::Add && c->inputs.size() == 2) {
                    const std::string& other = c->inputs[0] == v ? c->inputs[1] : c->inputs[0];
                    if (p.values.count(other) && !is_initializer(g, other) &&
                        p.sample_shapes.at(other) == p.sample_shapes.at(v)) {
                        t.sum_input = other;
                        t.fused.push_back(c->name);
                        v = c->outputs[0];
                        c = single_consumer(v);
                    }
                }
                if (c && c->op == OpKind::Relu) {
                    t.act = QAct::Relu;
                    t.fused.push_back(c->name);
                    v = c->outputs[0];
                } else if (c && c->op == OpKind::Clip) {
                    const auto& ca = std::get<ClipAttrs>(c->attrs);
                    t.act = QAct::Clip;
                    t.clip_min = ca.min;
                    t.clip_max = ca.max;
                    t.fused.push_back(c->name);
                    v = c->outputs[0];
                }
                t.output = v;
                QType ty = QType::F32;
                if (int8 && !want_f32[v])
                    ty = (t.act == QAct::Relu || (t.act == QAct::Clip && t.clip_min >= 0.0f)) ? QType::U8 : QType::S8;
                return std::make_pair(t, ty);
            };
            auto fused = try_fuse(true);
            // The residual is copied into the destination buffer and read with the sum post-op's
            // data type, which must have the destination's element size.
            // Inner products take no sum post-op of another data type (oneDNN 2.6).
            if (!fused.first.sum_input.empty()) {
                const QType rt = p.values.at(fused.first.sum_input).type;
                if (is8(rt) != is8(fused.second) || (n.op != OpKind::Conv && rt != fused.second)) fused = try_fuse(false);
            }
            s = fused.first;
            out_type = fused.second;
            for (const auto& f : s.fused) skip.insert(f);
        } else if (int8) {
            const QType in_t = p.values.at(n.inputs[0]).type;
            const OpDef& def = op_def(n.op);
            const PlanQuery q{g, n, p.sample_shapes};
            if (def.int8 == Int8Class::PassScale) {
                s.int8 = is8(in_t) && (!def.int8_accepts || def.int8_accepts(q));
                out_type = s.int8 ? in_t : QType::F32;
            } else if (def.int8 == Int8Class::Rescale && !f32_only(g, n, p.sample_shapes, layer_nodes)) {
                bool all8 = true, allu8 = true;
                for (const auto& in : n.inputs) {
                    if (is_initializer(g, in)) {
                        all8 = false;
                        break;
                    }
                    QType t = p.values.at(in).type;
                    all8 = all8 && is8(t);
                    allu8 = allu8 && t == QType::U8;
                }
                s.int8 = all8;
                out_type = all8 ? (allu8 ? QType::U8 : QType::S8) : QType::F32;
            }
        }
        QValue qv;
        qv.type = out_type;
        qv.qtype = is8(out_type) ? out_type : QType::S8;
        p.values[s.output] = qv;
        p.steps.push_back(std::move(s));
    }
    return p;
}

namespace {

/// Output inherits the input's scale: the op does not rescale (pooling, Relu, Clip, shape ops).
bool inherits_scale(const QStep& s) { return s.int8 && !s.layer && op_def(s.node->op).int8 == Int8Class::PassScale; }

}  // namespace

void assign_scales(QuantPlan& plan, const std::map<std::string, compress::ActivationObserver>& observed,
                   const compress::CalibrationSpec& spec) {
    const float qmax_s = static_cast<float>((1 << (spec.bits - 1)) - 1);
    const float qmax_u = static_cast<float>((1 << spec.bits) - 1);
    auto calibrate = [&](const std::string& name, QValue& v) {
        auto it = observed.find(name);
        if (it == observed.end() || it->second.count() == 0) return;
        compress::ActivationParams ap = compress::calibrate_activation(it->second, spec);
        if (v.type == QType::F32) v.qtype = it->second.min() >= 0.0f ? QType::U8 : QType::S8;
        float s = v.qtype == QType::U8 ? ap.clip_max / qmax_u : std::max(-ap.clip_min, ap.clip_max) / qmax_s;
        v.scale = std::isfinite(s) && s > 0.0f ? s : 1.0f;
        v.calibrated = true;
    };
    std::set<std::string> produced;
    for (const auto& s : plan.steps) produced.insert(s.output);
    for (auto& kv : plan.values)
        if (!produced.count(kv.first)) calibrate(kv.first, kv.second);
    for (const auto& s : plan.steps) {
        QValue& v = plan.values.at(s.output);
        if (inherits_scale(s)) {
            const QValue& in = plan.values.at(s.input);
            v.scale = in.scale;
            v.qtype = in.qtype;
            v.calibrated = false;
        } else {
            calibrate(s.output, v);
        }
    }
}

}  // namespace dcs
