// Benchmark (not a test; see docs/performance.md): images per second of one example model on its
// validation subset (the config's, 2,000 images) with the fp32 reference executor, oneDNN fp32 and
// oneDNN int8 (every layer 8-bit per channel), batches of 256 (--batch N), OMP_NUM_THREADS threads. Each oneDNN
// figure is the best of `--repeats` timed passes after a warm-up pass; the reference gets one pass.
// Prints one JSON line. With --dump PREFIX it also writes the preprocessed images (PREFIX.f32, raw
// float32, N x per-sample shape, the exact tensors the executors see), the labels (PREFIX.labels,
// int32) and PREFIX.json describing them, for scripts/bench_ort.js to time ONNX Runtime on the same
// inputs.
//
//   build/bench/bench_runtime configs/lenet5.yaml [--repeats 5] [--dump /tmp/dcs-bench/lenet5]
//                             [--no-reference] [--int8-only] [--implementations] [--batch N]
// --implementations prints the int8 executor's implementation of every step (of the batch size) to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

#include "app/config.hpp"
#include "app/load_data.hpp"
#include "common/memory.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/onnx_import.hpp"
#include "runtime/reference_executor.hpp"

using namespace dcs;

namespace {

struct Timed {
    double images_per_second = 0.0;
    double accuracy = 0.0;
};

/// Best of `repeats` passes over every batch (after one untimed warm-up pass when repeats > 1).
Timed time_passes(const SubsetEvaluator& ev, const std::function<Tensor(const Tensor&)>& forward, int repeats) {
    Timed t;
    if (repeats > 1) ev.run(forward);
    double best = 0.0;
    for (int r = 0; r < std::max(repeats, 1); ++r) {
        EvalResult e = ev.run(forward);
        best = std::max(best, e.images_per_second);
        t.accuracy = e.accuracy;
    }
    t.images_per_second = best;
    return t;
}

void dump(const std::string& prefix, const SubsetEvaluator& ev, const Graph& g, const std::string& model_path) {
    std::ofstream img(prefix + ".f32", std::ios::binary), lab(prefix + ".labels", std::ios::binary);
    int64_t n = 0;
    std::vector<int64_t> sample;
    for (size_t b = 0; b < ev.batches().size(); ++b) {
        const Tensor& x = ev.batches()[b];
        sample.assign(x.shape.begin() + 1, x.shape.end());
        img.write(reinterpret_cast<const char*>(x.data.data()), static_cast<std::streamsize>(x.data.size() * 4));
        for (int64_t l : ev.labels()[b]) {
            int32_t v = static_cast<int32_t>(l);
            lab.write(reinterpret_cast<const char*>(&v), 4);
        }
        n += x.shape[0];
    }
    std::ofstream js(prefix + ".json");
    js << "{\"model\":\"" << model_path << "\",\"input\":\"" << g.inputs.at(0).name << "\",\"count\":" << n
       << ",\"sample_shape\":[";
    for (size_t i = 0; i < sample.size(); ++i) js << (i ? "," : "") << sample[i];
    js << "],\"batch\":" << ev.batches().at(0).shape[0] << "}\n";
    if (!img || !lab || !js) throw std::runtime_error("cannot write " + prefix + ".*");
}

}  // namespace

int main(int argc, char** argv) try {
    keep_freed_memory();  // as dcsearch
    if (argc < 2) {
        std::cerr << "usage: bench_runtime config.yaml [--repeats N] [--dump PREFIX] [--no-reference] [--int8-only]"
                     " [--implementations] [--batch N]\n";
        return 2;
    }
    int repeats = 5;
    int64_t batch = 256;
    std::string dump_prefix;
    bool reference = true, int8_only = false, implementations = false;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--repeats" && i + 1 < argc)
            repeats = std::atoi(argv[++i]);
        else if (a == "--dump" && i + 1 < argc)
            dump_prefix = argv[++i];
        else if (a == "--batch" && i + 1 < argc)
            batch = std::max<int64_t>(1, std::atoll(argv[++i]));
        else if (a == "--no-reference")
            reference = false;
        else if (a == "--implementations")
            implementations = true;
        else if (a == "--int8-only")
            int8_only = true, reference = false;
        else {
            std::cerr << "bench_runtime: unknown argument " << a << "\n";
            return 2;
        }
    }
    Config cfg = load_config(argv[1]);
    Graph g = import_onnx(cfg.model.path);
    LoadedData loaded = load_data(cfg, g);  // any dataset format, checked as the commands check it
    const Dataset& data = loaded.data;
    const ModelIo& io = loaded.io;
    SubsetEvaluator val(g, data, cfg.dataset.validation, cfg.model.preprocess, io, batch);
    SubsetEvaluator cal(g, data, cfg.dataset.calibration, cfg.model.preprocess, io, batch);
    if (!dump_prefix.empty()) dump(dump_prefix, val, g, cfg.model.path);

    Timed ref, fp, q;
    if (reference) {
        ReferenceExecutor rex(g);
        ref = time_passes(
            val, [&](const Tensor& x) { return rex.run({x}).at(0); }, 1);
    }
    if (!int8_only) {
        DnnlExecutor fex(g, DnnlExecutor::Mode::Fp32, batch);
        fp = time_passes(
            val, [&](const Tensor& x) { return fex.run(x); }, repeats);
    }
    DnnlExecutor qex(g, DnnlExecutor::Mode::Int8, batch);
    auto t0 = std::chrono::steady_clock::now();
    qex.calibrate(cal.batches());
    const double calibrate_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    q = time_passes(
        val, [&](const Tensor& x) { return qex.run(x); }, repeats);
    if (implementations)
        for (const std::string& line : qex.implementations(batch)) std::cerr << line << "\n";
    const char* threads = std::getenv("OMP_NUM_THREADS");
    std::printf(
        "{\"model\":\"%s\",\"images\":%lld,\"batch\":%lld,\"int8_sub_batch\":%lld,\"omp_num_threads\":\"%s\",\"repeats\":%d,"
        "\"reference_fp32\":%.1f,\"onednn_fp32\":%.1f,\"onednn_int8\":%.1f,"
        "\"accuracy_fp32\":%.4f,\"accuracy_int8\":%.4f,\"calibrate_seconds\":%.3f}\n",
        cfg.model.path.c_str(), static_cast<long long>(cfg.dataset.validation.count), static_cast<long long>(batch),
        static_cast<long long>(std::min(batch, qex.sub_batch())), threads ? threads : "", repeats,
        ref.images_per_second, fp.images_per_second, q.images_per_second, reference ? ref.accuracy : fp.accuracy,
        q.accuracy, calibrate_s);
    return 0;
} catch (const std::exception& e) {
    std::cerr << "bench_runtime: " << e.what() << "\n";
    return 1;
}
