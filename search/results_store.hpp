#pragma once
/// The results file (HDF5), written by rank 0 only. Layout: docs/results-format.md.
///
/// Crash safety: every checkpoint writes the whole file to "<path>.tmp", flushes it and renames it over
/// <path> (rename is atomic on POSIX file systems). A process killed at any moment therefore leaves
/// either the previous checkpoint or the new one, never a half-written file. The file holds thousands
/// of rows at most, so a rewrite costs milliseconds; SWMR appends would save that but leave a file
/// whose last rows depend on flush timing.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compress/types.hpp"
#include "search/evaluator.hpp"
#include "search/nsga2.hpp"

namespace dcs::search {

struct LayerRow {
    std::string name;
    std::string op;
    std::vector<int64_t> weight_shape;
    int64_t params = 0;
    int64_t macs = 0;
    std::vector<int> bits;        ///< the layer's bit-width choices
    std::vector<double> prunes;   ///< the layer's prune-ratio choices
};

/// One run of the search: the first, and each `--resume` of it.
struct RunRow {
    double wall_seconds = 0.0;             ///< the search loop's wall time (after loading and the baseline)
    double coordinator_cpu_seconds = 0.0;  ///< rank 0's CPU time over the same span (in one process: the evaluations too)
    int workers = 1;                       ///< processes that evaluated: MPI ranks 1..N-1, or 1 (rank 0 alone)
};

/// What one evaluating process did in one run.
struct WorkerRow {
    int run = 0;                ///< index into ResultsData::runs
    int rank = 0;
    int64_t evaluations = 0;    ///< evaluations it finished in that run
    double busy_seconds = 0.0;  ///< the sum of their evaluation times
    double peak_rss_bytes = 0.0;  ///< the rank's peak resident memory over them (0: not recorded)
};

/// The held-out test subset (config dataset.test): after the search, the fp32 baseline and every member
/// of the final feasible front evaluated on it as `eval --layers` evaluates them. Written only by a
/// search whose config has a test subset, and only once all of them are evaluated.
struct TestRecord {
    int64_t offset = 0;  ///< the subset: samples offset .. offset+count-1
    int64_t count = 0;
    double baseline_accuracy = 0.0;  ///< the fp32 model on the test subset
    std::vector<size_t> ids;         ///< evaluations evaluated on it (the final front), ascending size
    std::vector<double> accuracy;    ///< their test accuracy, same order
    /// The test accuracy of evaluation `id`, or NaN when it was not evaluated on the test subset.
    double accuracy_of(size_t id) const;
};

struct ResultsData {
    static constexpr int kFormatVersion = 1;
    std::string config_text;
    std::string config_path;
    std::string model_path;
    std::string model_hash;     ///< FNV-1a 64 of the model file, hex
    std::vector<LayerRow> layers;
    double baseline_accuracy = 0.0;
    /// What accuracy measures: "top1", "top5" or "agreement" (common/metric.hpp); files written before
    /// dataset.metric existed read as "top1".
    std::string metric = "top1";
    double baseline_size_bytes = 0.0;
    double baseline_bops = 0.0;
    int64_t validation_samples = 0;
    /// Evaluations that stopped early (search.early_stop): measured on fewer than validation_samples.
    int64_t stopped_early() const;
    std::vector<std::string> objectives;  ///< names, in the objectives' order
    std::vector<double> hv_reference;     ///< (1 - accuracy, size_bytes) reference point
    double max_accuracy_drop = 0.0;       ///< percentage points
    uint64_t seed = 0;
    bool complete = false;                ///< the search finished
    std::vector<Evaluation> evaluations;  ///< archive order; id = index
    std::vector<GenerationRecord> generations;
    std::vector<RunRow> runs;        ///< absent from files written before it existed: empty
    std::vector<WorkerRow> workers;
    std::optional<TestRecord> test;  ///< absent without a test subset, and until it has been evaluated
};

/// Writes `data` to `path` atomically (temporary file + rename).
/// @throws std::runtime_error naming the path and the failing HDF5 call
void write_results(const std::string& path, const ResultsData& data);

/// Reads a results file.
/// @throws InputError naming the file when it is missing, not HDF5, or not a dcsearch results file
ResultsData read_results(const std::string& path);

/// FNV-1a 64-bit hash of a file's bytes, as 16 hex digits.
/// @throws InputError when the file cannot be read
std::string file_hash(const std::string& path);

}  // namespace dcs::search
