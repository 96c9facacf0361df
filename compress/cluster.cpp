/// The "cluster" method (see cluster.hpp).
#include "compress/cluster.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "compress/method.hpp"
#include "compress/weight.hpp"

namespace dcs::compress {

KMeans1d kmeans_1d(const float* values, int64_t n, int k, const KMeansOptions& options) {
    if (k < 1 || k > 256) throw std::invalid_argument("kmeans_1d: k must be in 1..256, got " + std::to_string(k));
    if (options.max_iterations < 0)
        throw std::invalid_argument("kmeans_1d: max_iterations must be >= 0, got " +
                                    std::to_string(options.max_iterations));
    if (options.histogram_bins < 0 || options.histogram_bins > (1 << 24))
        throw std::invalid_argument("kmeans_1d: histogram_bins must be in 0..2^24, got " +
                                    std::to_string(options.histogram_bins));
    if (!(options.tolerance >= 0.0))
        throw std::invalid_argument("kmeans_1d: tolerance must be >= 0, got " + std::to_string(options.tolerance));
    KMeans1d r;
    const auto ks = static_cast<size_t>(k);
    r.centroids.assign(ks, 0.0f);
    r.labels.assign(static_cast<size_t>(n), 0);
    if (n == 0) return r;

    float vmin, vmax;
    value_range(values, n, &vmin, &vmax);
    const double lo = vmin, range = static_cast<double>(vmax) - lo;
    std::vector<double> c(ks);
    for (size_t j = 0; j < ks; ++j)
        c[j] = k == 1 ? lo + range / 2 : lo + range * static_cast<double>(j) / static_cast<double>(k - 1);

    // Histogram: each element's bin (float arithmetic, vectorizable), then per-bin count and sum.
    const int bins = options.histogram_bins > 0 ? options.histogram_bins
                                                : static_cast<int>(std::clamp<int64_t>(n / 4, 1024, 16384));
    const auto to_bin = static_cast<float>(range > 0 ? bins / range : 0.0);
    std::vector<uint32_t> bin_of(static_cast<size_t>(n));
    {
        uint32_t* out = bin_of.data();
        const auto last = static_cast<float>(bins - 1);
        for (int64_t i = 0; i < n; ++i) {
            float t = (values[i] - vmin) * to_bin;  // >= 0 (vmin is the minimum); may overflow to +inf
            t = t < last ? t : last;                // clamp before converting
            out[i] = static_cast<uint32_t>(t);
        }
    }
    std::vector<double> bin_sum(static_cast<size_t>(bins), 0.0);
    std::vector<int64_t> bin_count(static_cast<size_t>(bins), 0);
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t b = bin_of[static_cast<size_t>(i)];
        bin_sum[b] += values[i];
        ++bin_count[b];
    }
    // Non-empty bins in order: their means ascend, and prefix sums give any run's total in O(1).
    std::vector<uint32_t> used;
    std::vector<double> mean, prefix_sum{0.0}, prefix_count{0.0};
    for (uint32_t b = 0; b < static_cast<uint32_t>(bins); ++b)
        if (bin_count[b] > 0) {
            used.push_back(b);
            mean.push_back(bin_sum[b] / static_cast<double>(bin_count[b]));
            prefix_sum.push_back(prefix_sum.back() + bin_sum[b]);
            prefix_count.push_back(prefix_count.back() + static_cast<double>(bin_count[b]));
        }

    // Lloyd's iterations on the bins. Clusters are intervals between midpoints, so cluster j holds the
    // bins whose mean lies in (mid[j-1], mid[j]]: a binary search per midpoint, O(k log bins).
    std::vector<double> mid(ks > 1 ? ks - 1 : 0);
    auto update_midpoints = [&] {
        for (size_t j = 0; j + 1 < ks; ++j) mid[j] = (c[j] + c[j + 1]) / 2;
    };
    for (int it = 0; it < options.max_iterations && range > 0; ++it) {
        update_midpoints();
        double moved = 0.0;
        size_t begin = 0;
        for (size_t j = 0; j < ks; ++j) {
            const size_t end = j + 1 < ks ? static_cast<size_t>(std::upper_bound(mean.begin() + static_cast<std::ptrdiff_t>(begin),
                                                                                 mean.end(), mid[j]) - mean.begin())
                                          : mean.size();
            const double count = prefix_count[end] - prefix_count[begin];
            if (count > 0) {
                const double next = (prefix_sum[end] - prefix_sum[begin]) / count;
                moved = std::max(moved, std::fabs(next - c[j]));
                c[j] = next;
            }
            begin = end;
        }
        if (moved <= options.tolerance * range) break;
    }

