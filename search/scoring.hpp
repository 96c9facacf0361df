#pragma once
/// The compression problem as the search scores it: pure arithmetic that turns a genome's measured
/// metrics into objectives (minimised) and a constraint violation (accuracy drop beyond the budget).
/// Nothing here needs the runtime: the search core (nsga2, driver, the MPI coordinator) and its tests
/// use it without the evaluator that measures the metrics (search/local_evaluator.hpp).
#include <vector>

#include "search/evaluator.hpp"
#include "search/search_space.hpp"

namespace dcs::search {

struct ProblemSettings {
    double baseline_accuracy = 0.0;       ///< fraction
    double max_accuracy_drop = 2.0;       ///< percentage points
    std::vector<Objective> objectives{Objective::Accuracy, Objective::Size};
    /// search.early_stop: an evaluation stops once its accuracy is clearly below this fraction (the
    /// baseline minus the budget); < 0: every evaluation runs over the whole validation subset.
    double early_stop_below = -1.0;
};

/// Fills objectives and violation of `e` from its measured metrics: accuracy -> 1 - accuracy (error),
/// size -> bytes, bops -> BOPs, latency -> seconds; violation = max(0, drop_pt - max_drop) / 100.
void score(Evaluation& e, const ProblemSettings& settings);

}  // namespace dcs::search
