#pragma once
/// Helpers the operator rows share: overflow-checked shape arithmetic, axis normalisation and the
/// loop scaffolding of the fp32 reference implementations.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace dcs {

/// Stands for the batch size in the shapes the importer's constant folding computes (Shape of an
/// activation with a dynamic batch); a Reshape target may hold it only as its first dimension.
constexpr int64_t kBatchSentinel = -4611686018427387000LL;

/// a + b and a * b of shape arithmetic; dimensions from a damaged or hostile file can overflow int64.
/// Throw InputError prefixed by `where`.
int64_t dim_add(int64_t a, int64_t b, const std::string& where);
int64_t dim_mul(int64_t a, int64_t b, const std::string& where);

/// `axis` in [0, rank) (or [0, rank] when `inclusive`), negative counting from the end; throws
/// InputError prefixed by `where` when out of range.
int64_t norm_axis(int64_t axis, int64_t rank, bool inclusive, const std::string& where);

/// The spatial dims of an N x C x spatial shape.
inline std::vector<int64_t> spatial(const std::vector<int64_t>& shape) { return {shape.begin() + 2, shape.end()}; }

/// Spatial geometry normalised to 3 dims (1-D and 2-D ops get leading dims of size 1), so one loop
/// nest serves 1-D to 3-D convolution and pooling.
struct Geo3 {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
};
Geo3 to_geo3(const Window& w);

/// Strides of `shape` broadcast to `out` (0 where a dim is broadcast).
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& shape, const std::vector<int64_t>& out);

/// Calls f(out_index, a_index, b_index) for every element of the broadcast result.
template <class F>
void for_each_broadcast(const std::vector<int64_t>& out, const std::vector<int64_t>& sa,
                        const std::vector<int64_t>& sb, F f) {
    const int64_t total = Tensor::numel_of(out);
    const size_t r = out.size();
    std::vector<int64_t> idx(r, 0);
    int64_t ia = 0, ib = 0;
    for (int64_t i = 0; i < total; ++i) {
        f(i, ia, ib);
        for (size_t d = r; d-- > 0;) {
            if (++idx[d] < out[d]) {
                ia += sa[d];
                ib += sb[d];
                break;
            }
            ia -= sa[d] * (out[d] - 1);
            ib -= sb[d] * (out[d] - 1);
            idx[d] = 0;
        }
    }
}

/// y[m, n] += alpha * sum_k A[m, k] * B[k, n] with A and B addressed through the given strides.
void matmul_2d(const float* a, const float* b, float* y, int64_t m, int64_t k, int64_t n, int64_t lda_m,
               int64_t lda_k, int64_t ldb_k, int64_t ldb_n, float alpha);

/// serialize_structure's rendering of AxisAttrs (Flatten, Concat, Softmax).
void describe_axis(const Node& node, std::ostream& os);

}  // namespace dcs
