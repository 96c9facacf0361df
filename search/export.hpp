#pragma once
/// Export of one candidate for deployment: choosing it from a results file, and writing its packed
/// model (`model.dcz`) and its QDQ ONNX model (`model.onnx`). `layers.yaml` is written by the command
/// (app/layers_file.hpp). See docs/export.md.
#include <cstdint>
#include <string>
#include <vector>

#include "compress/types.hpp"
#include "runtime/dataset.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/graph.hpp"
#include "search/results_store.hpp"

namespace dcs::search {

/// The per-layer choices of evaluation `id`, decoded with the results file's layer table.
/// @throws InputError when the genome does not fit the layer table
std::vector<compress::LayerChoice> choices_of(const ResultsData& results, size_t id);

/// Checks that `id` names a successful evaluation and returns it as an index.
/// @throws InputError on an id outside 0..N-1 or a failed evaluation (with its error)
size_t select_by_id(const ResultsData& results, int64_t id);

/// The smallest feasible evaluation (ties: the more accurate, then the lower id) whose accuracy drop
/// from the baseline is at most `max_drop` percentage points.
/// @throws InputError when `max_drop` is negative or not finite, or no feasible candidate is within it
///         (the message gives the smallest drop available)
size_t select_by_max_drop(const ResultsData& results, double max_drop);

/// How the candidate is calibrated and quantized: the config's settings (what the search used).
struct ExportSettings {
    Subset calibration{0, 512};
    Preprocess preprocess;
    compress::WeightSpec spec;
    int activation_bits = 8;
    compress::Calibration calibration_method = compress::Calibration::MinMax;
    bool bias_correction = false;
    int64_t batch_size = 256;  ///< calibration batches, as the evaluator makes them
};

struct ExportedModel {
    std::string dcz_path, onnx_path;
    uint64_t dcz_bytes = 0;  ///< length of model.dcz (the candidate's size)
    double bops = 0.0;
};

/// Compresses `graph` with `choices` (one per list_layers(graph) entry), writes `dir`/model.dcz and,
/// after calibrating the int8 runtime on `settings.calibration` exactly as candidate evaluation does,
/// `dir`/model.onnx in QDQ form. Creates `dir` when missing.
/// @throws InputError on bad choices or a calibration subset outside the data; UnsupportedError when
///         the runtime or the ONNX writer cannot serve the model; std::runtime_error when a file cannot
///         be written
ExportedModel export_model(const Graph& graph, const Dataset& data, const ModelIo& io,
                           const std::vector<compress::LayerChoice>& choices, const ExportSettings& settings,
                           const std::string& dir);

}  // namespace dcs::search
