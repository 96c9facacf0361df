// Tests of runtime/ops/: every row of the operator table is complete, named where the importer, its
// message and the docs name operators, and survives import -> reference -> QDQ export -> import on a
// one-node model. A new row is tested here without touching this file when it is a unary operator
// without attributes; other rows need a model in sample_model().
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "common/error.hpp"
#include "runtime/dnnl_executor.hpp"
#include "runtime/int8_reference.hpp"
#include "runtime/onnx_export.hpp"
#include "runtime/onnx_import.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/reference_executor.hpp"
#include "support/onnx_builder.hpp"

using namespace dcs;
using dcs::test::OnnxBuilder;

namespace {

/// A one-node model "x" (and for binary operators "x2") -> node `op` -> "y", at opset 13.
using Sample = std::function<void(OnnxBuilder&)>;

const std::map<std::string, Sample>& samples() {
    static const std::map<std::string, Sample> s = {
        // The layers read their weight as a graph input: a constant weight would be exported behind a
        // DequantizeLinear, which the importer does not read.
        {"Conv", [](OnnxBuilder& b) {
             b.input("x", {1, 2, 5, 5}).input("w", {3, 2, 3, 3});
             auto& n = b.node("Conv", {"x", "w", "bias"}, {"y"}, "node");
             b.init("bias", {3}, {0.5f, -0.25f, 1.0f});
             OnnxBuilder::attr_ints(n, "kernel_shape", {3, 3});
             OnnxBuilder::attr_ints(n, "pads", {1, 0, 1, 0});
             OnnxBuilder::attr_ints(n, "strides", {2, 1});
         }},
        {"Gemm", [](OnnxBuilder& b) {
             b.input("x", {2, 4}).input("w", {3, 4});
             auto& n = b.node("Gemm", {"x", "w", "c"}, {"y"}, "node");
             b.init("c", {3}, {0.5f, -0.25f, 1.0f});
             OnnxBuilder::attr_i(n, "transB", 1);
             OnnxBuilder::attr_f(n, "alpha", 0.5f);
         }},
        {"MatMul", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 4}).input("w", {4, 5});
             b.node("MatMul", {"x", "w"}, {"y"}, "node");
         }},
        {"Add", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 4}).input("x2", {3, 1});
             b.node("Add", {"x", "x2"}, {"y"}, "node");
         }},
        {"Clip", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 4});
             b.init("lo", {}, {-0.5f});
             b.init("hi", {}, {0.75f});
             b.node("Clip", {"x", "lo", "hi"}, {"y"}, "node");
         }},
        {"MaxPool", [](OnnxBuilder& b) {
             b.input("x", {1, 2, 5, 5});
             auto& n = b.node("MaxPool", {"x"}, {"y"}, "node");
             OnnxBuilder::attr_ints(n, "kernel_shape", {3, 2});
             OnnxBuilder::attr_ints(n, "pads", {1, 1, 1, 0});
             OnnxBuilder::attr_i(n, "ceil_mode", 1);
         }},
        {"AveragePool", [](OnnxBuilder& b) {
             b.input("x", {1, 2, 5, 5});
             auto& n = b.node("AveragePool", {"x"}, {"y"}, "node");
             OnnxBuilder::attr_ints(n, "kernel_shape", {2, 2});
             OnnxBuilder::attr_ints(n, "strides", {2, 2});
             OnnxBuilder::attr_ints(n, "pads", {1, 1, 0, 0});
             OnnxBuilder::attr_i(n, "count_include_pad", 1);
         }},
        {"GlobalAveragePool", [](OnnxBuilder& b) {
             b.input("x", {1, 2, 3, 4});
             b.node("GlobalAveragePool", {"x"}, {"y"}, "node");
         }},
        {"Flatten", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 4});
             OnnxBuilder::attr_i(b.node("Flatten", {"x"}, {"y"}, "node"), "axis", 2);
         }},
        {"Reshape", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 4});
             b.init_i64("shape", {3}, {0, -1, 2});
             b.node("Reshape", {"x", "shape"}, {"y"}, "node");
         }},
        {"Pad", [](OnnxBuilder& b) {
             b.input("x", {1, 2, 3});
             b.init_i64("pads", {6}, {0, 1, 2, 0, 0, 1});
             b.init("value", {}, {1.5f});
             b.node("Pad", {"x", "pads", "value"}, {"y"}, "node");
         }},
        {"Concat", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 4}).input("x2", {2, 1, 4});
             OnnxBuilder::attr_i(b.node("Concat", {"x", "x2"}, {"y"}, "node"), "axis", 1);
         }},
        {"Softmax", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 4});
             OnnxBuilder::attr_i(b.node("Softmax", {"x"}, {"y"}, "node"), "axis", 1);
         }},
        {"BatchNormalization", [](OnnxBuilder& b) {
             b.input("x", {2, 3, 2, 2});
             b.init("scale", {3}, {1.0f, 0.5f, 2.0f});
             b.init("shift", {3}, {0.0f, 1.0f, -1.0f});
             b.init("mean", {3}, {0.1f, 0.2f, 0.3f});
             b.init("var", {3}, {1.0f, 4.0f, 0.25f});
             b.node("BatchNormalization", {"x", "scale", "shift", "mean", "var"}, {"y"}, "node");
         }},
    };
    return s;
}

