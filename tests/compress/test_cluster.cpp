#include "compress/cluster.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "compress/method.hpp"
#include "compress/weight.hpp"
#include "random_tensor.hpp"

using namespace dcs::compress;
using dcs::compress::testing::normal_tensor;

namespace {

double sse_of(const std::vector<float>& v, const KMeans1d& r) {
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        const double d = v[i] - r.centroids[r.labels[i]];
        s += d * d;
    }
    return s;
}

}  // namespace

// By hand: two well separated groups; linear initialisation at 0 and 12 already splits them, and the
// centroids become the group means 1 and 11.
TEST(KMeansGolden, TwoGroups) {
    const std::vector<float> v = {0, 1, 2, 10, 11, 12};
    const KMeans1d r = kmeans_1d(v.data(), 6, 2);
    EXPECT_EQ(r.centroids, (std::vector<float>{1.0f, 11.0f}));
    EXPECT_EQ(r.labels, (std::vector<uint8_t>{0, 0, 0, 1, 1, 1}));
}

// By hand: {0, 1, 2, 3, 100} with k = 2. Start 0 and 100 (midpoint 50): clusters {0..3} and {100}, which
// are already stable: centroids 1.5 and 100.
TEST(KMeansGolden, Outlier) {
    const std::vector<float> v = {3, 0, 100, 1, 2};
    const KMeans1d r = kmeans_1d(v.data(), 5, 2);
    EXPECT_EQ(r.centroids, (std::vector<float>{1.5f, 100.0f}));
    EXPECT_EQ(r.labels, (std::vector<uint8_t>{0, 0, 1, 0, 0}));
}

// By hand: {0, 1, 2} with k = 3 and no iterations: centroids 0, 1, 2 hold one value each.
// A value on a midpoint (0.5 between 0 and 1 with k = 2 over {0, 0.5, 1}) goes to the lower centroid.
TEST(KMeansGolden, ExactFitAndMidpointTies) {
    const std::vector<float> v = {0, 1, 2};
    KMeansOptions once;
    once.max_iterations = 0;
    const KMeans1d r = kmeans_1d(v.data(), 3, 3, once);
    EXPECT_EQ(r.centroids, (std::vector<float>{0, 1, 2}));
    EXPECT_EQ(r.labels, (std::vector<uint8_t>{0, 1, 2}));
    const std::vector<float> t = {0, 0.5f, 1};
    const KMeans1d tie = kmeans_1d(t.data(), 3, 2, once);
    EXPECT_EQ(tie.labels, (std::vector<uint8_t>{0, 0, 1}));
    EXPECT_EQ(tie.centroids, (std::vector<float>{0.25f, 1.0f}));
}

TEST(KMeans, DegenerateInputs) {
    const KMeans1d none = kmeans_1d(nullptr, 0, 4);
    EXPECT_EQ(none.centroids, (std::vector<float>(4, 0.0f)));
    EXPECT_TRUE(none.labels.empty());
    const std::vector<float> same(10, 0.75f);
    const KMeans1d r = kmeans_1d(same.data(), 10, 4);
    EXPECT_EQ(r.centroids, (std::vector<float>(4, 0.75f)));
    EXPECT_EQ(r.labels, (std::vector<uint8_t>(10, 0)));
    const KMeans1d one = kmeans_1d(same.data(), 10, 1);
    EXPECT_EQ(one.centroids, (std::vector<float>{0.75f}));
    EXPECT_THROW(kmeans_1d(same.data(), 10, 0), std::invalid_argument);
    EXPECT_THROW(kmeans_1d(same.data(), 10, 257), std::invalid_argument);
    KMeansOptions bad;
    bad.max_iterations = -1;
    EXPECT_THROW(kmeans_1d(same.data(), 10, 2, bad), std::invalid_argument);
    bad = KMeansOptions{};
    bad.tolerance = -1;
    EXPECT_THROW(kmeans_1d(same.data(), 10, 2, bad), std::invalid_argument);
    bad = KMeansOptions{};
    bad.histogram_bins = -5;
    EXPECT_THROW(kmeans_1d(same.data(), 10, 2, bad), std::invalid_argument);
}

