#pragma once
/// A candidate: one compression choice per compressible layer, applied to a model's weights.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/dcz.hpp"
#include "compress/gptq.hpp"
#include "compress/types.hpp"
#include "compress/weight.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/graph.hpp"
#include "runtime/int8_reference.hpp"

namespace dcs {

/// A model with every compressible layer compressed as a candidate says.
struct CompressedModel {
    std::vector<compress::CompressedWeight> weights;  ///< one per layer, in list_layers() order
    std::map<std::string, Tensor> overrides;           ///< weight initializer name -> dequantized weight
    uint64_t size_bytes = 0;                            ///< length of the .dcz file this model packs to
};

/// Compresses every layer of `layers` (from list_layers(graph)) with `choices` (same order, same size).
/// With spec.rounding == Gptq, `hessians` holds each layer's input Hessian (layer_hessians()).
/// @throws InputError when the sizes differ; dcs::UnsupportedError when a method cannot serve a choice,
///         or for Gptq without Hessians
CompressedModel compress_model(const Graph& graph, const std::vector<LayerInfo>& layers,
                               const std::vector<compress::LayerChoice>& choices, const compress::WeightSpec& spec,
                               bool huffman = false, const std::vector<compress::LayerHessian>* hessians = nullptr);

/// The .dcz contents of a compressed model: the graph structure (serialize_structure), each layer's
/// compressed weight, and every other float initializer (biases included) in fp32.
compress::DczContents dcz_contents(const Graph& graph, const std::vector<LayerInfo>& layers,
                                   const CompressedModel& model, bool huffman = false);

/// A deterministic text description of the graph without weights: inputs, outputs, nodes with
/// attributes, and initializer names with shapes. It is the "rest of the model" in a .dcz file.
std::string serialize_structure(const Graph& graph);

/// What evaluating one candidate (or the baseline) measured.
struct CandidateMetrics {
    double accuracy = 0.0;     ///< fraction in [0, 1]
    uint64_t size_bytes = 0;   ///< packed (.dcz) size; 4 bytes per parameter for the fp32 baseline
    double bops = 0.0;         ///< bit operations per sample: MACs x weight bits x activation bits
    double seconds = 0.0;      ///< compression + forward passes
    int64_t samples = 0;
    int64_t correct = 0;
    double compress_seconds = 0.0;   ///< compress_weight (or cache look-ups), size, weight reorders
    double forward_seconds = 0.0;    ///< the forward passes only
    double images_per_second = 0.0;  ///< samples / forward_seconds
    double latency = 0.0;            ///< mean seconds per forward pass of one batch (EvaluatorOptions::batch_size)
    std::string executor;            ///< "onednn-int8", "onednn-fp32" or "reference"
    bool stopped_early = false;      ///< evaluate() stopped: accuracy is over the first `samples` only
};

/// Which executor runs the forward passes.
enum class EvalRuntime {
    OneDnn,     ///< candidates on oneDNN int8, the baseline on oneDNN fp32 (the product's path)
    Reference,  ///< the fp32 reference executor, candidates with dequantized weights (tests, cross-checks)
};

/// Settings of a CandidateEvaluator beyond the model and data. The defaults are the config's defaults.
struct EvaluatorOptions {
    /// Images the int8 activation scales (and the bias-correction means) are measured on; clipped to
    /// the dataset's size (a dataset smaller than 512 images calibrates on all of it).
    Subset calibration{0, 512};
    EvalRuntime runtime = EvalRuntime::OneDnn;
    bool bias_correction = false;  ///< compression.bias_correction (int8 only)
    compress::Calibration calibration_method = compress::Calibration::MinMax;
    int64_t batch_size = 256;      ///< >= 1
    /// Bound of the compressed-weight cache in bytes (least recently used entries leave first); 0 disables it.
    size_t cache_bytes = size_t(256) << 20;
    /// Activation memory of a plan of the fp32 executor and of calibration (DnnlExecutor's activation_bytes).
    size_t activation_bytes = size_t(512) << 20;
    /// Validation batches are kept between evaluations up to this many bytes, else streamed (SubsetEvaluator).
    size_t kept_batch_bytes = SubsetEvaluator::kKeptBytes;
    /// What accuracy measures. Metric::Agreement labels the validation images with the baseline's own
    /// executor (oneDNN fp32, or the reference) when the evaluator is made, so the baseline scores 1.
    Metric metric = Metric::Top1;
};

/// One layer's compression choice, made ready for evaluation, cached per (layer, bits, prune ratio,
/// spec, rounding included, so nearest and gptq never share an entry): a search proposes the same layer
/// choice many times, and compress_weight (MSE clipping, k-means, GPTQ), the size accounting and the weight reorders would otherwise dominate a candidate's
/// overhead. An entry holds what a candidate needs of the layer, computed once, so that a cache hit
/// costs no work per weight. Bounded in bytes, least recently used first out. Not thread-safe.
class WeightCache {
public:
    struct Entry {
        uint64_t dcz_bytes = 0;       ///< the layer's record in the .dcz file (dcz_layer_stats, no Huffman)
        int bits = 0;                 ///< weight bits
        double kept_channels = 1.0;   ///< fraction of output channels with a kept weight (BOPs)
        DnnlExecutor::Prepared int8;  ///< OneDnn runtime: the layer prepared for the evaluator's executor
        Tensor dequantized;           ///< Reference runtime: the dequantized weight
        /// Entries with Key::bits == 0: the layer pruned at the key's ratio, shared by its bit widths.
        std::shared_ptr<const compress::PrunedWeight> pruned;
        size_t bytes = 0;  ///< approximate memory held
    };
    struct Key {
        size_t layer = 0;
        int bits = 0;  ///< 0 for the PrunedWeight entry of (layer, prune_ratio)
        double prune_ratio = 0.0;
        compress::WeightSpec spec;
        bool operator<(const Key& o) const;
    };