    // Exact assignment: label(v) = number of midpoints strictly below v (a value on a midpoint goes to
    // the lower centroid). Labels grow with v, so a bin lying inside one cell gives that label to all its
    // values; the few bins that straddle a midpoint (or come within rounding distance of one) are
    // resolved value by value.
    update_midpoints();
    auto label_of = [&](double v, size_t j) {  // j: any starting guess
        while (j + 1 < ks && v > mid[j]) ++j;
        while (j > 0 && v <= mid[j - 1]) --j;
        return j;
    };
    std::vector<double> sum(ks, 0.0), cnt(ks, 0.0);
    std::vector<uint8_t> bin_label(static_cast<size_t>(bins), 0);  // label of the bin's lower edge
    std::vector<uint8_t> mixed(static_cast<size_t>(bins), 0);      // values of the bin may have several labels
    {
        const double width = range > 0 ? range / bins : 0.0;
        const double slack = 1e-5 * width + 4 * std::numeric_limits<float>::epsilon() * std::fabs(lo) + 1e-37;
        size_t j = 0;
        for (const uint32_t b : used) {
            j = label_of(lo + b * width - slack, j);
            const size_t j_hi = label_of(lo + (b + 1) * width + slack, j);
            bin_label[b] = static_cast<uint8_t>(j);
            if (j == j_hi) {
                sum[j] += bin_sum[b];
                cnt[j] += static_cast<double>(bin_count[b]);
            } else {
                mixed[b] = 1;
            }
        }
    }
    uint8_t* labels = r.labels.data();
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t b = bin_of[static_cast<size_t>(i)];
        labels[i] = bin_label[b];
        if (!mixed[b]) continue;
        const size_t j = label_of(values[i], bin_label[b]);
        labels[i] = static_cast<uint8_t>(j);
        sum[j] += values[i];
        cnt[j] += 1.0;
    }
    for (size_t q = 0; q < ks; ++q) {
        if (cnt[q] > 0) c[q] = sum[q] / cnt[q];
        r.centroids[q] = static_cast<float>(c[q]);
    }
    return r;
}

namespace {

const char* cluster_unsupported(int, const WeightSpec&) { return nullptr; }

void cluster_encode(const PrunedWeight& pw, const WeightSpec&, CompressedWeight& out) {
    out.scheme = Scheme::Symmetric;
    out.granularity = Granularity::PerTensor;
    const Layout l = out.layout();
    const std::vector<float> kept = kept_values(pw.weight(), l.numel(), out.mask);
    const KMeans1d km = kmeans_1d(kept.data(), static_cast<int64_t>(kept.size()), 1 << out.bits);
    out.codebook = km.centroids;
    out.scales.clear();
    out.zero_points.clear();
    const int offset = 1 << (out.bits - 1);
    const int64_t n = l.numel();
    out.codes.assign(static_cast<size_t>(n), 0);
    if (out.mask.empty()) {
        for (int64_t i = 0; i < n; ++i) out.codes[static_cast<size_t>(i)] = static_cast<int8_t>(km.labels[static_cast<size_t>(i)] - offset);
    } else {
        // Kept values are in memory order. Branch-free: every element takes the next label (pruned ones
        // are overwritten by compress_weight), and the position advances on kept elements only.
        const size_t kept = km.labels.size();
        const uint8_t* m = out.mask.data();
        int8_t* code = out.codes.data();
        size_t next = 0;
        for (int64_t i = 0; kept > 0 && i < n; ++i) {
            const size_t j = next < kept ? next : kept - 1;
            code[i] = static_cast<int8_t>(km.labels[j] - offset);
            next += m[i] != 0;
        }
    }
}

void cluster_decode(const CompressedWeight& cw, float* out) {
    const int offset = 1 << (cw.bits - 1);
    const int64_t n = cw.numel();
    for (int64_t i = 0; i < n; ++i) out[i] = cw.codebook[static_cast<size_t>(cw.codes[static_cast<size_t>(i)] + offset)];
}

CodeMap cluster_code_map(int bits, Scheme) { return CodeMap{-(1 << (bits - 1)), (1 << (bits - 1)) - 1, 1}; }

std::string cluster_check(const CompressedWeight& cw) {
    if (cw.codebook.size() != (size_t{1} << cw.bits))
        return "expected " + std::to_string(1 << cw.bits) + " codebook entries, got " + std::to_string(cw.codebook.size());
    for (size_t j = 0; j < cw.codebook.size(); ++j) {
        if (!std::isfinite(cw.codebook[j])) return "codebook entry " + std::to_string(j) + " is not finite";
        if (j > 0 && cw.codebook[j] < cw.codebook[j - 1]) return "codebook is not ascending";
    }
    if (!cw.scales.empty() || !cw.zero_points.empty()) return "clustered weight with scales or zero points";
    if (cw.scheme != Scheme::Symmetric || cw.granularity != Granularity::PerTensor)
        return "clustered weight must be marked symmetric and per-tensor";
    return "";
}

}  // namespace

/// Row of method_table(): k-means weight sharing, 1..8 bits, one codebook per layer.
extern const WeightMethod cluster_method;
const WeightMethod cluster_method = {
    /*id=*/3, "cluster", Method::Cluster, /*min_bits=*/1, /*max_bits=*/8, /*int8_codes=*/false,
    cluster_unsupported, cluster_encode, cluster_decode, cluster_code_map, cluster_check,
};

}  // namespace dcs::compress
