#pragma once
// A short, real search config on the LeNet-300-100 example (a few seconds), for end-to-end tests.
#include <string>

namespace dcs::test {

/// `out` is the results path (relative to the config's directory or absolute).
/// With `large`, the whole default space (30 choices per layer) and 1,000 validation images: a run of many
/// generations that lasts seconds, long enough to be killed part-way.
inline std::string lenet300_search_config(const std::string& out, int generations, int seed = 3, bool large = false) {
    return "model:\n"
           "  path: " + std::string(DCS_SOURCE_DIR) + "/configs/lenet300.onnx\n"
           "  preprocess: {scale: 0.00392156862745098, mean: [0.2860], std: [0.3530]}\n"
           "dataset:\n"
           "  format: idx\n"
           "  images: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
           "  labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
           "  calibration: {offset: 0, count: 128}\n"
           "  validation: {offset: 1000, count: " + std::string(large ? "1000" : "300") + "}\n" +
           (large ? "" : "compression: {weight_bits: [2, 4, 8], prune_ratios: [0.0, 0.5, 0.75]}\n") +
           "search: {population: " + std::string(large ? "16" : "8") + ", generations: " + std::to_string(generations) + ", seed: " + std::to_string(seed) +
           ", max_accuracy_drop: 1.0}\n"
           "output: {path: " + out + "}\n";
}

}  // namespace dcs::test
