// Candidate weights: syncing a plan's layers with the loaded ones, preparing and loading layers.
#include <cstring>

#include "runtime/dnnl/plan.hpp"

namespace dcs {

void DnnlExecutor::Impl::sync_weights(Plan& P) {
    for (auto& lm : P.layers) {
        const Prepared& pl = loaded.at(lm.name);
        if (lm.loaded == pl) continue;
        lm.loaded = pl;
        const QLayer& q = pl->q;
        if (lm.host) {
            if (lm.host->loaded == pl) continue;  // another plan filled it already
            if (pl->codes_dropped) throw_codes_dropped(pl->name, P.batch);
            lm.host->fill(q);
            lm.host->loaded = pl;
            continue;
        }
        lm.scales.set_data_handle(const_cast<float*>(q.out_scale.data()));
        lm.bias.set_data_handle(const_cast<float*>(q.bias.data()));
        Weights& W = *lm.weights;
        if (W.loaded == pl) continue;  // another plan sharing the layout swapped it already
        W.loaded = pl;
        const void* ready = nullptr;
        for (const auto& [layout, buf] : pl->layouts)
            if (layout == &W) ready = buf.get();
        if (ready) {
            W.w.set_data_handle(const_cast<void*>(ready));
        } else {  // a layout made after the layer was prepared
            if (pl->codes_dropped) throw_codes_dropped(pl->name, P.batch);
            W.fill(strm, q.codes.data());
        }
    }
    P.weights_version = model.version;
}

DnnlExecutor::Prepared DnnlExecutor::Impl::prepare(const QStep& st, Int8LayerWeights w) {
    const std::string& name = st.node->name;
    const LayerInfo& li = model.layer_info.at(name);
    auto pl = std::make_shared<PreparedLayer>();
    pl->name = name;
    pl->generation = generation;
    if (bias_correction) {
        const auto shift = bias_shift(graph, *st.node, li, w, input_means.at(name));
        pl->q = make_qlayer(graph, model.plan, st, li, std::move(w), &shift);
    } else {
        pl->q = make_qlayer(graph, model.plan, st, li, std::move(w));
    }
    const QLayer& q = pl->q;
    pl->bytes = sizeof(PreparedLayer) + name.size() + q.codes.size() + 4 * (q.out_scale.size() + q.bias.size());
    for (const auto& [layer, md, W] : weight_cache) {
        if (layer != name) continue;
        std::shared_ptr<void> buf = weight_buffer(md.get_size());
        W->reorder_into(strm, q.codes.data(), memory(md, eng, buf.get()));
        pl->layouts.emplace_back(W.get(), std::move(buf));
        pl->bytes += md.get_size();
    }
    if (!keep_codes && !pl->layouts.empty() && !host_served(name)) {
        pl->bytes -= pl->q.codes.size();
        std::vector<int8_t>().swap(pl->q.codes);
        pl->codes_dropped = true;
    }
    return pl;
}

bool DnnlExecutor::Impl::host_served(const std::string& layer) const {
    for (const auto& [key, P] : plans)
        for (const auto& lm : P->layers)
            if (lm.name == layer && lm.host) return true;
    return false;
}

void DnnlExecutor::Impl::throw_codes_dropped(const std::string& layer, int64_t batch) {
    throw std::logic_error("DnnlExecutor: layer '" + layer + "' was prepared without keeping its codes, and the "
                           "primitives for batch size " + std::to_string(batch) +
                           " were made after it: call prepare() for every batch size before set_keep_codes(false)");
}

void DnnlExecutor::Impl::load(const std::vector<Prepared>& layers) {
    for (const auto& pl : layers) {
        if (!pl) throw std::logic_error("DnnlExecutor::load: null prepared layer");
        if (pl->generation != generation)
            throw std::logic_error("DnnlExecutor::load: layer '" + pl->name +
                                   "' was prepared before the latest calibration or bias-correction change");
    }
    for (const auto& pl : layers) loaded[pl->name] = pl;
    ++model.version;
    layers_stale = true;
}

void DnnlExecutor::Impl::refresh_layers() {
    if (!layers_stale) return;
    for (const auto& [name, pl] : loaded) model.layers[name] = pl->q;
    layers_stale = false;
}

}  // namespace dcs
