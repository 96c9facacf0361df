// Plan compilation: the plan of one batch size, buffer sharing, and the compressible layers (a host
// kernel of the kernel table where one serves, else a oneDNN convolution or inner product).
#include <algorithm>
#include <cstring>

#include "runtime/dnnl/plan.hpp"

namespace dcs {

std::unique_ptr<Plan> DnnlExecutor::Impl::compile(int64_t batch) {
    auto P = std::make_unique<Plan>();
    P->batch = batch;
    P->strm = dnnl::stream(eng);
    const auto shapes = graph.infer_shapes(batch);
    const auto& in_name = graph.inputs.at(0).name;
    P->input = memory(make_md(shapes.at(in_name), dt::f32, false), eng, DNNL_MEMORY_NONE);
    P->vals[in_name] = P->input;
    for (const auto& s : model.plan.steps) {
        try {
            if (s.layer) compile_layer(*P, s, shapes);
            else compile_step(*P, s, shapes);
        } catch (const dnnl::error& e) {
            throw UnsupportedError(where_of(*s.node) + ": oneDNN cannot serve it: " + e.what());
        }
    }
    const auto& out = graph.outputs.at(0);
    P->output = get_as(*P, out, make_md(shapes.at(out), dt::f32, false), QType::F32);
    if (share_buffers) pack(*P);
    for (auto& b : P->buffers)
        if (!b.zeroed) {
            std::memset(b.data.get(), 0, std::max<size_t>(64, (b.bytes + 63) / 64 * 64));
            b.zeroed = true;
        }
    return P;
}

int64_t DnnlExecutor::Impl::chunk_for_budget(size_t budget_bytes) {
    const Plan& one = plan_for(1);
    size_t bytes = 0;
    for (const auto& b : one.buffers)
        if (!b.persistent) bytes += b.bytes;
    const size_t fit = budget_bytes / std::max<size_t>(bytes, 1);
    fp32_chunk = std::clamp<int64_t>(static_cast<int64_t>(std::min<size_t>(fit, INT64_MAX)), 1, std::max<int64_t>(batch_size, 1));
    return fp32_chunk;
}

// Activations whose lifetimes do not overlap share memory: every buffer gets a slot (best fit among
// the slots free since before its first use), and every memory object pointing into it is moved.
void DnnlExecutor::Impl::pack(Plan& P) {
    const size_t nb = P.buffers.size(), ns = P.steps.size();
    auto owner = [&](const void* h) -> long {
        auto c = static_cast<const char*>(h);
        for (size_t b = 0; b < nb; ++b) {
            auto base = static_cast<const char*>(P.buffers[b].data.get());
            if (c >= base && c < base + std::max<size_t>(P.buffers[b].bytes, 1)) return static_cast<long>(b);
        }
        return -1;
    };
    // Every distinct memory object with its original handle.
    std::map<dnnl_memory_t, memory> objects;
    auto note = [&](const memory& m) {
        if (m && m.get_data_handle()) objects.emplace(m.get(), m);
    };
    std::vector<size_t> first(nb, ns + 1), last(nb, 0);
    for (size_t i = 0; i < ns; ++i) {
        std::vector<memory> ms = P.steps[i].uses;
        for (const auto& a : P.steps[i].args) ms.push_back(a.second);
        for (const auto& m : ms) {
            note(m);
            if (!m.get_data_handle()) continue;
            long b = owner(m.get_data_handle());
            if (b < 0) continue;
            first[b] = std::min(first[b], i);
            last[b] = std::max(last[b], i);
        }
    }
    for (const auto& kv : P.vals) note(kv.second);
    for (const auto& kv : P.converted)
        for (const auto& m : kv.second) note(m);
    note(P.output);
    if (P.output.get_data_handle()) {
        long b = owner(P.output.get_data_handle());
        if (b >= 0) last[b] = ns;  // read after the last step
    }
    std::vector<size_t> order;
    for (size_t b = 0; b < nb; ++b)
        if (!P.buffers[b].persistent && first[b] <= ns) order.push_back(b);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return first[a] < first[b]; });
    struct Slot {
        size_t bytes = 0, busy_until = 0;
        bool used = false;
    };
    std::vector<Slot> slots;
    std::vector<long> slot_of(nb, -1);
    for (size_t b : order) {
        long best = -1;
        for (size_t k = 0; k < slots.size(); ++k) {
            if (slots[k].used && slots[k].busy_until >= first[b]) continue;
            if (best < 0) best = static_cast<long>(k);
            const bool fits = slots[k].bytes >= P.buffers[b].bytes, best_fits = slots[best].bytes >= P.buffers[b].bytes;
            if ((fits && (!best_fits || slots[k].bytes < slots[best].bytes)) || (!fits && !best_fits && slots[k].bytes > slots[best].bytes))
                best = static_cast<long>(k);
        }
        if (best < 0) {
            slots.push_back({});
            best = static_cast<long>(slots.size() - 1);
        }
        Slot& sl = slots[best];
        sl.bytes = std::max(sl.bytes, P.buffers[b].bytes);
        sl.busy_until = last[b];
        sl.used = true;
        slot_of[b] = best;
    }
    std::vector<std::shared_ptr<void>> slot_data;
    for (const auto& sl : slots) slot_data.push_back(aligned_buffer(sl.bytes));
    // Move every memory object, computing offsets from the original handles before any change.
    std::vector<std::pair<memory, char*>> moves;
    for (auto& kv : objects) {
        const void* h = kv.second.get_data_handle();
        long b = owner(h);
        if (b < 0 || slot_of[b] < 0) continue;
        const size_t off = static_cast<const char*>(h) - static_cast<const char*>(P.buffers[b].data.get());
        moves.emplace_back(kv.second, static_cast<char*>(slot_data[slot_of[b]].get()) + off);
    }
    for (auto& mv : moves) mv.first.set_data_handle(mv.second);
    std::vector<Plan::Buffer> kept;
    for (size_t b = 0; b < nb; ++b)
        if (slot_of[b] < 0) kept.push_back(P.buffers[b]);
    for (size_t k = 0; k < slots.size(); ++k) kept.push_back({slot_data[k], slots[k].bytes, false, true});
    P.buffers = std::move(kept);
}

