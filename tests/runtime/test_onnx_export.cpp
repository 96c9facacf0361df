// Tests of runtime/onnx_export.cpp: the QDQ model's structure against the calibrated int8 plan, and
// the operator configurations it refuses.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>

#include "common/error.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/onnx_export.hpp"
#include "runtime/onnx_import.hpp"
#include "support/onnx_builder.hpp"

using namespace dcs;
using dcs::test::OnnxBuilder;

namespace {

/// x[N,1,4,4] -> conv1 -> Relu -> conv2 -> Add(relu1) -> Relu -> Flatten -> fc -> y.
Graph residual_net() { return import_onnx_bytes(dcs::test::tiny_residual_net().bytes(), "residual.onnx"); }

const onnx::TensorProto* init_of(const onnx::GraphProto& g, const std::string& name) {
    for (const auto& t : g.initializer())
        if (t.name() == name) return &t;
    return nullptr;
}

const onnx::NodeProto* node_reading(const onnx::GraphProto& g, const std::string& op, const std::string& input) {
    for (const auto& n : g.node())
        if (n.op_type() == op && n.input_size() > 0 && n.input(0) == input) return &n;
    return nullptr;
}

float scalar(const onnx::TensorProto& t) {
    float f = 0;
    EXPECT_EQ(t.raw_data().size(), 4u);
    std::memcpy(&f, t.raw_data().data(), 4);
    return f;
}

}  // namespace

TEST(OnnxExport, WeightsAndActivationsFollowTheCalibratedPlan) {
    Graph g = residual_net();
    DnnlExecutor ex(g, DnnlExecutor::Mode::Int8, 4);
    Tensor batch = Tensor::zeros({4, 1, 4, 4});
    for (size_t i = 0; i < batch.data.size(); ++i) batch.data[i] = std::sin(0.37f * static_cast<float>(i)) * 2.0f;
    ex.calibrate({batch});
    std::map<std::string, Int8LayerWeights> w;
    for (const auto& l : list_layers(g)) w[l.name] = quantize_weight_int8(g.initializers.at(l.weight), l.out_axis);
    w["conv2"].codes.assign(w["conv2"].codes.size(), 0);  // a fully pruned layer
    ex.set_weights(w);
    const QuantizedModel& qm = ex.quantized_model();

    onnx::ModelProto m;
    ASSERT_TRUE(m.ParseFromString(qdq_model_bytes(g, qm, w)));
    EXPECT_EQ(m.opset_import(0).version(), 13);
    const auto& gr = m.graph();
    // Weights: int8 codes as given, per-axis DequantizeLinear producing the original weight name.
    for (const auto& l : list_layers(g)) {
        const auto* codes = init_of(gr, l.weight + "_quantized");
        ASSERT_NE(codes, nullptr) << l.name;
        EXPECT_EQ(codes->data_type(), onnx::TensorProto::INT8);
        EXPECT_EQ(codes->raw_data(), std::string(w[l.name].codes.begin(), w[l.name].codes.end()));
        EXPECT_EQ(init_of(gr, l.weight), nullptr) << "the fp32 weight must not be kept";
        const auto* dq = node_reading(gr, "DequantizeLinear", l.weight + "_quantized");
        ASSERT_NE(dq, nullptr);
        EXPECT_EQ(dq->output(0), l.weight);
        ASSERT_EQ(dq->attribute_size(), 1);
        EXPECT_EQ(dq->attribute(0).i(), l.out_axis);
        const auto* scales = init_of(gr, dq->input(1));
        ASSERT_NE(scales, nullptr);
        EXPECT_EQ(scales->dims(0), l.weight_shape[l.out_axis]);
    }
    // Activations: the u8 output of conv1+relu1 and the s8 network input, with the plan's scales.
    const auto* q_r1 = node_reading(gr, "QuantizeLinear", "r1");
    ASSERT_NE(q_r1, nullptr);
    EXPECT_EQ(init_of(gr, q_r1->input(2))->data_type(), onnx::TensorProto::UINT8);
    EXPECT_FLOAT_EQ(scalar(*init_of(gr, q_r1->input(1))), qm.plan.values.at("r1").scale);
    const auto* q_x = node_reading(gr, "QuantizeLinear", "x");
    ASSERT_NE(q_x, nullptr);
    EXPECT_EQ(init_of(gr, q_x->input(2))->data_type(), onnx::TensorProto::INT8);
    EXPECT_FLOAT_EQ(scalar(*init_of(gr, q_x->input(1))), qm.plan.values.at("x").scale);
    // Consumers read the dequantized copies; the fp32 logits are not quantized.
    for (const auto& n : gr.node())
        if (n.op_type() == "Conv" && n.name() == "conv2") {
            EXPECT_NE(n.input(0), "r1");
        }
    EXPECT_EQ(node_reading(gr, "QuantizeLinear", "y"), nullptr);
    EXPECT_EQ(gr.output(0).name(), "y");

    // Bias correction writes the runtime's corrected biases; the replaced ones are dropped.
    ex.set_bias_correction(true);
    ex.set_weights(w);
    ASSERT_TRUE(m.ParseFromString(qdq_model_bytes(g, ex.quantized_model(), w, true)));
    EXPECT_EQ(init_of(m.graph(), "bf"), nullptr);
    EXPECT_NE(init_of(m.graph(), "fc_corrected_bias"), nullptr);

    w.erase("fc");
    EXPECT_THROW(qdq_model_bytes(g, qm, w), InputError);
    w["fc"].codes = {1, 2};
    EXPECT_THROW(qdq_model_bytes(g, qm, w), InputError);
}

TEST(OnnxExport, RefusesWhatOpset13CannotSay) {
    QuantizedModel empty;
    auto one_node = [](OpKind op, NodeAttrs attrs, std::vector<int64_t> shape) {
        Graph g;
        g.opset = 13;
        g.inputs = {ValueInfo{"x", shape}};
        g.outputs = {"y"};
        g.nodes.push_back(Node{"n", op, {"x"}, {"y"}, std::move(attrs)});
        return g;
    };
    EXPECT_THROW(qdq_model_bytes(one_node(OpKind::Reshape, ReshapeAttrs{{-1, 6}, true}, {-1, 2, 3}), empty, {}),
                 UnsupportedError);
    EXPECT_THROW(qdq_model_bytes(one_node(OpKind::Softmax, AxisAttrs{1, true}, {-1, 2, 3}), empty, {}),
                 UnsupportedError);
    PoolAttrs pa;
    pa.kernel = {2, 2};
    pa.strides = {1, 1};
    pa.pads = {0, 0, 0, 0};
    pa.dilations = {2, 2};
    EXPECT_THROW(qdq_model_bytes(one_node(OpKind::AveragePool, pa, {-1, 1, 6, 6}), empty, {}), UnsupportedError);
    // The same nodes that opset 13 can say are written.
    EXPECT_NO_THROW(qdq_model_bytes(one_node(OpKind::Softmax, AxisAttrs{2, true}, {-1, 2, 3}), empty, {}));
    EXPECT_NO_THROW(qdq_model_bytes(one_node(OpKind::Reshape, ReshapeAttrs{{0, -1}, false}, {-1, 2, 3}), empty, {}));
    EXPECT_THROW(write_qdq_model(one_node(OpKind::Relu, {}, {-1, 3}), empty, {}, "/nonexistent/dir/m.onnx"),
                 std::runtime_error);
}
