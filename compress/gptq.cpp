#include "compress/gptq.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "compress/method.hpp"
#include "compress/prune.hpp"
#include "compress/quantize.hpp"

namespace dcs::compress {

LayerHessian::LayerHessian(int64_t groups_, int64_t columns_) : groups(groups_), columns(columns_) {
    if (groups < 1 || columns < 1)
        throw std::invalid_argument("LayerHessian: groups and columns must be >= 1, got " + std::to_string(groups) +
                                    " and " + std::to_string(columns));
    h.assign(static_cast<size_t>(groups * columns * columns), 0.0);
}

void LayerHessian::add(int64_t g, const float* x, int64_t n) {
    if (g < 0 || g >= groups) throw std::invalid_argument("LayerHessian::add: group " + std::to_string(g) + " out of range");
    const int64_t k = columns;
    double* hg = h.data() + g * k * k;
    // Row a of H is owned by one thread; each element sums over the n vectors in order.
#pragma omp parallel for schedule(static) if (k >= 64 && n * k >= 4096)
    for (int64_t a = 0; a < k; ++a) {
        double* row = hg + a * k;
        for (int64_t r = 0; r < n; ++r) {
            const float* v = x + r * k;
            const double va = v[a];
            if (va == 0.0) continue;
            for (int64_t b = 0; b < k; ++b) row[b] += va * static_cast<double>(v[b]);
        }
    }
    samples += n;
}

namespace {

/// In-place lower Cholesky factor of the symmetric n x n matrix `a` (row-major; the upper triangle is
/// set to 0). False when `a` is not positive definite.
bool cholesky(std::vector<double>& a, int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
        double* rj = a.data() + j * n;
        double d = rj[j];
        for (int64_t k = 0; k < j; ++k) d -= rj[k] * rj[k];
        if (!(d > 0.0) || !std::isfinite(d)) return false;
        d = std::sqrt(d);
        rj[j] = d;
        for (int64_t i = j + 1; i < n; ++i) {
            double* ri = a.data() + i * n;
            double s = ri[j];
            for (int64_t k = 0; k < j; ++k) s -= ri[k] * rj[k];
            ri[j] = s / d;
        }
        for (int64_t k = j + 1; k < n; ++k) rj[k] = 0.0;
    }
    return true;
}

/// The upper factor U of H^-1 = U^T U, row-major (GPTQ's Hinv), from the lower Cholesky factor L of H:
/// L^-1 by substitution, H^-1 = L^-T L^-1, then U = (lower Cholesky factor of H^-1)^T.
bool inverse_upper_factor(const std::vector<double>& lower, int64_t n, std::vector<double>& u) {
    std::vector<double> inv(static_cast<size_t>(n * n), 0.0);  // L^-1, lower
    for (int64_t j = 0; j < n; ++j) {
        inv[j * n + j] = 1.0 / lower[j * n + j];
        for (int64_t i = j + 1; i < n; ++i) {
            double s = 0.0;
            for (int64_t k = j; k < i; ++k) s += lower[i * n + k] * inv[k * n + j];
            inv[i * n + j] = -s / lower[i * n + i];
        }
    }
    std::vector<double> hinv(static_cast<size_t>(n * n), 0.0);
    for (int64_t k = 0; k < n; ++k) {  // H^-1[a][b] = sum_k L^-1[k][a] L^-1[k][b]
        const double* rk = inv.data() + k * n;
        for (int64_t a = 0; a <= k; ++a) {
            const double va = rk[a];
            double* ra = hinv.data() + a * n;
            for (int64_t b = 0; b <= k; ++b) ra[b] += va * rk[b];
        }
    }
    if (!cholesky(hinv, n)) return false;
    u.assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j) u[j * n + i] = hinv[i * n + j];
    return true;
}

