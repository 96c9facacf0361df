// Tests the metrics of runtime/evaluate.cpp (top-1, top-5, agreement with fp32), the candidate
// evaluator's agreement labels, and datasets built from storage (unlabelled, partly loaded).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "common/metric.hpp"
#include "runtime/candidate.hpp"
#include "runtime/dataset.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/onnx_import.hpp"
#include "runtime/reference_executor.hpp"

using namespace dcs;

namespace {

const std::string kImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const std::string kLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

Tensor logits(int64_t n, int64_t k, std::vector<float> v) {
    Tensor t;
    t.shape = {n, k};
    t.data = std::move(v);
    return t;
}

TEST(Metric, NamesRoundTrip) {
    for (Metric m : {Metric::Top1, Metric::Top5, Metric::Agreement}) EXPECT_EQ(metric_from_name(metric_name(m)), m);
    EXPECT_FALSE(metric_from_name("top3"));
    EXPECT_STREQ(metric_label(Metric::Agreement), "agreement with fp32");
}

TEST(Metric, InTopKRanksTiesByClassIndex) {
    // Row 0: class 3 is the 4th largest; row 1: all equal, class 5 ranks 6th; row 2: label out of range.
    const Tensor t = logits(3, 6,
                            {6, 5, 4, 3, 2, 1,  //
                             1, 1, 1, 1, 1, 1,  //
                             0, 1, 2, 3, 4, 5});
    EXPECT_EQ(in_top_k(t, {3, 5, 9}, 5), (std::vector<bool>{true, false, false}));
    EXPECT_EQ(in_top_k(t, {3, 4, 5}, 1), (std::vector<bool>{false, false, true}));
    EXPECT_EQ(in_top_k(t, {3, 4, 1}, 5), (std::vector<bool>{true, true, true}));
    EXPECT_EQ(in_top_k(t, {0, 0, 0}, 5), (std::vector<bool>{true, true, false}));
}

TEST(Dataset, FromStorageWithSlotsServesOnlyLoadedSamples) {
    // 5 samples of 1x1x2, samples 1 and 3 stored (as stored images 0 and 1), no labels.
    auto pixels = std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{10, 11, 30, 31});
    Dataset d = Dataset::from_storage(5, 1, 1, 2, false, pixels, pixels->data(), {}, {-1, 0, -1, 1, -1});
    EXPECT_FALSE(d.has_labels());
    EXPECT_EQ(d.size(), 5);
    EXPECT_EQ(d.labels(), std::vector<int64_t>(5, -1));
    d.check_labels(2);  // nothing to check
    Preprocess pre;
    pre.scale = 1.0f;
    EXPECT_EQ(d.batch(1, 1, pre).data, (std::vector<float>{10, 11}));
    EXPECT_EQ(d.batch(3, 1, pre).data, (std::vector<float>{30, 31}));
    EXPECT_THROW(d.batch(1, 2, pre), std::logic_error);
    EXPECT_THROW(Dataset::from_storage(5, 1, 1, 2, false, pixels, pixels->data(), {0, 1}), std::invalid_argument);
    EXPECT_THROW(Dataset::from_storage(5, 1, 1, 2, false, pixels, pixels->data(), {}, {0, 1}), std::invalid_argument);
}

struct Lenet5 {
    Graph graph;
    Dataset labelled, unlabelled;
    Preprocess pre;
    ModelIo io;
};

std::unique_ptr<Lenet5> lenet5() {
    const std::string path = std::string(DCS_SOURCE_DIR) + "/configs/lenet5.onnx";
    if (!std::filesystem::exists(kImages)) return nullptr;
    auto e = std::make_unique<Lenet5>();
    e->graph = import_onnx(path);
    DatasetConfig dc;
    dc.images = kImages;
    dc.labels = kLabels;
    e->labelled = Dataset::load(dc);
    // The same images without labels, shared storage.
    const int64_t n = e->labelled.size();
    auto px = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(n * 784));
    Preprocess raw;
    raw.scale = 1.0f;
    const Tensor all = e->labelled.batch(0, n, raw);
    for (size_t i = 0; i < px->size(); ++i) (*px)[i] = static_cast<uint8_t>(all.data[i]);
    e->unlabelled = Dataset::from_storage(n, 1, 28, 28, false, px, px->data(), {});
    e->pre.scale = 1.0f / 255.0f;
    e->pre.mean = {0.2860f};
    e->pre.std = {0.3530f};
    e->io = check_model_io(e->graph, e->labelled, path);
    return e;
}

