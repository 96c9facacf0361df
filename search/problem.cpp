#include "search/problem.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <new>

namespace dcs::search {

void score(Evaluation& e, const ProblemSettings& s) {
    e.objectives.clear();
    for (Objective o : s.objectives) {
        switch (o) {
            case Objective::Accuracy: e.objectives.push_back(1.0 - e.accuracy); break;
            case Objective::Size: e.objectives.push_back(e.size_bytes); break;
            case Objective::Bops: e.objectives.push_back(e.bops); break;
            case Objective::Latency: e.objectives.push_back(e.latency); break;
        }
    }
    const double drop_pt = (s.baseline_accuracy - e.accuracy) * 100.0;
    // Accuracies are ratios of counts: a drop of exactly the budget (0.90 -> 0.89 with 1.0 pt) must not
    // become infeasible through rounding (1.0000000000000009 pt).
    const double excess = drop_pt - s.max_accuracy_drop;
    e.violation = excess > 1e-9 ? excess / 100.0 : 0.0;
}

Evaluation evaluate_genome(const CandidateEvaluator& evaluator, const SearchSpace& space,
                           const ProblemSettings& settings, const Genome& genome) {
    Evaluation e;
    e.genome = genome;
    auto t0 = std::chrono::steady_clock::now();
    try {
        CandidateMetrics m = evaluator.evaluate(space.decode(genome));
        e.accuracy = m.accuracy;
        e.size_bytes = static_cast<double>(m.size_bytes);
        e.bops = m.bops;
        e.latency = m.latency;
        score(e, settings);
    } catch (const std::bad_alloc&) {
        e.ok = false;
        e.error = "out of memory while evaluating";
    } catch (const std::exception& ex) {
        e.ok = false;
        e.error = ex.what();
    }
    if (!e.ok) score(e, settings);
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return e;
}

std::vector<Evaluation> LocalEvaluator::evaluate(const std::vector<Genome>& batch) {
    std::vector<Evaluation> out;
    out.reserve(batch.size());
    for (const auto& g : batch) {
        out.push_back(evaluate_genome(evaluator_, space_, settings_, g));
        if (on_result) on_result(out.back());
    }
    return out;
}

}  // namespace dcs::search
