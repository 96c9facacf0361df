#pragma once
/// How busy a search kept its processes: per run (the first and each `--resume`), the wall time, rank
/// 0's CPU time and each evaluating process's busy time (the sum of its evaluation times), kept in the
/// results file (`/runs`, docs/results-format.md) and summarised in the report and at the end of a search.
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "search/results_store.hpp"

namespace dcs::search {

/// Measures one run of the search from its construction.
class RunAccounting {
public:
    /// @param earlier   the results of the runs before this one (empty for a new search): their run
    ///                  table is kept, their evaluations are not counted again
    /// @param worker_ranks the ranks that evaluate in this run (every one gets a row, idle ones too)
    RunAccounting(const ResultsData& earlier, std::vector<int> worker_ranks);

    /// `d` with the run table of the earlier runs and this run's row and worker rows as of now.
    ResultsData with_runs(const ResultsData& d) const;

private:
    std::vector<RunRow> runs_;
    std::vector<WorkerRow> workers_;
    std::set<Genome> earlier_;
    std::vector<int> ranks_;
    std::chrono::steady_clock::time_point t0_;
    double cpu0_ = 0.0;
};

/// The CPU time of this process so far, all threads (CLOCK_PROCESS_CPUTIME_ID), in seconds.
double process_cpu_seconds();

/// One line per run: workers, wall time, the workers' busy share (busy seconds over workers x wall),
/// the spread of busy time between them and rank 0's CPU share. Empty when the file has no run table.
std::vector<std::string> run_summary(const ResultsData& d);

}  // namespace dcs::search
