// `dcsearch search config.yaml [--resume] [--json] [--output PATH] [--force]`, in one process.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "app/commands.hpp"
#include "app/config.hpp"
#include "app/json.hpp"
#include "common/error.hpp"
#include "runtime/candidate.hpp"
#include "runtime/onnx_import.hpp"
#include "search/driver.hpp"
#include "search/problem.hpp"
#include "search/results_store.hpp"

namespace fs = std::filesystem;

namespace dcs {
namespace {

std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    char buf[32];
    if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(s / 60), std::fmod(s, 60));
    else std::snprintf(buf, sizeof buf, "%.0fh%02.0fm", std::floor(s / 3600), std::fmod(s / 60, 60));
    return buf;
}

/// Progress on stderr: a live line on a terminal, a log line every 10 s otherwise.
class ProgressPrinter {
public:
    ProgressPrinter() : tty_(isatty(2) != 0), start_(std::chrono::steady_clock::now()) {}
    void operator()(const search::Progress& p) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const int64_t fresh = p.done - p.resumed;
        const double rate = el > 0 ? static_cast<double>(fresh) / el : 0.0;
        const double eta = rate > 0 ? static_cast<double>(p.planned - p.done) / rate : NAN;
        char line[256];
        std::snprintf(line, sizeof line, "%s: %lld/%lld evaluations, %.2f/s, ETA %s, front %zu, hypervolume %.4g",
                      p.generation < 0 ? "sensitivity scan" : ("generation " + std::to_string(p.generation) + "/" +
                                                               std::to_string(p.generations)).c_str(),
                      static_cast<long long>(p.done), static_cast<long long>(p.planned), rate,
                      format_duration(eta).c_str(), p.front_size, p.hypervolume);
        if (tty_) {
            std::fprintf(stderr, "\r\033[K%s", line);
            std::fflush(stderr);
            dirty_ = true;
        } else if (el - last_ >= 10.0 || p.done == p.planned) {
            std::fprintf(stderr, "dcsearch: %s\n", line);
            last_ = el;
        }
    }
    void finish() {
        if (dirty_) std::fprintf(stderr, "\n");
        dirty_ = false;
    }

private:
    bool tty_;
    bool dirty_ = false;
    double last_ = -1e9;
    std::chrono::steady_clock::time_point start_;
};

void check_output_writable(const std::string& path) {
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw InputError("output.path: " + path + " is a directory, expected a file path");
    if (!fs::exists(dir, ec)) fs::create_directories(dir, ec);
    if (!fs::is_directory(dir, ec))
        throw InputError("output.path: directory " + dir.string() + " does not exist and cannot be created");
    std::string probe = (dir / (".dcsearch-write-test-" + std::to_string(getpid()))).string();
    {
        std::ofstream out(probe);
        if (!out) throw InputError("output.path: directory " + dir.string() + " is not writable");
    }
    fs::remove(probe, ec);
}

}  // namespace