// Properties on random data: ascending centroids, each value in the cell of its centroid (labels grow
// with the value), each used centroid the mean of its values, and far less error than the linear
// initialisation alone.
TEST(KMeans, Properties) {
    for (int k : {2, 4, 16, 64, 256})
        for (int64_t n : {50, 1000, 60000}) {
            const std::vector<float> v = normal_tensor(n, static_cast<uint32_t>(k * 1000 + n));
            const KMeans1d r = kmeans_1d(v.data(), n, k);
            ASSERT_EQ(r.centroids.size(), static_cast<size_t>(k));
            EXPECT_TRUE(std::is_sorted(r.centroids.begin(), r.centroids.end()));
            std::vector<size_t> order(static_cast<size_t>(n));
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
            for (size_t i = 1; i < order.size(); ++i) ASSERT_LE(r.labels[order[i - 1]], r.labels[order[i]]);
            std::vector<double> sum(static_cast<size_t>(k), 0), cnt(static_cast<size_t>(k), 0);
            for (int64_t i = 0; i < n; ++i) {
                sum[r.labels[static_cast<size_t>(i)]] += v[static_cast<size_t>(i)];
                cnt[r.labels[static_cast<size_t>(i)]] += 1;
            }
            for (int j = 0; j < k; ++j) {
                if (cnt[static_cast<size_t>(j)] > 0) {
                    EXPECT_NEAR(r.centroids[static_cast<size_t>(j)], sum[static_cast<size_t>(j)] / cnt[static_cast<size_t>(j)], 1e-5);
                }
            }
            KMeansOptions none;
            none.max_iterations = 0;
            const KMeans1d init = kmeans_1d(v.data(), n, k, none);
            EXPECT_LE(sse_of(v, r), sse_of(v, init) * (1 + 1e-9));
        }
}

// Reference check of the histogram shortcut: on 60000 values with k = 16 the result is within 1% of the
// error of plain Lloyd iterations on the exact values (1000 iterations, same initialisation).
TEST(KMeans, CloseToExactLloyd) {
    const int k = 16;
    const std::vector<float> v = normal_tensor(60000, 77);
    const KMeans1d r = kmeans_1d(v.data(), 60000, k);
    std::vector<double> c(k);
    const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    for (int j = 0; j < k; ++j) c[static_cast<size_t>(j)] = lo + (hi - lo) * j / (k - 1);
    std::vector<double> sorted(v.begin(), v.end());
    std::sort(sorted.begin(), sorted.end());
    double exact_sse = 0;
    for (int it = 0; it < 1000; ++it) {
        std::vector<double> s(k, 0), n(k, 0);
        size_t j = 0;
        exact_sse = 0;
        for (double x : sorted) {
            while (j + 1 < static_cast<size_t>(k) && x > (c[j] + c[j + 1]) / 2) ++j;
            s[j] += x;
            n[j] += 1;
            exact_sse += (x - c[j]) * (x - c[j]);
        }
        for (size_t q = 0; q < static_cast<size_t>(k); ++q)
            if (n[q] > 0) c[q] = s[q] / n[q];
    }
    EXPECT_LT(sse_of(v, r), exact_sse * 1.01);
}

// The method: codes are index - 2^(b-1), the codebook has 2^b ascending entries, pruned weights are
// left out and stay exactly zero; granularity and scheme are normalised.
TEST(ClusterMethod, CodesCodebookAndPruning) {
    const std::vector<float> w = normal_tensor(40 * 30, 11);
    WeightSpec spec;
    spec.method = Method::Cluster;
    spec.scheme = Scheme::Asymmetric;
    for (int bits = 1; bits <= 8; ++bits) {
        const CompressedWeight cw = compress_weight(w.data(), {40, 30}, 1, LayerChoice{bits, 0.5}, spec);
        EXPECT_STREQ(cw.method().name, "cluster");
        EXPECT_FALSE(cw.has_int8_codes());
        EXPECT_THROW(cw.channel_scale(0), std::logic_error);
        EXPECT_EQ(cw.granularity, Granularity::PerTensor);
        EXPECT_EQ(cw.scheme, Scheme::Symmetric);
        ASSERT_EQ(cw.codebook.size(), size_t{1} << bits);
        EXPECT_TRUE(std::is_sorted(cw.codebook.begin(), cw.codebook.end()));
        EXPECT_TRUE(check_compressed_weight(cw).empty()) << check_compressed_weight(cw);
        const std::vector<float> dq = cw.dequantize();
        const int offset = 1 << (bits - 1);
        for (size_t i = 0; i < w.size(); ++i) {
            if (cw.is_pruned(static_cast<int64_t>(i))) {
                EXPECT_EQ(dq[i], 0.0f);
                EXPECT_FALSE(std::signbit(dq[i]));
            } else {
                EXPECT_EQ(dq[i], cw.codebook[static_cast<size_t>(cw.codes[i] + offset)]);
            }
        }
    }
}