TEST(Metric, Top5CountsALabelAmongTheFiveLargestLogits) {
    auto e = lenet5();
    if (!e) GTEST_SKIP() << "no Fashion-MNIST";
    const Subset s{0, 500};
    const SubsetEvaluator top1(e->graph, e->labelled, s, e->pre, e->io, 128, Metric::Top1);
    const SubsetEvaluator top5(e->graph, e->labelled, s, e->pre, e->io, 128, Metric::Top5);
    const EvalResult a = top1.run_reference(), b = top5.run_reference();
    EXPECT_GT(b.correct, a.correct);
    EXPECT_GE(b.accuracy, 0.98);
    // Recount top-5 from the logits.
    ReferenceExecutor ex(e->graph);
    int64_t hits = 0;
    for (size_t i = 0; i < top5.batches().size(); ++i)
        for (bool h : in_top_k(ex.run({top5.batches()[i]}).at(0), top5.labels()[i], 5)) hits += h;
    EXPECT_EQ(hits, b.correct);
}

TEST(Metric, AgreementScoresTheBaselineOneAndCandidatesAgainstIt) {
    auto e = lenet5();
    if (!e) GTEST_SKIP() << "no Fashion-MNIST";
    const Subset val{512, 700};
    EvaluatorOptions opts;
    opts.metric = Metric::Agreement;
    compress::WeightSpec spec;
    for (EvalRuntime rt : {EvalRuntime::OneDnn, EvalRuntime::Reference}) {
        opts.runtime = rt;
        CandidateEvaluator un(e->graph, e->unlabelled, val, e->pre, e->io, spec, 8, opts);
        const CandidateMetrics base = un.baseline();
        EXPECT_EQ(base.accuracy, 1.0);
        EXPECT_EQ(base.correct, 700);
        // With labels present, agreement ignores them: the same figures.
        CandidateEvaluator lab(e->graph, e->labelled, val, e->pre, e->io, spec, 8, opts);
        std::vector<compress::LayerChoice> low(un.layers().size(), compress::LayerChoice{2, 0.5});
        const CandidateMetrics a = un.evaluate(low), b = lab.evaluate(low);
        EXPECT_EQ(a.correct, b.correct);
        EXPECT_LT(a.accuracy, 1.0);
        // Agreement differs from top-1 accuracy against the labels.
        EvaluatorOptions top1 = opts;
        top1.metric = Metric::Top1;
        CandidateEvaluator acc(e->graph, e->labelled, val, e->pre, e->io, spec, 8, top1);
        EXPECT_NE(acc.evaluate(low).correct, a.correct);
        EXPECT_LT(acc.baseline().accuracy, 1.0);
    }
}

TEST(EarlyStop, ClearlyBelowOnlyWhenEvenAnOptimisticRestCannotReachTheThreshold) {
    EXPECT_TRUE(clearly_below(50, 256, 2000, 0.8));     // 20% so far
    EXPECT_FALSE(clearly_below(250, 256, 2000, 0.8));   // 98% so far
    EXPECT_FALSE(clearly_below(200, 256, 2000, 0.8));   // 78%: not clearly below 80%
    EXPECT_TRUE(clearly_below(150, 256, 2000, 0.8));    // 59%
    EXPECT_FALSE(clearly_below(150, 2000, 2000, 0.8));  // nothing left to stop
    EXPECT_FALSE(clearly_below(0, 0, 2000, 0.8));
    // More samples seen narrow the interval: 70% is clear after 1024, not after 16.
    EXPECT_TRUE(clearly_below(717, 1024, 2000, 0.8));
    EXPECT_FALSE(clearly_below(11, 16, 2000, 0.8));
}

TEST(EarlyStop, ACandidateClearlyBelowStopsAndAGoodOneDoesNot) {
    auto e = lenet5();
    if (!e) GTEST_SKIP() << "no Fashion-MNIST";
    const Subset val{512, 2000};
    compress::WeightSpec spec;
    CandidateEvaluator ev(e->graph, e->labelled, val, e->pre, e->io, spec, 8, {});
    const std::vector<compress::LayerChoice> bad(ev.layers().size(), compress::LayerChoice{2, 0.9});
    const std::vector<compress::LayerChoice> good(ev.layers().size(), compress::LayerChoice{8, 0.0});
    const CandidateMetrics full_bad = ev.evaluate(bad), full_good = ev.evaluate(good);
    ASSERT_LT(full_bad.accuracy, 0.8);
    ASSERT_GT(full_good.accuracy, 0.85);
    const CandidateMetrics stopped = ev.evaluate(bad, 0.85);
    EXPECT_TRUE(stopped.stopped_early);
    EXPECT_LT(stopped.samples, 2000);
    EXPECT_EQ(stopped.samples % 256, 0);  // whole batches
    EXPECT_LT(stopped.accuracy, 0.85);
    // Latency is per forward pass run.
    EXPECT_NEAR(stopped.latency * static_cast<double>(stopped.samples / 256), stopped.forward_seconds, 1e-9);
    const CandidateMetrics kept = ev.evaluate(good, 0.85);
    EXPECT_FALSE(kept.stopped_early);
    EXPECT_EQ(kept.samples, 2000);
    EXPECT_EQ(kept.correct, full_good.correct);
    EXPECT_FALSE(full_bad.stopped_early);
}

}  // namespace