int run_search(const ParsedArgs& args) {
    Config cfg = load_config(args.positionals.at(0));
    for (const auto& w : cfg.warnings) std::cerr << "dcsearch: warning: " << w << "\n";
    if (cfg.search.objectives.end() != std::find(cfg.search.objectives.begin(), cfg.search.objectives.end(), Objective::Latency))
        throw InputError(cfg.file + ": search.objectives: latency is not available yet (use accuracy, size, bops)");
    const std::string out_path = args.options.count("--output") ? fs::absolute(args.options.at("--output")).string()
                                                                 : cfg.output.path;
    const bool resume = args.flag("--resume");
    std::error_code ec;
    if (resume && !fs::exists(out_path, ec))
        throw InputError("--resume: results file " + out_path + " not found (nothing to resume)");
    if (!resume && fs::exists(out_path, ec) && !args.flag("--force"))
        throw InputError(out_path + ": results file exists; use --resume to continue that search or --force to overwrite it");
    check_output_writable(out_path);

    Graph g = import_onnx(cfg.model.path);
    Dataset data = Dataset::load(cfg.dataset);
    ModelIo io = check_model_io(g, data, cfg.model.path);
    data.check_labels(io.num_classes);
    data.check_subset(cfg.dataset.calibration, "dataset.calibration");
    data.check_subset(cfg.dataset.validation, "dataset.validation");
    const auto layers = list_layers(g);
    if (layers.empty()) throw InputError(cfg.model.path + ": the model has no compressible layer (Conv, Gemm or MatMul with a constant weight)");
    std::vector<std::string> warnings;
    search::SearchSpace space = search::SearchSpace::build(layers, cfg.compression.weight_bits,
                                                           cfg.compression.prune_ratios, cfg.compression.layers, &warnings);
    for (const auto& w : warnings) std::cerr << "dcsearch: warning: " << w << "\n";

    search::ResultsData base;
    base.config_text = cfg.text;
    base.config_path = fs::absolute(cfg.file).string();
    base.model_path = cfg.model.path;
    base.model_hash = search::file_hash(cfg.model.path);
    std::vector<search::Evaluation> previous;
    if (resume) {
        search::ResultsData old = search::read_results(out_path);
        if (old.config_text != cfg.text)
            throw InputError("--resume: " + out_path + " was written by a different config (" + old.config_path +
                             "); resume with that config or start a new search with another output path");
        if (old.model_hash != base.model_hash)
            throw InputError("--resume: " + out_path + " was written for a different model file than " + cfg.model.path);
        previous = old.evaluations;
        std::cerr << "dcsearch: resuming from " << out_path << " with " << previous.size() << " finished evaluations\n";
    }

    CandidateEvaluator evaluator(g, data, cfg.dataset.validation, cfg.model.preprocess, io, cfg.compression.weight,
                                 cfg.compression.activation_bits);
    std::cerr << "dcsearch: fp32 baseline on " << cfg.dataset.validation.count << " samples\n";
    CandidateMetrics baseline = evaluator.baseline();
    std::cerr << "dcsearch: baseline accuracy " << baseline.accuracy << ", " << baseline.size_bytes << " bytes; "
              << layers.size() << " layers, " << space.size() << " configurations\n";
    base.baseline_accuracy = baseline.accuracy;
    base.baseline_size_bytes = static_cast<double>(baseline.size_bytes);
    base.baseline_bops = baseline.bops;
    base.validation_samples = baseline.samples;
    for (size_t i = 0; i < layers.size(); ++i) {
        const auto& l = layers[i];
        base.layers.push_back({l.name, op_name(l.op), l.weight_shape, l.params, l.macs, space.layers()[i].bits,
                               space.layers()[i].prunes});
    }
    search::SearchSettings settings;
    settings.nsga.population = cfg.search.population;
    settings.nsga.generations = cfg.search.generations;
    settings.nsga.seed = cfg.search.seed;
    settings.nsga.max_evaluations = cfg.search.max_evaluations;
    settings.nsga.stagnation_generations = cfg.search.stagnation_generations;
    settings.problem.baseline_accuracy = baseline.accuracy;
    settings.problem.max_accuracy_drop = cfg.search.max_accuracy_drop;
    // Accuracy and size first: the hypervolume is taken over these two.
    settings.problem.objectives = {Objective::Accuracy, Objective::Size};
    for (Objective o : cfg.search.objectives)
        if (o != Objective::Accuracy && o != Objective::Size) settings.problem.objectives.push_back(o);
    for (Objective o : settings.problem.objectives) base.objectives.push_back(objective_name(o));
    base.max_accuracy_drop = cfg.search.max_accuracy_drop;
    base.seed = cfg.search.seed;

    search::SearchDriver driver(space, settings, base);
    driver.resume_from(previous);
    search::LocalEvaluator local(evaluator, space, settings.problem);
    local.on_result = [&](const search::Evaluation& e) { driver.note_result(e); };
    ProgressPrinter printer;
    driver.run(
        local, [&](const search::ResultsData& d) { search::write_results(out_path, d); },
        [&](const search::Progress& p) { printer(p); });
    printer.finish();

    const auto& res = driver.results();
    const auto front = driver.front();
    int64_t failed = 0;
    for (const auto& e : res.evaluations) failed += !e.ok;
    std::cerr << "dcsearch: " << res.evaluations.size() << " evaluations (" << failed << " failed), front of "
              << front.size() << " written to " << out_path << "\n";
    if (args.flag("--json")) {
        Json fr = Json::array();
        for (size_t i : front) {
            const auto& e = res.evaluations[i];
            auto choices = space.decode(e.genome);
            Json lj = Json::object();
            for (size_t l = 0; l < layers.size(); ++l)
                lj.field(layers[l].name, Json::object()
                                             .field("weight_bits", choices[l].weight_bits)
                                             .field("prune_ratio", choices[l].prune_ratio));
            fr.value(Json::object()
                         .field("id", static_cast<long long>(i))
                         .field("accuracy", e.accuracy)
                         .field("size_bytes", static_cast<long long>(e.size_bytes))
                         .field("bops", e.bops)
                         .field("compression_ratio", res.baseline_size_bytes / e.size_bytes)
                         .field("layers", lj));
        }
        std::cout << Json::object()
                         .field("evaluations", static_cast<long long>(res.evaluations.size()))
                         .field("failed", static_cast<long long>(failed))
                         .field("baseline", Json::object()
                                                .field("accuracy", res.baseline_accuracy)
                                                .field("size_bytes", static_cast<long long>(res.baseline_size_bytes)))
                         .field("front", fr)
                         .field("results", out_path)
                         .str()
                  << "\n";
    } else {
        std::printf("%-6s %-9s %-8s %-12s %s\n", "id", "accuracy", "drop", "size", "ratio");
        for (size_t i : front) {
            const auto& e = res.evaluations[i];
            std::printf("%-6zu %-9.4f %-8.2f %-12.0f %.1fx\n", i, e.accuracy,
                        (res.baseline_accuracy - e.accuracy) * 100.0, e.size_bytes, res.baseline_size_bytes / e.size_bytes);
        }
    }
    return 0;
}

}  // namespace dcs