/// The Factor of one group's H: dead inputs get H_jj = 1, then kGptqDamp x mean diagonal is added to
/// the diagonal (ten times more, up to five times, while the factorization fails).
LayerHessian::Factor group_factor(const double* h, int64_t k) {
    std::vector<double> a(h, h + k * k);
    LayerHessian::Factor f;
    std::vector<uint8_t>& dead = f.dead;
    dead.assign(static_cast<size_t>(k), 0);
    double mean = 0.0;
    for (int64_t j = 0; j < k; ++j) {
        if (a[j * k + j] == 0.0) {
            dead[j] = 1;
            a[j * k + j] = 1.0;
        }
        mean += a[j * k + j];
    }
    mean /= static_cast<double>(k);
    double damp = kGptqDamp * mean;
    for (int attempt = 0; attempt < 6; ++attempt, damp *= 10.0) {
        std::vector<double> l = a;
        for (int64_t j = 0; j < k; ++j) l[j * k + j] += damp;
        if (cholesky(l, k) && inverse_upper_factor(l, k, f.u)) return f;
    }
    throw std::invalid_argument("gptq: the layer's input Hessian is not positive definite even after dampening");
}

/// One group's rows as a row-major [rows, k] double matrix, the working copy GPTQ updates.
struct Rows {
    int64_t rows = 0, k = 0;
    std::vector<int64_t> channel;  ///< output channel of each row
    std::vector<double> w;
};

/// Flat index of (channel c, column j).
inline int64_t flat_index(const Layout& l, int64_t c, int64_t j) {
    return ((j / l.inner) * l.channels + c) * l.inner + j % l.inner;
}

Rows gather_rows(const float* w, const Layout& l, int64_t c0, int64_t c1, const std::vector<uint8_t>& dead) {
    Rows r;
    r.rows = c1 - c0;
    r.k = l.outer * l.inner;
    r.w.resize(static_cast<size_t>(r.rows * r.k));
    for (int64_t c = c0; c < c1; ++c) {
        r.channel.push_back(c);
        double* row = r.w.data() + (c - c0) * r.k;
        for (int64_t j = 0; j < r.k; ++j) row[j] = dead[j] ? 0.0 : static_cast<double>(w[flat_index(l, c, j)]);
    }
    return r;
}

/// Columns [j0, j1) of every row: each weight becomes target(row, j, value) and its error, divided by
/// U_jj, is spread over the row's later columns through row j of U. Rows are independent (threads).
template <class Target>
void sweep(Rows& r, const std::vector<double>& u, int64_t j0, int64_t j1, Target target) {
    const int64_t k = r.k;
#pragma omp parallel for schedule(static) if (r.rows > 1 && r.rows * k * (j1 - j0) >= (1 << 16))
    for (int64_t i = 0; i < r.rows; ++i) {
        double* row = r.w.data() + i * k;
        for (int64_t j = j0; j < j1; ++j) {
            const double* uj = u.data() + j * k;
            const double q = target(i, j, row[j]);
            const double err = (row[j] - q) / uj[j];
            row[j] = q;
            if (err == 0.0) continue;
            for (int64_t t = j + 1; t < k; ++t) row[t] -= err * uj[t];
        }
    }
}

/// The (saliency, index) pairs of the `count` smallest saliencies, in any order (ties: lower index).
std::vector<std::pair<double, int64_t>> smallest(std::vector<std::pair<double, int64_t>> s, int64_t count) {
    std::nth_element(s.begin(), s.begin() + (count - 1), s.end());
    s.resize(static_cast<size_t>(count));
    return s;
}

/// The OBS mask of one group's rows, written into `mask` (1 = kept). `budget` says how many elements
/// each block of kGptqBlock columns prunes (the static choice's count in that block); within a block the
/// elements of smallest w^2 / U_jj^2 on the weights compensated so far are pruned, and each column's
/// error is spread over the later columns.
void obs_mask(Rows r, const std::vector<double>& u, const Layout& l, const std::vector<int64_t>& budget,
              std::vector<uint8_t>& mask) {
    const int64_t k = r.k;
    std::vector<uint8_t> pruned(static_cast<size_t>(r.rows * k), 0);
    for (int64_t j0 = 0, b = 0; j0 < k; j0 += kGptqBlock, ++b) {
        const int64_t j1 = std::min(k, j0 + kGptqBlock), width = j1 - j0;
        if (budget[b] > 0) {
            std::vector<std::pair<double, int64_t>> sal(static_cast<size_t>(r.rows * width));
            for (int64_t i = 0; i < r.rows; ++i)
                for (int64_t j = j0; j < j1; ++j) {
                    const double v = r.w[i * k + j], d = u[j * k + j];
                    sal[i * width + (j - j0)] = {v * v / (d * d), i * k + j};
                }
            for (const auto& e : smallest(std::move(sal), budget[b])) pruned[e.second] = 1;
        }
        sweep(r, u, j0, j1, [&](int64_t i, int64_t j, double v) { return pruned[i * k + j] ? 0.0 : v; });
    }
    for (int64_t i = 0; i < r.rows; ++i)
        for (int64_t j = 0; j < k; ++j)
            if (pruned[i * k + j]) mask[flat_index(l, r.channel[i], j)] = 0;
}

