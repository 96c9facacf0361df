// Tests of runtime/int8_reference.cpp: the plan (fusions, types), weight quantization, the layer
// parameters, and the integer reference executor against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.hpp"
#include "runtime/int8_reference.hpp"
#include "runtime/onnx_import.hpp"
#include "support/onnx_builder.hpp"

using namespace dcs;
using dcs::test::OnnxBuilder;

namespace {

const QStep* step_of(const QuantPlan& p, const std::string& node) {
    for (const auto& s : p.steps)
        if (s.node->name == node) return &s;
    return nullptr;
}

/// x[N,1,4,4] -> c1 -> Relu -> c2 -> Add(relu1) -> Relu -> Flatten -> fc -> y. Weights are arbitrary.
Graph residual_net() { return import_onnx_bytes(dcs::test::tiny_residual_net().bytes(), "residual.onnx"); }

}  // namespace

TEST(Int8Plan, FusesReluResidualAddAndFlatten) {
    Graph g = residual_net();
    QuantPlan p = plan_graph(g, true);
    ASSERT_EQ(p.steps.size(), 3u);  // conv1+relu1, conv2+add+relu2, flatten+fc
    const QStep* c1 = step_of(p, "conv1");
    ASSERT_NE(c1, nullptr);
    EXPECT_TRUE(c1->layer && c1->int8);
    EXPECT_EQ(c1->act, QAct::Relu);
    EXPECT_EQ(c1->output, "r1");
    EXPECT_EQ(p.values.at("r1").type, QType::U8);
    const QStep* c2 = step_of(p, "conv2");
    ASSERT_NE(c2, nullptr);
    EXPECT_EQ(c2->sum_input, "r1");
    EXPECT_EQ(c2->act, QAct::Relu);
    EXPECT_EQ(c2->output, "r2");
    EXPECT_EQ(c2->fused, (std::vector<std::string>{"add", "relu2"}));
    const QStep* fc = step_of(p, "fc");
    ASSERT_NE(fc, nullptr);
    EXPECT_EQ(fc->input, "r2");  // the Flatten is folded into the inner product
    EXPECT_EQ(p.values.at("y").type, QType::F32);
    EXPECT_EQ(p.values.count("f"), 0u);
    // The fp32 plan fuses the same way, with fp32 values.
    QuantPlan f = plan_graph(g, false);
    ASSERT_EQ(f.steps.size(), 3u);
    EXPECT_EQ(f.values.at("r1").type, QType::F32);
    EXPECT_FALSE(step_of(f, "conv1")->int8);
}

TEST(Int8Plan, ResidualReadTwiceIsNotFused) {
    // c2's output feeds the Add and the graph output: the Add cannot be folded into conv2.
    OnnxBuilder b;
    b.input("x", {-1, 2, 3, 3}).output("y").output("c2");
    b.init("w", {2, 2, 1, 1}, {1, 0, 0, 1});
    b.node("Conv", {"x", "w"}, {"c2"}, "conv");
    b.node("Add", {"c2", "x"}, {"y"}, "add");
    Graph g = import_onnx_bytes(b.bytes(), "m.onnx");
    QuantPlan p = plan_graph(g, true);
    ASSERT_EQ(p.steps.size(), 2u);
    EXPECT_TRUE(step_of(p, "conv")->sum_input.empty());
}

TEST(Int8Weights, QuantizeGolden) {
    // Channel 0: max |w| = 1 -> scale 1/127; 0.5 * 127 = 63.5 rounds half to even -> 64; 0.25 * 127 =
    // 31.75 -> 32. Channel 1 is all zero: scale 0, codes 0.
    Tensor w({2, 3}, {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f});
    Int8LayerWeights q = quantize_weight_int8(w, 0);
    EXPECT_FLOAT_EQ(q.scales[0], 1.0f / 127.0f);
    EXPECT_EQ(q.scales[1], 0.0f);
    EXPECT_EQ(q.codes, (std::vector<int8_t>{64, -127, 32, 0, 0, 0}));
    // out_axis 1 ([K, N], MatMul): channels are columns.
    Tensor m({2, 2}, {1.0f, -0.5f, 0.5f, 2.0f});
    Int8LayerWeights qm = quantize_weight_int8(m, 1);
    EXPECT_FLOAT_EQ(qm.scales[0], 1.0f / 127.0f);
    EXPECT_FLOAT_EQ(qm.scales[1], 2.0f / 127.0f);
    EXPECT_EQ(qm.codes, (std::vector<int8_t>{127, -32, 64, 127}));  // -0.5*63.5 = -31.75 -> -32
    EXPECT_THROW(quantize_weight_int8(m, 2), InputError);
}

