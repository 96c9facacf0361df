// Tests of runtime/layer_hessian.cpp (the input Hessians GPTQ rounding uses) and of `rounding: gptq`
// end to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "common/error.hpp"
#include "compress/gptq.hpp"
#include "runtime/layer_hessian.hpp"
#include "runtime/reference_executor.hpp"
#include "support/process.hpp"
#include "support/search_config.hpp"

using namespace dcs;
using namespace dcs::test;

namespace {

std::vector<float> random_values(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = u(rng);
    return v;
}

/// A one-node graph: y = op(x, w).
Graph one_layer(OpKind op, NodeAttrs attrs, std::vector<int64_t> x_shape, std::vector<int64_t> w_shape) {
    Graph g;
    g.opset = 13;
    g.inputs.push_back({"x", x_shape});
    g.initializers["w"] = Tensor(w_shape, random_values(Tensor::numel_of(w_shape), 5));
    g.nodes.push_back(Node{"layer", op, {"x", "w"}, {"y"}, std::move(attrs)});
    g.outputs.push_back("y");
    return g;
}

ConvAttrs conv_attrs() {
    ConvAttrs a;
    a.group = 2;
    a.strides = {2, 1};
    a.pads = {1, 0, 1, 1};
    a.dilations = {1, 2};
    return a;
}

}  // namespace

TEST(LayerHessian, ConvIm2colMatchesBruteForce) {
    // x [2, 4, 5, 6], weight [4, 2, 2, 3], 2 groups: outputs 3 x 3 per group and image.
    const Graph g = one_layer(OpKind::Conv, conv_attrs(), {2, 4, 5, 6}, {4, 2, 2, 3});
    const auto layers = list_layers(g);
    ASSERT_EQ(layers.size(), 1u);
    const Tensor x({2, 4, 5, 6}, random_values(2 * 4 * 5 * 6, 7));
    const auto hs = layer_hessians(g, layers, {x});
    ASSERT_EQ(hs.size(), 1u);
    const compress::LayerHessian& h = hs[0];
    ASSERT_EQ(h.groups, 2);
    ASSERT_EQ(h.columns, 12);
    std::vector<double> expect(2 * 12 * 12, 0.0);
    for (int n = 0; n < 2; ++n)
        for (int grp = 0; grp < 2; ++grp)
            for (int oh = 0; oh < 3; ++oh)
                for (int ow = 0; ow < 3; ++ow) {
                    double col[12];
                    for (int ic = 0; ic < 2; ++ic)
                        for (int kh = 0; kh < 2; ++kh)
                            for (int kw = 0; kw < 3; ++kw) {
                                const int ih = oh * 2 - 1 + kh, iw = ow * 1 - 0 + kw * 2;
                                const bool in = ih >= 0 && ih < 5 && iw >= 0 && iw < 6;
                                col[(ic * 2 + kh) * 3 + kw] =
                                    in ? x.data[((n * 4 + grp * 2 + ic) * 5 + ih) * 6 + iw] : 0.0;
                            }
                    for (int a = 0; a < 12; ++a)
                        for (int b = 0; b < 12; ++b) expect[(grp * 12 + a) * 12 + b] += col[a] * col[b];
                }
    for (size_t i = 0; i < expect.size(); ++i) EXPECT_NEAR(h.h[i], expect[i], 1e-9) << i;
    EXPECT_EQ(h.samples, 2 * 2 * 9);
}

