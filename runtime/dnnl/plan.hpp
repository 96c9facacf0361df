#pragma once
/// The executor's internals, shared by runtime/dnnl_executor.cpp (public API, runs) and runtime/dnnl/
/// (compile.cpp: plans, layers and buffer sharing; compile_ops.cpp: the other operators and the host
/// fallback; weights.cpp: candidate weights). Plans hold oneDNN primitives and host steps per batch
/// size and image stream; Impl owns them.
#include <omp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "runtime/dnnl/memory.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/kernels/kernel_table.hpp"

namespace dcs {
namespace dnnl_exec {

using kernels::HostLayer;

struct Step {
    std::string what;  ///< "<node>: <primitive kind> <implementation>"
    bool has_prim = false;
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    std::function<void()> host;
    std::vector<memory> uses;  ///< memories a host step reads or writes
};

/// A layer's weights in one primitive layout, shared by every plan (batch size) whose primitive wants
/// that layout, so a candidate's codes are reordered once per layout, not once per batch size.
struct Weights {
    memory user_w;  ///< the codes (int8) or floats in the initializer's layout; handle set on fill
    memory w;       ///< the primitive's weight layout: its own buffer or a prepared layer's
    void* w_own = nullptr;  ///< w's own buffer
    dnnl::reorder w_reorder;
    memory perm_src, perm_dst;  ///< column permutation of the codes first (folded channels-last Flatten)
    dnnl::reorder perm;
    std::vector<std::shared_ptr<void>> buffers;
    std::shared_ptr<const DnnlExecutor::PreparedLayer> loaded;  ///< whose codes w holds (int8)
    memory& codes_memory() { return perm_src ? perm_src : user_w; }
    /// Reorders `codes` (the initializer's layout) into `dst` (this layout).
    void reorder_into(dnnl::stream& s, const void* codes, memory dst) {
        codes_memory().set_data_handle(const_cast<void*>(codes));
        if (perm_src) perm.execute(s, perm_src, perm_dst);
        w_reorder.execute(s, user_w, dst);
        s.wait();
        codes_memory().set_data_handle(DNNL_MEMORY_NONE);
    }
    void fill(dnnl::stream& s, const void* codes) {
        w.set_data_handle(w_own);
        reorder_into(s, codes, w);
    }
};

/// Per plan: a layer's weights and its scale and bias buffers.
struct LayerMem {
    std::string name;
    std::shared_ptr<Weights> weights;
    std::shared_ptr<HostLayer> host;  ///< set instead of weights for a host convolution
    memory scales;  ///< per-channel output scales (int8); handle set on sync
    memory bias;    ///< int8: handle set on sync; fp32: own buffer
    std::shared_ptr<const DnnlExecutor::PreparedLayer> loaded;  ///< what scales, bias, host hold (int8)
};

/// Primitives, memories and steps for one batch size.
struct Plan {
    int64_t batch = 0;
    dnnl::stream strm;  ///< its own: plans of different image streams run concurrently
    std::map<std::string, memory> vals;  ///< canonical memory of each materialised value
    std::map<std::string, std::vector<memory>> converted;  ///< other layouts / types of a value
    std::vector<Step> steps;
    std::vector<LayerMem> layers;
    std::vector<std::string> weight_reorders;  ///< implementations of the per-candidate weight reorders
    struct Buffer {
        std::shared_ptr<void> data;
        size_t bytes = 0;
        bool persistent = false;  ///< weights, biases, padded borders: never shared
        bool zeroed = false;      ///< false: untouched since alloc(), zeroed by compile() if pack() keeps it
    };
    std::vector<Buffer> buffers;
    memory input;
    std::vector<memory> input_aliases;  ///< memories sharing the input's (per-run) handle
    memory output;
    uint64_t weights_version = ~uint64_t(0);
};

/// " (declined: <reasons>)" for an implementations() line, or "" when no kernel declined.
inline std::string declined_note(const std::string& declined) {
    return declined.empty() ? "" : " (declined: " + declined + ")";
}

}  // namespace dnnl_exec

using namespace dnnl_exec;

struct DnnlExecutor::PreparedLayer {
    std::string name;
    uint64_t generation = 0;  ///< Impl::generation it was prepared for
    QLayer q;
    /// The codes in the layout of each Weights (by address) that existed when it was prepared.
    std::vector<std::pair<const Weights*, std::shared_ptr<void>>> layouts;
    size_t bytes = 0;
    bool codes_dropped = false;  ///< q.codes released (set_keep_codes(false)): only `layouts` hold them
};

struct DnnlExecutor::Impl {
    const Graph& graph;
    Mode mode;
    int64_t batch_size;
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream strm{eng};
    QuantizedModel model;
    std::map<std::string, Int8LayerWeights> default_weights;
    bool calibrated = false;
    bool bias_correction = false;
    /// Incremented by calibrate() and by set_bias_correction() changes: a layer prepared for an earlier
    /// generation has other parameters (and, across calibrate(), layouts that no longer exist).
    uint64_t generation = 0;
    std::map<std::string, Prepared> loaded;  ///< per layer, what the plans are to hold
    bool layers_stale = false;               ///< model.layers not yet copied from `loaded`
    std::map<std::string, std::vector<float>> input_means;  ///< per layer: mean input per channel / column
    /// By (batch size, image stream): stream -1 is the plan whose steps use every OMP thread; streams
    /// 0.. are single-threaded plans that run concurrently (Split).
    std::map<std::pair<int64_t, int>, std::unique_ptr<Plan>> plans;
    int64_t sub_batch = 0;   ///< int8: larger batches run in sub-batches of this size (choose_sub_batch)
    /// fp32 (and calibration): larger batches run in chunks of this size (chunk_for_budget); 0: not yet chosen
    int64_t fp32_chunk = 0;
    size_t activation_bytes = size_t(512) << 20;  ///< the budget of chunk_for_budget (DnnlExecutor's)
    int streams = 1;         ///< int8: image streams of run() (choose_streams)
    bool keep_codes = true;  ///< set_keep_codes()
    std::vector<std::unique_ptr<Graph>> fallback_graphs;  ///< mini graphs of host fallbacks (stable addresses)
    /// Weight memories by (layer, primitive weight layout), shared across plans.
    std::vector<std::tuple<std::string, memory::desc, std::shared_ptr<Weights>>> weight_cache;

