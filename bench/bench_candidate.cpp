// Benchmark: what compressing every layer of a candidate costs, against evaluating that candidate on the
// validation subset, in one process. Prints one JSON line per model and choice.
//
//   build/bench/bench_candidate configs/lenet5.yaml [repeats]
#include <chrono>
#include <cstdio>
#include <iostream>

#include "app/config.hpp"
#include "runtime/candidate.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/onnx_import.hpp"

using namespace dcs;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: bench_candidate config.yaml [repeats]\n";
        return 2;
    }
    int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
    Config cfg = load_config(argv[1]);
    Graph g = import_onnx(cfg.model.path);
    Dataset data = Dataset::load(cfg.dataset);
    ModelIo io = check_model_io(g, data, cfg.model.path);
    auto layers = list_layers(g);
    SubsetEvaluator ev(g, data, cfg.dataset.validation, cfg.model.preprocess, io);
    for (auto choice : {compress::LayerChoice{8, 0.0}, compress::LayerChoice{4, 0.5}, compress::LayerChoice{2, 0.9}}) {
        std::vector<compress::LayerChoice> ch(layers.size(), choice);
        auto t0 = std::chrono::steady_clock::now();
        CompressedModel m;
        for (int i = 0; i < repeats; ++i) m = compress_model(g, layers, ch, cfg.compression.weight);
        double compress_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
        EvalResult r = ev.run_reference(&m.overrides);
        std::printf(
            "{\"model\":\"%s\",\"bits\":%d,\"prune\":%.2f,\"compress_ms\":%.3f,\"eval_ms\":%.1f,\"samples\":%lld,"
            "\"ratio_percent\":%.3f,\"accuracy\":%.4f,\"size_bytes\":%llu}\n",
            argv[1], choice.weight_bits, choice.prune_ratio, compress_s * 1e3, r.seconds * 1e3,
            static_cast<long long>(r.samples), 100.0 * compress_s / r.seconds, r.accuracy,
            static_cast<unsigned long long>(m.size_bytes));
    }
    return 0;
}
