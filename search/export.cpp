// Choosing a candidate from a results file and writing its packed and QDQ ONNX models.
#include "search/export.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "common/error.hpp"
#include "compress/dcz.hpp"
#include "runtime/candidate.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/onnx_export.hpp"

namespace dcs::search {

std::vector<compress::LayerChoice> choices_of(const ResultsData& results, size_t id) {
    const Evaluation& e = results.evaluations.at(id);
    const size_t nl = results.layers.size();
    if (e.genome.size() != 2 * nl)
        throw InputError("evaluation " + std::to_string(id) + " has " + std::to_string(e.genome.size()) +
                         " genes, the layer table " + std::to_string(nl) + " layers");
    std::vector<compress::LayerChoice> out(nl);
    for (size_t l = 0; l < nl; ++l) {
        const LayerRow& row = results.layers[l];
        const int b = e.genome[2 * l], p = e.genome[2 * l + 1];
        if (b < 0 || b >= static_cast<int>(row.bits.size()) || p < 0 || p >= static_cast<int>(row.prunes.size()))
            throw InputError("evaluation " + std::to_string(id) + ": layer '" + row.name +
                             "' has a gene outside its choices");
        out[l].weight_bits = row.bits[b];
        out[l].prune_ratio = row.prunes[p];
    }
    return out;
}

size_t select_by_id(const ResultsData& results, int64_t id) {
    const int64_t n = static_cast<int64_t>(results.evaluations.size());
    if (id < 0 || id >= n)
        throw InputError("--id " + std::to_string(id) + ": no such evaluation (the results file has ids 0.." +
                         std::to_string(n - 1) + ")");
    const Evaluation& e = results.evaluations[static_cast<size_t>(id)];
    if (!e.ok) throw InputError("--id " + std::to_string(id) + ": that evaluation failed (" + e.error + ")");
    return static_cast<size_t>(id);
}

size_t select_by_max_drop(const ResultsData& results, double max_drop) {
    if (!std::isfinite(max_drop) || max_drop < 0.0)
        throw InputError("--max-drop: expected a number of percentage points >= 0, got " + std::to_string(max_drop));
    size_t best = results.evaluations.size();
    double smallest_drop = INFINITY;
    for (size_t i = 0; i < results.evaluations.size(); ++i) {
        const Evaluation& e = results.evaluations[i];
        if (!e.ok || e.violation > 0.0) continue;
        const double drop = (results.baseline_accuracy - e.accuracy) * 100.0;
        smallest_drop = std::min(smallest_drop, drop);
        if (drop > max_drop + 1e-9) continue;
        if (best == results.evaluations.size()) {
            best = i;
            continue;
        }
        const Evaluation& b = results.evaluations[best];
        if (e.size_bytes < b.size_bytes || (e.size_bytes == b.size_bytes && e.accuracy > b.accuracy)) best = i;
    }
    if (best == results.evaluations.size()) {
        std::ostringstream ss;
        ss << "--max-drop " << max_drop << ": no feasible candidate loses at most " << max_drop
           << " points of accuracy";
        if (std::isfinite(smallest_drop))
            ss << " (the smallest drop recorded is " << smallest_drop << " points)";
        else
            ss << " (the results file has no feasible candidate)";
        throw InputError(ss.str());
    }
    return best;
}

ExportedModel export_model(const Graph& graph, const Dataset& data, const ModelIo& io,
                           const std::vector<compress::LayerChoice>& choices, const ExportSettings& settings,
                           const std::string& dir) {
    namespace fs = std::filesystem;
    const auto layers = list_layers(graph);
    CompressedModel cm = compress_model(graph, layers, choices, settings.spec);
    std::map<std::string, Int8LayerWeights> w8;
    for (size_t i = 0; i < layers.size(); ++i) w8[layers[i].name] = int8_weights_from(cm.weights[i]);

    // Calibration exactly as CandidateEvaluator does it: the same subset (clipped to the data), batch
    // size and calibration spec, so the activation scales are the ones the recorded accuracy used.
    Subset cal = settings.calibration;
    if (cal.offset < 0 || cal.offset >= data.size() || cal.count < 1)
        throw InputError("dataset.calibration: offset " + std::to_string(cal.offset) + ", count " +
                         std::to_string(cal.count) + " lies outside the dataset's " + std::to_string(data.size()) +
                         " samples");
    cal.count = std::min(cal.count, data.size() - cal.offset);
    DnnlExecutor ex(graph, DnnlExecutor::Mode::Int8, settings.batch_size);
    {
        SubsetEvaluator batches(graph, data, cal, settings.preprocess, io, settings.batch_size);
        compress::CalibrationSpec cs;
        cs.method = settings.calibration_method;
        cs.bits = std::min(std::max(settings.activation_bits, 2), 8);
        ex.calibrate(batches.batches(), cs);
    }
    ex.set_bias_correction(settings.bias_correction);
    ex.set_weights(w8);

    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create directory " + dir + ": " + ec.message());
    ExportedModel out;
    out.dcz_path = (fs::path(dir) / "model.dcz").string();
    out.onnx_path = (fs::path(dir) / "model.onnx").string();
    compress::write_dcz(dcz_contents(graph, layers, cm), out.dcz_path);
    out.dcz_bytes = static_cast<uint64_t>(fs::file_size(out.dcz_path));
    write_qdq_model(graph, ex.quantized_model(), w8, out.onnx_path, settings.bias_correction);
    out.bops = compressed_bops(layers, cm, settings.activation_bits);
    return out;
}

}  // namespace dcs::search
