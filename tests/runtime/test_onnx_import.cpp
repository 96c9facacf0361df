// Tests of runtime/onnx_import.cpp: conversion, BatchNorm folding, DAGs, and every kind of bad model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "runtime/onnx_import.hpp"
#include "runtime/reference_executor.hpp"
#include "support/onnx_builder.hpp"
#include "support/process.hpp"

using namespace dcs;
using dcs::test::OnnxBuilder;
using dcs::test::TempDir;

namespace {

std::string error_of(const std::string& bytes, const std::string& path = "m.onnx") {
    try {
        import_onnx_bytes(bytes, path);
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

TEST(OnnxImport, TinyMlpLayersAndOutputs) {
    Graph g = import_onnx_bytes(dcs::test::tiny_mlp().bytes(), "tiny.onnx");
    auto layers = list_layers(g);
    ASSERT_EQ(layers.size(), 2u);
    EXPECT_EQ(layers[0].name, "fc1");
    EXPECT_EQ(layers[0].out_axis, 0);
    EXPECT_EQ(layers[0].params, 15);
    EXPECT_EQ(layers[0].macs, 12);
    EXPECT_EQ(layers[1].params, 8);
    ReferenceExecutor ex(g);
    auto out = ex.run({Tensor({1, 4}, {1, 2, 3, 4})});
    // Hand-computed: h = W1 x + b1 with W1[i][j] = 0.1*(4i+j) - 0.5:
    // h0 = -0.5+(-0.4*2)+(-0.3*3)+(-0.2*4) = -3.0 + 0.1 = -2.9 -> relu 0
    // h1 = 0.1*(1)+... computed below explicitly.
    float h[3];
    for (int i = 0; i < 3; ++i) {
        float s = (i == 0 ? 0.1f : i == 1 ? -0.1f : 0.2f);
        for (int j = 0; j < 4; ++j) s += (0.1f * (4 * i + j) - 0.5f) * (j + 1);
        h[i] = std::max(s, 0.0f);
    }
    EXPECT_FLOAT_EQ(h[0], 0.0f);
    for (int o = 0; o < 2; ++o) {
        float s = o == 0 ? 0.0f : 0.5f;
        for (int i = 0; i < 3; ++i) s += (0.2f * (3 * o + i) - 0.4f) * h[i];
        EXPECT_NEAR(out[0].data[o], s, 1e-5);
    }
}

OnnxBuilder conv_bn_model(bool share_weight) {
    OnnxBuilder b;
    b.input("x", {-1, 2, 5, 5}).output("y");
    std::vector<float> w(3 * 2 * 3 * 3);
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7f * static_cast<float>(i));
    b.init("w", {3, 2, 3, 3}, w);
    b.init("bias", {3}, {0.1f, -0.2f, 0.3f});
    b.init("gamma", {3}, {1.5f, 0.5f, -1.0f});
    b.init("beta", {3}, {0.2f, 0.0f, -0.3f});
    b.init("mean", {3}, {0.3f, -0.1f, 0.05f});
    b.init("var", {3}, {2.0f, 0.5f, 1.2f});
    auto& c = b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv");
    OnnxBuilder::attr_ints(c, "pads", {1, 1, 1, 1});
    OnnxBuilder::attr_f(b.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"bn"}, "bn"), "epsilon", 1e-3f);
    if (share_weight) {
        // A second conv reads the same weight: folding must not change it.
        OnnxBuilder::attr_ints(b.node("Conv", {"x", "w"}, {"c2"}, "conv2"), "pads", {1, 1, 1, 1});
        b.node("Add", {"bn", "c2"}, {"y"}, "add");
    } else {
        b.node("Relu", {"bn"}, {"y"}, "relu");
    }
    return b;
}

Tensor ramp(std::vector<int64_t> shape) {
    Tensor t = Tensor::zeros(shape);
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = std::cos(0.37f * static_cast<float>(i));
    return t;
}

