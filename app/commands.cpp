#include "app/commands.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "app/config.hpp"
#include "app/load_data.hpp"
#include "common/memory.hpp"
#include "app/layers_file.hpp"
#include "runtime/candidate.hpp"
#include "app/json.hpp"
#include "common/cpu_features.hpp"
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

namespace {

/// `eval --explain`: the CPU features, then the int8 executor's implementation lines after calibration
/// at the evaluator's batch size (which kernel serves each layer, why the kernel table's rows before
/// it declined).
void explain(const Config& cfg, const Graph& g, const Dataset& data, const ModelIo& io, const EvaluatorOptions& opts) {
    DnnlExecutor q(g, DnnlExecutor::Mode::Int8, opts.batch_size, opts.activation_bytes);
    SubsetEvaluator cal(g, data, opts.calibration, cfg.model.preprocess, io, opts.batch_size);
    compress::CalibrationSpec cs;
    cs.method = opts.calibration_method;
    cs.bits = std::min(std::max(cfg.compression.activation_bits, 2), 8);
    q.calibrate(cal.batches(), cs);
    std::cout << "cpu: " << cpu::summary() << "\n";
    for (const std::string& line : q.implementations(opts.batch_size)) std::cout << line << "\n";
}

}  // namespace

int run_eval(const ParsedArgs& args) {
    Config cfg = load_config(args.positionals.at(0));
    for (const auto& w : cfg.warnings) std::cerr << "dcsearch: warning: " << w << "\n";
    Graph g = import_onnx(cfg.model.path);
    LoadedData loaded = load_data(cfg, g);
    const Dataset& data = loaded.data;
    const ModelIo& io = loaded.io;
    const auto layers = list_layers(g);
    const bool per_layer = args.options.count("--layers") > 0;
    std::vector<compress::LayerChoice> choices;
    if (per_layer) choices = load_layers_file(args.options.at("--layers"), layers);

    const EvaluatorOptions opts = evaluator_options(cfg, loaded.metric);
    CandidateEvaluator ev(g, data, cfg.dataset.validation, cfg.model.preprocess, io, cfg.compression.weight,
                          cfg.compression.activation_bits, opts);
    if (args.flag("--explain")) {
        explain(cfg, g, data, io, opts);
        return 0;
    }
    const int64_t fp32_size = fp32_size_bytes(g);
    CandidateMetrics m;
    if (per_layer) {
        std::cerr << "dcsearch: evaluating " << layers.size() << " compressed layers on "
                  << cfg.dataset.validation.count << " samples (int8)\n";
        m = ev.evaluate(choices);
    } else {
        std::cerr << "dcsearch: evaluating fp32 baseline on " << cfg.dataset.validation.count << " samples\n";
        m = ev.baseline();
    }
    // The held-out subset (dataset.test), evaluated as the search evaluates its final front.
    CandidateMetrics t;
    if (cfg.test) {
        CandidateEvaluator tev(g, data, *cfg.test, cfg.model.preprocess, io, cfg.compression.weight,
                               cfg.compression.activation_bits, opts);
        std::cerr << "dcsearch: evaluating on the " << cfg.test->count << " test samples\n";
        t = per_layer ? tev.evaluate(choices) : tev.baseline();
    }
    const int64_t size = static_cast<int64_t>(m.size_bytes);
    const double ratio = size > 0 ? static_cast<double>(fp32_size) / static_cast<double>(size) : 0.0;
    if (args.flag("--json")) {
        Json j = Json::object();
        j.field("accuracy", m.accuracy).field("metric", metric_name(loaded.metric));
        if (cfg.test) j.field("test_accuracy", t.accuracy).field("test_samples", static_cast<long long>(t.samples));
        j.field("size_bytes", static_cast<long long>(size))
            .field("samples", static_cast<long long>(m.samples))
            .field("correct", static_cast<long long>(m.correct))
            .field("bops", m.bops)
            .field("images_per_second", m.images_per_second)
            .field("seconds", m.forward_seconds)
            .field("latency_seconds", m.latency)
            .field("peak_rss_bytes", static_cast<long long>(peak_rss_bytes()))
            .field("fp32_size_bytes", static_cast<long long>(fp32_size))
            .field("compression_ratio", ratio)
            .field("precision", per_layer ? "int8" : "fp32")
            .field("executor", m.executor)
            .field("model", cfg.model.path);
        if (per_layer) {
            Json lj = Json::object();
            for (size_t i = 0; i < layers.size(); ++i)
                lj.field(layers[i].name, Json::object()
                                             .field("weight_bits", choices[i].weight_bits)
                                             .field("prune_ratio", choices[i].prune_ratio));
            j.field("layers", lj)
                .field("compress_seconds", m.compress_seconds)
                .field("bias_correction", cfg.compression.bias_correction);
        }
        std::cout << j.str() << "\n";
    } else {
        std::printf("%s %.4f (%lld/%lld), size %lld bytes (%.2fx smaller than fp32), %.4g BOPs/sample, "
                    "%.0f images/s (%s)\n",
                    metric_label(loaded.metric), m.accuracy, static_cast<long long>(m.correct), static_cast<long long>(m.samples),
                    static_cast<long long>(size), ratio, m.bops, m.images_per_second, m.executor.c_str());
        if (cfg.test)
            std::printf("test %s %.4f (%lld/%lld)\n", metric_label(loaded.metric), t.accuracy, static_cast<long long>(t.correct),
                        static_cast<long long>(t.samples));
    }
    return 0;
}

}  // namespace dcs