    Impl(const Graph& g, Mode m, int64_t b, QuantPlan plan) : graph(g), mode(m), batch_size(b) {
        model.plan = std::move(plan);
        for (const auto& l : list_layers(g)) model.layer_info[l.name] = l;
    }

    /// The plan for `batch` images of image stream `stream` (-1: the plan of every thread), compiled
    /// on first use; a stream's primitives are created for one thread, as they run.
    Plan& plan_for(int64_t batch, int stream = -1) {
        const auto key = std::make_pair(batch, stream);
        auto it = plans.find(key);
        if (it != plans.end()) return *it->second;
        std::unique_ptr<Plan> p;
        if (stream >= 0) {
            const int threads = omp_get_max_threads();
            omp_set_num_threads(1);
            try {
                p = compile(batch);
            } catch (...) {
                omp_set_num_threads(threads);
                throw;
            }
            omp_set_num_threads(threads);
        } else {
            p = compile(batch);
        }
        Plan& ref = *p;
        plans[key] = std::move(p);
        return ref;
    }

    /// How run() splits a batch of nb images: chunks of `chunk` images (the last one smaller). With one
    /// stream the chunks run one after another, every step on every thread; with more, each of
    /// `streams` threads takes the next chunk through its own single-threaded plan until none is
    /// left, with no barrier between steps. The chunk count is rounded up to a multiple of the
    /// streams so that they end together.
    struct Split {
        int64_t chunk;
        int streams;
    };
    Split split(int64_t nb) const {
        if (mode != Mode::Int8) return {std::min(nb, fp32_chunk > 0 ? fp32_chunk : nb), 1};
        if (streams > 1 && nb > 1) {
            int64_t k = (nb + sub_batch - 1) / sub_batch;
            k = std::min(nb, (k + streams - 1) / streams * streams);
            return {(nb + k - 1) / k, streams};
        }
        return {std::min(nb, sub_batch), 1};
    }
    /// The plans run() uses for a batch of nb images, made (and their weights synced) if needed.
    std::vector<Plan*> plans_for(int64_t nb) {
        const Split sp = split(nb);
        std::vector<Plan*> out;
        try {
            const bool many = sp.streams > 1;
            for (int s = many ? 0 : -1; s < (many ? sp.streams : 0); ++s)
                for (int64_t n : {sp.chunk, nb % sp.chunk}) {
                    if (n == 0) continue;
                    Plan& P = plan_for(n, s);
                    if (mode == Mode::Int8 && P.weights_version != model.version) sync_weights(P);
                    out.push_back(&P);
                }
        } catch (const dnnl::error& e) {
            throw UnsupportedError(std::string("oneDNN: ") + e.what());
        }
        return out;
    }

    /// A buffer of the plan. Activations of a plan whose buffers are shared stay untouched (no resident
    /// memory) while it compiles: pack() moves them into shared slots, so the buffers it replaces never
    /// cost memory, and compile() zeroes what is left of them. The others (weights, biases, padded
    /// borders, every buffer of an unshared plan) are zeroed now: compilation may write into them.
    memory alloc(Plan& P, const memory::desc& md, bool persistent = false) {
        const bool later = share_buffers && !persistent;
        auto buf = later ? untouched_buffer(md.get_size()) : aligned_buffer(md.get_size());
        P.buffers.push_back({buf, md.get_size(), persistent, !later});
        return memory(md, eng, buf.get());
    }

    memory alias(Plan& P, const memory& base, const memory::desc& md) {
        memory m(md, eng, base.get_data_handle());
        // Only the graph input has no buffer at compile time: its views follow its per-run handle.
        if (base.get_data_handle() == nullptr) P.input_aliases.push_back(m);
        return m;
    }