TEST(OnnxImport, BatchNormFoldsIntoConvAndKeepsOutputs) {
    for (bool share : {false, true}) {
        auto bytes = conv_bn_model(share).bytes();
        ImportOptions no_fold;
        no_fold.fold_batch_norm = false;
        Graph folded = import_onnx_bytes(bytes, "m.onnx");
        Graph plain = import_onnx_bytes(bytes, "m.onnx", no_fold);
        int bn_nodes = 0;
        for (const auto& n : folded.nodes) bn_nodes += n.op == OpKind::BatchNorm;
        EXPECT_EQ(bn_nodes, 0) << "share=" << share;
        Tensor x = ramp({2, 2, 5, 5});
        auto a = ReferenceExecutor(folded).run({x}), b = ReferenceExecutor(plain).run({x});
        ASSERT_EQ(a[0].shape, b[0].shape);
        for (size_t i = 0; i < a[0].data.size(); ++i) EXPECT_NEAR(a[0].data[i], b[0].data[i], 1e-5);
    }
}

TEST(OnnxImport, BatchNormFoldsIntoGemmWithAlphaBeta) {
    OnnxBuilder b;
    b.input("x", {-1, 3}).output("y");
    b.init("w", {3, 2}, {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f});
    b.init("c", {2}, {0.1f, 0.2f});
    b.init("gamma", {2}, {2.0f, -0.5f});
    b.init("beta", {2}, {0.3f, 0.1f});
    b.init("mean", {2}, {0.2f, -0.4f});
    b.init("var", {2}, {0.8f, 1.7f});
    auto& gm = b.node("Gemm", {"x", "w", "c"}, {"h"}, "fc");
    OnnxBuilder::attr_f(gm, "alpha", 0.5f);
    OnnxBuilder::attr_f(gm, "beta", 2.0f);
    b.node("BatchNormalization", {"h", "gamma", "beta", "mean", "var"}, {"y"}, "bn");
    ImportOptions no_fold;
    no_fold.fold_batch_norm = false;
    Graph folded = import_onnx_bytes(b.bytes(), "m.onnx"), plain = import_onnx_bytes(b.bytes(), "m.onnx", no_fold);
    EXPECT_EQ(folded.nodes.size(), 1u);
    Tensor x({2, 3}, {1, -2, 3, 0.5f, 0.25f, -1});
    auto p = ReferenceExecutor(folded).run({x}), q = ReferenceExecutor(plain).run({x});
    for (size_t i = 0; i < p[0].data.size(); ++i) EXPECT_NEAR(p[0].data[i], q[0].data[i], 1e-5);
}

TEST(OnnxImport, IdentityDropoutRemovedAndResidualDagInAnyOrder) {
    OnnxBuilder b;
    b.input("x", {-1, 2}).output("y");
    b.init("w", {2, 2}, {1, 2, 3, 4});
    // Nodes deliberately out of topological order.
    b.node("Add", {"d", "x"}, {"y"}, "residual");
    b.node("Dropout", {"i"}, {"d"}, "drop");
    b.node("Identity", {"m"}, {"i"}, "id");
    b.node("MatMul", {"x", "w"}, {"m"}, "mm");
    Graph g = import_onnx_bytes(b.bytes(), "m.onnx");
    ASSERT_EQ(g.nodes.size(), 2u);
    EXPECT_EQ(g.nodes[0].name, "mm");
    auto out = ReferenceExecutor(g).run({Tensor({1, 2}, {1, 1})});
    EXPECT_FLOAT_EQ(out[0].data[0], 1 + 3 + 1);
    EXPECT_FLOAT_EQ(out[0].data[1], 2 + 4 + 1);
    auto layers = list_layers(g);
    ASSERT_EQ(layers.size(), 1u);
    EXPECT_EQ(layers[0].out_axis, 1);
}

TEST(OnnxImport, UnnamedNodesGetUniqueNames) {
    OnnxBuilder b;
    b.input("x", {-1, 2}).output("y");
    b.node("Relu", {"x"}, {"a"}, "Relu_0");
    b.node("Relu", {"a"}, {"b"});
    b.node("Relu", {"b"}, {"y"}, "Relu_0");
    Graph g = import_onnx_bytes(b.bytes(), "m.onnx");
    std::set<std::string> names;
    for (const auto& n : g.nodes) names.insert(n.name);
    EXPECT_EQ(names.size(), 3u);
}