void DnnlExecutor::Impl::compile_layer(Plan& P, const QStep& s,
                                       const std::map<std::string, std::vector<int64_t>>& shapes) {
    const Node& n = *s.node;
    const LayerInfo& li = model.layer_info.at(n.name);
    const bool q = s.int8;
    const QValue& xv = model.plan.values.at(s.input);
    const QType x_type = q ? (is8(xv.type) ? xv.type : xv.qtype) : QType::F32;
    const QType y_type = type_of(s.output);
    const float sy = is8(y_type) ? scale_of(s.output) : 1.0f;
    const auto& xs = shapes.at(s.input);
    const auto& ys = shapes.at(s.output);
    const auto& ws = li.weight_shape;
    const int64_t ch = ws[li.out_axis];
    const dt w_dt = q ? dt::s8 : dt::f32;

    std::string declined;  // why the kernel table's rows declined the layer
    if (q && n.op == OpKind::Conv) {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        ConvAttrs aa = a;
        aa.kernel.assign(ws.begin() + 2, ws.end());
        kernels::LayerDesc d;
        d.xs = xs;
        d.ys = ys;
        d.ws = ws;
        d.win = conv_window(aa, std::vector<int64_t>(xs.begin() + 2, xs.end()), where_of(n));
        d.group = a.group;
        d.xt = x_type;
        d.yt = y_type;
        d.act = s.act;
        d.sum = !s.sum_input.empty();
        if (d.sum) d.rt = type_of(s.sum_input);
        const kernels::Choice c = kernels::choose(d);
        if (c.row) return add_host_conv_step(P, s, d, *c.row, c.declined);
        declined = c.declined;
    }

    dnnl::primitive_attr attr = plan_attr();
    dnnl::post_ops po;
    // Per-channel output scales change with every candidate. oneDNN 2.6 convolutions do not take
    // runtime output scales (DNNL_RUNTIME_F32_VAL), so the scales are a binary-multiply post-op with a
    // per-channel tensor: the same arithmetic, (acc + bias) * scale[c], with data set at run time.
    const int64_t out_rank = n.op == OpKind::Conv ? static_cast<int64_t>(ys.size()) : 2;
    std::vector<int64_t> scale_dims(out_rank, 1);
    scale_dims[1] = ch;
    const memory::desc scale_md = make_md(scale_dims, dt::f32, false);
    if (q) po.append_binary(dnnl::algorithm::binary_mul, scale_md);
    memory residual;
    if (!s.sum_input.empty()) {
        const QType rt = type_of(s.sum_input);
        residual = get_as(P, s.sum_input, make_md(ys, to_dt(rt), n.op == OpKind::Conv), rt);
        const float sum_scale = q && is8(rt) ? scale_of(s.sum_input) / sy : 1.0f;
        if (rt != y_type) po.append_sum(sum_scale, to_dt(rt));
        else po.append_sum(sum_scale);
    }
    if (s.act == QAct::Relu) {
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    } else if (s.act == QAct::Clip) {
        float lo, hi;
        act_bounds(s, sy, &lo, &hi);
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, lo, hi);
    }
    attr.set_post_ops(po);

    memory::desc x_md, w_user_md, y_md, perm_src_md, perm_dst_md;
    memory::dims w_dims;
    memory::desc b_md({ch}, dt::f32, memory::format_tag::a);
    memory x_mem;
    dnnl::primitive prim;
    memory::desc w_md;
    std::string impl;
    if (n.op == OpKind::Conv) {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        ConvAttrs aa = a;
        aa.kernel.assign(ws.begin() + 2, ws.end());
        Window win = conv_window(aa, std::vector<int64_t>(xs.begin() + 2, xs.end()), where_of(n));
        x_md = make_md(xs, to_dt(x_type), true);
        x_mem = get_as(P, s.input, x_md, x_type);
        y_md = make_md(ys, to_dt(y_type), true);
        if (a.group > 1) {
            w_dims = {a.group, ws[0] / a.group};
            w_dims.insert(w_dims.end(), ws.begin() + 1, ws.end());
        } else {
            w_dims = dims_of(ws);
        }
        w_user_md = make_md(std::vector<int64_t>(w_dims.begin(), w_dims.end()), w_dt, false);
        memory::desc w_any(w_dims, w_dt, memory::format_tag::any);
        dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                          x_md, w_any, b_md, y_md, dims_of(win.strides), minus_one(win.dilations),
                                          dims_of(win.pad_begin), dims_of(win.pad_end));
        dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
        w_md = pd.weights_desc();
        impl = pd.impl_info_str() + declined_note(declined);
        prim = dnnl::convolution_forward(pd);
    } else {
        // A 2-D inner product over [rows, K]. A folded Flatten's source is read in its own layout: when
        // that is channels-last, the columns are (spatial, channel) ordered, and the weight's columns are
        // permuted to match (one extra reorder per candidate) so the fast 2-D kernels serve it.
        const int64_t k = ws[1 - li.out_axis];
        const bool folded = s.input != n.inputs[0];
        const dt xdt = to_dt(x_type);
        const std::vector<int64_t> xs2{Tensor::numel_of(xs) / k, k};
        x_md = make_md(xs2, xdt, false);
        bool permuted = false;
        if (folded) {
            const memory::desc pl = make_md(xs, xdt, false), cl = make_md(xs, xdt, true);
            const memory::desc cur = retype(P.vals.at(s.input).get_desc(), xdt);
            const bool use_cl = !same_physical(cur, pl) && same_physical(cur, cl);
            memory base = get_as(P, s.input, use_cl ? cl : pl, x_type);
            permuted = use_cl && !same_physical(cl, pl);
            x_mem = alias(P, base, x_md);
        } else {
            memory plain = get_as(P, s.input, make_md(xs, xdt, false), x_type);
            x_mem = xs.size() == 2 ? plain : alias(P, plain, x_md);
        }
        w_dims = {ch, k};
        if (permuted) {
            const int64_t c = xs[1], sp = k / c;
            // Stored element (o, c, s) of [OC, C*S] (or of [C*S, OC]) as a [OC, S, C] view.
            const memory::dims st = li.out_axis == 0 ? memory::dims{k, 1, sp} : memory::dims{1, ch, sp * ch};
            perm_src_md = memory::desc({ch, sp, c}, w_dt, st);
            perm_dst_md = make_md({ch, sp, c}, w_dt, false);
            w_user_md = make_md({ch, k}, w_dt, false);
        } else if (li.out_axis == 0) {
            w_user_md = make_md({ch, k}, w_dt, false);
        } else {
            w_user_md = memory::desc(w_dims, w_dt, memory::dims{1, ch});  // stored [K, N]
        }
        const int64_t rows = Tensor::numel_of(ys) / ch;
        y_md = make_md({rows, ch}, to_dt(y_type), false);
        memory::desc w_any(w_dims, w_dt, memory::format_tag::any);
        dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, x_md, w_any, b_md, y_md);
        dnnl::inner_product_forward::primitive_desc pd(d, attr, eng);
        w_md = pd.weights_desc();
        impl = pd.impl_info_str();
        prim = dnnl::inner_product_forward(pd);
    }
    memory y_mem = alloc(P, y_md);
    if (residual) {
        // The sum post-op reads the residual from the destination buffer (as its own type).
        memory view(residual.get_desc(), eng, y_mem.get_data_handle());
        if (residual.get_desc().get_size() != y_md.get_size())
            throw UnsupportedError(where_of(n) + ": residual and output sizes differ");
        add_reorder(P, "'" + s.sum_input + "' -> sum", residual, view, 1.0f);
    }
    LayerMem lm;
    lm.name = n.name;
    for (const auto& e : weight_cache)
        if (std::get<0>(e) == n.name && std::get<1>(e) == w_md) lm.weights = std::get<2>(e);
    if (!lm.weights) {
        auto W = std::make_shared<Weights>();
        auto own = [&](const memory::desc& md) {
            W->buffers.push_back(aligned_buffer(md.get_size()));
            return memory(md, eng, W->buffers.back().get());
        };
        W->w = own(w_md);
        W->w_own = W->w.get_data_handle();
        if (perm_src_md) {
            W->perm_src = memory(perm_src_md, eng, DNNL_MEMORY_NONE);
            W->perm_dst = own(perm_dst_md);
            W->perm = dnnl::reorder(dnnl::reorder::primitive_desc(eng, perm_src_md, eng, perm_dst_md));
            W->user_w = memory(w_user_md, eng, W->perm_dst.get_data_handle());
        } else {
            W->user_w = memory(w_user_md, eng, DNNL_MEMORY_NONE);
        }
        W->w_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(eng, w_user_md, eng, w_md));
        if (!q) {
            // Gemm's alpha scales the weight (fp32 inner products take no output scales).
            std::vector<float> wt = graph.initializers.at(li.weight).data;
            const float alpha = n.op == OpKind::Gemm ? std::get<GemmAttrs>(n.attrs).alpha : 1.0f;
            if (alpha != 1.0f)
                for (float& v : wt) v *= alpha;
            W->fill(strm, wt.data());
        }
        weight_cache.emplace_back(n.name, w_md, W);
        lm.weights = W;
    }
    P.weight_reorders.push_back(n.name + ": weights: reorder " +
                                dnnl::reorder::primitive_desc(eng, w_user_md, eng, w_md).impl_info_str());
    if (q) {
        lm.scales = memory(scale_md, eng, DNNL_MEMORY_NONE);
        lm.bias = memory(b_md, eng, DNNL_MEMORY_NONE);
    } else {
        lm.bias = alloc(P, b_md, true);
        auto b = layer_bias(graph, n, ch);
        std::memcpy(lm.bias.get_data_handle(), b.data(), b.size() * 4);
    }
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, lm.weights->w}, {DNNL_ARG_BIAS, lm.bias},
                                         {DNNL_ARG_DST, y_mem}};
    if (q) args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] = lm.scales;
    add_prim(P, n.name + (n.op == OpKind::Conv ? ": convolution" : ": inner_product"), prim, impl.c_str(), args);
    P.layers.push_back(lm);
    if (n.op != OpKind::Conv && ys.size() != 2) P.vals[s.output] = alias(P, y_mem, make_md(ys, to_dt(y_type), false));
    else P.vals[s.output] = y_mem;
}

