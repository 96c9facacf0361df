#include "runtime/candidate.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>
#include <tuple>

#include "common/error.hpp"
#include "compress/gptq.hpp"
#include "compress/weight.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/layer_hessian.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/reference_executor.hpp"

namespace dcs {
namespace {

std::string ints(const std::vector<int64_t>& v) { return shape_str(v); }

}  // namespace

std::string serialize_structure(const Graph& graph) {
    std::ostringstream ss;
    ss.precision(9);
    ss << "opset " << graph.opset << "\n";
    for (const auto& in : graph.inputs) ss << "input " << in.name << " " << ints(in.shape) << "\n";
    for (const auto& o : graph.outputs) ss << "output " << o << "\n";
    for (const auto& kv : graph.initializers) ss << "tensor " << kv.first << " " << ints(kv.second.shape) << "\n";
    for (const auto& n : graph.nodes) {
        ss << "node " << op_name(n.op) << " " << n.name << " (";
        for (size_t i = 0; i < n.inputs.size(); ++i) ss << (i ? "," : "") << n.inputs[i];
        ss << ") -> " << n.outputs[0];
        if (const auto describe = op_def(n.op).describe) describe(n, ss);
        ss << "\n";
    }
    return ss.str();
}

CompressedModel compress_model(const Graph& graph, const std::vector<LayerInfo>& layers,
                               const std::vector<compress::LayerChoice>& choices, const compress::WeightSpec& spec,
                               bool huffman, const std::vector<compress::LayerHessian>* hessians) {
    if (layers.size() != choices.size())
        throw InputError("a candidate has " + std::to_string(choices.size()) + " layer choices, the model " +
                         std::to_string(layers.size()) + " compressible layers");
    const bool gptq = spec.rounding == compress::Rounding::Gptq;
    if (gptq && (!hessians || hessians->size() != layers.size()))
        throw UnsupportedError("compression.rounding: gptq needs the layers' input Hessians, which this command does not compute");
    CompressedModel m;
    m.weights.reserve(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
        const Tensor& w = graph.initializers.at(layers[i].weight);
        m.weights.push_back(gptq ? compress::gptq_compress_weight(w.data.data(), w.shape, layers[i].out_axis, choices[i],
                                                                  spec, (*hessians)[i])
                                 : compress::compress_weight(w.data.data(), w.shape, layers[i].out_axis, choices[i], spec));
        Tensor dq;
        dq.shape = w.shape;
        dq.data = m.weights.back().dequantize();
        m.overrides[layers[i].weight] = std::move(dq);
    }
    m.size_bytes = compress::dcz_size(dcz_contents(graph, layers, m, huffman));
    return m;
}

compress::DczContents dcz_contents(const Graph& graph, const std::vector<LayerInfo>& layers,
                                   const CompressedModel& model, bool huffman) {
    compress::DczContents c;
    std::string structure = serialize_structure(graph);
    c.graph.assign(structure.begin(), structure.end());
    c.huffman = huffman;
    std::set<std::string> compressed;
    for (size_t i = 0; i < layers.size(); ++i) {
        c.layers.emplace_back(layers[i].name, model.weights.at(i));
        compressed.insert(layers[i].weight);
    }
    for (const auto& kv : graph.initializers) {
        if (compressed.count(kv.first) || kv.second.dtype != DType::f32) continue;
        c.others.emplace_back(kv.first, compress::FloatTensor{kv.second.shape, kv.second.data});
    }
    return c;
}

bool WeightCache::Key::operator<(const Key& o) const {
    auto t = [](const Key& k) {
        return std::make_tuple(k.layer, k.bits, k.prune_ratio, static_cast<int>(k.spec.granularity),
                               static_cast<int>(k.spec.scheme), static_cast<int>(k.spec.pruning),
                               static_cast<int>(k.spec.method), static_cast<int>(k.spec.clip),
                               static_cast<int>(k.spec.rounding));
    };
    return t(*this) < t(o);
}

std::shared_ptr<const WeightCache::Entry> WeightCache::get(const Key& key, const std::function<Entry()>& make) {
    auto it = index_.find(key);
    if (it != index_.end()) {
        hits_ += key.bits > 0;
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->second;
    }
    misses_ += key.bits > 0;
    auto e = std::make_shared<const Entry>(make());
    if (e->bytes > max_bytes_) return e;
    while (!lru_.empty() && bytes_ + e->bytes > max_bytes_) {
        bytes_ -= lru_.back().second->bytes;
        index_.erase(lru_.back().first);
        lru_.pop_back();
    }
    lru_.emplace_front(key, e);
    index_[key] = lru_.begin();
    bytes_ += e->bytes;
    return e;
}

void WeightCache::clear() {
    lru_.clear();
    index_.clear();
    bytes_ = 0;
}

namespace {

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

size_t entry_bytes(const WeightCache::Entry& e) {
    return sizeof(WeightCache::Entry) + (e.int8 ? DnnlExecutor::prepared_bytes(*e.int8) : 0) +
           4 * e.dequantized.data.size() + 8 * e.dequantized.shape.size();
}

/// What a PrunedWeight of n elements holds once the uniform method's memos are made: mask, masked copy
/// and packed rows (an estimate taken when it is cached; the memos come later).
size_t pruned_entry_bytes(const compress::PrunedWeight& p, int64_t n) {
    return sizeof(WeightCache::Entry) + p.bytes() + (p.mask().empty() ? 0 : 4 * static_cast<size_t>(n));
}

/// Fraction of output channels with at least one kept weight: channels whose weights are all pruned do
/// no work.
double kept_channel_fraction(const compress::CompressedWeight& w) {
    if (w.mask.empty()) return 1.0;
    const auto l = w.layout();
    int64_t removed = 0;
    for (int64_t c = 0; c < l.channels; ++c) {
        bool all = true;
        for (int64_t o = 0; o < l.outer && all; ++o)
            for (int64_t k = 0; k < l.inner && all; ++k)
                all = w.mask[static_cast<size_t>((o * l.channels + c) * l.inner + k)] == 0;
        removed += all;
    }
    return 1.0 - static_cast<double>(removed) / static_cast<double>(l.channels);
}

/// A candidate's .dcz size besides its layer records: the structure, the other initializers, headers.
uint64_t frame_bytes(const Graph& graph, const std::vector<LayerInfo>& layers) {
    CompressedModel none;
    none.weights.resize(layers.size());  // counted, not read
    return compress::dcz_frame_bytes(dcz_contents(graph, layers, none));
}

void check_choices(const std::vector<LayerInfo>& layers, const std::vector<compress::LayerChoice>& choices) {
    if (layers.size() != choices.size())
        throw InputError("a candidate has " + std::to_string(choices.size()) + " layer choices, the model " +
                         std::to_string(layers.size()) + " compressible layers");
}

}  // namespace

/// The executors, created on first use: a search never needs the fp32 one after the baseline, and
/// `eval` of the baseline never calibrates.
namespace {

/// Creates every batch size's primitives (and brings an int8 executor's weights up to date), so the
/// timed forward passes are forward passes only.
void prepare(DnnlExecutor& ex, const SubsetEvaluator& eval) {
    std::set<int64_t> sizes;
    for (int64_t n : eval.batch_sizes()) sizes.insert(n);
    for (int64_t n : sizes) ex.prepare(n);
}

}  // namespace

struct CandidateEvaluator::State {
    std::unique_ptr<DnnlExecutor> fp32;
    std::unique_ptr<DnnlExecutor> int8;
    std::vector<compress::LayerHessian> hessians;  ///< rounding: gptq, one per layer, made on first use
};

CandidateEvaluator::CandidateEvaluator(const Graph& graph, const Dataset& data, const Subset& validation,
                                       const Preprocess& pre, const ModelIo& io, const compress::WeightSpec& spec,
                                       int activation_bits, const EvaluatorOptions& options)
    : graph_(graph),
      data_(data),
      pre_(pre),
      io_(io),
      layers_(list_layers(graph)),
      eval_(graph, data, validation, pre, io, std::max<int64_t>(options.batch_size, 1), options.metric,
            options.kept_batch_bytes),
      spec_(spec),
      activation_bits_(activation_bits),
      options_(options),
      frame_bytes_(frame_bytes(graph, layers_)),
      cache_(options.cache_bytes),
      state_(std::make_unique<State>()) {
    if (options.batch_size < 1)
        throw InputError("evaluation batch size must be >= 1, got " + std::to_string(options.batch_size));
    Subset& cal = options_.calibration;
    if (cal.offset < 0 || cal.offset >= data.size() || cal.count < 1)
        throw InputError("dataset.calibration: offset " + std::to_string(cal.offset) + ", count " +
                         std::to_string(cal.count) + " lies outside the dataset's " + std::to_string(data.size()) +
                         " samples");
    cal.count = std::min(cal.count, data.size() - cal.offset);
    if (options.metric == Metric::Agreement) {
        if (options_.runtime == EvalRuntime::Reference) {
            ReferenceExecutor ex(graph_);
            eval_.label_with([&](const Tensor& x) { return ex.run({x}).at(0); });
        } else {
            State& st = state();
            st.fp32 = std::make_unique<DnnlExecutor>(graph_, DnnlExecutor::Mode::Fp32, options_.batch_size, options_.activation_bytes);
            prepare(*st.fp32, eval_);
            eval_.label_with([&](const Tensor& x) { return st.fp32->run(x); });
        }
    }
}

CandidateEvaluator::~CandidateEvaluator() = default;

CandidateEvaluator::State& CandidateEvaluator::state() const { return *state_; }

const std::vector<compress::LayerHessian>& CandidateEvaluator::hessians() const {
    State& st = state();
    if (st.hessians.empty() && !layers_.empty()) {
        const SubsetEvaluator cal(graph_, data_, options_.calibration, pre_, io_, options_.batch_size);
        st.hessians = layer_hessians(graph_, layers_, cal.batches());
    }
    return st.hessians;
}


namespace {
/// The forward-pass part of the metrics, from one pass over the validation batches.
void record_forward(const EvalResult& r, CandidateMetrics& m) {
    const int64_t batches = r.batches;
    m.accuracy = r.accuracy;
    m.stopped_early = r.stopped;
    m.samples = r.samples;
    m.correct = r.correct;
    m.forward_seconds = r.seconds;
    m.images_per_second = r.images_per_second;
    m.latency = batches == 0 ? 0.0 : r.seconds / static_cast<double>(batches);
}
}  // namespace

CandidateMetrics CandidateEvaluator::baseline() const {
    auto t0 = std::chrono::steady_clock::now();
    CandidateMetrics m;
    EvalResult r;
    if (options_.runtime == EvalRuntime::Reference) {
        r = eval_.run_reference();
        m.executor = "reference";
    } else {
        State& st = state();
        if (!st.fp32) st.fp32 = std::make_unique<DnnlExecutor>(graph_, DnnlExecutor::Mode::Fp32, options_.batch_size, options_.activation_bytes);
        prepare(*st.fp32, eval_);
        r = eval_.run([&](const Tensor& x) { return st.fp32->run(x); });
        m.executor = "onednn-fp32";
    }
    record_forward(r, m);
    m.size_bytes = static_cast<uint64_t>(fp32_size_bytes(graph_));
    for (const auto& l : layers_) m.bops += static_cast<double>(l.macs) * 32.0 * 32.0;
    m.seconds = since(t0);
    return m;
}

double compressed_bops(const std::vector<LayerInfo>& layers, const CompressedModel& model, int activation_bits) {
    double bops = 0.0;
    for (size_t i = 0; i < layers.size(); ++i) {
        const auto& w = model.weights.at(i);
        bops += static_cast<double>(layers[i].macs) * kept_channel_fraction(w) * w.bits * activation_bits;
    }
    return bops;
}

CandidateMetrics CandidateEvaluator::evaluate(const std::vector<compress::LayerChoice>& choices, double stop_below) const {
    check_choices(layers_, choices);
    auto t0 = std::chrono::steady_clock::now();
    const bool int8 = options_.runtime == EvalRuntime::OneDnn;
    DnnlExecutor* ex = nullptr;
    if (int8) {
        State& st = state();
        if (!st.int8) {
            // Once per evaluator: calibration on its own subset, then the primitives of every batch size.
            auto q = std::make_unique<DnnlExecutor>(graph_, DnnlExecutor::Mode::Int8, options_.batch_size, options_.activation_bytes);
            SubsetEvaluator cal(graph_, data_, options_.calibration, pre_, io_, options_.batch_size);
            compress::CalibrationSpec cs;
            cs.method = options_.calibration_method;
            cs.bits = std::min(std::max(activation_bits_, 2), 8);
            q->calibrate(cal.batches(), cs);
            q->set_bias_correction(options_.bias_correction);
            prepare(*q, eval_);
            q->set_keep_codes(false);  // its primitives are all made: the cache keeps the reordered codes only
            st.int8 = std::move(q);
            t0 = std::chrono::steady_clock::now();
        }
        ex = st.int8.get();
    }
    // Per layer, a cache entry: size, BOPs and the runtime form are sums and pointer copies on a hit.
    // The size equals dcz_size(dcz_contents(...)) of the compressed model (see dcz_frame_bytes).
    CandidateMetrics m;
    m.size_bytes = frame_bytes_;
    std::function<bool(const EvalResult&, int64_t)> stop;
    if (stop_below >= 0.0)
        stop = [stop_below](const EvalResult& so_far, int64_t total) {
            return clearly_below(so_far.correct, so_far.samples, total, stop_below);
        };
    std::vector<DnnlExecutor::Prepared> w8;
    w8.reserve(layers_.size());
    std::map<std::string, Tensor> overrides;
    for (size_t i = 0; i < layers_.size(); ++i) {
        const LayerInfo& li = layers_[i];
        auto make = [&]() {
            // The pruned layer (mask, masked copy, ranges, packed rows) is shared by the bit widths
            // of a (layer, prune ratio): cached under bits 0.
            auto make_pruned = [&]() {
                const Tensor& w = graph_.initializers.at(li.weight);
                WeightCache::Entry p;
                p.pruned = std::make_shared<const compress::PrunedWeight>(w.data.data(), w.shape, li.out_axis,
                                                                          choices[i].prune_ratio, spec_.pruning);
                p.bytes = pruned_entry_bytes(*p.pruned, static_cast<int64_t>(w.data.size()));
                return p;
            };
            compress::CompressedWeight cw;
            if (spec_.rounding == compress::Rounding::Gptq) {
                const Tensor& w = graph_.initializers.at(li.weight);
                cw = compress::gptq_compress_weight(w.data.data(), w.shape, li.out_axis, choices[i], spec_, hessians()[i]);
            } else {
                const std::shared_ptr<const WeightCache::Entry> pruned =
                    cache_.get(WeightCache::Key{i, 0, choices[i].prune_ratio, spec_}, make_pruned);
                cw = compress::compress_weight(*pruned->pruned, choices[i].weight_bits, spec_);
            }
            WeightCache::Entry e;
            e.dcz_bytes = compress::dcz_layer_stats(li.name, cw, false, /*check=*/false).bytes;
            e.bits = cw.bits;
            e.kept_channels = kept_channel_fraction(cw);
            if (int8) e.int8 = ex->prepare_layer(li.name, int8_weights_from(std::move(cw)));  // cw is done
            else e.dequantized = Tensor(cw.shape, cw.dequantize());
            e.bytes = entry_bytes(e);
            return e;
        };
        std::shared_ptr<const WeightCache::Entry> e =
            cache_.get(WeightCache::Key{i, choices[i].weight_bits, choices[i].prune_ratio, spec_}, make);
        m.size_bytes += e->dcz_bytes;
        m.bops += static_cast<double>(li.macs) * e->kept_channels * e->bits * activation_bits_;
        if (int8) w8.push_back(e->int8);
        else overrides[li.weight] = e->dequantized;
    }
    EvalResult r;
    if (int8) {
        ex->load(w8);         // the executor holds the layers while they are loaded
        prepare(*ex, eval_);  // pointer swaps (reorders only for layers prepared without a layout)
        m.compress_seconds = since(t0);
        r = eval_.run([&](const Tensor& x) { return ex->run(x); }, stop);
        m.executor = "onednn-int8";
    } else {
        m.compress_seconds = since(t0);
        r = eval_.run_reference(&overrides);
        m.executor = "reference";
    }
    record_forward(r, m);
    m.seconds = since(t0);
    return m;
}

}  // namespace dcs