    /// @param max_bytes bound on the bytes held; an entry larger than the bound is returned but not kept
    explicit WeightCache(size_t max_bytes) : max_bytes_(max_bytes) {}

    /// The cached entry for `key`, or make() stored (evicting the least recently used entries first).
    /// Exceptions from make() propagate and nothing is stored.
    std::shared_ptr<const Entry> get(const Key& key, const std::function<Entry()>& make);

    size_t bytes() const { return bytes_; }
    size_t entries() const { return lru_.size(); }
    /// Look-ups of layer choices (bits > 0) found and not found; PrunedWeight entries are not counted.
    int64_t hits() const { return hits_; }
    int64_t misses() const { return misses_; }
    void clear();

private:
    using Item = std::pair<Key, std::shared_ptr<const Entry>>;
    size_t max_bytes_;
    size_t bytes_ = 0;
    int64_t hits_ = 0, misses_ = 0;
    std::list<Item> lru_;  ///< most recently used first
    std::map<Key, std::list<Item>::iterator> index_;
};

/// Evaluates candidates of one model on one validation subset; the batches are prepared once.
///
/// With EvalRuntime::OneDnn (the default) candidates run on the oneDNN int8 executor, calibrated once
/// (lazily, on the first evaluate()) on `options.calibration`, with primitives built once. A layer
/// choice not in the cache costs its compression, its .dcz record size and its prepared int8 form
/// (DnnlExecutor::prepare_layer: parameters and reordered codes), less when another bit width of the
/// same (layer, prune ratio) is cached (its PrunedWeight: mask, ranges); a cached one costs a look-up and
/// pointer swaps. The baseline runs on oneDNN fp32. Evaluation is not thread-safe: use one evaluator
/// per thread or rank.
class CandidateEvaluator {
public:
    /// `graph` and `data` must outlive the evaluator.
    /// @throws InputError when the calibration subset lies outside the data or the batch size is < 1;
    ///         UnsupportedError when oneDNN cannot serve the model
    CandidateEvaluator(const Graph& graph, const Dataset& data, const Subset& validation, const Preprocess& pre,
                       const ModelIo& io, const compress::WeightSpec& spec, int activation_bits = 8,
                       const EvaluatorOptions& options = {});
    ~CandidateEvaluator();

    const std::vector<LayerInfo>& layers() const { return layers_; }
    const EvaluatorOptions& options() const { return options_; }
    /// The fp32 model (BOPs count 32-bit weights and activations).
    CandidateMetrics baseline() const;
    /// One candidate: one choice per layer, in layers() order. With `stop_below` >= 0 (a fraction) the
    /// forward passes stop after a batch once the accuracy is clearly below it (clearly_below()).
    /// @throws InputError / UnsupportedError when a choice cannot be applied
    CandidateMetrics evaluate(const std::vector<compress::LayerChoice>& choices, double stop_below = -1.0) const;
    /// The compressed-weight cache (hit and miss counts, bytes).
    const WeightCache& cache() const { return cache_; }
    /// Each layer's input Hessian on the calibration subset (fp32 reference executor), made on the first
    /// call (the first evaluate() with rounding: gptq) and kept: sum over layers of groups x K^2 doubles.
    const std::vector<compress::LayerHessian>& hessians() const;

private:
    struct State;
    State& state() const;
    const Graph& graph_;
    const Dataset& data_;
    Preprocess pre_;
    ModelIo io_;
    std::vector<LayerInfo> layers_;
    SubsetEvaluator eval_;
    compress::WeightSpec spec_;
    int activation_bits_;
    EvaluatorOptions options_;
    uint64_t frame_bytes_;  ///< a candidate's .dcz size besides its layer records (dcz_frame_bytes)
    mutable WeightCache cache_;
    mutable std::unique_ptr<State> state_;  ///< executors, created on first use
};

/// BOPs of a compressed model: per layer, MACs x bits x activation bits, with output channels whose
/// weights are all pruned counted as removed.
double compressed_bops(const std::vector<LayerInfo>& layers, const CompressedModel& model, int activation_bits);

}  // namespace dcs