/// The sample of `op`, or x[2, 3, 4] -> op -> y for a unary operator without one.
std::string sample_bytes(const std::string& op) {
    OnnxBuilder b(13);
    auto it = samples().find(op);
    if (it != samples().end()) {
        it->second(b);
    } else {
        b.input("x", {2, 3, 4});
        b.node(op, {"x"}, {"y"}, "node");
    }
    b.output("y");
    return b.bytes();
}

/// Deterministic inputs for every graph input.
std::vector<Tensor> inputs_for(const Graph& g) {
    std::vector<Tensor> ins;
    for (size_t k = 0; k < g.inputs.size(); ++k) {
        Tensor t = Tensor::zeros(g.inputs[k].shape);
        for (size_t i = 0; i < t.data.size(); ++i)
            t.data[i] = std::sin(0.7f * static_cast<float>(i) + static_cast<float>(k)) * 2.0f;
        ins.push_back(std::move(t));
    }
    return ins;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
    float m = 0.0f;
    for (size_t i = 0; i < a.data.size(); ++i) m = std::max(m, std::fabs(a.data[i] - b.data[i]));
    return m;
}

float max_abs(const Tensor& a) {
    float m = 1e-6f;
    for (float v : a.data) m = std::max(m, std::fabs(v));
    return m;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST(OpTable, EveryRowIsComplete) {
    const auto& table = op_table();
    ASSERT_FALSE(table.empty());
    const std::string supported = supported_operators();
    for (size_t i = 0; i < table.size(); ++i) {
        const OpDef& d = *table[i];
        SCOPED_TRACE(d.onnx_name);
        EXPECT_EQ(static_cast<size_t>(d.kind), i);
        EXPECT_EQ(&op_def(d.kind), &d);
        EXPECT_STREQ(op_name(d.kind), d.onnx_name);
        EXPECT_EQ(find_op(d.onnx_name), &d);
        EXPECT_TRUE(d.parse && d.infer_shape && d.reference && d.export_onnx);
        EXPECT_TRUE(d.doc && *d.doc) << "a row needs its docs/onnx-support.md notes";
        EXPECT_LE(d.min_opset, d.max_opset);
        EXPECT_NE(supported.find(d.onnx_name), std::string::npos);
    }
    EXPECT_EQ(find_op("NoSuchOperator"), nullptr);
}

TEST(OpTable, DocsTableMatchesTheTable) {
    const std::string doc = read_text(std::string(DCS_SOURCE_DIR) + "/docs/onnx-support.md");
    EXPECT_NE(doc.find(supported_operators_markdown()), std::string::npos)
        << "docs/onnx-support.md's operator table differs from the operator table; replace it with:\n"
        << supported_operators_markdown();
}

TEST(OpTable, UnknownOperatorMessageListsTheTable) {
    OnnxBuilder b(13);
    b.input("x", {1, 2});
    b.node("NoSuchOperator", {"x"}, {"y"}, "odd");
    b.output("y");
    try {
        import_onnx_bytes(b.bytes(), "odd.onnx");
        FAIL() << "expected InputError";
    } catch (const InputError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("odd.onnx: node 'odd' (NoSuchOperator): operator not supported; supported: "),
                  std::string::npos)
            << msg;
        EXPECT_NE(msg.find(supported_operators()), std::string::npos) << msg;
    }
}

