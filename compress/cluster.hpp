#pragma once
/// The "cluster" method: Deep Compression's weight sharing. The kept weights of a layer are clustered
/// by 1-D k-means into 2^b centroids (one codebook per layer, whatever the granularity); each kept
/// weight stores the index of its centroid. Pruned weights are left out of the clustering and stay
/// exactly zero through the mask.
///
/// Container codes are index - 2^(b-1), in [-2^(b-1), 2^(b-1)-1], so 8-bit indices fit an int8.
#include <cstdint>
#include <vector>

namespace dcs::compress {

/// Settings of kmeans_1d.
struct KMeansOptions {
    int max_iterations = 100;  ///< Lloyd iterations on the histogram, >= 0
    double tolerance = 1e-6;   ///< stop when no centroid moves more than tolerance * (max - min)
    int histogram_bins = 0;    ///< 0: clamp(n / 4, 1024, 16384); else 1..2^24
};

/// Result of kmeans_1d.
struct KMeans1d {
    std::vector<float> centroids;  ///< k values, ascending (non-decreasing)
    std::vector<uint8_t> labels;   ///< per value: index of its centroid
};

/// Deterministic 1-D k-means.
///
/// 1. Centroids start evenly spaced over [min, max] (linear initialisation, which Deep Compression found
///    best because it keeps the few large weights represented).
/// 2. Lloyd's iterations run on a histogram of `histogram_bins` equal bins over [min, max], each bin
///    standing for the mean of its values. In one dimension the clusters are intervals between
///    midpoints of adjacent centroids, so with prefix sums over the bins an iteration costs
///    O(k log bins), whatever n is.
/// 3. Each value is then assigned exactly to its nearest centroid (a value on a midpoint goes to the
///    lower one), and each centroid becomes the exact mean of its values (a centroid without values
///    keeps its position). Centroids stay ascending throughout.
/// Cost O(n + bins + iterations * k log bins).
/// @param values n finite floats (n may be 0: the centroids are then all 0)
/// @param k      1..256
/// @throws std::invalid_argument when k is outside 1..256 or an option is out of range
KMeans1d kmeans_1d(const float* values, int64_t n, int k, const KMeansOptions& options = {});

}  // namespace dcs::compress
