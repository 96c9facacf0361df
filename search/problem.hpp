#pragma once
/// The compression problem as the search sees it: a genome's measured metrics become objectives
/// (minimised) and a constraint violation (accuracy drop beyond the budget).
#include <functional>
#include <vector>

#include "runtime/candidate.hpp"
#include "search/evaluator.hpp"
#include "search/search_space.hpp"

namespace dcs::search {

struct ProblemSettings {
    double baseline_accuracy = 0.0;       ///< fraction
    double max_accuracy_drop = 2.0;       ///< percentage points
    std::vector<Objective> objectives{Objective::Accuracy, Objective::Size};
};

/// Fills objectives and violation of `e` from its measured metrics: accuracy -> 1 - accuracy (error),
/// size -> bytes, bops -> BOPs, latency -> seconds; violation = max(0, drop_pt - max_drop) / 100.
void score(Evaluation& e, const ProblemSettings& settings);

/// Evaluates one genome with `evaluator` and scores it. Never throws: a failure is an Evaluation with
/// ok = false and the message.
Evaluation evaluate_genome(const CandidateEvaluator& evaluator, const SearchSpace& space,
                           const ProblemSettings& settings, const Genome& genome);

/// Evaluates in this process, one genome after another.
class LocalEvaluator : public Evaluator {
public:
    LocalEvaluator(const CandidateEvaluator& evaluator, const SearchSpace& space, const ProblemSettings& settings)
        : evaluator_(evaluator), space_(space), settings_(settings) {}
    std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) override;
    /// Called after each evaluation (progress display).
    std::function<void(const Evaluation&)> on_result;

private:
    const CandidateEvaluator& evaluator_;
    const SearchSpace& space_;
    ProblemSettings settings_;
};

}  // namespace dcs::search
