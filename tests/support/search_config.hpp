#pragma once
// Short, real configs on the example models (a few seconds each), for end-to-end tests.
#include <cstdint>
#include <string>

namespace dcs::test {

/// `out` is the results path (relative to the config's directory or absolute).
/// With `large`, the whole default space (30 choices per layer) and 1,000 validation images: a run of many
/// generations that lasts seconds, long enough to be killed part-way.
/// The model and dataset sections of a LeNet-5 config on the Fashion-MNIST test set: calibration
/// samples 0..cal-1, validation samples val_offset..val_offset+val-1.
inline std::string lenet5_model_and_data(int64_t cal, int64_t val_offset, int64_t val) {
    return "model: {path: " + std::string(DCS_SOURCE_DIR) +
           "/configs/lenet5.onnx, preprocess: {scale: 0.00392156862745098, mean: [0.2860], std: [0.3530]}}\n"
           "dataset:\n"
           "  images: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
           "  labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
           "  calibration: {offset: 0, count: " + std::to_string(cal) + "}\n"
           "  validation: {offset: " + std::to_string(val_offset) + ", count: " + std::to_string(val) + "}\n";
}

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
