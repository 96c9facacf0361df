// Operator conformance: ONNX's own backend node tests (Debian libonnx-testdata) and models exported by
// PyTorch (tests/data/models, made by scripts/train_zoo.py and scripts/make_test_models.py) through
// import_onnx + ReferenceExecutor.
//
// Tolerance: |ours - expected| <= 1e-5 + 1e-4 * |expected| per element (ONNX's backend runner uses
// rtol 1e-3, atol 1e-7; we are tighter in rtol and looser in atol for results near zero).
//
// Inputs 1..n-1 of a node test are bound as constants before import (ImportOptions::constant_inputs):
// the tests give weights, shapes, pads and clip bounds as graph inputs, while our importer wants them as
// initializers, as exported models have them.
//
// Skipped node tests and why (anything else whose operators are all supported must pass):
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/error.hpp"
#include "runtime/onnx_import.hpp"
#include "runtime/reference_executor.hpp"

namespace fs = std::filesystem;
using namespace dcs;

namespace {

const char* kNodeTestDir = "/usr/share/libonnx-testdata/data/node";

const std::map<std::string, std::string>& skipped() {
    static const std::map<std::string, std::string> s = {
        {"test_add_uint8", "uint8 data: the executor runs float tensors only"},
        {"test_clip_default_int8_inbounds", "int8 data: the executor runs float tensors only"},
        {"test_clip_default_int8_max", "int8 data: the executor runs float tensors only"},
        {"test_clip_default_int8_min", "int8 data: the executor runs float tensors only"},
        {"test_maxpool_2d_uint8", "uint8 data: the executor runs float tensors only"},
        {"test_maxpool_with_argmax_2d_precomputed_pads", "the Indices output is not supported"},
        {"test_maxpool_with_argmax_2d_precomputed_strides", "the Indices output is not supported"},
        {"test_batchnorm_epsilon_training_mode", "training_mode=1 is not supported (inference only)"},
        {"test_batchnorm_example_training_mode", "training_mode=1 is not supported (inference only)"},
        {"test_dropout_default_mask", "the mask output is not supported"},
        {"test_dropout_default_mask_ratio", "the mask output is not supported"},
        {"test_identity_opt", "optional-type inputs are not supported"},
        {"test_identity_sequence", "sequence-type inputs are not supported"},
        {"test_reshape_allowzero_reordered", "an empty (zero-sized) tensor"},
        {"test_edge_pad", "Pad mode 'edge': only constant padding is supported"},
        {"test_reflect_pad", "Pad mode 'reflect': only constant padding is supported"},
        {"test_training_dropout", "Dropout in training mode (random): inference only"},
        {"test_training_dropout_default", "Dropout in training mode (random): inference only"},
        {"test_training_dropout_default_mask", "Dropout in training mode (random): inference only"},
        {"test_training_dropout_mask", "Dropout in training mode (random): inference only"},
        {"test_training_dropout_zero_ratio", "Dropout training_mode given as a bool tensor input: inference only"},
        {"test_training_dropout_zero_ratio_mask", "Dropout training_mode given as a bool tensor input: inference only"},
    };
    return s;
}

// The operator table's rows and the nodes the import removes (runtime/onnx_import.hpp).
const std::set<std::string>& supported_ops() {
    static const std::set<std::string> s = [] {
        auto names = supported_operator_names();
        return std::set<std::string>(names.begin(), names.end());
    }();
    return s;
}

struct Case {
    std::string name;
    fs::path dir;
    bool node_test;  ///< bind inputs 1..n-1 as constants
};

std::string ops_of(const fs::path& model, std::set<std::string>* ops) {
    std::ifstream in(model, std::ios::binary);
    onnx::ModelProto m;
    if (!m.ParseFromIstream(&in)) return "unparsable";
    for (const auto& n : m.graph().node()) ops->insert(n.op_type());
    return {};
}

std::vector<Case> collect_cases() {
    std::vector<Case> cases;
    if (fs::is_directory(kNodeTestDir)) {
        for (const auto& e : fs::directory_iterator(kNodeTestDir)) {
            std::string name = e.path().filename().string();
            if (!fs::exists(e.path() / "model.onnx")) continue;
            std::set<std::string> ops;
            if (!ops_of(e.path() / "model.onnx", &ops).empty()) continue;
            bool ok = !ops.empty();
            for (const auto& op : ops) ok = ok && supported_ops().count(op);
            if (!ok) continue;
            if (skipped().count(name)) continue;
            cases.push_back({name, e.path(), true});
        }
    }
    fs::path models = fs::path(DCS_TEST_DATA_DIR) / "models";
    if (fs::is_directory(models))
        for (const auto& e : fs::directory_iterator(models))
            if (fs::exists(e.path() / "model.onnx")) cases.push_back({"torch_" + e.path().filename().string(), e.path(), false});
    std::sort(cases.begin(), cases.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
    return cases;
}

std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix) {
    std::vector<fs::path> v;
    for (int i = 0;; ++i) {
        fs::path p = dir / (prefix + std::to_string(i) + ".pb");
        if (!fs::exists(p)) break;
        v.push_back(p);
    }
    return v;
}

std::vector<std::string> input_names(const fs::path& model) {
    std::ifstream in(model, std::ios::binary);
    onnx::ModelProto m;
    m.ParseFromIstream(&in);
    std::set<std::string> inits;
    for (const auto& t : m.graph().initializer()) inits.insert(t.name());
    std::vector<std::string> names;
    for (const auto& i : m.graph().input())
        if (!inits.count(i.name())) names.push_back(i.name());
    return names;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.dir.string(); }

class Conformance : public ::testing::TestWithParam<Case> {};

TEST_P(Conformance, MatchesExpectedOutputs) {
    const Case& c = GetParam();
    std::vector<std::string> names = input_names(c.dir / "model.onnx");
    int sets = 0;
    for (const auto& set : fs::directory_iterator(c.dir)) {
        if (!set.is_directory() || set.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
        ++sets;
        auto in_files = numbered(set.path(), "input_");
        auto out_files = numbered(set.path(), "output_");
        ASSERT_EQ(in_files.size(), names.size());
        ImportOptions opt;
        std::vector<Tensor> inputs;
        for (size_t i = 0; i < in_files.size(); ++i) {
            Tensor t = read_tensor_pb(in_files[i].string());
            if (c.node_test && i > 0) opt.constant_inputs[names[i]] = t;
            else inputs.push_back(t);
        }
        Graph g = import_onnx((c.dir / "model.onnx").string(), opt);
        ReferenceExecutor ex(g);
        std::vector<Tensor> outs = ex.run(inputs);
        ASSERT_EQ(outs.size(), out_files.size());
        for (size_t o = 0; o < outs.size(); ++o) {
            Tensor want = read_tensor_pb(out_files[o].string());
            ASSERT_EQ(outs[o].shape, want.shape) << "output " << o;
            ASSERT_EQ(outs[o].data.size(), want.data.size());
            int bad = 0;
            for (size_t i = 0; i < want.data.size(); ++i) {
                float tol = 1e-5f + 1e-4f * std::fabs(want.data[i]);
                if (!(std::fabs(outs[o].data[i] - want.data[i]) <= tol)) {
                    if (bad++ < 5)
                        ADD_FAILURE() << "output " << o << " element " << i << ": got " << outs[o].data[i] << ", want "
                                      << want.data[i];
                }
            }
            EXPECT_EQ(bad, 0) << "elements outside tolerance";
        }
    }
    EXPECT_GT(sets, 0) << "no test_data_set_* in " << c.dir;
}

INSTANTIATE_TEST_SUITE_P(Onnx, Conformance, ::testing::ValuesIn(collect_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// Every supported operator must be exercised by at least one node test that runs.
TEST(ConformanceCoverage, EverySupportedOperatorHasARunningNodeTest) {
    ASSERT_TRUE(fs::is_directory(kNodeTestDir)) << "install libonnx-testdata";
    std::set<std::string> covered;
    for (const auto& c : collect_cases()) {
        if (!c.node_test) continue;
        ops_of(c.dir / "model.onnx", &covered);
    }
    for (const auto& op : supported_ops()) EXPECT_TRUE(covered.count(op)) << op << " has no running node test";
}

// The skip list names real test directories, so it cannot silently rot.
TEST(ConformanceCoverage, SkipListNamesExistingTests) {
    for (const auto& kv : skipped()) EXPECT_TRUE(fs::exists(fs::path(kNodeTestDir) / kv.first)) << kv.first;
}

// Skipped cases fail with a clear InputError, not a crash (where our importer is the reason).
TEST(ConformanceCoverage, SkippedCasesAreRejectedCleanly) {
    for (const char* name : {"test_batchnorm_example_training_mode", "test_maxpool_with_argmax_2d_precomputed_pads",
                             "test_dropout_default_mask"}) {
        fs::path model = fs::path(kNodeTestDir) / name / "model.onnx";
        EXPECT_THROW(import_onnx(model.string()), InputError) << name;
    }
}

}  // namespace
