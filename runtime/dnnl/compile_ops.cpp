// Plan compilation of the steps other than compressible layers (pooling, Pad, Concat, Add, eltwise,
// Softmax, ...), and the host fallback to the fp32 reference for what oneDNN cannot serve.
#include <cstring>

#include "runtime/dnnl/plan.hpp"
#include "runtime/reference_executor.hpp"

namespace dcs {

void DnnlExecutor::Impl::compile_fallback(Plan& P, const QStep& s,
                                          const std::map<std::string, std::vector<int64_t>>& shapes) {
    const Node& n = *s.node;
    fallback_graphs.push_back(std::make_unique<Graph>(single_node_graph(graph, n)));
    const Graph* mini = fallback_graphs.back().get();
    auto ex = std::make_shared<ReferenceExecutor>(*mini);
    std::vector<memory> ins;
    std::vector<std::vector<int64_t>> in_shapes;
    for (const auto& gi : mini->inputs) {
        ins.push_back(get_as(P, gi.name, make_md(shapes.at(gi.name), dt::f32, false), QType::F32));
        in_shapes.push_back(shapes.at(gi.name));
    }
    const auto& ys = shapes.at(s.output);
    memory y = alloc(P, make_md(ys, dt::f32, false));
    Step st;
    st.what = n.name + ": host fallback (reference " + op_name(n.op) + ")";
    st.uses = ins;
    st.uses.push_back(y);
    dnnl::stream* sp = &P.strm;
    st.host = [ex, ins, in_shapes, y, ys, sp]() {
        sp->wait();
        std::vector<Tensor> ts;
        for (size_t i = 0; i < ins.size(); ++i) {
            const float* p = static_cast<const float*>(ins[i].get_data_handle());
            ts.emplace_back(in_shapes[i], std::vector<float>(p, p + Tensor::numel_of(in_shapes[i])));
        }
        auto out = ex->run(ts);
        std::memcpy(y.get_data_handle(), out.at(0).data.data(), out[0].data.size() * sizeof(float));
    };
    P.steps.push_back(std::move(st));
    P.vals[s.output] = y;
}

void DnnlExecutor::Impl::compile_step(Plan& P, const QStep& s,
                                      const std::map<std::string, std::vector<int64_t>>& shapes) {
    const Node& n = *s.node;
    const std::string where = where_of(n);
    const QType y_type = type_of(s.output);
    const auto& ys = shapes.at(s.output);
    // Inputs of fp32 steps are read as fp32; int8 steps keep their inputs' types.
    auto in_type = [&](const std::string& v) { return s.int8 ? type_of(v) : QType::F32; };
    switch (n.op) {
        case OpKind::MaxPool:
        case OpKind::AveragePool:
        case OpKind::GlobalAveragePool: {
            const auto& xs = shapes.at(n.inputs[0]);
            PoolAttrs a;
            if (n.op == OpKind::GlobalAveragePool) {
                a.kernel.assign(xs.begin() + 2, xs.end());
                a.strides.assign(a.kernel.size(), 1);
                a.dilations.assign(a.kernel.size(), 1);
                a.pads.assign(2 * a.kernel.size(), 0);
            } else {
                a = std::get<PoolAttrs>(n.attrs);
            }
            Window win = pool_window(a, std::vector<int64_t>(xs.begin() + 2, xs.end()), where);
            if (n.op == OpKind::AveragePool && a.count_include_pad) {
                for (size_t i = 0; i < win.kernel.size(); ++i) {
                    const int64_t eff = (win.kernel[i] - 1) * win.dilations[i] + 1;
                    if ((win.out[i] - 1) * win.strides[i] + eff > win.in[i] + win.pad_begin[i] + win.pad_end[i])
                        return compile_fallback(P, s, shapes);
                }
            }
            const QType t = in_type(n.inputs[0]);
            memory x = get_as(P, n.inputs[0], make_md(xs, to_dt(t), true), t);
            memory::desc y_md = make_md(ys, to_dt(t), true);
            std::string declined;  // why the kernel table's rows declined the layer
            if (is8(t)) {
                kernels::LayerDesc d;
                d.kind = n.op == OpKind::MaxPool ? kernels::LayerKind::MaxPool : kernels::LayerKind::AvgPool;
                d.xs = xs;
                d.ys = ys;
                d.win = win;
                d.xt = d.yt = t;
                d.include_pad = n.op == OpKind::AveragePool && a.count_include_pad;
                const kernels::Choice c = kernels::choose(d);
                if (c.row) {
                    memory y = alloc(P, y_md);
                    const std::shared_ptr<HostLayer> pool = c.row->make(d);
                    Step st;
                    st.what = n.name + ": pooling " + pool->impl() + " (" + std::to_string(xs[1]) + " channels)" +
                              declined_note(c.declined);
                    st.uses = {x, y};
                    dnnl::stream* sp = &P.strm;
                    const int64_t nb = xs[0];
                    st.host = [pool, x, y, nb, sp]() {
                        sp->wait();
                        pool->run(x.get_data_handle(), y.get_data_handle(), nb, nullptr);
                    };
                    P.steps.push_back(std::move(st));
                    P.vals[s.output] = y;
                    return;
                }
                declined = c.declined;
            }
            auto alg = n.op == OpKind::MaxPool ? dnnl::algorithm::pooling_max
                       : a.count_include_pad   ? dnnl::algorithm::pooling_avg_include_padding
                                               : dnnl::algorithm::pooling_avg_exclude_padding;
            dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, x.get_desc(), y_md,
                                             dims_of(win.strides), dims_of(win.kernel), minus_one(win.dilations),
                                             dims_of(win.pad_begin), pad_right(win));
            dnnl::pooling_v2_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, y_md);
            add_prim(P, n.name + ": pooling", dnnl::pooling_v2_forward(pd), (pd.impl_info_str() + declined_note(declined)).c_str(),
                     {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Relu:
        case OpKind::Clip: {
            const QType t = in_type(n.inputs[0]);
            const memory& base = P.vals.at(n.inputs[0]);
            memory x = get_as(P, n.inputs[0],
                              retype(base.get_desc(), to_dt(t)), t);
            float lo = 0.0f, hi = 0.0f;
            auto alg = dnnl::algorithm::eltwise_relu;
            if (n.op == OpKind::Clip) {
                const auto& c = std::get<ClipAttrs>(n.attrs);
                clip_bounds_in_units(c.min, c.max, is8(t) ? scale_of(n.inputs[0]) : 1.0f, &lo, &hi);
                alg = dnnl::algorithm::eltwise_clip;
            }
            dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, x.get_desc(), lo, hi);
            dnnl::eltwise_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, x.get_desc());
            add_prim(P, n.name + ": eltwise", dnnl::eltwise_forward(pd), pd.impl_info_str(),
                     {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Flatten:
        case OpKind::Reshape: {
            const QType t = in_type(n.inputs[0]);
            memory x = get_as(P, n.inputs[0], make_md(shapes.at(n.inputs[0]), to_dt(t), false), t);
            P.vals[s.output] = alias(P, x, make_md(ys, to_dt(t), false));
            return;
        }
        case OpKind::Pad: {
            // A reorder into the interior of a buffer whose border was filled once at compile time.
            const auto& pa = std::get<PadAttrs>(n.attrs);
            bool crop = false;
            for (int64_t v : pa.pads) crop = crop || v < 0;
            if (crop) return compile_fallback(P, s, shapes);
            const auto& xs = shapes.at(n.inputs[0]);
            const QType t = in_type(n.inputs[0]);
            const memory::desc cur = P.vals.at(n.inputs[0]).get_desc();
            const bool cl = xs.size() >= 3 && same_physical(retype(cur, to_dt(t)), make_md(xs, to_dt(t), true));
            memory x = get_as(P, n.inputs[0], make_md(xs, to_dt(t), cl), t);
            if (std::all_of(pa.pads.begin(), pa.pads.end(), [](int64_t v) { return v == 0; })) {
                P.vals[s.output] = x;  // no padding (PyTorch's avg_pool2d exports one): the input itself
                return;
            }
            memory::desc y_md = make_md(ys, to_dt(t), cl);
            memory y = alloc(P, y_md, true);
            if (!is8(t)) {
                float* p = static_cast<float*>(y.get_data_handle());
                std::fill(p, p + Tensor::numel_of(ys), pa.value);
            }
            memory::dims off(pa.pads.begin(), pa.pads.begin() + static_cast<long>(xs.size()));
            memory view(y_md.submemory_desc(dims_of(xs), off), eng, y.get_data_handle());
            add_reorder(P, n.name + ": pad", x, view, 1.0f);
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Concat: {
            int64_t axis = std::get<AxisAttrs>(n.attrs).axis;
            if (axis < 0) axis += static_cast<int64_t>(ys.size());
            memory::desc y_md = make_md(ys, to_dt(y_type), true);
            memory y = alloc(P, y_md);
            memory::dims off(ys.size(), 0);
            for (const auto& in : n.inputs) {
                memory x = graph.initializers.count(in) ? constant(P, in) : P.vals.at(in);
                const auto& xs = shapes.at(in);
                memory::desc sub = y_md.submemory_desc(dims_of(xs), off);
                memory view(sub, eng, y.get_data_handle());
                const QType have = x.get_desc().data_type() == dt::f32 ? QType::F32 : type_of(in);
                add_reorder(P, n.name + ": concat '" + in + "'", x, view,
                            conversion_scale(have, scale_of(in), y_type, scale_of(s.output)));
                off[axis] += xs[axis];
            }
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Add: {
            const std::string &a = n.inputs[0], &b = n.inputs[1];
            if (s.int8) {
                const memory& ma = P.vals.at(a);
                memory::desc a_md = ma.get_desc();
                memory::desc b_md = retype(a_md, to_dt(type_of(b)));
                memory mb = get_as(P, b, b_md, type_of(b));
                memory::desc y_md = retype(a_md, to_dt(y_type));
                dnnl::primitive_attr attr = plan_attr();
                const float sy = scale_of(s.output);
                attr.set_scales(DNNL_ARG_SRC_0, 0, {scale_of(a) / sy});
                attr.set_scales(DNNL_ARG_SRC_1, 0, {scale_of(b) / sy});
                dnnl::binary::desc d(dnnl::algorithm::binary_add, a_md, b_md, y_md);
                dnnl::binary::primitive_desc pd(d, attr, eng);
                memory y = alloc(P, y_md);
                add_prim(P, n.name + ": binary", dnnl::binary(pd), pd.impl_info_str(),
                         {{DNNL_ARG_SRC_0, ma}, {DNNL_ARG_SRC_1, mb}, {DNNL_ARG_DST, y}});
                P.vals[s.output] = y;
                return;
            }
            // fp32, numpy broadcasting: src0 must have the output's dims.
            std::vector<int64_t> as = shapes.at(a), bs = shapes.at(b);
            std::string s0 = a, s1 = b;
            if (as != ys) {
                std::swap(s0, s1);
                std::swap(as, bs);
            }
            if (as != ys) return compile_fallback(P, s, shapes);
            while (bs.size() < ys.size()) bs.insert(bs.begin(), 1);
            memory m0 = graph.initializers.count(s0) ? constant(P, s0) : P.vals.at(s0);
            if (graph.initializers.count(s0) == 0 && is8(type_of(s0)))
                m0 = get_as(P, s0, make_md(ys, dt::f32, false), QType::F32);
            memory m1;
            if (graph.initializers.count(s1)) {
                memory c = constant(P, s1);
                m1 = memory(make_md(bs, dt::f32, false), eng, c.get_data_handle());
            } else {
                const bool same = bs == ys;
                memory::desc want = same ? retype(m0.get_desc(), dt::f32)
                                         : make_md(shapes.at(s1), dt::f32, false);
                m1 = get_as(P, s1, want, QType::F32);
                if (!same) m1 = alias(P, m1, make_md(bs, dt::f32, false));
            }
            memory::desc y_md = retype(m0.get_desc(), dt::f32);
            dnnl::binary::desc d(dnnl::algorithm::binary_add, m0.get_desc(), m1.get_desc(), y_md);
            dnnl::binary::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, y_md);
            add_prim(P, n.name + ": binary", dnnl::binary(pd), pd.impl_info_str(),
                     {{DNNL_ARG_SRC_0, m0}, {DNNL_ARG_SRC_1, m1}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = y;
            return;
        }
        case OpKind::Softmax: {
            const auto& a = std::get<AxisAttrs>(n.attrs);
            const auto& xs = shapes.at(n.inputs[0]);
            const int64_t r = static_cast<int64_t>(xs.size());
            const int64_t axis = a.axis < 0 ? a.axis + r : a.axis;
            memory x = get_as(P, n.inputs[0], make_md(xs, dt::f32, false), QType::F32);
            memory::desc md = x.get_desc();
            int sm_axis = static_cast<int>(axis);
            if (a.legacy_softmax) {
                int64_t outer = 1, len = 1;
                for (int64_t d = 0; d < r; ++d) (d < axis ? outer : len) *= xs[d];
                md = make_md({outer, len}, dt::f32, false);
                x = alias(P, x, md);
                sm_axis = 1;
            }
            dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, md, sm_axis);
            dnnl::softmax_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, md);
            add_prim(P, n.name + ": softmax", dnnl::softmax_forward(pd), pd.impl_info_str(),
                     {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
            P.vals[s.output] = md == make_md(ys, dt::f32, false) ? y : alias(P, y, make_md(ys, dt::f32, false));
            return;
        }
        case OpKind::BatchNorm: {
            const auto& xs = shapes.at(n.inputs[0]);
            const bool cl = xs.size() >= 3;
            memory x = get_as(P, n.inputs[0], make_md(xs, dt::f32, cl), QType::F32);
            const int64_t c = xs[1];
            const float eps = std::get<BatchNormAttrs>(n.attrs).epsilon;
            memory::desc v_md({c}, dt::f32, memory::format_tag::a);
            std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x}};
            const int arg_ids[4] = {DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
            for (int i = 0; i < 4; ++i) {
                const std::string& pn = n.inputs.at(1 + i);
                if (!graph.initializers.count(pn)) return compile_fallback(P, s, shapes);
                memory m = constant(P, pn);
                args[arg_ids[i]] = memory(v_md, eng, m.get_data_handle());
            }
            dnnl::batch_normalization_forward::desc d(
                dnnl::prop_kind::forward_inference, x.get_desc(), eps,
                dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                    dnnl::normalization_flags::use_shift);
            dnnl::batch_normalization_forward::primitive_desc pd(d, plan_attr(), eng);
            memory y = alloc(P, x.get_desc());
            args[DNNL_ARG_DST] = y;
            add_prim(P, n.name + ": batch_normalization", dnnl::batch_normalization_forward(pd), pd.impl_info_str(), args);
            P.vals[s.output] = y;
            return;
        }
        default: return compile_fallback(P, s, shapes);
    }
}

}  // namespace dcs
