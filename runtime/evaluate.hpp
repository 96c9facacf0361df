#pragma once
/// Accuracy of a model on a subset (top-1, top-5, or agreement with the fp32 model on unlabelled data):
/// the fp32 baseline and candidates whose weights are replaced (dequantized) through the reference executor.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/metric.hpp"
#include "runtime/dataset.hpp"
#include "runtime/graph.hpp"

namespace dcs {

struct EvalResult {
    double accuracy = 0.0;  ///< fraction in [0, 1]
    int64_t correct = 0;
    int64_t samples = 0;
    double seconds = 0.0;            ///< forward passes only
    double images_per_second = 0.0;  ///< samples / seconds
    bool stopped = false;            ///< run() stopped before the last batch (samples < the subset)
    int64_t batches = 0;             ///< forward passes run (the subset's batches, fewer when stopped)
};

/// Whether a subset's metric is clearly below `threshold` (a fraction) after `seen` of its `total`
/// samples, `correct` of them right: even if the remaining samples were right at the rate of the upper
/// end of a one-sided 99.9% Wilson interval around correct / seen, the whole subset's accuracy would
/// stay below it. Assumes the samples seen are representative of the rest (the subset's order is the
/// dataset's).
bool clearly_below(int64_t correct, int64_t seen, int64_t total, double threshold);

/// How a model's input relates to the dataset's images, and how many classes it predicts.
struct ModelIo {
    std::vector<int64_t> input_shape;  ///< per sample (without the batch)
    int64_t num_classes = 0;
};

/// Checks that the graph takes one image batch and returns [N, classes] logits, and that the
/// dataset's images fit its input (same C×H×W, or a flat input of C·H·W). Throws InputError naming
/// the model and both shapes.
ModelIo check_model_io(const Graph& graph, const Dataset& data, const std::string& model_path);

/// Evaluates on a fixed subset. The preprocessed batches are made once and kept when they take at most
/// `max_kept_bytes`, so repeated candidate evaluations pay only for forward passes; larger subsets are
/// preprocessed batch by batch on every run (from the dataset's stored images), so that memory does not
/// grow with the subset. `data` must outlive the evaluator.
class SubsetEvaluator {
public:
    static constexpr size_t kKeptBytes = size_t(256) << 20;
    /// The bound of kept batches: `requested`, unless DCS_KEPT_BATCHES_MB=N (MiB) overrides it.
    static size_t kept_bytes(size_t requested = kKeptBytes);

    /// Labels come from `data` (Metric::Agreement: label_with() before run(); unlabelled data holds -1).
    SubsetEvaluator(const Graph& graph, const Dataset& data, const Subset& subset, const Preprocess& pre,
                    const ModelIo& io, int64_t batch_size = 256, Metric metric = Metric::Top1,
                    size_t max_kept_bytes = kKeptBytes);

    /// Top-1 accuracy with the reference executor; `overrides` replaces initializers by name.
    EvalResult run_reference(const std::map<std::string, Tensor>* overrides = nullptr) const;

    /// The metric of `forward` (one batch in, [N, classes] logits out); `seconds` times the calls.
    /// `stop`, when given, is asked after every batch but the last with the result so far and the
    /// subset's size: true ends the run there (EvalResult::stopped, over the samples seen).
    EvalResult run(const std::function<Tensor(const Tensor&)>& forward,
                   const std::function<bool(const EvalResult&, int64_t)>& stop = {}) const;

    /// Metric::Agreement: replaces the labels by `forward`'s top-1 predictions, so that run(forward) is 1.
    void label_with(const std::function<Tensor(const Tensor&)>& forward);
    Metric metric() const { return metric_; }

    /// Every preprocessed batch at once (made now, and kept, when the evaluator does not keep them).
    const std::vector<Tensor>& batches() const;
    size_t batch_count() const { return ranges_.size(); }
    std::vector<int64_t> batch_sizes() const;
    /// Whether the batches are kept between runs (at most max_kept_bytes).
    bool keeps_batches() const { return kept_; }
    const std::vector<std::vector<int64_t>>& labels() const { return labels_; }

private:
    /// Calls f(batch, i) for every batch, kept or made for the call, until f returns false.
    void each_batch(const std::function<bool(const Tensor&, size_t)>& f) const;
    Tensor make_batch(size_t i) const;

    const Graph& graph_;
    const Dataset& data_;
    Preprocess pre_;
    std::vector<int64_t> input_shape_;  ///< per sample
    Metric metric_;
    std::vector<std::pair<int64_t, int64_t>> ranges_;  ///< (first sample, count) of each batch
    bool kept_ = true;
    mutable std::vector<Tensor> batches_;  ///< all of them when kept_ (or once batches() was called)
    std::vector<std::vector<int64_t>> labels_;
};

/// Index of the largest logit per row of a [N, K] tensor (first on ties).
std::vector<int64_t> argmax_rows(const Tensor& logits);
/// Per row of a [N, K] tensor: whether class labels[i] is among its `k` largest logits (ties: lower index first).
std::vector<bool> in_top_k(const Tensor& logits, const std::vector<int64_t>& labels, int64_t k);

/// Bytes of the fp32 model: 4 per float parameter (every float initializer element).
int64_t fp32_size_bytes(const Graph& graph);

}  // namespace dcs
