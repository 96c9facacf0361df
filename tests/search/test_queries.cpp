// Queries on a search's results: the front, the smallest candidate within a drop, one candidate's
// layer choices (what `search --json`, `export` and `report` share).
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.hpp"
#include "search/queries.hpp"

using namespace dcs;
using namespace dcs::search;

namespace {

Evaluation row(std::vector<int> genome, double acc, double size, bool ok = true, double violation = 0.0) {
    Evaluation e;
    e.genome = std::move(genome);
    e.accuracy = acc;
    e.size_bytes = size;
    e.ok = ok;
    e.violation = violation;
    if (!ok) e.error = "boom";
    return e;
}

ResultsData sample() {
    ResultsData r;
    r.layers = {LayerRow{"a", "Conv", {2, 1, 3, 3}, 20, 100, {2, 4, 8}, {0.0, 0.5, 0.75}},
                LayerRow{"b", "Gemm", {10, 8}, 90, 80, {4, 8}, {0.0, 0.9}}};
    r.baseline_accuracy = 0.90;
    r.max_accuracy_drop = 2.0;
    r.evaluations = {
        row({2, 0, 1, 0}, 0.905, 3000),             // 0
        row({0, 2, 0, 1}, 0.880, 900),              // 1: drop 2 pt, feasible
        row({1, 1, 0, 0}, 0.895, 1200),             // 2: drop 0.5 pt
        row({1, 0, 0, 0}, 0.899, 1200),             // 3: same size as 2, more accurate
        row({0, 0, 0, 0}, 0.0, 0, false),           // 4: failed
        row({0, 1, 0, 1}, 0.850, 500, true, 0.03),  // 5: infeasible
        row({1, 1, 1, 1}, 0.870, 800),              // 6: drop 3 pt, feasible only by its recorded flag
    };
    return r;
}

}  // namespace

TEST(Queries, ChoicesOfDecodesTheGenomeWithTheLayerTable) {
    const ResultsData r = sample();
    const auto c = choices_of(r, 1);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].weight_bits, 2);
    EXPECT_DOUBLE_EQ(c[0].prune_ratio, 0.75);
    EXPECT_EQ(c[1].weight_bits, 4);
    EXPECT_DOUBLE_EQ(c[1].prune_ratio, 0.9);
    ResultsData bad = r;
    bad.evaluations[0].genome = {3, 0, 0, 0};  // bits index out of range
    EXPECT_THROW(choices_of(bad, 0), InputError);
    bad.evaluations[0].genome = {0, 0};
    EXPECT_THROW(choices_of(bad, 0), InputError);
}

TEST(Queries, SelectById) {
    const ResultsData r = sample();
    EXPECT_EQ(select_by_id(r, 2), 2u);
    EXPECT_EQ(select_by_id(r, 5), 5u);  // infeasible but evaluated: may be exported on purpose
    EXPECT_THROW(select_by_id(r, 7), InputError);
    EXPECT_THROW(select_by_id(r, -1), InputError);
    try {
        select_by_id(r, 4);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos) << e.what();
    }
}

TEST(Queries, SelectByMaxDropPicksTheSmallestFeasibleWithinTheDrop) {
    const ResultsData r = sample();
    EXPECT_EQ(select_by_max_drop(r, 0.0), 0u);  // only the unpruned 8-bit row loses nothing
    EXPECT_EQ(select_by_max_drop(r, 0.5), 3u);  // 2 and 3 tie on size: the more accurate
    EXPECT_EQ(select_by_max_drop(r, 2.0), 1u);
    EXPECT_EQ(select_by_max_drop(r, 10.0), 6u);  // 5 is smaller but infeasible
    EXPECT_THROW(select_by_max_drop(r, -0.1), InputError);
    EXPECT_THROW(select_by_max_drop(r, NAN), InputError);
    ResultsData worse = r;
    worse.baseline_accuracy = 1.0;  // every drop >= 9.5 pt
    try {
        select_by_max_drop(worse, 1.0);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("smallest drop recorded is 9.5"), std::string::npos) << e.what();
    }
    ResultsData none = r;
    for (auto& e : none.evaluations) e.violation = 1.0;
    EXPECT_THROW(select_by_max_drop(none, 100.0), InputError);
}

TEST(Queries, SmallestWithinConsidersInfeasibleCandidatesOnlyWhenAsked) {
    const ResultsData r = sample();
    // 5 (drop 5 pt) is the smallest successful one, but outside the search's budget.
    EXPECT_EQ(smallest_within(r, 10.0), 5u);
    EXPECT_EQ(smallest_within(r, 10.0, Within::FeasibleOnly), 6u);
    EXPECT_EQ(smallest_within(r, 0.5, Within::FeasibleOnly), 3u);
    EXPECT_EQ(smallest_within(r, -1.0), r.evaluations.size());
}

TEST(Queries, FeasibleFrontIsSortedBySizeThenId) {
    ResultsData r = sample();
    r.objectives = {"accuracy", "size"};
    // 0, 3, 1 and 6 are feasible and mutually non-dominated; 2 is dominated by 3.
    EXPECT_EQ(feasible_front(r), (std::vector<size_t>{6, 1, 3, 0}));
    EXPECT_EQ(sorted_by_size({3, 2, 1}, r.evaluations), (std::vector<size_t>{1, 2, 3}));
    EXPECT_DOUBLE_EQ(accuracy_drop_pt(r, r.evaluations[1]), 2.0);
}