/// How many elements each (group, block of kGptqBlock columns) prunes: the blocks' shares of the
/// `count` elements of smallest static OBS saliency w^2 / [H_g^-1]_jj over the whole layer, so that the
/// layer prunes exactly `count` and important inputs keep more weights than unimportant ones.
std::vector<std::vector<int64_t>> block_budgets(const std::vector<Rows>& rows,
                                                const std::vector<LayerHessian::Factor>& factors, int64_t count) {
    const int64_t k = rows[0].k, blocks = (k + kGptqBlock - 1) / kGptqBlock;
    std::vector<std::pair<double, int64_t>> sal;
    for (size_t g = 0; g < rows.size(); ++g) {
        std::vector<double> hinv_diag(static_cast<size_t>(k), 0.0);  // [U^T U]_jj = sum_i U_ij^2
        const std::vector<double>& u = factors[g].u;
        for (int64_t i = 0; i < k; ++i)
            for (int64_t j = i; j < k; ++j) hinv_diag[j] += u[i * k + j] * u[i * k + j];
        const int64_t base = static_cast<int64_t>(g) * rows[g].rows * k;
        for (int64_t i = 0; i < rows[g].rows; ++i)
            for (int64_t j = 0; j < k; ++j) {
                const double v = rows[g].w[i * k + j];
                sal.push_back({v * v / hinv_diag[j], base + i * k + j});
            }
    }
    std::vector<std::vector<int64_t>> budget(rows.size(), std::vector<int64_t>(static_cast<size_t>(blocks), 0));
    const int64_t per_group = rows[0].rows * k;
    for (const auto& e : smallest(std::move(sal), count)) ++budget[e.second / per_group][(e.second % k) / kGptqBlock];
    return budget;
}

}  // namespace

void LayerHessian::factor() {
    factors.clear();
    for (int64_t g = 0; g < groups; ++g) factors.push_back(group_factor(group(g), columns));
}

size_t LayerHessian::bytes() const {
    size_t b = sizeof(*this) + sizeof(double) * h.size();
    for (const Factor& f : factors) b += f.dead.size() + sizeof(double) * f.u.size();
    return b;
}

