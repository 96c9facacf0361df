// Tests of search/run_stats.cpp: the per-run accounting kept in the results file and its summary.
#include <gtest/gtest.h>

#include <thread>

#include "search/run_stats.hpp"

using namespace dcs::search;

namespace {

Evaluation evaluation(int gene, int rank, double seconds, double peak_rss = 0.0) {
    Evaluation e;
    e.genome = {gene};
    e.rank = rank;
    e.seconds = seconds;
    e.peak_rss_bytes = peak_rss;
    return e;
}

TEST(RunStats, CountsThisRunsEvaluationsPerWorkerIdleOnesIncluded) {
    ResultsData earlier;
    earlier.evaluations = {evaluation(0, 1, 5.0), evaluation(1, 2, 5.0)};
    earlier.runs = {{10.0, 0.5, 2}};
    earlier.workers = {{0, 1, 1, 5.0}, {0, 2, 1, 5.0}};
    RunAccounting acc(earlier, {1, 2, 3});
    ResultsData now = earlier;
    now.runs.clear();
    now.workers.clear();
    now.evaluations.push_back(evaluation(2, 1, 0.25, 3e8));
    now.evaluations.push_back(evaluation(3, 1, 0.5, 2e8));
    now.evaluations.push_back(evaluation(4, 2, 1.0, 1e8));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ResultsData out = acc.with_runs(now);
    ASSERT_EQ(out.runs.size(), 2u);
    EXPECT_DOUBLE_EQ(out.runs[0].wall_seconds, 10.0);  // the earlier run is kept as it was
    EXPECT_EQ(out.runs[1].workers, 3);
    EXPECT_GE(out.runs[1].wall_seconds, 0.02);
    EXPECT_GE(out.runs[1].coordinator_cpu_seconds, 0.0);
    ASSERT_EQ(out.workers.size(), 5u);
    // This run: rank 1 did two (0.75 s), rank 2 one (1 s), rank 3 none; earlier evaluations not counted.
    EXPECT_EQ(out.workers[2].run, 1);
    EXPECT_EQ(out.workers[2].rank, 1);
    EXPECT_EQ(out.workers[2].evaluations, 2);
    EXPECT_DOUBLE_EQ(out.workers[2].busy_seconds, 0.75);
    EXPECT_DOUBLE_EQ(out.workers[2].peak_rss_bytes, 3e8);  // the largest of its evaluations
    EXPECT_DOUBLE_EQ(out.workers[3].peak_rss_bytes, 1e8);
    EXPECT_EQ(out.workers[3].rank, 2);
    EXPECT_EQ(out.workers[3].evaluations, 1);
    EXPECT_EQ(out.workers[4].rank, 3);
    EXPECT_EQ(out.workers[4].evaluations, 0);
    EXPECT_EQ(out.evaluations.size(), now.evaluations.size());
}

TEST(RunStats, SummaryGivesTheBusyShareAndTheSpread) {
    ResultsData d;
    d.runs = {{10.0, 0.2, 2}, {4.0, 4.0, 1}};
    d.workers = {{0, 1, 30, 9.0}, {0, 2, 25, 7.0}, {1, 0, 12, 3.0}};
    auto lines = run_summary(d);
    ASSERT_EQ(lines.size(), 2u);
    // (9 + 7) / (2 x 10) = 80%; coordinator 0.2 / 10 = 2%.
    EXPECT_NE(lines[0].find("55 evaluations by 2 workers in 10.0 s, busy 80%"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("least busy rank 2: 7.0 s, busiest rank 1: 9.0 s"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("coordinator CPU 0.20 s (2.0%)"), std::string::npos) << lines[0];
    EXPECT_NE(lines[1].find("resumed run 2: 12 evaluations in 1 process in 4.0 s, busy 75% of the time"), std::string::npos) << lines[1];
    EXPECT_EQ(lines[1].find("coordinator"), std::string::npos) << "one process: no coordinator of its own";
    EXPECT_TRUE(run_summary(ResultsData{}).empty());
    // One worker rank under MPI: rank 0 coordinates.
    d.runs = {{2.0, 0.1, 1}};
    d.workers = {{0, 1, 8, 1.5}};
    lines = run_summary(d);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "run 1: 8 evaluations by 1 worker in 2.0 s, busy 75% of the time; coordinator CPU 0.10 s (5.0%)");
    // Peak memory: the largest worker's, when recorded.
    d.runs = {{10.0, 0.2, 2}};
    d.workers = {{0, 1, 30, 9.0, 7.5e8}, {0, 2, 25, 7.0, 9.25e8}};
    lines = run_summary(d);
    EXPECT_NE(lines[0].find("; peak memory 925 MB (rank 2)"), std::string::npos) << lines[0];
}

}  // namespace
