#pragma once
/// The whole search over an abstract evaluator: sensitivity scan, seeding, NSGA-II (or random search,
/// Nsga2Params::random_search, which takes no seeds), checkpoints into the results data. It never sees MPI or HDF5: the caller supplies the evaluator and what a
/// checkpoint does.
#include <functional>
#include <string>
#include <vector>

#include "search/evaluator.hpp"
#include "search/nsga2.hpp"
#include "search/scoring.hpp"
#include "search/results_store.hpp"
#include "search/search_space.hpp"

namespace dcs::search {

struct SearchSettings {
    Nsga2Params nsga;
    ProblemSettings problem;
    bool sensitivity_scan = true;
    /// Size budgets of the greedy seeds, as fractions of the fp32 size.
    std::vector<double> seed_budgets{1.0 / 6, 1.0 / 8, 1.0 / 12, 1.0 / 16, 1.0 / 24};
    /// Accuracy budgets of the greedy seeds, as shares of max_accuracy_drop (the drops the scan measured
    /// per layer are added up as an estimate).
    std::vector<double> seed_drop_shares{0.25, 0.5, 0.75, 1.0, 1.5, 2.0};
};

/// Progress as the search goes.
struct Progress {
    int64_t done = 0;          ///< evaluations finished (resumed ones included)
    int64_t planned = 0;       ///< evaluations the run plans in all (an upper bound)
    int generation = -1;       ///< -1 during the sensitivity scan
    int generations = 0;
    size_t front_size = 0;     ///< feasible front so far
    double hypervolume = 0.0;  ///< fraction of the reference box [0, ref]
    int64_t resumed = 0;       ///< evaluations taken from the results file
    bool batch_end = false;    ///< the sensitivity scan or a generation just finished
};

class SearchDriver {
public:
    /// `data` holds the static parts of the results (config, layers, baseline...); the driver fills
    /// evaluations, generations and the hypervolume reference point.
    SearchDriver(const SearchSpace& space, SearchSettings settings, ResultsData data);

    /// Evaluations finished by an earlier run of the same search (resume); never evaluated again.
    void resume_from(const std::vector<Evaluation>& done);

    /// Runs the search. `checkpoint` receives the results so far after every batch and at least every
    /// `checkpoint_seconds` while a batch runs (through note_result), but not twice within
    /// `checkpoint_min_seconds` (the first batch always checkpoints, the end of the search too);
    /// `progress` after each result.
    void run(Evaluator& evaluator, const std::function<void(const ResultsData&)>& checkpoint,
             const std::function<void(const Progress&)>& progress = {});

    /// For evaluators that report results one by one (LocalEvaluator::on_result, the MPI evaluator):
    /// keeps the result so that a checkpoint taken before its batch ends still saves it.
    void note_result(const Evaluation& e);

    const ResultsData& results() const { return data_; }
    /// Archive indices of the feasible front, by ascending size.
    std::vector<size_t> front() const;
    const Nsga2& algorithm() const { return nsga_; }
    double checkpoint_seconds = 10.0;
    /// Short generations (small models) would otherwise rewrite the file many times a second, which
    /// was a third of the coordinator's CPU time (docs/performance.md, "MPI scaling").
    double checkpoint_min_seconds = 1.0;

private:
    std::vector<Genome> scan_genomes() const;
    std::vector<Genome> greedy_seeds(const std::vector<size_t>& scan) const;
    void sync(bool complete);
    void report(bool batch_end = false);

    const SearchSpace& space_;
    SearchSettings settings_;
    ResultsData data_;
    Nsga2 nsga_;
    std::vector<Evaluation> pending_;  ///< finished, not yet in the archive
    std::function<void(const ResultsData&)> checkpoint_;
    std::function<void(const Progress&)> progress_;
    double last_checkpoint_ = 0.0;
    int64_t planned_ = 0;
    int64_t resumed_ = 0;
    int generation_ = -1;
};

}  // namespace dcs::search