namespace {

/// x[N,2] -> Gemm(W [2,2] transB, b) -> y, calibrated so that s_x = 1/127.
struct TinyGemm {
    Graph g;
    QuantizedModel m;
    TinyGemm() {
        OnnxBuilder b;
        b.input("x", {-1, 2}).output("y");
        b.init("w", {2, 2}, {0.1f, -0.2f, 0.12f, 0.08f});
        b.init("b", {2}, {0.5f, -0.25f});
        OnnxBuilder::attr_i(b.node("Gemm", {"x", "w", "b"}, {"y"}, "fc"), "transB", 1);
        g = import_onnx_bytes(b.bytes(), "tiny.onnx");
        m.plan = plan_graph(g, true);
        for (const auto& l : list_layers(g)) m.layer_info[l.name] = l;
        std::map<std::string, compress::ActivationObserver> obs;
        const float range[2] = {-1.0f, 1.0f};
        obs["x"].observe(range, 2);
        assign_scales(m.plan, obs, compress::CalibrationSpec{});
    }
};

}  // namespace

TEST(Int8Reference, GemmGoldenByHand) {
    TinyGemm t;
    EXPECT_FLOAT_EQ(t.m.plan.values.at("x").scale, 1.0f / 127.0f);
    EXPECT_EQ(t.m.plan.values.at("x").qtype, QType::S8);
    Int8LayerWeights w{{10, -20, 3, 4}, {0.01f, 0.02f}};
    const QStep& s = t.m.plan.steps.at(0);
    t.m.layers["fc"] = make_qlayer(t.g, t.m.plan, s, t.m.layer_info.at("fc"), w);
    Int8ReferenceExecutor ex(t.g, t.m);
    // x = (0.5, -1): x_q = (round(63.5) = 64, -127).
    // acc0 = 64*10 + (-127)(-20) = 3180, acc1 = 64*3 + (-127)*4 = -316.
    // bias in accumulator units: 0.5 / (0.01/127) = 6350, -0.25 / (0.02/127) = -1587.5.
    // y0 = (3180 + 6350) * 0.01/127 = 95.30/127, y1 = (-316 - 1587.5) * 0.02/127 = -38.07/127.
    Tensor y = ex.run(Tensor({1, 2}, {0.5f, -1.0f}));
    ASSERT_EQ(y.shape, (std::vector<int64_t>{1, 2}));
    EXPECT_NEAR(y.data[0], 95.30 / 127.0, 1e-6);
    EXPECT_NEAR(y.data[1], -38.07 / 127.0, 1e-6);
    // Saturation: 2.0 / (1/127) = 254 clamps to 127, like the input reorder.
    Tensor y2 = ex.run(Tensor({1, 2}, {2.0f, 0.0f}));
    EXPECT_NEAR(y2.data[0], (127 * 10 + 6350) * 0.01 / 127.0, 1e-6);
}

TEST(Int8Reference, ConvReluU8OutputRoundsAndSaturates) {
    // One 1x1 conv, weight code 1 with scale 1, input scale 1 (range [-127, 127]), relu fused, output u8
    // with scale 1 (range [0, 255]): y_q = clamp(round(x_q), 0, 255) = relu of the input codes.
    OnnxBuilder b;
    b.input("x", {-1, 1, 1, 4}).output("y");
    b.init("w", {1, 1, 1, 1}, {1.0f});
    b.node("Conv", {"x", "w"}, {"c"}, "conv");
    b.node("Relu", {"c"}, {"r"}, "relu");
    // A 1x1 max pool keeps r on 8 bits (a value only the graph output reads would be produced in fp32).
    OnnxBuilder::attr_ints(b.node("MaxPool", {"r"}, {"p"}, "pool"), "kernel_shape", {1, 1});
    b.node("Flatten", {"p"}, {"y"}, "flatten");
    Graph g = import_onnx_bytes(b.bytes(), "conv.onnx");
    QuantizedModel m;
    m.plan = plan_graph(g, true);
    for (const auto& l : list_layers(g)) m.layer_info[l.name] = l;
    ASSERT_EQ(m.plan.values.at("r").type, QType::U8);
    std::map<std::string, compress::ActivationObserver> obs;
    const float xr[2] = {-127.0f, 127.0f}, rr[2] = {0.0f, 255.0f};
    obs["x"].observe(xr, 2);
    obs["r"].observe(rr, 2);
    assign_scales(m.plan, obs, compress::CalibrationSpec{});
    EXPECT_FLOAT_EQ(m.plan.values.at("x").scale, 1.0f);
    EXPECT_FLOAT_EQ(m.plan.values.at("r").scale, 1.0f);
    EXPECT_FLOAT_EQ(m.plan.values.at("y").scale, 1.0f);  // pooling and Flatten inherit
    EXPECT_EQ(m.plan.values.at("y").type, QType::U8);
    m.layers["conv"] = make_qlayer(g, m.plan, *step_of(m.plan, "conv"), m.layer_info.at("conv"), {{1}, {1.0f}});
    Int8ReferenceExecutor ex(g, m);
    // 2.5 -> 2 (half to even), 3.5 -> 4, -7 -> 0 (relu), 300 -> 127 (the s8 input saturates).
    Tensor y = ex.run(Tensor({1, 1, 1, 4}, {2.5f, 3.5f, -7.0f, 300.0f}));
    EXPECT_EQ(y.data, (std::vector<float>{2.0f, 4.0f, 0.0f, 127.0f}));
}

