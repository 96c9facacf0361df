#pragma once
/// Queries on a search's results: its feasible front, the smallest candidate within an accuracy drop,
/// one evaluation's layer choices. The one home of these for the search (`search --json`), `export`
/// and `report`; pure arithmetic on the recorded evaluations (no runtime, no HDF5).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "compress/types.hpp"
#include "search/evaluator.hpp"
#include "search/results_store.hpp"

namespace dcs::search {

inline bool is_feasible(const Evaluation& e) {
    return e.ok && e.violation <= 0.0;
}

/// `ids` in ascending order of id, then stably by recorded size: the order in which fronts are shown
/// (`search --json`, the report, its CSV).
std::vector<size_t> sorted_by_size(std::vector<size_t> ids, const std::vector<Evaluation>& evaluations);

/// Accuracy drop of `e` from the baseline in percentage points.
double accuracy_drop_pt(const ResultsData& results, const Evaluation& e);

/// The held-out test subset (dataset.test): the accuracy drop of evaluation `id` from the fp32
/// baseline's test accuracy, in percentage points; NaN when the results hold no test accuracy for it.
double test_drop_pt(const ResultsData& results, size_t id);

/// Points by which a candidate's test drop may exceed its validation drop before the report, `export`
/// and the search summary flag it as losing more on held-out data than the search saw.
constexpr double kTestGapPt = 0.5;

/// True when evaluation `id` has a test accuracy and its test drop exceeds its validation drop by more
/// than kTestGapPt points.
bool loses_more_on_test(const ResultsData& results, size_t id);

/// The objectives (to minimise) of an evaluation, rebuilt from its recorded fields in the results
/// file's objective order (accuracy and size when the file names none).
std::vector<double> objectives_of(const ResultsData& results, const Evaluation& e);

/// The feasible Pareto front of every successful evaluation (the one `search --json` prints): feasible
/// evaluations no other feasible one dominates on the recorded objectives, sorted by size (ties: id).
std::vector<size_t> feasible_front(const ResultsData& results);

/// Which evaluations smallest_within considers.
enum class Within {
    AnySuccessful,  ///< every successful evaluation (the report's summary: "within 2 pt")
    FeasibleOnly,   ///< successful and feasible under the search's budget (`export --max-drop`)
};

/// The smallest evaluation (ties: the more accurate, then the lower id) among `which` whose accuracy
/// drop from the baseline is at most `max_drop` percentage points (1e-9 tolerance), or
/// results.evaluations.size() when there is none.
size_t smallest_within(const ResultsData& results, double max_drop, Within which = Within::AnySuccessful);

/// `export --max-drop`: smallest_within(results, max_drop, Within::FeasibleOnly).
/// @throws InputError when `max_drop` is negative or not finite, or no feasible candidate is within it
///         (the message gives the smallest drop available)
size_t select_by_max_drop(const ResultsData& results, double max_drop);

/// `export --id`: checks that `id` names a successful evaluation and returns it as an index.
/// @throws InputError on an id outside 0..N-1 or a failed evaluation (with its error)
size_t select_by_id(const ResultsData& results, int64_t id);

/// The per-layer choices of evaluation `id`, decoded with the results file's layer table.
/// @throws InputError when the genome does not fit the layer table
std::vector<compress::LayerChoice> choices_of(const ResultsData& results, size_t id);

/// The first successful evaluation whose every layer has `bits` bits and no pruning, or
/// results.evaluations.size() when none was evaluated.
size_t uniform_evaluation(const ResultsData& results, int bits);

}  // namespace dcs::search
