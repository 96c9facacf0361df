#pragma once
// Deterministic random tensors for the compress tests (fixed seeds: the same seed gives the same data).
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace dcs::compress::testing {

/// n values ~ N(0, sigma) from std::mt19937(seed). std::normal_distribution is implementation-defined,
/// so values come from a Box-Muller transform of the engine's raw output instead.
inline std::vector<float> normal_tensor(int64_t n, uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) {
        const double u1 = (static_cast<double>(rng()) + 1.0) / 4294967297.0;
        const double u2 = static_cast<double>(rng()) / 4294967296.0;
        x = static_cast<float>(sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    return v;
}

inline int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

}  // namespace dcs::compress::testing
