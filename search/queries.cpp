#include "search/queries.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "common/error.hpp"

namespace dcs::search {
std::vector<size_t> sorted_by_size(std::vector<size_t> ids, const std::vector<Evaluation>& evaluations) {
    std::sort(ids.begin(), ids.end());
    std::stable_sort(ids.begin(), ids.end(),
                     [&](size_t a, size_t b) { return evaluations[a].size_bytes < evaluations[b].size_bytes; });
    return ids;
}

double accuracy_drop_pt(const ResultsData& r, const Evaluation& e) {
    return (r.baseline_accuracy - e.accuracy) * 100.0;
}

double test_drop_pt(const ResultsData& r, size_t id) {
    if (!r.test) return std::nan("");
    return (r.test->baseline_accuracy - r.test->accuracy_of(id)) * 100.0;
}

bool loses_more_on_test(const ResultsData& r, size_t id) {
    const double t = test_drop_pt(r, id);  // NaN compares false
    return id < r.evaluations.size() && t - accuracy_drop_pt(r, r.evaluations[id]) > kTestGapPt + 1e-9;
}

std::vector<double> objectives_of(const ResultsData& r, const Evaluation& e) {
    std::vector<double> o;
    for (const auto& name : r.objectives) {
        if (name == "accuracy")
            o.push_back(1.0 - e.accuracy);
        else if (name == "size")
            o.push_back(e.size_bytes);
        else if (name == "bops")
            o.push_back(e.bops);
        else if (name == "latency")
            o.push_back(e.latency);
    }
    if (o.empty()) o = {1.0 - e.accuracy, e.size_bytes};
    return o;
}

std::vector<size_t> feasible_front(const ResultsData& r) {
    // The same incremental archive front as the search keeps (Nsga2), so it matches `search --json`.
    std::vector<std::vector<double>> obj;
    for (const auto& e : r.evaluations) obj.push_back(objectives_of(r, e));
    std::vector<size_t> f;
    for (size_t i = 0; i < r.evaluations.size(); ++i)
        if (is_feasible(r.evaluations[i]))
            add_to_front(f, i, [&](size_t j) -> const std::vector<double>& { return obj[j]; });
    return sorted_by_size(std::move(f), r.evaluations);
}

size_t smallest_within(const ResultsData& r, double max_drop, Within which) {
    size_t best = r.evaluations.size();
    for (size_t i = 0; i < r.evaluations.size(); ++i) {
        const Evaluation& e = r.evaluations[i];
        if (!e.ok || (which == Within::FeasibleOnly && e.violation > 0.0)) continue;
        if (accuracy_drop_pt(r, e) > max_drop + 1e-9) continue;
        if (best == r.evaluations.size() || e.size_bytes < r.evaluations[best].size_bytes ||
            (e.size_bytes == r.evaluations[best].size_bytes && e.accuracy > r.evaluations[best].accuracy))
            best = i;
    }
    return best;
}

size_t select_by_max_drop(const ResultsData& results, double max_drop) {
    if (!std::isfinite(max_drop) || max_drop < 0.0)
        throw InputError("--max-drop: expected a number of percentage points >= 0, got " + std::to_string(max_drop));
    const size_t best = smallest_within(results, max_drop, Within::FeasibleOnly);
    if (best < results.evaluations.size()) return best;
    double smallest_drop = INFINITY;
    for (const Evaluation& e : results.evaluations)
        if (is_feasible(e)) smallest_drop = std::min(smallest_drop, accuracy_drop_pt(results, e));
    std::ostringstream ss;
    ss << "--max-drop " << max_drop << ": no feasible candidate loses at most " << max_drop << " points of accuracy";
    if (std::isfinite(smallest_drop))
        ss << " (the smallest drop recorded is " << smallest_drop << " points)";
    else
        ss << " (the results file has no feasible candidate)";
    throw InputError(ss.str());
}

size_t select_by_id(const ResultsData& results, int64_t id) {
    const int64_t n = static_cast<int64_t>(results.evaluations.size());
    if (id < 0 || id >= n)
        throw InputError("--id " + std::to_string(id) + ": no such evaluation (the results file has ids 0.." +
                         std::to_string(n - 1) + ")");
    const Evaluation& e = results.evaluations[static_cast<size_t>(id)];
    if (!e.ok) throw InputError("--id " + std::to_string(id) + ": that evaluation failed (" + e.error + ")");
    return static_cast<size_t>(id);
}

std::vector<compress::LayerChoice> choices_of(const ResultsData& results, size_t id) {
    const Evaluation& e = results.evaluations.at(id);
    const size_t nl = results.layers.size();
    if (e.genome.size() != 2 * nl)
        throw InputError("evaluation " + std::to_string(id) + " has " + std::to_string(e.genome.size()) +
                         " genes, the layer table " + std::to_string(nl) + " layers");
    std::vector<compress::LayerChoice> out(nl);
    for (size_t l = 0; l < nl; ++l) {
        const LayerRow& row = results.layers[l];
        const int b = e.genome[2 * l], p = e.genome[2 * l + 1];
        if (b < 0 || b >= static_cast<int>(row.bits.size()) || p < 0 || p >= static_cast<int>(row.prunes.size()))
            throw InputError("evaluation " + std::to_string(id) + ": layer '" + row.name +
                             "' has a gene outside its choices");
        out[l].weight_bits = row.bits[b];
        out[l].prune_ratio = row.prunes[p];
    }
    return out;
}

size_t uniform_evaluation(const ResultsData& r, int bits) {
    for (size_t i = 0; i < r.evaluations.size(); ++i) {
        if (!r.evaluations[i].ok) continue;
        try {
            const auto ch = choices_of(r, i);
            if (!ch.empty() && std::all_of(ch.begin(), ch.end(), [&](const compress::LayerChoice& c) {
                    return c.weight_bits == bits && c.prune_ratio == 0.0;
                }))
                return i;
        } catch (const std::exception&) {
        }
    }
    return r.evaluations.size();
}

}  // namespace dcs::search
