// Benchmark: a candidate's overhead (compressing every layer, its .dcz size, the int8 weights and their
// reorder into the primitives' layouts) against its evaluation (the oneDNN int8 forward passes over the
// validation subset), through CandidateEvaluator as the search uses it, in one process. "cold" has no
// weight cache (every layer compressed again); "cached" repeats a candidate whose layer choices are all
// in the cache, as a search does for every layer choice it has seen before. Prints one JSON line per
// model and choice.
//
//   build/bench/bench_candidate configs/lenet5.yaml [repeats]
#include <cstdio>
#include <iostream>

#include "app/config.hpp"
#include "runtime/candidate.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/onnx_import.hpp"

using namespace dcs;

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::cerr << "usage: bench_candidate config.yaml [repeats]\n";
        return 2;
    }
    const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 20;
    Config cfg = load_config(argv[1]);
    Graph g = import_onnx(cfg.model.path);
    Dataset data = Dataset::load(cfg.dataset);
    ModelIo io = check_model_io(g, data, cfg.model.path);
    EvaluatorOptions opts;
    opts.calibration = cfg.dataset.calibration;
    opts.bias_correction = cfg.compression.bias_correction;
    opts.calibration_method = cfg.compression.calibration;
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
        std::printf(
            "{\"model\":\"%s\",\"bits\":%d,\"prune\":%.2f,\"overhead_ms\":%.3f,\"cached_overhead_ms\":%.3f,"
            "\"eval_ms\":%.2f,\"samples\":%lld,\"overhead_percent\":%.2f,\"cached_overhead_percent\":%.2f,"
            "\"accuracy\":%.4f,\"size_bytes\":%llu,\"executor\":\"%s\"}\n",
            argv[1], choice.weight_bits, choice.prune_ratio, cold_overhead * 1e3, warm_overhead * 1e3,
            cold_forward * 1e3, static_cast<long long>(m.samples), 100.0 * cold_overhead / cold_forward,
            100.0 * warm_overhead / warm_forward, m.accuracy, static_cast<unsigned long long>(m.size_bytes),
            m.executor.c_str());
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "bench_candidate: " << e.what() << "\n";
    return 1;
}
