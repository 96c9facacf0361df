// Tests of app/layers_file.cpp: the per-layer configuration file.
#include <gtest/gtest.h>

#include "app/layers_file.hpp"
#include "common/error.hpp"

using namespace dcs;

namespace {

std::vector<LayerInfo> three_layers() {
    std::vector<LayerInfo> v(3);
    v[0].name = "conv1";
    v[1].name = "conv2";
    v[2].name = "fc1";
    return v;
}

std::string error_of(const std::string& text) {
    try {
        parse_layers_file(text, "layers.yaml", three_layers());
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

TEST(LayersFile, DefaultsAndOverrides) {
    auto c = parse_layers_file(
        "default: {weight_bits: 6, prune_ratio: 0.25}\nlayers:\n  fc1: {weight_bits: 3, prune_ratio: 0.75}\n"
        "  conv2: {weight_bits: 5}\n",
        "layers.yaml", three_layers());
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0].weight_bits, 6);
    EXPECT_DOUBLE_EQ(c[0].prune_ratio, 0.25);
    EXPECT_EQ(c[1].weight_bits, 5);
    EXPECT_DOUBLE_EQ(c[1].prune_ratio, 0.25);  // not named: the default's
    EXPECT_EQ(c[2].weight_bits, 3);
    EXPECT_DOUBLE_EQ(c[2].prune_ratio, 0.75);
}

TEST(LayersFile, AbsentDefaultIsEightBitsUnpruned) {
    auto c = parse_layers_file("layers:\n  conv1: {weight_bits: 2}\n", "layers.yaml", three_layers());
    EXPECT_EQ(c[0].weight_bits, 2);
    EXPECT_EQ(c[1].weight_bits, 8);
    EXPECT_DOUBLE_EQ(c[2].prune_ratio, 0.0);
}

TEST(LayersFile, FormatRoundTrips) {
    std::vector<compress::LayerChoice> ch{{2, 0.5}, {8, 0.0}, {5, 0.9}};
    auto text = format_layers_file(three_layers(), ch);
    auto back = parse_layers_file(text, "layers.yaml", three_layers());
    EXPECT_EQ(back, ch);
}

TEST(LayersFile, BadInputNamesLineAndKey) {
    EXPECT_NE(error_of("layers:\n  fc2: {weight_bits: 4}\n").find("line 2: layers.fc2: the model has no compressible layer of that name; did you mean"), std::string::npos);
    EXPECT_NE(error_of("layers:\n  fc1: {weight_bits: 9}\n").find("layers.fc1.weight_bits: must be an integer bit-width in 1..8, got 9"), std::string::npos);
    EXPECT_NE(error_of("layers:\n  fc1: {weight_bits: 2.5}\n").find("weight_bits"), std::string::npos);
    EXPECT_NE(error_of("layers:\n  fc1: {prune_ratio: 1.0}\n").find("prune_ratio: must be a number in [0, 1)"), std::string::npos);
    EXPECT_NE(error_of("layers:\n  fc1: {prune_ratio: lots}\n").find("prune_ratio"), std::string::npos);
    EXPECT_NE(error_of("defaults: {weight_bits: 4}\n").find("did you mean 'default'"), std::string::npos);
    EXPECT_NE(error_of("layers:\n  fc1: {weight_bit: 4}\n").find("did you mean 'weight_bits'"), std::string::npos);
    EXPECT_NE(error_of("layers: [1, 2]\n").find("layers: expected a map"), std::string::npos);
    EXPECT_NE(error_of("layers:\n  fc1: {weight_bits: [4\n").find("YAML syntax error"), std::string::npos);
    EXPECT_NE(error_of("- 1\n- 2\n").find("expected a map"), std::string::npos);
    EXPECT_THROW(load_layers_file("/nonexistent/layers.yaml", three_layers()), InputError);
    EXPECT_THROW(load_layers_file("/tmp", three_layers()), InputError);
}

}  // namespace
