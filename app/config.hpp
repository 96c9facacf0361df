#pragma once
/// The YAML config (see shared DESIGN.md), parsed and validated once at the edge into typed structs.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/metric.hpp"
#include "compress/types.hpp"
#include "runtime/dataset.hpp"
#include "search/search_space.hpp"

namespace dcs {

struct ModelConfig {
    std::string path;  ///< absolute (resolved against the config file's directory)
    Preprocess preprocess;
};

using search::LayerOverride;

struct CompressionConfig {
    std::vector<int> weight_bits{2, 3, 4, 5, 6, 8};
    std::vector<double> prune_ratios{0.0, 0.25, 0.5, 0.75, 0.9};
    /// granularity, scheme, pruning, method, clip, rounding. The clip defaults to the MSE search: at 2-4 bits it
    /// keeps far more accuracy than max-abs for about 1 ms more per candidate.
    compress::WeightSpec weight{compress::Granularity::PerChannel, compress::Scheme::Symmetric,
                                compress::Pruning::Unstructured, compress::Method::Quantize, compress::WeightClip::Mse};
    int activation_bits = 8;
    compress::Calibration calibration = compress::Calibration::MinMax;
    bool bias_correction = false;
    std::vector<LayerOverride> layers;
};

using search::Objective;

struct SearchConfig {
    std::string algorithm = "nsga2";
    int population = 32;
    int offspring = 0;               ///< candidates per generation; 0: as many as the population
    int generations = 20;
    uint64_t seed = 1;
    double max_accuracy_drop = 2.0;  ///< percentage points
    std::vector<Objective> objectives{Objective::Accuracy, Objective::Size};
    int64_t max_evaluations = 0;     ///< 0: no budget beyond generations
    int stagnation_generations = 0;  ///< 0: off; else stop when hypervolume has not improved for this many
    /// An evaluation stops once its accuracy is clearly below the budget (ProblemSettings::early_stop_below).
    bool early_stop = false;
};

struct RuntimeConfig {
    /// runtime.memory_limit: MiB a process may use for evaluation; its parts bound the activations of a
    /// plan (1/4), the kept validation batches (1/8) and the compressed-weight cache (1/8).
    int64_t memory_limit_mb = 2048;
};

struct OutputConfig {
    std::string path;  ///< absolute; default "results.h5" beside the config
};

struct Config {
    std::string file;  ///< the config file's path as given
    std::string text;  ///< the config file's full text (recorded in the results file)
    ModelConfig model;
    DatasetConfig dataset;
    /// dataset.test: the held-out subset the final front is evaluated on after a search (never used by
    /// calibration or selection); absent when not configured. Disjoint from calibration and validation.
    std::optional<Subset> test;
    /// dataset.metric; absent: top1, or agreement when the dataset has no labels (see load_data).
    std::optional<Metric> metric;
    CompressionConfig compression;
    SearchConfig search;
    RuntimeConfig runtime;
    OutputConfig output;
    std::vector<std::string> warnings;  ///< e.g. calibration and validation subsets overlap
};

/// Loads and validates a config file. Relative paths are resolved against the file's directory.
/// Throws InputError: "<file> line <L>: <key>: <what was expected>, got <value>" (unknown keys name
/// the nearest known key).
Config load_config(const std::string& path);

/// Checks that the calibration, validation and test subsets lie inside the loaded dataset.
/// Throws InputError: "dataset.test: offset <O> + count <C> exceeds the <N> samples in <file>".
void check_subsets(const Config& cfg, const Dataset& data);

/// Same, from text; `path` is used for messages and to resolve relative paths.
Config parse_config(const std::string& text, const std::string& path);

/// The candidate closest to `word` by edit distance (insertions, deletions, substitutions and
/// adjacent transpositions, ignoring case), or "" when none is close enough to be a likely typo.
/// Used for "did you mean ...?" hints.
std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates);

/// "accuracy", "size", "bops", "latency".
const char* objective_name(Objective objective);

}  // namespace dcs
