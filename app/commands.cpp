#include "app/commands.hpp"

#include <cstdio>
#include <iostream>

#include "app/config.hpp"
#include "app/json.hpp"
#include "common/error.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/onnx_import.hpp"

namespace dcs {

int run_inspect(const ParsedArgs& args) {
    const std::string& path = args.positionals.at(0);
    Graph g = import_onnx(path);
    auto layers = list_layers(g);
    int64_t total_params = 0, total_macs = 0;
    for (const auto& l : layers) {
        total_params += l.params;
        total_macs += l.macs;
    }
    if (args.flag("--json")) {
        Json arr = Json::array();
        for (const auto& l : layers) {
            Json shape = Json::array();
            for (int64_t d : l.weight_shape) shape.value(static_cast<long long>(d));
            arr.value(Json::object()
                          .field("name", l.name)
                          .field("op", op_name(l.op))
                          .field("weight_shape", shape)
                          .field("params", static_cast<long long>(l.params))
                          .field("macs", static_cast<long long>(l.macs)));
        }
        std::cout << Json::object()
                         .field("model", path)
                         .field("opset", static_cast<long long>(g.opset))
                         .field("layers", arr)
                         .field("total_params", static_cast<long long>(total_params))
                         .field("total_macs", static_cast<long long>(total_macs))
                         .field("fp32_size_bytes", static_cast<long long>(fp32_size_bytes(g)))
                         .str()
                  << "\n";
        return 0;
    }
    size_t wname = 5;
    for (const auto& l : layers) wname = std::max(wname, l.name.size());
    std::printf("%-*s  %-7s  %-18s  %10s  %12s\n", static_cast<int>(wname), "layer", "op", "weight shape", "params",
                "MACs/sample");
    for (const auto& l : layers)
        std::printf("%-*s  %-7s  %-18s  %10lld  %12lld\n", static_cast<int>(wname), l.name.c_str(), op_name(l.op),
                    shape_str(l.weight_shape).c_str(), static_cast<long long>(l.params),
                    static_cast<long long>(l.macs));
    std::printf("%zu compressible layers, %lld parameters, %lld MACs per sample, fp32 size %lld bytes\n",
                layers.size(), static_cast<long long>(total_params), static_cast<long long>(total_macs),
                static_cast<long long>(fp32_size_bytes(g)));
    return 0;
}

int run_eval(const ParsedArgs& args) {
    Config cfg = load_config(args.positionals.at(0));
    for (const auto& w : cfg.warnings) std::cerr << "dcsearch: warning: " << w << "\n";
    if (args.options.count("--layers"))
        throw InputError("--layers: per-layer evaluation is not available in this version yet");
    Graph g = import_onnx(cfg.model.path);
    Dataset data = Dataset::load(cfg.dataset);
    ModelIo io = check_model_io(g, data, cfg.model.path);
    data.check_labels(io.num_classes);
    data.check_subset(cfg.dataset.calibration, "dataset.calibration");
    data.check_subset(cfg.dataset.validation, "dataset.validation");
    SubsetEvaluator ev(g, data, cfg.dataset.validation, cfg.model.preprocess, io);
    std::cerr << "dcsearch: evaluating fp32 baseline on " << cfg.dataset.validation.count << " samples\n";
    EvalResult r = ev.run_reference();
    int64_t size = fp32_size_bytes(g);
    if (args.flag("--json")) {
        std::cout << Json::object()
                         .field("accuracy", r.accuracy)
                         .field("size_bytes", static_cast<long long>(size))
                         .field("samples", static_cast<long long>(r.samples))
                         .field("correct", static_cast<long long>(r.correct))
                         .field("images_per_second", r.images_per_second)
                         .field("seconds", r.seconds)
                         .field("precision", "fp32")
                         .field("executor", "reference")
                         .field("model", cfg.model.path)
                         .str()
                  << "\n";
    } else {
        std::printf("accuracy %.4f (%lld/%lld), size %lld bytes (fp32), %.0f images/s\n", r.accuracy,
                    static_cast<long long>(r.correct), static_cast<long long>(r.samples),
                    static_cast<long long>(size), r.images_per_second);
    }
    return 0;
}

}  // namespace dcs
