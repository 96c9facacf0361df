#include "search/scoring.hpp"

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

}  // namespace dcs::search
