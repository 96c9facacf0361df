/// Times what the search pays per candidate on the compression side: compress_weight for every layer of
/// LeNet-300-100 plus dcz_size of the result with the biases, in both weight layouts: "gemm" (PyTorch's
/// Linear as exported to ONNX: [300,784], [100,300], [10,100], out_axis 0, a channel's weights contiguous)
/// and "matmul" ([784,300], [300,100], [100,10], out_axis 1, rows of channels). Prints milliseconds per candidate (median over the repeats) for a range of settings.
///
///   ./bench_compress [repeats [substring]]   (default 20 repeats, every setting; the substring selects
///                                            settings by label)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/memory.hpp"
#include "compress/compress.hpp"

using namespace dcs::compress;

namespace {

struct Layer {
    std::string name;
    std::vector<int64_t> shape;
    int64_t out_axis;
    std::vector<float> w;
    std::vector<float> bias;
};

/// gemm: [out, in] with out_axis 0; otherwise [in, out] with out_axis 1.
std::vector<Layer> lenet_300_100(bool gemm) {
    std::mt19937 rng(1);
    const int64_t dims[3][2] = {{784, 300}, {300, 100}, {100, 10}};
    std::vector<Layer> layers;
    for (int i = 0; i < 3; ++i) {
        Layer l;
        l.name = "fc" + std::to_string(i + 1);
        l.shape = gemm ? std::vector<int64_t>{dims[i][1], dims[i][0]} : std::vector<int64_t>{dims[i][0], dims[i][1]};
        l.out_axis = gemm ? 0 : 1;
        std::normal_distribution<float> dist(0.0f, 1.0f / std::sqrt(static_cast<float>(dims[i][0])));
        l.w.resize(static_cast<size_t>(dims[i][0] * dims[i][1]));
        for (float& x : l.w) x = dist(rng);
        l.bias.assign(static_cast<size_t>(dims[i][1]), 0.01f);
        layers.push_back(std::move(l));
    }
    return layers;
}

}  // namespace

int main(int argc, char** argv) {
    dcs::keep_freed_memory();  // as dcsearch
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    const std::string only = argc > 2 ? argv[2] : "";
    struct Setting {
        const char* label;
        int bits;
        double prune;
        WeightSpec spec;
        bool huffman;
    };
    auto spec = [](Method m, WeightClip clip, Scheme s = Scheme::Symmetric, Pruning p = Pruning::Unstructured) {
        WeightSpec w;
        w.method = m;
        w.clip = clip;
        w.scheme = s;
        w.pruning = p;
        return w;
    };
    const std::vector<Setting> settings = {
        {"quantize 8b maxabs", 8, 0.0, spec(Method::Quantize, WeightClip::MaxAbs), false},
        {"quantize 4b maxabs p0.5", 4, 0.5, spec(Method::Quantize, WeightClip::MaxAbs), false},
        {"quantize 2b maxabs p0.9", 2, 0.9, spec(Method::Quantize, WeightClip::MaxAbs), false},
        {"quantize 8b mse", 8, 0.0, spec(Method::Quantize, WeightClip::Mse), false},
        {"quantize 4b mse p0.5", 4, 0.5, spec(Method::Quantize, WeightClip::Mse), false},
        {"quantize 4b mse asym p0.5", 4, 0.5, spec(Method::Quantize, WeightClip::Mse, Scheme::Asymmetric), false},
        {"quantize 4b mse p0.5 huffman", 4, 0.5, spec(Method::Quantize, WeightClip::Mse), true},
        {"quantize 4b filter p0.5", 4, 0.5, spec(Method::Quantize, WeightClip::MaxAbs, Scheme::Symmetric, Pruning::Filter), false},
        {"binary 1b p0.25", 1, 0.25, spec(Method::Quantize, WeightClip::MaxAbs), false},
        {"cluster 8b", 8, 0.0, spec(Method::Cluster, WeightClip::MaxAbs), false},
        {"cluster 4b p0.75 huffman", 4, 0.75, spec(Method::Cluster, WeightClip::MaxAbs), true},
    };
    std::printf("%-39s %12s %12s %12s %10s   (median of %d repeats)\n", "setting", "compress ms", "dcz_size ms",
                "total ms", "bytes", repeats);
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (const bool gemm : {true, false})
    for (const Setting& s : settings) {
        const std::string label = std::string(gemm ? "gemm " : "matmul ") + s.label;
        if (label.find(only) == std::string::npos) continue;
        const std::vector<Layer> layers = lenet_300_100(gemm);
        std::vector<double> t_compress, t_size, t_total;
        uint64_t bytes = 0;
        for (int r = 0; r < repeats; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            DczContents c;
            c.huffman = s.huffman;
            for (const Layer& l : layers) {
                c.layers.emplace_back(l.name, compress_weight(l.w.data(), l.shape, l.out_axis, LayerChoice{s.bits, s.prune}, s.spec));
                c.others.emplace_back(l.name + ".bias", FloatTensor{{l.shape[l.out_axis]}, l.bias});
            }
            const auto t1 = std::chrono::steady_clock::now();
            bytes = dcz_size(c);
            const auto t2 = std::chrono::steady_clock::now();
            t_compress.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            t_size.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
            t_total.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
        }
        std::printf("%-39s %12.3f %12.3f %12.3f %10llu\n", label.c_str(), median(t_compress), median(t_size), median(t_total),
                    static_cast<unsigned long long>(bytes));
    }
    return 0;
}
