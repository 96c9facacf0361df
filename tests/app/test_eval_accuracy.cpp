// `dcsearch eval` on each example model over the whole 10k Fashion-MNIST test set must give PyTorch's
// own accuracy (recorded beside the model by scripts/train_zoo.py) within 0.05 pt (the fp32 baseline runs
// on oneDNN fp32). And `eval --layers` (oneDNN int8) with every layer at 8 bits stays close to fp32 while
// 4 bits + 50% pruning is smaller.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/process.hpp"

namespace fs = std::filesystem;
using namespace dcs::test;

namespace {

const fs::path kConfigs = fs::path(DCS_SOURCE_DIR) / "configs";

std::vector<std::string> example_models() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(kConfigs))
        if (e.path().extension() == ".onnx") names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

TEST(EvalAccuracy, ExampleModelsMatchPyTorchOnTheFullTestSet) {
    auto names = example_models();
    ASSERT_GE(names.size(), 3u);
    for (const auto& name : names) {
        std::string want_json = slurp((kConfigs / (name + ".accuracy.json")).string());
        double want = json_number(want_json, "pytorch_accuracy");
        ASSERT_GT(want, 0.5) << name << ": no pytorch_accuracy recorded";
        auto r = run_process({DCS_BINARY, "eval", (kConfigs / (name + "-full.yaml")).string(), "--json"}, 600);
        ASSERT_EQ(r.status, 0) << name << ": " << r.err;
        EXPECT_EQ(json_number(r.out, "samples"), 10000) << name;
        double got = json_number(r.out, "accuracy");
        EXPECT_NEAR(got * 100.0, want * 100.0, 0.05) << name;
    }
}

TEST(EvalAccuracy, PerLayerConfigurationsThroughEval) {
    TempDir dir;
    std::string l8 = dir.write("l8.yaml", "default: {weight_bits: 8, prune_ratio: 0.0}\n");
    std::string l4 = dir.write("l4.yaml", "default: {weight_bits: 4, prune_ratio: 0.5}\n");
    for (const auto& name : example_models()) {
        std::string cfg = (kConfigs / (name + ".yaml")).string();
        auto base = run_process({DCS_BINARY, "eval", cfg, "--json"}, 300);
        auto a = run_process({DCS_BINARY, "eval", cfg, "--layers", l8, "--json"}, 300);
        auto b = run_process({DCS_BINARY, "eval", cfg, "--layers", l4, "--json"}, 300);
        ASSERT_EQ(base.status, 0) << base.err;
        ASSERT_EQ(a.status, 0) << a.err;
        ASSERT_EQ(b.status, 0) << b.err;
        double fp32_size = json_number(base.out, "size_bytes");
        double s8 = json_number(a.out, "size_bytes"), s4 = json_number(b.out, "size_bytes");
        // 8-bit codes + per-channel scales + fp32 biases + the structure: about a quarter of fp32.
        EXPECT_GT(s8 / fp32_size, 0.24) << name;
        EXPECT_LT(s8 / fp32_size, 0.32) << name;
        EXPECT_LT(s4, 0.7 * s8) << name;
        EXPECT_NEAR(json_number(a.out, "accuracy"), json_number(base.out, "accuracy"), 0.01) << name;
        EXPECT_NE(base.out.find("\"executor\":\"onednn-fp32\""), std::string::npos) << base.out;
        EXPECT_NE(a.out.find("\"executor\":\"onednn-int8\""), std::string::npos) << a.out;
        // BOPs: 32x32-bit for fp32, 8x8 for 8 bits (a sixteenth), half that at 4 bits (unstructured
        // pruning at 50% removes no whole filter).
        const double bops32 = json_number(base.out, "bops"), bops8 = json_number(a.out, "bops");
        EXPECT_NEAR(bops8 / bops32, 1.0 / 16.0, 1e-9) << name;
        EXPECT_NEAR(json_number(b.out, "bops") / bops8, 0.5, 1e-9) << name;
        for (const auto* out : {&base.out, &a.out, &b.out}) {
            EXPECT_GT(json_number(*out, "images_per_second"), 0.0) << *out;
            EXPECT_EQ(json_number(*out, "samples"), 2000) << *out;
        }
        EXPECT_GE(json_number(a.out, "compress_seconds"), 0.0) << a.out;
    }
}

}  // namespace
