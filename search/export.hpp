#pragma once
/// Export of one candidate for deployment: writing its packed model (`model.dcz`) and its QDQ ONNX
/// model (`model.onnx`). `layers.yaml` is written by the command (app/layers_file.hpp); choosing the
/// candidate from a results file is search/queries.hpp. See docs/export.md.
#include <cstdint>
#include <string>
#include <vector>

#include "compress/types.hpp"
#include "runtime/dataset.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/graph.hpp"

namespace dcs::search {

/// How the candidate is calibrated and quantized: the config's settings (what the search used).
struct ExportSettings {
    Subset calibration{0, 512};
    Preprocess preprocess;
    compress::WeightSpec spec;
    int activation_bits = 8;
    compress::Calibration calibration_method = compress::Calibration::MinMax;
    bool bias_correction = false;
    int64_t batch_size = 256;  ///< calibration batches, as the evaluator makes them
    size_t activation_bytes = 0;  ///< calibration's activation memory (DnnlExecutor; 0: its default)
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
