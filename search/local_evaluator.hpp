#pragma once
/// Evaluation of genomes in this process with the runtime's CandidateEvaluator (oneDNN, the dataset),
/// scored by search/scoring.hpp. The search core (nsga2, pareto, driver) does not need it.
#include <functional>
#include <vector>

#include "runtime/candidate.hpp"
#include "search/evaluator.hpp"
#include "search/scoring.hpp"
#include "search/search_space.hpp"

namespace dcs::search {

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