void DnnlExecutor::Impl::add_host_conv_step(Plan& P, const QStep& s, const kernels::LayerDesc& d,
                                            const kernels::KernelRow& row, const std::string& declined) {
    const Node& n = *s.node;
    memory residual;  // a fused Add's input, read in place: no copy into the output first
    if (d.sum) residual = get_as(P, s.sum_input, make_md(d.ys, to_dt(d.rt), true), d.rt);
    const std::shared_ptr<HostLayer> layer = shared_host(s, row.make(d));
    memory x = get_as(P, s.input, make_md(d.xs, to_dt(d.xt), true), d.xt);
    memory y = alloc(P, make_md(d.ys, to_dt(d.yt), true));
    Step st;
    st.what = n.name + ": convolution " + layer->impl() + " (" + qtype_name(d.xt) + " -> " + qtype_name(d.yt) + ")" +
              declined_note(declined);
    st.uses = {x, y};
    if (residual) st.uses.push_back(residual);
    const int64_t nb = d.xs[0];
    dnnl::stream* sp = &P.strm;
    st.host = [layer, x, y, residual, nb, sp]() {
        sp->wait();
        layer->run(x.get_data_handle(), y.get_data_handle(), nb, residual ? residual.get_data_handle() : nullptr);
    };
    P.steps.push_back(std::move(st));
    LayerMem lm;
    lm.name = n.name;
    lm.host = layer;
    P.layers.push_back(lm);
    P.weight_reorders.push_back(n.name + ": weights: host copy");
    P.vals[s.output] = y;
}

}  // namespace dcs
