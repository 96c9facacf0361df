#pragma once
/// Pruning: which weights are zeroed. A keep mask has one byte per element, 1 = kept, 0 = pruned; an
/// empty mask means nothing is pruned.
#include <cstdint>
#include <vector>

#include "compress/layout.hpp"
#include "compress/types.hpp"

namespace dcs::compress {

/// How many of `n` items (elements or channels) a prune ratio zeroes: floor(ratio * n + 1e-6). The
/// 1e-6 absorbs the binary representation error of ratios such as 0.29 (0.29 * 100 = 28.999999999999996
/// in double), so the count is the intended floor; pruning never removes more than ratio * n items
/// (up to that tolerance).
/// @param n     item count, >= 0
/// @param ratio in [0, 1)
/// @throws std::invalid_argument when ratio is outside [0, 1) or not a number, or n < 0
int64_t prune_count(int64_t n, double ratio);

/// Unstructured magnitude pruning: exactly prune_count(n, ratio) elements are pruned, those with the
/// smallest |w|; among equal magnitudes the lower flat index is pruned first (+0 and -0 are equal).
/// @param w     n finite floats
/// @param n     element count, >= 0
/// @param ratio in [0, 1)
/// @return the keep mask, empty when nothing is pruned
/// @throws std::invalid_argument as prune_count
std::vector<uint8_t> magnitude_prune_mask(const float* w, int64_t n, double ratio);

/// Filter (structured) pruning: exactly prune_count(l.channels, ratio) output channels are pruned
/// entirely, those with the smallest L1 norm; among equal norms the lower channel index first.
/// @return the keep mask over all l.numel() elements, empty when nothing is pruned
/// @throws std::invalid_argument as prune_count
std::vector<uint8_t> filter_prune_mask(const float* w, const Layout& l, double ratio);

namespace detail {
/// How magnitude_prune_mask found its threshold: None (nothing pruned); Sort (up to 4,096 elements);
/// beyond, from a bracket of a sample's keys, gathered with AVX-512 or portable code; Radix when the
/// bracket missed.
enum class SelectPath { None, Sort, BracketAvx512, Bracket, Radix };
/// magnitude_prune_mask, reporting its path (for tests; cpu::set_max_isa() turns the AVX-512 gather off).
std::vector<uint8_t> magnitude_prune_mask(const float* w, int64_t n, double ratio, SelectPath* path);
}  // namespace detail

/// magnitude_prune_mask or filter_prune_mask, by `kind`.
std::vector<uint8_t> prune_mask(const float* w, const Layout& l, double ratio, Pruning kind);

}  // namespace dcs::compress