TEST(LayerHessian, HessianErrorIsTheLayerOutputError) {
    // For every layer kind: sum ||W x - Q x||^2 over the outputs = hessian_error(W, Q) with H from the
    // layer's inputs, which checks that H's columns follow the weight's layout.
    struct Case {
        OpKind op;
        NodeAttrs attrs;
        std::vector<int64_t> x, w;
    };
    const Case cases[] = {
        {OpKind::Conv, conv_attrs(), {2, 4, 5, 6}, {4, 2, 2, 3}},
        {OpKind::Gemm, GemmAttrs{false, true, 1.0f, 1.0f}, {5, 7}, {3, 7}},
        {OpKind::Gemm, GemmAttrs{false, false, 1.0f, 1.0f}, {5, 7}, {7, 3}},
        {OpKind::Gemm, GemmAttrs{true, true, 1.0f, 1.0f}, {7, 5}, {3, 7}},
        {OpKind::MatMul, std::monostate{}, {2, 5, 7}, {7, 3}},
    };
    for (const Case& c : cases) {
        const Graph g = one_layer(c.op, c.attrs, c.x, c.w);
        const auto layers = list_layers(g);
        ASSERT_EQ(layers.size(), 1u);
        const Tensor x(c.x, random_values(Tensor::numel_of(c.x), 9));
        const compress::LayerHessian h = layer_hessians(g, layers, {x})[0];
        const Tensor& w = g.initializers.at("w");
        Tensor q = w;
        for (float& v : q.data) v = static_cast<float>(std::round(v * 4.0) / 4.0);  // a coarse "quantization"
        const std::map<std::string, Tensor> overrides{{"w", q}};
        const ReferenceExecutor ex(g);
        const Tensor y = ex.run({x}).at(0), yq = ex.run({x}, &overrides).at(0);
        double direct = 0.0;
        for (size_t i = 0; i < y.data.size(); ++i) direct += double(y.data[i] - yq.data[i]) * (y.data[i] - yq.data[i]);
        const double via_h = compress::hessian_error(w.data.data(), q.data.data(),
                                                     compress::weight_layout(w.shape, layers[0].out_axis), h);
        EXPECT_NEAR(via_h, direct, 1e-4 * direct + 1e-6) << op_name(c.op);
    }
}

namespace {

/// The short LeNet-300-100 search config of the CLI tests on LeNet-5 (same data and preprocessing), with
/// `rounding`.
std::string lenet5_config(const std::string& rounding) {
    std::string c = lenet300_search_config("r.h5", 2, 1);
    c.replace(c.find("lenet300.onnx"), 13, "lenet5.onnx");
    c.replace(c.find("compression: {"), 14, "compression: {rounding: " + rounding + ", ");
    return c;
}

}  // namespace

TEST(GptqCli, ASearchWithGptqRoundingRecordsItsFrontAndExportsIt) {
    TempDir dir;
    const std::string cfg = dir.write("c.yaml", lenet5_config("gptq"));
    const ProcResult r = run_process({DCS_BINARY, "search", cfg, "--json"}, 600);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"front\":[{"), std::string::npos) << r.out.substr(0, 400);
    EXPECT_TRUE(std::filesystem::exists(dir.file("r.h5")));

    // Export compresses with the same Hessians: its packed model has the recorded size, and `eval
    // --layers` of the exported configuration reproduces the recorded accuracy.
    const ProcResult e = run_process({DCS_BINARY, "export", dir.file("r.h5"), "--max-drop", "100", "-o",
                                      dir.file("out"), "--json"}, 600);
    ASSERT_EQ(e.status, 0) << e.err;
    const ProcResult v = run_process({DCS_BINARY, "eval", cfg, "--layers", dir.file("out/layers.yaml"), "--json"}, 600);
    ASSERT_EQ(v.status, 0) << v.err;
    EXPECT_EQ(json_number(e.out, "accuracy"), json_number(v.out, "accuracy")) << e.out << "\n" << v.out;
    EXPECT_EQ(json_number(e.out, "size_bytes"), json_number(v.out, "size_bytes")) << e.out << "\n" << v.out;
    EXPECT_EQ(json_number(e.out, "size_bytes"),
              static_cast<double>(std::filesystem::file_size(dir.file("out/model.dcz"))));
}

TEST(GptqCli, AnInvalidRoundingIsAOneLineErrorWithExitStatus2) {
    TempDir dir;
    const std::string cfg = dir.write("c.yaml", lenet5_config("gtpq"));
    const ProcResult r = run_process({DCS_BINARY, "eval", cfg}, 60);
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("compression.rounding"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}
