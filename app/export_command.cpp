// `dcsearch export` and `dcsearch apply`: layers.yaml, model.onnx (QDQ) and model.dcz of one candidate.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "app/commands.hpp"
#include "app/config.hpp"
#include "app/load_data.hpp"
#include "app/json.hpp"
#include "app/layers_file.hpp"
#include "common/error.hpp"
#include "runtime/candidate.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/onnx_import.hpp"
#include "search/export.hpp"
#include "search/queries.hpp"
#include "search/results_store.hpp"

namespace dcs {
namespace {

namespace fs = std::filesystem;

/// The model and data of a config, checked as `eval` checks them.
struct Loaded {
    Config cfg;
    Graph graph;
    Dataset data;
    ModelIo io;
    Metric metric = Metric::Top1;
    std::vector<LayerInfo> layers;
};

Loaded load(Config cfg) {
    Loaded l{std::move(cfg), {}, {}, {}, Metric::Top1, {}};
    for (const auto& w : l.cfg.warnings) std::cerr << "dcsearch: warning: " << w << "\n";
    l.graph = import_onnx(l.cfg.model.path);
    LoadedData loaded = load_data(l.cfg, l.graph);
    l.data = std::move(loaded.data);
    l.io = loaded.io;
    l.metric = loaded.metric;
    l.layers = list_layers(l.graph);
    return l;
}

search::ExportSettings settings_of(const Config& cfg) {
    search::ExportSettings s;
    s.calibration = cfg.dataset.calibration;
    s.preprocess = cfg.model.preprocess;
    s.spec = cfg.compression.weight;
    s.activation_bits = cfg.compression.activation_bits;
    s.calibration_method = cfg.compression.calibration;
    s.bias_correction = cfg.compression.bias_correction;
    s.batch_size = EvaluatorOptions{}.batch_size;  // what `eval` and `search` calibrate with
    s.activation_bytes = evaluator_options(cfg, Metric::Top1).activation_bytes;
    return s;
}

/// Writes the three files; returns the layers.yaml path.
std::string write_all(const Loaded& l, const std::vector<compress::LayerChoice>& choices, const std::string& dir,
                      search::ExportedModel* out) {
    *out = search::export_model(l.graph, l.data, l.io, choices, settings_of(l.cfg), dir);
    const std::string yaml = (fs::path(dir) / "layers.yaml").string();
    std::ofstream f(yaml, std::ios::trunc);
    f << format_layers_file(l.layers, choices);
    f.close();
    if (!f) throw std::runtime_error("cannot write " + yaml);
    return yaml;
}

Json layers_json(const std::vector<LayerInfo>& layers, const std::vector<compress::LayerChoice>& choices) {
    Json lj = Json::object();
    for (size_t i = 0; i < layers.size(); ++i)
        lj.field(
            layers[i].name,
            Json::object().field("weight_bits", choices[i].weight_bits).field("prune_ratio", choices[i].prune_ratio));
    return lj;
}

const std::string& output_dir(const ParsedArgs& args) {
    auto it = args.options.find("-o");
    if (it == args.options.end() || it->second.empty()) throw InputError("-o DIR is required");
    if (fs::exists(it->second) && !fs::is_directory(it->second))
        throw InputError("-o " + it->second + ": exists and is not a directory");
    return it->second;
}

double parse_number(const std::string& flag, const std::string& text) {
    size_t pos = 0;
    double v = 0.0;
    try {
        v = std::stod(text, &pos);
    } catch (const std::exception&) {
        pos = 0;
    }
    if (pos == 0 || pos != text.size() || !std::isfinite(v))
        throw InputError(flag + ": expected a number, got '" + text + "'");
    return v;
}

}  // namespace

int run_export(const ParsedArgs& args) {
    const std::string& results_path = args.positionals.at(0);
    const bool by_id = args.options.count("--id") > 0, by_drop = args.options.count("--max-drop") > 0;
    if (by_id == by_drop) throw InputError("give exactly one of --id N and --max-drop PCT");
    const std::string& dir = output_dir(args);
    search::ResultsData r = search::read_results(results_path);
    size_t id = 0;
    if (by_id) {
        const std::string& t = args.options.at("--id");
        const double v = parse_number("--id", t);
        if (v != std::floor(v)) throw InputError("--id: expected an evaluation id (an integer), got '" + t + "'");
        id = search::select_by_id(r, static_cast<int64_t>(v));
    } else {
        id = search::select_by_max_drop(r, parse_number("--max-drop", args.options.at("--max-drop")));
    }
    const search::Evaluation& e = r.evaluations[id];
    const auto choices = search::choices_of(r, id);

    // The config the search ran with: its recorded text, with relative paths resolved against the
    // recorded config path (the results file may have moved; the config file may have changed since).
    Loaded l = load(parse_config(r.config_text, r.config_path));
    if (!r.model_hash.empty() && search::file_hash(l.cfg.model.path) != r.model_hash)
        throw InputError(results_path + ": the model file " + l.cfg.model.path +
                         " has changed since the search (its hash differs); re-run the search");
    if (l.layers.size() != r.layers.size())
        throw InputError(results_path + ": the results file has " + std::to_string(r.layers.size()) +
                         " layers, the model " + std::to_string(l.layers.size()));
    for (size_t i = 0; i < l.layers.size(); ++i)
        if (l.layers[i].name != r.layers[i].name)
            throw InputError(results_path + ": layer " + std::to_string(i) + " is '" + r.layers[i].name +
                             "' in the results file, '" + l.layers[i].name + "' in the model");

    std::cerr << "dcsearch: exporting evaluation " << id << " (accuracy " << e.accuracy << ", " << e.size_bytes
              << " bytes) to " << dir << "\n";
    search::ExportedModel m;
    const std::string yaml = write_all(l, choices, dir, &m);
    if (static_cast<double>(m.dcz_bytes) != e.size_bytes)
        throw std::runtime_error("model.dcz has " + std::to_string(m.dcz_bytes) + " bytes, the results file records " +
                                 std::to_string(static_cast<long long>(e.size_bytes)) +
                                 " (the compression code changed since the search?)");
    const double fp32 = r.baseline_size_bytes;
    // The held-out test subset's figures, when the search evaluated this candidate on it (the final front).
    const bool tested = r.test && !std::isnan(r.test->accuracy_of(id));
    if (args.flag("--json")) {
        Json j = Json::object();
        j.field("id", static_cast<long long>(id))
            .field("accuracy", e.accuracy)
            .field("size_bytes", static_cast<long long>(m.dcz_bytes))
            .field("baseline_accuracy", r.baseline_accuracy)
            .field("accuracy_drop", (r.baseline_accuracy - e.accuracy) * 100.0);
        if (tested)
            j.field("test_accuracy", r.test->accuracy_of(id))
                .field("baseline_test_accuracy", r.test->baseline_accuracy)
                .field("test_accuracy_drop", search::test_drop_pt(r, id));
        std::cout << j.field("compression_ratio", e.size_bytes > 0 ? fp32 / e.size_bytes : 0.0)
                         .field("bops", e.bops)
                         .field("generation", e.generation)
                         .field("layers", layers_json(l.layers, choices))
                         .field(
                             "files",
                             Json::object().field("layers", yaml).field("onnx", m.onnx_path).field("dcz", m.dcz_path))
                         .str()
                  << "\n";
    } else {
        std::printf("exported evaluation %zu: accuracy %.4f (drop %.2f pt), %lld bytes (%.2fx smaller than fp32)\n", id,
                    e.accuracy, (r.baseline_accuracy - e.accuracy) * 100.0, static_cast<long long>(m.dcz_bytes),
                    e.size_bytes > 0 ? fp32 / e.size_bytes : 0.0);
        if (tested)
            std::printf("  test accuracy %.4f (drop %.2f pt) on the %lld held-out samples%s\n", r.test->accuracy_of(id),
                        search::test_drop_pt(r, id), static_cast<long long>(r.test->count),
                        search::loses_more_on_test(r, id) ? ": it loses more on held-out data than on validation" : "");
        else if (l.cfg.test)
            std::printf(
                "  test accuracy not recorded (not on the final front): dcsearch eval CONFIG --layers %s measures it\n",
                yaml.c_str());
        std::printf("  %s\n  %s\n  %s\n", yaml.c_str(), m.onnx_path.c_str(), m.dcz_path.c_str());
    }
    return 0;
}

int run_apply(const ParsedArgs& args) {
    const std::string& dir = output_dir(args);
    Loaded l = load(load_config(args.positionals.at(0)));
    const auto choices = load_layers_file(args.positionals.at(1), l.layers);
    search::ExportedModel m;
    const std::string yaml = write_all(l, choices, dir, &m);

    // The accuracy of what was written, evaluated as `eval --layers` evaluates it.
    const EvaluatorOptions opts = evaluator_options(l.cfg, l.metric);
    CandidateEvaluator ev(l.graph, l.data, l.cfg.dataset.validation, l.cfg.model.preprocess, l.io,
                          l.cfg.compression.weight, l.cfg.compression.activation_bits, opts);
    std::cerr << "dcsearch: evaluating on " << l.cfg.dataset.validation.count << " samples (int8)\n";
    const CandidateMetrics cm = ev.evaluate(choices);
    const double fp32 = static_cast<double>(fp32_size_bytes(l.graph));
    if (args.flag("--json")) {
        std::cout << Json::object()
                         .field("accuracy", cm.accuracy)
                         .field("size_bytes", static_cast<long long>(m.dcz_bytes))
                         .field("samples", static_cast<long long>(cm.samples))
                         .field("compression_ratio", m.dcz_bytes ? fp32 / static_cast<double>(m.dcz_bytes) : 0.0)
                         .field("bops", m.bops)
                         .field("layers", layers_json(l.layers, choices))
                         .field(
                             "files",
                             Json::object().field("layers", yaml).field("onnx", m.onnx_path).field("dcz", m.dcz_path))
                         .str()
                  << "\n";
    } else {
        std::printf("accuracy %.4f on %lld samples, %lld bytes (%.2fx smaller than fp32)\n  %s\n  %s\n  %s\n",
                    cm.accuracy, static_cast<long long>(cm.samples), static_cast<long long>(m.dcz_bytes),
                    m.dcz_bytes ? fp32 / static_cast<double>(m.dcz_bytes) : 0.0, yaml.c_str(), m.onnx_path.c_str(),
                    m.dcz_path.c_str());
    }
    return 0;
}

}  // namespace dcs