TEST(OnnxImport, ExternalDataInsideModelDirectory) {
    TempDir dir;
    std::vector<float> w = {1, 2, 3, 4, 5, 6};
    {
        std::ofstream(dir.file("weights.bin"), std::ios::binary)
            .write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size() * 4));
    }
    OnnxBuilder b;
    b.input("x", {-1, 3}).output("y");
    auto& t = b.init("w", {3, 2}, {});
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t.add_external_data();
    kv->set_key("location");
    kv->set_value("weights.bin");
    b.node("MatMul", {"x", "w"}, {"y"}, "mm");
    b.save(dir.file("model.onnx"));
    Graph g = import_onnx(dir.file("model.onnx"));
    EXPECT_EQ(g.initializers.at("w").data, w);

    for (std::string bad : {"../weights.bin", "/etc/passwd", "sub/../../x.bin"}) {
        OnnxBuilder e = b;
        e.g().mutable_initializer(0)->mutable_external_data(0)->set_value(bad);
        std::string msg = error_of(e.bytes(), dir.file("model.onnx"));
        EXPECT_NE(msg.find("initializer 'w'"), std::string::npos) << msg;
        EXPECT_TRUE(msg.find("escapes") != std::string::npos || msg.find("relative") != std::string::npos) << msg;
    }
    // A symlink pointing outside the directory is refused too.
    std::filesystem::create_symlink("/etc/hostname", dir.file("link.bin"));
    OnnxBuilder e = b;
    e.g().mutable_initializer(0)->mutable_external_data(0)->set_value("link.bin");
    EXPECT_NE(error_of(e.bytes(), dir.file("model.onnx")).find("escapes"), std::string::npos);
    e.g().mutable_initializer(0)->mutable_external_data(0)->set_value("missing.bin");
    EXPECT_NE(error_of(e.bytes(), dir.file("model.onnx")).find("not found"), std::string::npos);
}

struct BadModel {
    const char* name;
    std::function<void(OnnxBuilder&)> break_it;
    const char* expect;  ///< substring of the message
};

TEST(OnnxImport, BadModelsAreInputErrorsNamingTheCulprit) {
    std::vector<BadModel> cases = {
        {"unsupported op", [](OnnxBuilder& b) { b.node("NoSuchOp", {"y"}, {"z"}, "act"); }, "node 'act' (NoSuchOp): operator not supported"},
        {"dims disagree", [](OnnxBuilder& b) { b.g().mutable_initializer(0)->add_dims(2); }, "initializer 'w1': dims [3, 4, 2] need 24 elements, the data holds 12"},
        {"undefined input", [](OnnxBuilder& b) { b.g().mutable_node(1)->set_input(0, "nowhere"); }, "reads 'nowhere'"},
        {"cycle", [](OnnxBuilder& b) { b.g().mutable_node(0)->set_input(0, "y"); }, "cycle"},
        {"opset too new", [](OnnxBuilder& b) { b.model.mutable_opset_import(0)->set_version(99); }, "opset 99 is not supported"},
        {"custom domain", [](OnnxBuilder& b) { b.g().mutable_node(1)->set_domain("com.example"); }, "domain 'com.example'"},
        {"missing output", [](OnnxBuilder& b) { b.g().mutable_output(0)->set_name("ghost"); }, "graph output 'ghost'"},
        {"non-constant reshape", [](OnnxBuilder& b) { b.node("Reshape", {"y", "x"}, {"z"}, "rs"); }, "node 'rs' (Reshape): input shape"},
        {"string initializer", [](OnnxBuilder& b) { b.g().mutable_initializer(1)->set_data_type(onnx::TensorProto::STRING); }, "initializer 'b1': data type 8"},
        {"bad conv group", [](OnnxBuilder& b) { OnnxBuilder::attr_i(b.node("Conv", {"y", "w1"}, {"z"}, "cv"), "group", 0); }, "node 'cv' (Conv): group must be >= 1"},
        {"pad mode", [](OnnxBuilder& b) {
             b.init_i64("pads", {4}, {0, 1, 0, 1});
             auto& n = b.node("Pad", {"y", "pads"}, {"z"}, "pd");
             auto* a = n.add_attribute();
             a->set_name("mode");
             a->set_type(onnx::AttributeProto::STRING);
             a->set_s("reflect");
         }, "node 'pd' (Pad): mode 'reflect'"},
    };
    for (const auto& c : cases) {
        OnnxBuilder b = dcs::test::tiny_mlp();
        c.break_it(b);
        std::string msg = error_of(b.bytes());
        EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name;
    }
}

