// Tests of runtime/candidate.cpp: compressing a whole model and its honest size.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <random>

#include "common/error.hpp"
#include "compress/dcz.hpp"
#include "runtime/candidate.hpp"
#include "runtime/dataset.hpp"
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

// ---- the compressed-weight cache ----

namespace {

WeightCache::Entry entry_of(size_t bytes, int tag) {
    WeightCache::Entry e;
    e.bits = tag;
    e.bytes = bytes;
    return e;
}

WeightCache::Key key_of(size_t layer, int bits, double prune = 0.0) { return WeightCache::Key{layer, bits, prune, {}}; }

}  // namespace

TEST(WeightCache, HitsMissesAndLeastRecentlyUsedEvictionByBytes) {
    WeightCache c(250);
    int made = 0;
    auto get = [&](size_t layer, int bits, size_t bytes) {
        return c.get(key_of(layer, bits), [&] {
            ++made;
            return entry_of(bytes, bits);
        });
    };
    EXPECT_EQ(get(0, 8, 100)->bits, 8);
    EXPECT_EQ(get(0, 4, 100)->bits, 4);
    EXPECT_EQ(made, 2);
    EXPECT_EQ(get(0, 8, 100)->bits, 8);  // hit: 8 is now the most recent, 4 the least
    EXPECT_EQ(made, 2);
    EXPECT_EQ(c.hits(), 1);
    EXPECT_EQ(c.misses(), 2);
    EXPECT_EQ(c.bytes(), 200u);
    get(1, 8, 100);  // 300 > 250: the least recently used (layer 0, 4 bits) leaves
    EXPECT_EQ(c.entries(), 2u);
    EXPECT_EQ(c.bytes(), 200u);
    get(0, 8, 100);
    EXPECT_EQ(made, 3);  // still there
    get(0, 4, 100);
    EXPECT_EQ(made, 4);  // was evicted
    // The spec and the prune ratio are part of the key.
    compress::WeightSpec mse;
    mse.clip = compress::WeightClip::Mse;
    c.get(WeightCache::Key{0, 4, 0.0, mse}, [&] { ++made; return entry_of(10, 4); });
    c.get(key_of(0, 4, 0.5), [&] { ++made; return entry_of(10, 4); });
    EXPECT_EQ(made, 6);
    // An entry above the bound is returned but not kept; a failing make() stores nothing.
    const size_t before = c.entries();
    EXPECT_EQ(get(5, 2, 1000)->bytes, 1000u);
    EXPECT_EQ(c.entries(), before);
    EXPECT_THROW(c.get(key_of(6, 2), []() -> WeightCache::Entry { throw InputError("no"); }), InputError);
    EXPECT_EQ(c.entries(), before);
    EXPECT_LE(c.bytes(), 250u);
    c.clear();
    EXPECT_EQ(c.entries(), 0u);
    EXPECT_EQ(c.bytes(), 0u);
}

// ---- the evaluator: oneDNN int8 against the reference path ----

namespace {

const char* kImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const char* kLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

struct Example {
    Graph graph;
    Dataset data;
    Preprocess pre;
    ModelIo io;
};

/// An example model (configs/<name>.onnx) with Fashion-MNIST, as its config uses them.
std::unique_ptr<Example> example(const std::string& name) {
    const std::string path = std::string(DCS_SOURCE_DIR) + "/configs/" + name + ".onnx";
    if (!std::filesystem::exists(path) || !std::filesystem::exists(kImages)) return nullptr;
    auto e = std::make_unique<Example>();
    e->graph = import_onnx(path);
    DatasetConfig dc;
    dc.images = kImages;
    dc.labels = kLabels;
    e->data = Dataset::load(dc);
    e->pre.scale = 1.0f / 255.0f;
    e->pre.mean = {0.2860f};
    e->pre.std = {0.3530f};
    e->io = check_model_io(e->graph, e->data, path);
    return e;
}

}  // namespace

TEST(CandidateEvaluator, Int8PathAgreesWithTheReferencePathAndCachesWeights) {
    auto ex = example("lenet300");
    if (!ex) GTEST_SKIP() << "no example model or no Fashion-MNIST";
    const Subset val{512, 1000};
    compress::WeightSpec spec;
    CandidateEvaluator q(ex->graph, ex->data, val, ex->pre, ex->io, spec);
    EvaluatorOptions ro;
    ro.runtime = EvalRuntime::Reference;
    CandidateEvaluator r(ex->graph, ex->data, val, ex->pre, ex->io, spec, 8, ro);

    CandidateMetrics qb = q.baseline(), rb = r.baseline();
    EXPECT_EQ(qb.executor, "onednn-fp32");
    EXPECT_EQ(rb.executor, "reference");
    EXPECT_NEAR(qb.accuracy, rb.accuracy, 0.002);  // oneDNN fp32 vs plain loops: at most a near-tie flips
    EXPECT_EQ(qb.size_bytes, rb.size_bytes);
    EXPECT_EQ(qb.samples, 1000);

    const size_t n = q.layers().size();
    for (auto choice : {compress::LayerChoice{8, 0.0}, compress::LayerChoice{4, 0.5}}) {
        SCOPED_TRACE(choice.weight_bits);
        std::vector<compress::LayerChoice> ch(n, choice);
        CandidateMetrics a = q.evaluate(ch), b = r.evaluate(ch);
        EXPECT_EQ(a.executor, "onednn-int8");
        // Size and BOPs do not depend on the runtime: the same compressed weights, the same .dcz.
        EXPECT_EQ(a.size_bytes, b.size_bytes);
        EXPECT_EQ(a.size_bytes, compress_model(ex->graph, q.layers(), ch, spec).size_bytes);
        EXPECT_EQ(a.bops, b.bops);
        // int8 activations on top of the same weights: within 1 pt of the dequantized fp32 path.
        EXPECT_NEAR(a.accuracy, b.accuracy, 0.01);
        EXPECT_EQ(a.samples, 1000);
        EXPECT_GT(a.images_per_second, 0.0);
        EXPECT_GT(a.latency, 0.0);
        EXPECT_GT(a.forward_seconds, 0.0);
    }
    // 8 bits everywhere stays within 0.3 pt of fp32.
    EXPECT_NEAR(q.evaluate(std::vector<compress::LayerChoice>(n, {8, 0.0})).accuracy, qb.accuracy, 0.003);

    // A repeated candidate is served from the cache and gives the same metrics.
    const int64_t misses = q.cache().misses();
    std::vector<compress::LayerChoice> mixed(n, {4, 0.5});
    mixed[0] = {8, 0.0};
    CandidateMetrics m1 = q.evaluate(mixed);
    EXPECT_EQ(q.cache().misses(), misses);  // every (layer, bits, prune) was seen above
    CandidateMetrics m2 = q.evaluate(mixed);
    EXPECT_EQ(m1.accuracy, m2.accuracy);
    EXPECT_EQ(m1.size_bytes, m2.size_bytes);
    EXPECT_GT(q.cache().hits(), 0);

    EXPECT_THROW(q.evaluate({{8, 0.0}}), InputError);
}

