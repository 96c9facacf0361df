// Choosing a candidate from a results file and writing its packed and QDQ ONNX models.
#include "search/export.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/error.hpp"
#include "compress/dcz.hpp"
#include "runtime/candidate.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/layer_hessian.hpp"
#include "runtime/onnx_export.hpp"

namespace dcs::search {

ExportedModel export_model(const Graph& graph, const Dataset& data, const ModelIo& io,
                           const std::vector<compress::LayerChoice>& choices, const ExportSettings& settings,
                           const std::string& dir) {
    namespace fs = std::filesystem;
    const auto layers = list_layers(graph);

    // Calibration exactly as CandidateEvaluator does it: the same subset (clipped to the data), batch
    // size and calibration spec, so the activation scales (and, with rounding: gptq, the layers' input
    // Hessians) are the ones the recorded accuracy used.
    Subset cal = settings.calibration;
    if (cal.offset < 0 || cal.offset >= data.size() || cal.count < 1)
        throw InputError("dataset.calibration: offset " + std::to_string(cal.offset) + ", count " +
                         std::to_string(cal.count) + " lies outside the dataset's " + std::to_string(data.size()) +
                         " samples");
    cal.count = std::min(cal.count, data.size() - cal.offset);
    DnnlExecutor ex(graph, DnnlExecutor::Mode::Int8, settings.batch_size, settings.activation_bytes);
    CompressedModel cm;
    {
        SubsetEvaluator batches(graph, data, cal, settings.preprocess, io, settings.batch_size);
        std::vector<compress::LayerHessian> hessians;
        if (settings.spec.rounding == compress::Rounding::Gptq) hessians = layer_hessians(graph, layers, batches.batches());
        cm = compress_model(graph, layers, choices, settings.spec, false, hessians.empty() ? nullptr : &hessians);
        compress::CalibrationSpec cs;
        cs.method = settings.calibration_method;
        cs.bits = std::min(std::max(settings.activation_bits, 2), 8);
        ex.calibrate(batches.batches(), cs);
    }
    std::map<std::string, Int8LayerWeights> w8;
    for (size_t i = 0; i < layers.size(); ++i) w8[layers[i].name] = int8_weights_from(cm.weights[i]);
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