// Every row on a one-node model: import, run the fp32 reference, export to QDQ ONNX (fp32 plan: no
// Q/DQ pairs), import again and run again: the same operator and bit-identical outputs.
TEST(OpTable, OneNodeModelsRoundTripThroughExport) {
    for (const OpDef* d : op_table()) {
        SCOPED_TRACE(d->onnx_name);
        Graph g;
        ASSERT_NO_THROW(g = import_onnx_bytes(sample_bytes(d->onnx_name), "sample.onnx"))
            << "add a sample model of " << d->onnx_name << " to samples() in this file";
        ASSERT_EQ(g.nodes.size(), 1u);
        EXPECT_EQ(g.nodes[0].op, d->kind);
        const auto ins = inputs_for(g);
        const auto y = ReferenceExecutor(g).run(ins);
        ASSERT_EQ(y.size(), 1u);
        EXPECT_EQ(y[0].shape, g.infer_shapes(y[0].shape.empty() ? 1 : y[0].shape[0]).at(g.outputs[0]));

        QuantizedModel qm;
        qm.plan = plan_graph(g, false);
        std::string bytes;
        ASSERT_NO_THROW(bytes = qdq_model_bytes(g, qm, {}));
        Graph g2;
        ASSERT_NO_THROW(g2 = import_onnx_bytes(bytes, "exported.onnx"));
        ASSERT_EQ(g2.nodes.size(), 1u);
        EXPECT_EQ(g2.nodes[0].op, d->kind);
        const auto y2 = ReferenceExecutor(g2).run(ins);
        ASSERT_EQ(y2.size(), 1u);
        EXPECT_EQ(y2[0].shape, y[0].shape);
        EXPECT_EQ(y2[0].data, y[0].data);
    }
}

// A node the export cannot write stops it with an error naming the node (a row whose export writes
// nothing fails the same way instead of dropping the node from model.onnx).
TEST(OpTable, ExportRefusesANodeItCannotWrite) {
    Graph g = import_onnx_bytes(sample_bytes("Reshape"), "reshape.onnx");
    auto& a = std::get<ReshapeAttrs>(g.nodes[0].attrs);
    a.shape = {2, -1, 2};
    a.allow_zero = true;  // no opset-13 form
    QuantizedModel qm;
    qm.plan = plan_graph(g, false);
    try {
        qdq_model_bytes(g, qm, {});
        FAIL() << "expected UnsupportedError";
    } catch (const UnsupportedError& e) {
        EXPECT_NE(std::string(e.what()).find("node 'node' (Reshape)"), std::string::npos) << e.what();
    }
}

// Every row that reads as a unary node without attributes (Relu, Sigmoid, Softmax, ...), behind a Conv
// layer: the oneDNN executor (its own primitive or the reference fallback) matches the fp32 reference,
// and in int8 the integer reference, whatever the row's int8 class.
TEST(OpTable, UnaryRowsRunInTheExecutors) {
    int tested = 0;
    for (const OpDef* d : op_table()) {
        SCOPED_TRACE(d->onnx_name);
        OnnxBuilder b(13);
        b.input("x", {-1, 2, 4, 4});
        b.init("w", {3, 2, 1, 1}, {0.5f, -1.0f, 0.25f, 0.75f, -0.5f, 1.0f});
        b.init("b", {3}, {0.1f, -0.2f, 0.3f});
        b.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
        b.node(d->onnx_name, {"c"}, {"y"}, "node");
        b.output("y");
        Graph g;
        try {
            g = import_onnx_bytes(b.bytes(), "unary.onnx");
        } catch (const InputError&) {
            continue;  // the row needs attributes or more inputs
        }
        ++tested;
        Tensor x = Tensor::zeros({3, 2, 4, 4});
        for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = std::sin(0.37f * static_cast<float>(i)) * 2.0f;
        const Tensor r = ReferenceExecutor(g).run({x}).at(0);
        DnnlExecutor fp(g, DnnlExecutor::Mode::Fp32, 3);
        const Tensor y = fp.run(x);
        ASSERT_EQ(y.shape, r.shape);
        EXPECT_LE(max_abs_diff(y, r), 1e-4f * max_abs(r));
        DnnlExecutor q(g, DnnlExecutor::Mode::Int8, 3);
        q.calibrate({x});
        const Tensor yq = q.run(x);
        const Tensor rq = Int8ReferenceExecutor(g, q.quantized_model()).run(x);
        ASSERT_EQ(yq.shape, rq.shape);
        EXPECT_LE(max_abs_diff(yq, rq), 1e-3f * max_abs(rq));
        EXPECT_LE(max_abs_diff(yq, r), 0.1f * max_abs(r));
    }
    EXPECT_GE(tested, 3);
}
