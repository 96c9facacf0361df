#pragma once
// Builds small ONNX models in tests (valid ones, and broken ones on purpose).
#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace dcs::test {

struct OnnxBuilder {
    onnx::ModelProto model;

    explicit OnnxBuilder(int64_t opset = 13) {
        model.set_ir_version(7);
        auto* imp = model.add_opset_import();
        imp->set_domain("");
        imp->set_version(opset);
    }
    onnx::GraphProto& g() { return *model.mutable_graph(); }

    OnnxBuilder& input(const std::string& name, std::vector<int64_t> shape) {
        auto* in = g().add_input();
        in->set_name(name);
        auto* tt = in->mutable_type()->mutable_tensor_type();
        tt->set_elem_type(onnx::TensorProto::FLOAT);
        auto* sh = tt->mutable_shape();
        for (int64_t d : shape) {
            auto* dim = sh->add_dim();
            if (d < 0) dim->set_dim_param("batch");
            else dim->set_dim_value(d);
        }
        return *this;
    }
    OnnxBuilder& output(const std::string& name) {
        g().add_output()->set_name(name);
        return *this;
    }
    onnx::TensorProto& init(const std::string& name, std::vector<int64_t> dims, std::vector<float> data) {
        auto* t = g().add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        for (int64_t d : dims) t->add_dims(d);
        for (float v : data) t->add_float_data(v);
        return *t;
    }
    onnx::TensorProto& init_i64(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> data) {
        auto* t = g().add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::INT64);
        for (int64_t d : dims) t->add_dims(d);
        for (int64_t v : data) t->add_int64_data(v);
        return *t;
    }
    onnx::NodeProto& node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                          const std::string& name = "") {
        auto* n = g().add_node();
        n->set_op_type(op);
        n->set_name(name);
        for (auto& s : in) n->add_input(s);
        for (auto& s : out) n->add_output(s);
        return *n;
    }
    static void attr_i(onnx::NodeProto& n, const std::string& name, int64_t v) {
        auto* a = n.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(v);
    }
    static void attr_f(onnx::NodeProto& n, const std::string& name, float v) {
        auto* a = n.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::FLOAT);
        a->set_f(v);
    }
    static void attr_ints(onnx::NodeProto& n, const std::string& name, std::vector<int64_t> v) {
        auto* a = n.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INTS);
        for (int64_t x : v) a->add_ints(x);
    }
    std::string bytes() const { return model.SerializeAsString(); }
    void save(const std::string& path) const {
        std::ofstream out(path, std::ios::binary);
        out << bytes();
    }
};

/// A tiny valid MLP: input [N, 4] -> Gemm(3) -> Relu -> Gemm(2) -> logits.
inline OnnxBuilder tiny_mlp() {
    OnnxBuilder b;
    b.input("x", {-1, 4}).output("y");
    std::vector<float> w1(12), w2(6);
    for (size_t i = 0; i < w1.size(); ++i) w1[i] = 0.1f * static_cast<float>(i) - 0.5f;
    for (size_t i = 0; i < w2.size(); ++i) w2[i] = 0.2f * static_cast<float>(i) - 0.4f;
    b.init("w1", {3, 4}, w1);
    b.init("b1", {3}, {0.1f, -0.1f, 0.2f});
    b.init("w2", {2, 3}, w2);
    b.init("b2", {2}, {0.0f, 0.5f});
    OnnxBuilder::attr_i(b.node("Gemm", {"x", "w1", "b1"}, {"h"}, "fc1"), "transB", 1);
    b.node("Relu", {"h"}, {"r"}, "relu");
    OnnxBuilder::attr_i(b.node("Gemm", {"r", "w2", "b2"}, {"y"}, "fc2"), "transB", 1);
    return b;
}

/// A small residual network: x[N,1,4,4] -> conv1 -> Relu -> conv2 -> Add(relu1) -> Relu -> Flatten
/// -> fc -> y (3 classes). Weights are arbitrary but fixed.
inline OnnxBuilder tiny_residual_net() {
    OnnxBuilder b;
    b.input("x", {-1, 1, 4, 4}).output("y");
    std::vector<float> w1(2 * 1 * 3 * 3), w2(2 * 2 * 3 * 3), wf(3 * 32);
    for (size_t i = 0; i < w1.size(); ++i) w1[i] = std::sin(0.3f * static_cast<float>(i));
    for (size_t i = 0; i < w2.size(); ++i) w2[i] = std::cos(0.7f * static_cast<float>(i));
    for (size_t i = 0; i < wf.size(); ++i) wf[i] = std::sin(1.1f * static_cast<float>(i));
    b.init("w1", {2, 1, 3, 3}, w1);
    b.init("w2", {2, 2, 3, 3}, w2);
    b.init("wf", {3, 32}, wf);
    b.init("bf", {3}, {0.1f, 0.2f, -0.3f});
    OnnxBuilder::attr_ints(b.node("Conv", {"x", "w1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
    b.node("Relu", {"c1"}, {"r1"}, "relu1");
    OnnxBuilder::attr_ints(b.node("Conv", {"r1", "w2"}, {"c2"}, "conv2"), "pads", {1, 1, 1, 1});
    b.node("Add", {"c2", "r1"}, {"s"}, "add");
    b.node("Relu", {"s"}, {"r2"}, "relu2");
    b.node("Flatten", {"r2"}, {"f"}, "flatten");
    OnnxBuilder::attr_i(b.node("Gemm", {"f", "wf", "bf"}, {"y"}, "fc"), "transB", 1);
    return b;
}

}  // namespace dcs::test