TEST(OnnxImport, FoldsConstantShapeArithmetic) {
    // y = x @ Transpose(w) reshaped by a shape computed from x's own shape: [batch, -1].
    OnnxBuilder b;
    b.input("x", {-1, 2, 3}).output("y");
    b.init("w", {4, 6}, {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2});
    b.init_i64("zero", {1}, {0});
    b.init_i64("minus_one", {1}, {-1});
    OnnxBuilder::attr_ints(b.node("Transpose", {"w"}, {"wt"}, "tr"), "perm", {1, 0});
    b.node("Shape", {"x"}, {"s"}, "shape");
    b.node("Gather", {"s", "zero"}, {"n"}, "gather");
    b.node("Concat", {"n", "minus_one"}, {"target"}, "cat").add_attribute()->CopyFrom([] {
        onnx::AttributeProto a;
        a.set_name("axis");
        a.set_type(onnx::AttributeProto::INT);
        a.set_i(0);
        return a;
    }());
    b.node("Reshape", {"x", "target"}, {"flat"}, "view");
    b.node("MatMul", {"flat", "wt"}, {"y"}, "mm");
    Graph g = import_onnx_bytes(b.bytes(), "fold.onnx");
    ASSERT_EQ(g.nodes.size(), 2u);  // Reshape and MatMul; everything else folded
    EXPECT_EQ(std::get<ReshapeAttrs>(g.nodes[0].attrs).shape, (std::vector<int64_t>{0, -1}));
    EXPECT_EQ(g.initializers.at("wt").shape, (std::vector<int64_t>{6, 4}));
    EXPECT_EQ(g.initializers.count("s"), 0u);  // unused shape arithmetic is dropped
    auto out = ReferenceExecutor(g).run({Tensor({2, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})});
    ASSERT_EQ(out[0].shape, (std::vector<int64_t>{2, 4}));
    EXPECT_FLOAT_EQ(out[0].data[3], 12.0f);  // 2 * x[0][5]
    EXPECT_FLOAT_EQ(out[0].data[4], 7.0f);
    // Arithmetic on the batch size is refused with a clear error.
    OnnxBuilder c = b;
    c.g().mutable_node(3)->set_op_type("Mul");  // Concat -> Mul(n, -1)
    c.g().mutable_node(3)->clear_attribute();
    EXPECT_NE(error_of(c.bytes()).find("batch size"), std::string::npos) << error_of(c.bytes());
}

