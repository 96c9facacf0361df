#include "runtime/ops/op_util.hpp"

#include <ostream>

#include "common/error.hpp"

namespace dcs {

int64_t dim_add(int64_t a, int64_t b, const std::string& where) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) throw InputError(where + ": shape arithmetic overflows int64");
    return r;
}

int64_t dim_mul(int64_t a, int64_t b, const std::string& where) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) throw InputError(where + ": shape arithmetic overflows int64");
    return r;
}

int64_t norm_axis(int64_t axis, int64_t rank, bool inclusive, const std::string& where) {
    int64_t hi = inclusive ? rank : rank - 1;
    if (axis < -rank || axis > hi)
        throw InputError(where + ": axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    return axis < 0 ? axis + rank : axis;
}

Geo3 to_geo3(const Window& w) {
    Geo3 g;
    size_t sd = w.kernel.size(), off = 3 - sd;
    for (size_t i = 0; i < 3; ++i) {
        bool real = i >= off;
        size_t j = i - off;
        g.in[i] = real ? w.in[j] : 1;
        g.out[i] = real ? w.out[j] : 1;
        g.k[i] = real ? w.kernel[j] : 1;
        g.s[i] = real ? w.strides[j] : 1;
        g.d[i] = real ? w.dilations[j] : 1;
        g.pb[i] = real ? w.pad_begin[j] : 0;
        g.pe[i] = real ? w.pad_end[j] : 0;
    }
    return g;
}

std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& shape, const std::vector<int64_t>& out) {
    std::vector<int64_t> st(out.size(), 0);
    int64_t s = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        size_t o = out.size() - shape.size() + i;
        st[o] = shape[i] == 1 ? 0 : s;
        s *= shape[i];
    }
    return st;
}

void matmul_2d(const float* a, const float* b, float* y, int64_t m, int64_t k, int64_t n, int64_t lda_m,
               int64_t lda_k, int64_t ldb_k, int64_t ldb_n, float alpha) {
#pragma omp parallel for schedule(static) if (m > 4)
    for (int64_t i = 0; i < m; ++i) {
        float* yr = y + i * n;
        for (int64_t kk = 0; kk < k; ++kk) {
            const float av = alpha * a[i * lda_m + kk * lda_k];
            if (av == 0.0f) continue;
            if (ldb_n == 1) {
                const float* br = b + kk * ldb_k;
                for (int64_t j = 0; j < n; ++j) yr[j] += av * br[j];
            } else {
                for (int64_t j = 0; j < n; ++j) yr[j] += av * b[kk * ldb_k + j * ldb_n];
            }
        }
    }
}

void describe_axis(const Node& node, std::ostream& os) {
    const auto& a = std::get<AxisAttrs>(node.attrs);
    os << " axis=" << a.axis << " legacy=" << a.legacy_softmax;
}

}  // namespace dcs