CompressedWeight gptq_compress_weight(const float* w, const std::vector<int64_t>& shape, int64_t out_axis,
                                      const LayerChoice& choice, const WeightSpec& spec, const LayerHessian& hessian) {
    const WeightMethod& method = select_method(choice.weight_bits, spec);  // validates bits
    if (std::string(method.name) != "uniform") return compress_weight(w, shape, out_axis, choice, spec);
    if (!w) throw std::invalid_argument("compress_weight: null weight pointer");
    const Layout l = weight_layout(shape, out_axis);
    const int64_t k = l.outer * l.inner, n = l.numel();
    if (hessian.columns != k || hessian.groups < 1 || l.channels % hessian.groups != 0 ||
        hessian.h.size() != static_cast<size_t>(hessian.groups * k * k))
        throw std::invalid_argument("gptq: a Hessian of " + std::to_string(hessian.groups) + " group(s) of " +
                                    std::to_string(hessian.columns) + " columns does not fit weight " +
                                    shape_string(shape));
    // The original weight's checks (finite values, ratio) and, for filter pruning, its mask.
    const PrunedWeight checked(w, shape, out_axis, spec.pruning == Pruning::Filter ? choice.prune_ratio : 0.0,
                               spec.pruning);
    const int64_t per_group = l.channels / hessian.groups;
    std::vector<LayerHessian::Factor> own;
    if (hessian.factors.empty())
        for (int64_t g = 0; g < hessian.groups; ++g) own.push_back(group_factor(hessian.group(g), k));
    const std::vector<LayerHessian::Factor>& fs = hessian.factors.empty() ? own : hessian.factors;

    std::vector<uint8_t> mask = checked.mask();
    const int64_t count = spec.pruning == Pruning::Unstructured ? prune_count(n, choice.prune_ratio) : 0;
    if (count > 0) {
        std::vector<Rows> rows;
        for (int64_t g = 0; g < hessian.groups; ++g)
            rows.push_back(gather_rows(w, l, g * per_group, (g + 1) * per_group, fs[g].dead));
        const std::vector<std::vector<int64_t>> budget = block_budgets(rows, fs, count);
        mask.assign(static_cast<size_t>(n), 1);
        for (int64_t g = 0; g < hessian.groups; ++g) obs_mask(std::move(rows[g]), fs[g].u, l, budget[g], mask);
    }

    CompressedWeight out;
    out.shape = shape;
    out.out_axis = out_axis;
    out.bits = choice.weight_bits;
    out.method_id = method.id;
    out.scheme = spec.scheme;
    out.granularity = spec.granularity;
    out.mask = mask;
    // Scales as the nearest quantizer chooses them for this mask.
    std::unique_ptr<float[]> storage;
    const float* masked = masked_weight(w, n, mask, storage);
    const std::vector<UniformParams> params =
        choose_uniform_group_params(masked, l, spec.granularity, out.bits, spec.scheme, spec.clip);
    const bool per_channel = spec.granularity == Granularity::PerChannel;
    set_uniform_side_data(params, out);
    const int qmin = uniform_code_min(out.bits, out.scheme), qmax = uniform_code_max(out.bits, out.scheme);
    out.codes.assign(static_cast<size_t>(n), 0);
    for (int64_t g = 0; g < hessian.groups; ++g) {
        Rows r = gather_rows(w, l, g * per_group, (g + 1) * per_group, fs[g].dead);
        sweep(r, fs[g].u, 0, k, [&](int64_t i, int64_t j, double v) {
            const int64_t c = r.channel[i], e = flat_index(l, c, j);
            const UniformParams p = params[per_channel ? c : 0];
            if (!mask.empty() && !mask[e]) {
                out.codes[e] = static_cast<int8_t>(p.zero_point);
                return 0.0;
            }
            const int code = quantize_uniform(static_cast<float>(v), p, qmin, qmax);
            out.codes[e] = static_cast<int8_t>(code);
            return static_cast<double>(dequantize_uniform(code, p));
        });
    }
    // GPTQ is greedy: at 2 bits with heavy pruning nearest rounding with the magnitude mask is sometimes
    // better on the calibration inputs. Then that is the result.
    CompressedWeight nearest = compress_weight(w, shape, out_axis, choice, spec);
    if (hessian_error(w, nearest.dequantize().data(), l, hessian) < hessian_error(w, out.dequantize().data(), l, hessian))
        return nearest;
    return out;
}

double hessian_error(const float* w, const float* q, const Layout& l, const LayerHessian& hessian) {
    const int64_t k = l.outer * l.inner, per_group = l.channels / hessian.groups;
    std::vector<double> per_row(static_cast<size_t>(l.channels), 0.0);
#pragma omp parallel for schedule(static) if (l.channels > 1 && l.channels * k * k >= (1 << 16))
    for (int64_t c = 0; c < l.channels; ++c) {
        std::vector<double> d(static_cast<size_t>(k));
        for (int64_t j = 0; j < k; ++j) {
            const int64_t e = flat_index(l, c, j);
            d[j] = static_cast<double>(w[e]) - static_cast<double>(q[e]);
        }
        const double* h = hessian.group(c / per_group);
        double total = 0.0;
        for (int64_t a = 0; a < k; ++a) {
            if (d[a] == 0.0) continue;
            double s = 0.0;
            for (int64_t b = 0; b < k; ++b) s += h[a * k + b] * d[b];
            total += d[a] * s;
        }
        per_row[c] = total;
    }
    double total = 0.0;  // summed in row order: the same on any thread count
    for (double r : per_row) total += r;
    return total;
}

}  // namespace dcs::compress