// A cache hit must give what compressing again gives: a random sequence of candidates mixing layer
// choices (so cached layers are loaded next to new ones, and evictions happen with a small bound) has
// the same accuracy, size and BOPs through a cached, a tightly bounded and an uncached evaluator, and
// the size and BOPs of compress_model().
TEST(CandidateEvaluator, CachedCandidatesMatchUncachedOnes) {
    for (const char* name : {"lenet300", "lenet5"}) {
        SCOPED_TRACE(name);
        auto ex = example(name);
        if (!ex) GTEST_SKIP() << "no example model or no Fashion-MNIST";
        const Subset val{512, 600};
        compress::WeightSpec spec;
        spec.clip = compress::WeightClip::Mse;
        EvaluatorOptions none, tight;
        none.cache_bytes = 0;
        tight.cache_bytes = 400000;
        CandidateEvaluator cached(ex->graph, ex->data, val, ex->pre, ex->io, spec);
        CandidateEvaluator bounded(ex->graph, ex->data, val, ex->pre, ex->io, spec, 8, tight);
        CandidateEvaluator cold(ex->graph, ex->data, val, ex->pre, ex->io, spec, 8, none);
        const size_t n = cached.layers().size();
        std::mt19937 rng(9);
        const int bits[] = {2, 4, 8};
        const double ratios[] = {0.0, 0.5, 0.9};
        for (int c = 0; c < 12; ++c) {
            SCOPED_TRACE(c);
            std::vector<compress::LayerChoice> ch(n);
            for (auto& x : ch) x = {bits[rng() % 3], ratios[rng() % 3]};
            const CandidateMetrics a = cached.evaluate(ch), b = bounded.evaluate(ch), r = cold.evaluate(ch);
            EXPECT_EQ(a.correct, r.correct);
            EXPECT_EQ(b.correct, r.correct);
            EXPECT_EQ(a.size_bytes, r.size_bytes);
            EXPECT_EQ(b.size_bytes, r.size_bytes);
            EXPECT_EQ(a.bops, r.bops);
            const CompressedModel m = compress_model(ex->graph, cached.layers(), ch, spec);
            EXPECT_EQ(a.size_bytes, m.size_bytes);
            EXPECT_EQ(a.bops, compressed_bops(cached.layers(), m, 8));
        }
        EXPECT_GT(cached.cache().hits(), 0);
        EXPECT_LE(bounded.cache().bytes(), tight.cache_bytes);
        EXPECT_EQ(cold.cache().entries(), 0u);
    }
}

TEST(CandidateEvaluator, BiasCorrectionSwitchAndCalibrationSubset) {
    auto ex = example("lenet300");
    if (!ex) GTEST_SKIP() << "no example model or no Fashion-MNIST";
    const Subset val{512, 1000};
    EvaluatorOptions on;
    on.bias_correction = true;
    CandidateEvaluator plain(ex->graph, ex->data, val, ex->pre, ex->io, {});
    CandidateEvaluator corrected(ex->graph, ex->data, val, ex->pre, ex->io, {}, 8, on);
    std::vector<compress::LayerChoice> two(plain.layers().size(), {2, 0.0});
    const double a = plain.evaluate(two).accuracy, b = corrected.evaluate(two).accuracy;
    EXPECT_NE(a, b);   // the switch reaches the executor
    EXPECT_GE(b, a);   // and, at 2 bits, helps (measured: see tests/runtime/test_dnnl_executor.cpp)

    // Another calibration subset (64 images far from the default) calibrates as well.
    EvaluatorOptions other;
    other.calibration = Subset{5000, 64};
    CandidateEvaluator c2(ex->graph, ex->data, val, ex->pre, ex->io, {}, 8, other);
    std::vector<compress::LayerChoice> eight(plain.layers().size(), {8, 0.0});
    EXPECT_NEAR(c2.evaluate(eight).accuracy, plain.evaluate(eight).accuracy, 0.01);

    EvaluatorOptions outside;
    outside.calibration = Subset{ex->data.size(), 10};
    EXPECT_THROW(CandidateEvaluator(ex->graph, ex->data, val, ex->pre, ex->io, {}, 8, outside), InputError);
    EvaluatorOptions zero;
    zero.batch_size = 0;
    EXPECT_THROW(CandidateEvaluator(ex->graph, ex->data, val, ex->pre, ex->io, {}, 8, zero), InputError);
}