TEST(Int8Reference, LayerParameterErrors) {
    TinyGemm t;
    const QStep& s = t.m.plan.steps.at(0);
    const LayerInfo& li = t.m.layer_info.at("fc");
    EXPECT_THROW(make_qlayer(t.g, t.m.plan, s, li, {{1, 2, 3}, {0.1f, 0.1f}}), InputError);      // 3 codes for 4
    EXPECT_THROW(make_qlayer(t.g, t.m.plan, s, li, {{1, 2, 3, 4}, {0.1f}}), InputError);         // 1 scale for 2
    EXPECT_THROW(make_qlayer(t.g, t.m.plan, s, li, {{1, 2, 3, 4}, {0.1f, -1.0f}}), InputError);  // negative
    EXPECT_THROW(make_qlayer(t.g, t.m.plan, s, li, {{1, 2, 3, 4}, {0.1f, NAN}}), InputError);
    // A zero scale (a fully pruned channel) is accepted: its codes are zero.
    QLayer q = make_qlayer(t.g, t.m.plan, s, li, {{1, 2, 0, 0}, {0.1f, 0.0f}});
    EXPECT_TRUE(std::isfinite(q.bias[1]));
    Int8ReferenceExecutor ex(t.g, t.m);
    EXPECT_THROW(ex.run(Tensor({1, 3}, {0, 0, 0})), InputError);
}

TEST(Int8Reference, TransposedGemmInputIsUnsupported) {
    OnnxBuilder b;
    b.input("x", {2, 2}).output("y");
    b.init("w", {2, 2}, {1, 2, 3, 4});
    OnnxBuilder::attr_i(b.node("Gemm", {"x", "w"}, {"y"}, "fc"), "transA", 1);
    Graph g = import_onnx_bytes(b.bytes(), "ta.onnx");
    EXPECT_THROW(plan_graph(g, true), UnsupportedError);
}

TEST(Int8Weights, FromCompressedWeightIsExactForUniformCodes) {
    std::vector<float> w(4 * 6);
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.9f * static_cast<float>(i)) * (1.0f + 0.1f * static_cast<float>(i % 4));
    const std::vector<int64_t> shape{4, 6};
    for (auto scheme : {compress::Scheme::Symmetric, compress::Scheme::Asymmetric})
        for (int bits : {2, 4, 7, 8})
            for (double prune : {0.0, 0.5}) {
                SCOPED_TRACE(std::to_string(bits) + " bits, prune " + std::to_string(prune));
                compress::WeightSpec spec;
                spec.scheme = scheme;
                auto cw = compress::compress_weight(w.data(), shape, 0, compress::LayerChoice{bits, prune}, spec);
                Int8LayerWeights q = int8_weights_from(cw);
                ASSERT_EQ(q.codes.size(), w.size());
                ASSERT_EQ(q.scales.size(), 4u);
                auto deq = cw.dequantize();
                const bool exact = scheme == compress::Scheme::Symmetric || bits <= 7;
                for (size_t i = 0; i < w.size(); ++i) {
                    const float v = q.scales[i / 6] * static_cast<float>(q.codes[i]);
                    if (exact) EXPECT_FLOAT_EQ(v, deq[i]) << i;
                    else EXPECT_NEAR(v, deq[i], q.scales[i / 6] * 0.5f + 1e-7f) << i;  // re-quantized to 8 bits
                }
            }
}

TEST(Int8Weights, BiasShiftGolden) {
    TinyGemm t;
    const LayerInfo& li = t.m.layer_info.at("fc");
    // W = [[0.1, -0.2], [0.12, 0.08]]; W_q = scales * codes = [[0.1, -0.1], [0.1, 0.1]].
    // dW = [[0, 0.1], [-0.02, 0.02]]; E[x] = (1, 2): shift = (0.2, 0.02).
    Int8LayerWeights w{{10, -10, 5, 5}, {0.01f, 0.02f}};
    auto shift = bias_shift(t.g, *t.g.find_node("fc"), li, w, {1.0f, 2.0f});
    ASSERT_EQ(shift.size(), 2u);
    EXPECT_NEAR(shift[0], 0.2f, 1e-6);
    EXPECT_NEAR(shift[1], 0.02f, 1e-6);
    EXPECT_THROW(bias_shift(t.g, *t.g.find_node("fc"), li, w, {1.0f}), InputError);
    // The corrected bias is b - shift: (0.5 - 0.2, -0.25 - 0.02), in accumulator units.
    QLayer q = make_qlayer(t.g, t.m.plan, t.m.plan.steps.at(0), li, w, &shift);
    EXPECT_NEAR(q.bias[0] * (1.0f / 127.0f) * 0.01f, 0.3f, 1e-6);
    EXPECT_NEAR(q.bias[1] * (1.0f / 127.0f) * 0.02f, -0.27f, 1e-6);
}
