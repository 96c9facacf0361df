#pragma once
/// The trade-off report of a search (`dcsearch report`): one self-contained HTML file with inline SVG
/// charts, no scripts, fonts or other files; and the front as CSV. See docs/export.md.
#include <string>

#include "search/results_store.hpp"

namespace dcs::search {

/// The HTML report. Deterministic: the same results give the same bytes.
std::string report_html(const ResultsData& results);

/// The front as CSV: id, generation, accuracy, accuracy_drop_pt, size_bytes, compression_ratio, bops,
/// then `<layer>_bits` and `<layer>_prune` for every layer; one row per front member, by size.
std::string front_csv(const ResultsData& results);

}  // namespace dcs::search
