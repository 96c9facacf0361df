/// Times what the search pays per candidate on the compression side: compress_weight for every layer of
/// LeNet-300-100 (MatMul weights [784,300], [300,100], [100,10], out_axis 1) plus dcz_size of the result
/// with the biases. Prints milliseconds per candidate (median over the repeats) for a range of settings.
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

#include "compress/compress.hpp"

using namespace dcs::compress;

namespace {

struct Layer {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> w;
    std::vector<float> bias;
};

std::vector<Layer> lenet_300_100() {
    std::mt19937 rng(1);
    std::vector<Layer> layers = {{"fc1", {784, 300}, {}, {}}, {"fc2", {300, 100}, {}, {}}, {"fc3", {100, 10}, {}, {}}};
    for (Layer& l : layers) {
        std::normal_distribution<float> dist(0.0f, 1.0f / std::sqrt(static_cast<float>(l.shape[0])));
        l.w.resize(static_cast<size_t>(l.shape[0] * l.shape[1]));
        for (float& x : l.w) x = dist(rng);
        l.bias.assign(static_cast<size_t>(l.shape[1]), 0.01f);
    }
    return layers;
}

}  // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    const std::string only = argc > 2 ? argv[2] : "";
    const std::vector<Layer> layers = lenet_300_100();
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
    std::printf("%-32s %12s %12s %12s %10s   (median of %d repeats)\n", "setting", "compress ms", "dcz_size ms",
                "total ms", "bytes", repeats);
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (const Setting& s : settings) {
        if (std::string(s.label).find(only) == std::string::npos) continue;
        std::vector<double> t_compress, t_size, t_total;
        uint64_t bytes = 0;
        for (int r = 0; r < repeats; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            DczContents c;
            c.huffman = s.huffman;
            for (const Layer& l : layers) {
                c.layers.emplace_back(l.name, compress_weight(l.w.data(), l.shape, 1, LayerChoice{s.bits, s.prune}, s.spec));
                c.others.emplace_back(l.name + ".bias", FloatTensor{{l.shape[1]}, l.bias});
            }
            const auto t1 = std::chrono::steady_clock::now();
            bytes = dcz_size(c);
            const auto t2 = std::chrono::steady_clock::now();
            t_compress.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            t_size.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
            t_total.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
        }
        std::printf("%-32s %12.3f %12.3f %12.3f %10llu\n", s.label, median(t_compress), median(t_size), median(t_total),
                    static_cast<unsigned long long>(bytes));
    }
    return 0;
}
