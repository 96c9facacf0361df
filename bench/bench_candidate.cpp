// Benchmark: a candidate's overhead (compressing every layer, its .dcz size, the int8 weights and their
// reorder into the primitives' layouts) against its evaluation (the oneDNN int8 forward passes over the
// validation subset), through CandidateEvaluator as the search uses it, in one process. "cold" has no
// weight cache (every layer compressed again); "pruned_cached" is a new bit width at a prune ratio seen
// before (each layer compressed, its PrunedWeight cached); "cached" repeats a candidate whose layer
// choices are all in the cache, as a search does for every layer choice it has seen before. Prints one
// JSON line per model and choice.
//
// With --replay, it replays every evaluation of a search's results file, in the search's order, through
// one evaluator set up as `dcsearch search` sets it up (cache on), and prints the overhead summed over
// the whole search against the forward passes summed likewise: the amortized overhead of a real search.
// It also counts evaluations whose accuracy or size differ from the recorded ones (expected: 0).
//
//   build/bench/bench_candidate configs/lenet5.yaml [repeats]
//   build/bench/bench_candidate configs/lenet300.yaml --replay results/lenet300.h5
#include <cstdio>
#include <cstring>
#include <iostream>

#include "app/config.hpp"
#include "app/load_data.hpp"
#include "common/error.hpp"
#include "common/memory.hpp"
#include "runtime/candidate.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/onnx_import.hpp"
#include "search/results_store.hpp"

using namespace dcs;

namespace {

int replay(const char* config, const std::string& results_path, const CandidateEvaluator& ev) {
    const search::ResultsData r = search::read_results(results_path);
    if (r.layers.size() != ev.layers().size()) throw InputError(results_path + ": layers do not match the model");
    double overhead = 0, forward = 0;
    int64_t evaluations = 0, mismatches = 0;
    for (const auto& e : r.evaluations) {
        if (!e.ok) continue;
        std::vector<compress::LayerChoice> ch;
        for (size_t l = 0; l < r.layers.size(); ++l)
            ch.push_back({r.layers[l].bits.at(static_cast<size_t>(e.genome[2 * l])),
                          r.layers[l].prunes.at(static_cast<size_t>(e.genome[2 * l + 1]))});
        const CandidateMetrics m = ev.evaluate(ch);  // calibration (first call) is in neither figure
        ++evaluations;
        overhead += m.compress_seconds;
        forward += m.forward_seconds;
        mismatches += m.accuracy != e.accuracy || static_cast<double>(m.size_bytes) != e.size_bytes;
    }
    std::printf(
        "{\"model\":\"%s\",\"replay\":\"%s\",\"evaluations\":%lld,\"layer_compressions\":%lld,"
        "\"overhead_ms\":%.2f,\"eval_ms\":%.2f,\"overhead_percent\":%.2f,\"mismatches\":%lld}\n",
        config, results_path.c_str(), static_cast<long long>(evaluations), static_cast<long long>(ev.cache().misses()),
        overhead * 1e3, forward * 1e3, 100.0 * overhead / forward, static_cast<long long>(mismatches));
    return mismatches == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) try {
    keep_freed_memory();  // as dcsearch
    if (argc < 2) {
        std::cerr << "usage: bench_candidate config.yaml [repeats | --replay results.h5]\n";
        return 2;
    }
    const bool replaying = argc > 3 && std::strcmp(argv[2], "--replay") == 0;
    const int repeats = argc > 2 && !replaying ? std::max(1, std::atoi(argv[2])) : 20;
    Config cfg = load_config(argv[1]);
    Graph g = import_onnx(cfg.model.path);
    LoadedData loaded = load_data(cfg, g);  // any dataset format, checked as the commands check it
    const Dataset& data = loaded.data;
    const ModelIo& io = loaded.io;
    EvaluatorOptions opts;
    opts.calibration = cfg.dataset.calibration;
    opts.bias_correction = cfg.compression.bias_correction;
    opts.calibration_method = cfg.compression.calibration;
    if (replaying)
        return replay(argv[1], argv[3],
                      CandidateEvaluator(g, data, cfg.dataset.validation, cfg.model.preprocess, io,
                                         cfg.compression.weight, cfg.compression.activation_bits, opts));
    EvaluatorOptions no_cache = opts;
    no_cache.cache_bytes = 0;
    CandidateEvaluator cold(g, data, cfg.dataset.validation, cfg.model.preprocess, io, cfg.compression.weight,
                            cfg.compression.activation_bits, no_cache);
    CandidateEvaluator cached(g, data, cfg.dataset.validation, cfg.model.preprocess, io, cfg.compression.weight,
                              cfg.compression.activation_bits, opts);
    const size_t n = cold.layers().size();
    for (auto choice : {compress::LayerChoice{8, 0.0}, compress::LayerChoice{4, 0.5}, compress::LayerChoice{2, 0.9}}) {
        std::vector<compress::LayerChoice> ch(n, choice);
        cold.evaluate(ch);  // the first evaluation also calibrates and creates the primitives
        cached.evaluate(ch);
        double cold_overhead = 0, cold_forward = 0, warm_overhead = 0, warm_forward = 0;
        CandidateMetrics m;
        for (int i = 0; i < repeats; ++i) {
            m = cold.evaluate(ch);
            cold_overhead += m.compress_seconds;
            cold_forward += m.forward_seconds;
            CandidateMetrics w = cached.evaluate(ch);
            warm_overhead += w.compress_seconds;
            warm_forward += w.forward_seconds;
        }
        cold_overhead /= repeats;
        cold_forward /= repeats;
        warm_overhead /= repeats;
        warm_forward /= repeats;
        // A new bit width at a prune ratio already seen: each layer choice is new, its PrunedWeight
        // (mask, ranges, packed rows) cached. A fresh evaluator per repeat, primed with another bit width.
        double pruned_overhead = 0;
        int pruned_n = 0;
        for (int i = 0; i < std::min(repeats, 5); ++i) {
            CandidateEvaluator fresh(g, data, cfg.dataset.validation, cfg.model.preprocess, io,
                                     cfg.compression.weight, cfg.compression.activation_bits, opts);
            std::vector<compress::LayerChoice> other(n, {choice.weight_bits == 8 ? 6 : 8, choice.prune_ratio});
            fresh.evaluate(other);  // calibrates; caches the PrunedWeights at this ratio
            pruned_overhead += fresh.evaluate(ch).compress_seconds;
            ++pruned_n;
        }
        pruned_overhead /= pruned_n;
        std::printf(
            "{\"model\":\"%s\",\"bits\":%d,\"prune\":%.2f,\"overhead_ms\":%.3f,\"pruned_cached_overhead_ms\":%.3f,"
            "\"cached_overhead_ms\":%.3f,"
            "\"eval_ms\":%.2f,\"cached_eval_ms\":%.2f,\"samples\":%lld,\"overhead_percent\":%.2f,\"cached_overhead_percent\":%.2f,"
            "\"accuracy\":%.4f,\"size_bytes\":%llu,\"executor\":\"%s\"}\n",
            argv[1], choice.weight_bits, choice.prune_ratio, cold_overhead * 1e3, pruned_overhead * 1e3, warm_overhead * 1e3,
            cold_forward * 1e3, warm_forward * 1e3, static_cast<long long>(m.samples), 100.0 * cold_overhead / cold_forward,
            100.0 * warm_overhead / warm_forward, m.accuracy, static_cast<unsigned long long>(m.size_bytes),
            m.executor.c_str());
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "bench_candidate: " << e.what() << "\n";
    return 1;
}