/// The message of the InputError that importing `b` and inferring its shapes throws ("no error" if none).
std::string import_and_infer_error(const OnnxBuilder& b) {
    try {
        Graph g = import_onnx_bytes(b.bytes(), "m.onnx");
        list_layers(g);
        g.infer_shapes(1);
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

/// A 1-channel 8x8 image through one Conv named "cv" with weight `w` (a constant unless `w_input`).
OnnxBuilder conv_model(std::vector<int64_t> w_dims, bool w_input = false) {
    OnnxBuilder b;
    b.input("x", {-1, 1, 8, 8}).output("y");
    int64_t n = 1;
    for (int64_t d : w_dims) n *= d;
    if (w_input) b.input("w", w_dims);
    else b.init("w", w_dims, std::vector<float>(static_cast<size_t>(n), 0.5f));
    b.node("Conv", {"x", "w"}, {"y"}, "cv");
    return b;
}

// Inputs the fuzz targets found (fuzz/regressions/onnx); each was a crash, a sanitizer report or a
// non-InputError exception before its fix.
TEST(OnnxImport, FuzzFoundModelsAreInputErrors) {
    {  // A node name with newlines: the message stays on one line, the name escaped.
        OnnxBuilder b = dcs::test::tiny_mlp();
        b.node("NoSuchOp", {"y"}, {"z"}, "out\n\nput");
        const std::string msg = error_of(b.bytes());
        EXPECT_NE(msg.find("node 'out\\n\\nput' (NoSuchOp)"), std::string::npos) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    {  // Dims whose product overflows int64.
        OnnxBuilder b = dcs::test::tiny_mlp();
        b.init("huge", {int64_t(1) << 40, int64_t(1) << 40}, {});
        EXPECT_NE(error_of(b.bytes()).find("initializer 'huge': dimensions"), std::string::npos) << error_of(b.bytes());
    }
    {  // kernel_shape of rank 1 on a 2-D convolution whose weight is a graph input: strides too short.
        OnnxBuilder b = conv_model({2, 1, 3, 3}, true);
        OnnxBuilder::attr_ints(*b.g().mutable_node(0), "kernel_shape", {3});
        const std::string msg = import_and_infer_error(b);
        EXPECT_NE(msg.find("node 'cv'"), std::string::npos) << msg;
    }
    {  // Dilations so large the window arithmetic would overflow.
        OnnxBuilder b = conv_model({2, 1, 3, 3});
        OnnxBuilder::attr_ints(*b.g().mutable_node(0), "dilations", {int64_t(1) << 40, 1});
        const std::string msg = import_and_infer_error(b);
        EXPECT_NE(msg.find("dilations"), std::string::npos) << msg;
        EXPECT_NE(msg.find("outside"), std::string::npos) << msg;
    }
    {  // Concat of inputs whose sizes sum past int64.
        OnnxBuilder b;
        b.input("a", {1, int64_t(1) << 62}).input("c", {1, int64_t(1) << 62}).output("y");
        OnnxBuilder::attr_i(b.node("Concat", {"a", "c"}, {"y"}, "cat"), "axis", 1);
        const std::string msg = import_and_infer_error(b);
        EXPECT_NE(msg.find("node 'cat'"), std::string::npos) << msg;
        EXPECT_NE(msg.find("overflows"), std::string::npos) << msg;
    }
    {  // Constant shape arithmetic that overflows int64.
        OnnxBuilder b = dcs::test::tiny_mlp();
        b.init_i64("big", {1}, {int64_t(1) << 62});
        b.node("Mul", {"big", "big"}, {"sq"}, "mul");
        b.node("Reshape", {"y", "sq"}, {"z"}, "rs");
        b.g().mutable_output(0)->set_name("z");
        const std::string msg = error_of(b.bytes());
        EXPECT_NE(msg.find("overflows int64"), std::string::npos) << msg;
    }
    {  // A float shape input far outside int64.
        OnnxBuilder b = dcs::test::tiny_mlp();
        b.init("fshape", {2}, {-1.7e38f, 1.0f});
        b.node("Reshape", {"y", "fshape"}, {"z"}, "rs");
        b.g().mutable_output(0)->set_name("z");
        const std::string msg = error_of(b.bytes());
        EXPECT_NE(msg.find("node 'rs' (Reshape): expected whole numbers"), std::string::npos) << msg;
    }
    {  // A Conv whose weight is an integer tensor.
        OnnxBuilder b = conv_model({2, 1, 3, 3});
        b.g().clear_initializer();
        b.init_i64("w", {2, 1, 3, 3}, std::vector<int64_t>(18, 1));
        const std::string msg = error_of(b.bytes());
        EXPECT_NE(msg.find("node 'cv' (Conv) reads 'w', an integer tensor; expected float"), std::string::npos) << msg;
    }
    {  // Clip whose min is an empty tensor.
        OnnxBuilder b = dcs::test::tiny_mlp();
        b.init("mn", {0}, {});
        b.node("Clip", {"y", "mn"}, {"z"}, "clip");
        b.g().mutable_output(0)->set_name("z");
        const std::string msg = error_of(b.bytes());
        EXPECT_NE(msg.find("node 'clip' (Clip): min must hold one value"), std::string::npos) << msg;
    }
}

TEST(OnnxImport, BrokenFilesAreInputErrors) {
    TempDir dir;
    std::string good = dcs::test::tiny_mlp().bytes();
    EXPECT_THROW(import_onnx(dir.file("missing.onnx")), InputError);
    EXPECT_THROW(import_onnx(dir.path.string()), InputError);
    EXPECT_THROW(import_onnx(dir.write("empty.onnx", "")), InputError);
    EXPECT_THROW(import_onnx(dir.write("text.onnx", "this is not a model\n")), InputError);
    // Every truncation and many single-bit flips either import or throw InputError; nothing else.
    int thrown = 0;
    for (size_t len = 1; len < good.size(); len += 3) {
        try {
            import_onnx_bytes(good.substr(0, len), "t.onnx");
        } catch (const InputError&) {
            ++thrown;
        }
    }
    EXPECT_GT(thrown, 0);
    std::mt19937 rng(7);
    for (int i = 0; i < 2000; ++i) {
        std::string b = good;
        b[rng() % b.size()] ^= static_cast<char>(1u << (rng() % 8));
        try {
            Graph g = import_onnx_bytes(b, "flip.onnx");
            ReferenceExecutor(g).run({Tensor({1, 4}, {1, 2, 3, 4})});
        } catch (const InputError&) {
        }
    }
    std::string random(4096, '\0');
    for (auto& c : random) c = static_cast<char>(rng());
    EXPECT_THROW(import_onnx_bytes(random, "random.onnx"), InputError);
}

}  // namespace
