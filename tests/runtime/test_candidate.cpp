// Tests of runtime/candidate.cpp: compressing a whole model and its honest size.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.hpp"
#include "compress/dcz.hpp"
#include "runtime/candidate.hpp"
#include "runtime/onnx_import.hpp"
#include "runtime/reference_executor.hpp"
#include "support/process.hpp"

using namespace dcs;

namespace {

/// A LeNet-300-100-shaped MLP with random weights, built in memory.
Graph mlp() {
    Graph g;
    g.opset = 13;
    g.inputs.push_back({"x", {-1, 784}});
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    const int64_t dims[] = {784, 300, 100, 10};
    std::string prev = "x";
    for (int i = 0; i < 3; ++i) {
        std::string w = "w" + std::to_string(i), b = "b" + std::to_string(i), y = "y" + std::to_string(i);
        Tensor wt = Tensor::zeros({dims[i + 1], dims[i]});
        for (float& v : wt.data) v = nd(rng);
        g.initializers[w] = wt;
        g.initializers[b] = Tensor::zeros({dims[i + 1]});
        Node n{"fc" + std::to_string(i + 1), OpKind::Gemm, {prev, w, b}, {y}, GemmAttrs{false, true, 1.0f, 1.0f}};
        g.nodes.push_back(n);
        prev = y;
        if (i < 2) {
            g.nodes.push_back(Node{"relu" + std::to_string(i), OpKind::Relu, {prev}, {prev + "r"}, {}});
            prev += "r";
        }
    }
    g.outputs.push_back(prev);
    return g;
}

TEST(Candidate, SizeIsTheWrittenFileLengthAndShrinksWithBitsAndPruning) {
    Graph g = mlp();
    auto layers = list_layers(g);
    ASSERT_EQ(layers.size(), 3u);
    compress::WeightSpec spec;
    const double fp32 = 4.0 * (784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);
    dcs::test::TempDir dir;
    std::vector<uint64_t> sizes;
    for (auto choice : {compress::LayerChoice{8, 0.0}, compress::LayerChoice{4, 0.5}, compress::LayerChoice{2, 0.9}}) {
        std::vector<compress::LayerChoice> ch(3, choice);
        CompressedModel m = compress_model(g, layers, ch, spec);
        auto contents = dcz_contents(g, layers, m);
        std::string path = dir.file("m.dcz");
        compress::write_dcz(contents, path);
        EXPECT_EQ(std::filesystem::file_size(path), m.size_bytes) << choice.weight_bits;
        // The file restores the exact dequantized weights.
        auto back = compress::read_dcz(path);
        for (size_t i = 0; i < layers.size(); ++i)
            EXPECT_EQ(back.layers[i].second.dequantize(), m.overrides.at(layers[i].weight).data);
        sizes.push_back(m.size_bytes);
    }
    EXPECT_GT(sizes[0] / fp32, 0.24);
    EXPECT_LT(sizes[0] / fp32, 0.27);  // 8 bits: about a quarter of fp32
    EXPECT_LT(sizes[1], sizes[0] * 0.7);
    EXPECT_LT(sizes[2], sizes[1]);
}

TEST(Candidate, EightBitWeightsBarelyChangeOutputs) {
    Graph g = mlp();
    auto layers = list_layers(g);
    CompressedModel m = compress_model(g, layers, std::vector<compress::LayerChoice>(3, {8, 0.0}), {});
    Tensor x = Tensor::zeros({4, 784});
    for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = std::sin(0.01f * static_cast<float>(i));
    ReferenceExecutor ex(g);
    auto a = ex.run({x}), b = ex.run({x}, &m.overrides);
    double num = 0, den = 0;
    for (size_t i = 0; i < a[0].data.size(); ++i) {
        num += (a[0].data[i] - b[0].data[i]) * (a[0].data[i] - b[0].data[i]);
        den += a[0].data[i] * a[0].data[i];
    }
    EXPECT_LT(std::sqrt(num / den), 0.02);
    EXPECT_GT(num, 0.0);  // they really were quantized
}

TEST(Candidate, WrongNumberOfChoicesIsAnInputError) {
    Graph g = mlp();
    EXPECT_THROW(compress_model(g, list_layers(g), {{8, 0.0}}, {}), InputError);
}

TEST(Candidate, StructureIsDeterministicAndNamesEveryNode) {
    Graph g = mlp();
    std::string s = serialize_structure(g);
    EXPECT_EQ(s, serialize_structure(mlp()));
    for (const auto& n : g.nodes) EXPECT_NE(s.find(n.name), std::string::npos);
}

}  // namespace