    // Constants (initializers read by fp32 steps) are fp32 with scale 1.
    QType type_of(const std::string& v) const {
        auto it = model.plan.values.find(v);
        return it == model.plan.values.end() ? QType::F32 : it->second.type;
    }
    float scale_of(const std::string& v) const {
        auto it = model.plan.values.find(v);
        return it == model.plan.values.end() ? 1.0f : it->second.scale;
    }

    /// Attributes of every plan primitive: its scratchpad is the plan's (add_prim), not one that
    /// oneDNN may keep in the primitive object, which its primitive cache hands to every plan of the
    /// same shape, and plans of different image streams run at the same time.
    static dnnl::primitive_attr plan_attr() {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        return attr;
    }

    void add_prim(Plan& P, const std::string& what, const dnnl::primitive& prim, const char* impl,
                  std::unordered_map<int, memory> args) {
        const dnnl_memory_desc_t* scratch =
            dnnl_primitive_desc_query_md(prim.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
        if (scratch && dnnl_memory_desc_get_size(scratch) > 0) args[DNNL_ARG_SCRATCHPAD] = alloc(P, memory::desc(*scratch));
        Step s;
        s.what = what + " " + impl;
        s.has_prim = true;
        s.prim = prim;
        s.args = std::move(args);
        P.steps.push_back(std::move(s));
    }

    void add_reorder(Plan& P, const std::string& what, const memory& src, const memory& dst, float scale) {
        dnnl::primitive_attr attr = plan_attr();
        if (scale != 1.0f) attr.set_output_scales(0, {scale});
        dnnl::reorder::primitive_desc pd(eng, src.get_desc(), eng, dst.get_desc(), attr);
        add_prim(P, what + ": reorder", dnnl::reorder(pd), pd.impl_info_str(),
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    }

    /// The value `name` in layout and type `want` (converting once per plan, cached).
    memory get_as(Plan& P, const std::string& name, const memory::desc& want, QType want_type) {
        const memory& m = P.vals.at(name);
        if (same_physical(m.get_desc(), want)) return m.get_desc() == want ? m : alias(P, m, want);
        for (const auto& c : P.converted[name])
            if (c.get_desc() == want) return c;
        memory out = alloc(P, want);
        const QType have = static_cast<dt>(m.get_desc().data.data_type) == dt::f32 ? QType::F32 : type_of(name);
        add_reorder(P, "'" + name + "'", m, out, conversion_scale(have, scale_of(name), want_type, scale_of(name)));
        P.converted[name].push_back(out);
        return out;
    }

    /// Memory for a constant initializer (plain fp32, wrapping the graph's data).
    memory constant(Plan& P, const std::string& name) {
        auto it = P.vals.find(name);
        if (it != P.vals.end()) return it->second;
        const Tensor& t = graph.initializers.at(name);
        if (t.dtype != DType::f32) throw UnsupportedError("initializer '" + name + "' is not float");
        memory m(make_md(t.shape, dt::f32, false), eng, const_cast<float*>(t.data.data()));
        P.vals[name] = m;
        return m;
    }

    bool share_buffers = true;  ///< false for calibration, which reads every value after the run
    /// The largest chunk of images whose plan's activation buffers (measured on the plan of one image:
    /// after buffer sharing, or all of them without it) fit `budget_bytes`, at least 1 and at most
    /// batch_size; sets fp32_chunk.
    int64_t chunk_for_budget(size_t budget_bytes);
    std::unique_ptr<Plan> compile(int64_t batch);
    void pack(Plan& P);
    void compile_layer(Plan& P, const QStep& s, const std::map<std::string, std::vector<int64_t>>& shapes);
    void compile_step(Plan& P, const QStep& s, const std::map<std::string, std::vector<int64_t>>& shapes);
    void compile_fallback(Plan& P, const QStep& s, const std::map<std::string, std::vector<int64_t>>& shapes);
    /// The step, layer and output of a host convolution: the kernel of `row` for `d`; `declined`: the
    /// reasons of the rows tried before it (kernels::Choice).
    void add_host_conv_step(Plan& P, const QStep& s, const kernels::LayerDesc& d, const kernels::KernelRow& row,
                            const std::string& declined);
    /// Host layers by layer (node) name, shared by every plan: per-image shapes, types and activation
    /// come from the step, so every plan makes the same one, and a candidate's weights are filled once.
    std::map<std::string, std::shared_ptr<HostLayer>> host_layers;
    /// The layer's host kernel made by an earlier plan when it is of the same kind, else `fresh`.
    std::shared_ptr<HostLayer> shared_host(const QStep& s, std::shared_ptr<HostLayer> fresh) {
        auto& slot = host_layers[s.node->name];
        if (slot && typeid(*slot) == typeid(*fresh)) return slot;
        slot = fresh;
        return fresh;
    }
    void sync_weights(Plan& P);
    Prepared prepare(const QStep& step, Int8LayerWeights w);
    void load(const std::vector<Prepared>& layers);
    void refresh_layers();
    bool host_served(const std::string& layer) const;  ///< whether a plan runs the layer on a host kernel
    [[noreturn]] static void throw_codes_dropped(const std::string& layer, int64_t batch);
};

}  // namespace dcs
