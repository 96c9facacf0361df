#pragma once
/// The trade-off report of a search (`dcsearch report`): one self-contained HTML file with inline SVG
/// charts, no scripts, fonts or other files; and the front as CSV. See docs/export.md.
#include <cstddef>
#include <string>
#include <vector>

#include "search/results_store.hpp"

namespace dcs::search {

/// The feasible Pareto front of every successful evaluation (the one `search --json` prints): feasible
/// evaluations no other feasible one dominates on the recorded objectives, sorted by size (ties: id).
std::vector<size_t> feasible_front(const ResultsData& results);

/// Best compression within an accuracy budget: the smallest successful evaluation whose drop from the
/// baseline is at most `max_drop` points; returns results.evaluations.size() when there is none.
size_t smallest_within(const ResultsData& results, double max_drop);

/// The first successful evaluation whose every layer has `bits` bits and no pruning, or
/// results.evaluations.size() when none was evaluated.
size_t uniform_evaluation(const ResultsData& results, int bits);

/// The HTML report. Deterministic: the same results give the same bytes.
std::string report_html(const ResultsData& results);

/// The front as CSV: id, generation, accuracy, accuracy_drop_pt, size_bytes, compression_ratio, bops,
/// then `<layer>_bits` and `<layer>_prune` for every layer; one row per front member, by size.
std::string front_csv(const ResultsData& results);

}  // namespace dcs::search
