#include "compress/calibrate.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>

namespace dcs::compress {

ActivationObserver::ActivationObserver(int bins_per_side) : bins_per_side_(bins_per_side) {
    if (bins_per_side < 2 || bins_per_side > (1 << 24) || bins_per_side % 2 != 0)
        throw std::invalid_argument("ActivationObserver: bins_per_side must be even and in 2..2^24, got " +
                                    std::to_string(bins_per_side));
    hist_.assign(2 * static_cast<size_t>(bins_per_side), 0);
}

void ActivationObserver::grow_to(double magnitude) {
    if (range_ == 0.0) {
        int e = 0;
        std::frexp(magnitude, &e);  // magnitude = f * 2^e, f in [0.5, 1): 2^e > magnitude
        range_ = std::ldexp(1.0, e);
        hist_[static_cast<size_t>(bins_per_side_)] += zeros_before_range_;
        zeros_before_range_ = 0;
        return;
    }
    const size_t b = static_cast<size_t>(bins_per_side_);
    while (magnitude >= range_) {
        // Old bin i covers [-R + i w, -R + (i+1) w) = [-2R + (i+B) w, ...): new bin (i + B) / 2.
        std::vector<uint64_t> merged(hist_.size(), 0);
        for (size_t i = 0; i < hist_.size(); ++i) merged[(i + b) / 2] += hist_[i];
        hist_.swap(merged);
        range_ *= 2;
    }
}

void ActivationObserver::observe(const float* x, int64_t n) {
    float lo = min_, hi = max_;
    if (count_ == 0 && n > 0) lo = hi = x[0];
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i]))
            throw std::invalid_argument("activation value " + std::to_string(i) + " of the batch is not finite (" +
                                        std::to_string(x[i]) + ")");
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    if (n <= 0) return;
    min_ = lo;
    max_ = hi;
    count_ += n;
    const double magnitude = std::max(-static_cast<double>(lo), static_cast<double>(hi));
    if (magnitude > 0.0 && magnitude >= range_) grow_to(magnitude);
    if (range_ == 0.0) {
        zeros_before_range_ += static_cast<uint64_t>(n);
        return;
    }
    const double per_unit = bins_per_side_ / range_;
    const auto last = static_cast<int64_t>(hist_.size()) - 1;
    for (int64_t i = 0; i < n; ++i) {
        const auto bin = static_cast<int64_t>(std::floor((static_cast<double>(x[i]) + range_) * per_unit));
        ++hist_[static_cast<size_t>(std::clamp<int64_t>(bin, 0, last))];
    }
}

namespace {

struct Grid {
    int qmin, qmax;
};

/// Squared error of the histogram (bins at their centres) quantized with (scale, zero_point).
double histogram_sse(const ActivationObserver& obs, double scale, int zero_point, Grid g) {
    const auto& h = obs.histogram();
    const double width = obs.range() / obs.bins_per_side();
    double sse = 0.0;
    for (size_t i = 0; i < h.size(); ++i) {
        if (h[i] == 0) continue;
        const double x = -obs.range() + (static_cast<double>(i) + 0.5) * width;
        const double q = std::clamp(std::nearbyint(x / scale) + zero_point, static_cast<double>(g.qmin),
                                    static_cast<double>(g.qmax));
        const double d = x - scale * (q - zero_point);
        sse += static_cast<double>(h[i]) * d * d;
    }
    return sse;
}

/// Smallest t with (number of values < t) >= fraction * count, interpolated inside a bin. `fold` counts
/// |x| instead of x (bins of the negative side mirrored onto the positive side).
double histogram_quantile(const ActivationObserver& obs, double fraction, bool fold) {
    const auto& h = obs.histogram();
    const auto b = static_cast<size_t>(obs.bins_per_side());
    const double width = obs.range() / obs.bins_per_side();
    const double target = fraction * static_cast<double>(obs.count());
    double cum = 0.0;
    const size_t bins = fold ? b : h.size();
    for (size_t k = 0; k < bins; ++k) {
        const double c = fold ? static_cast<double>(h[b + k] + h[b - 1 - k]) : static_cast<double>(h[k]);
        const double left = fold ? static_cast<double>(k) * width : -obs.range() + static_cast<double>(k) * width;
        if (c > 0 && cum + c >= target) return left + std::clamp((target - cum) / c, 0.0, 1.0) * width;
        cum += c;
    }
    return obs.range();
}

ActivationParams params_for(double lo, double hi, bool is_unsigned, bool symmetric, Grid g) {
    ActivationParams p;
    p.is_unsigned = is_unsigned;
    p.clip_min = static_cast<float>(lo);
    p.clip_max = static_cast<float>(hi);
    double scale;
    if (is_unsigned || symmetric) {
        scale = (is_unsigned ? hi : std::max(-lo, hi)) / g.qmax;
        p.zero_point = 0;
    } else {
        scale = (hi - lo) / (static_cast<double>(g.qmax) - g.qmin);
    }
    p.scale = static_cast<float>(scale);
    if (!(p.scale >= FLT_MIN)) p.scale = 1.0f;
    if (!is_unsigned && !symmetric)
        p.zero_point = static_cast<int>(std::clamp(std::nearbyint(g.qmin - lo / static_cast<double>(p.scale)),
                                                   static_cast<double>(g.qmin), static_cast<double>(g.qmax)));
    return p;
}

}  // namespace

ActivationParams calibrate_activation(const ActivationObserver& obs, const CalibrationSpec& spec) {
    if (obs.count() == 0) throw std::invalid_argument("calibrate_activation: no values observed");
    if (spec.bits < 2 || spec.bits > 8)
        throw std::invalid_argument("activation bits must be in 2..8, got " + std::to_string(spec.bits));
    if (spec.method == Calibration::Percentile && !(spec.percentile > 50.0 && spec.percentile <= 100.0))
        throw std::invalid_argument("calibration percentile must be in (50, 100], got " +
                                    std::to_string(spec.percentile));
    const bool is_unsigned = obs.min() >= 0.0f;
    const bool symmetric = is_unsigned || spec.signed_scheme == Scheme::Symmetric;
    const Grid g = is_unsigned ? Grid{0, (1 << spec.bits) - 1} : Grid{-(1 << (spec.bits - 1)), (1 << (spec.bits - 1)) - 1};
    // The full range, always containing 0.
    double lo = std::min(0.0, static_cast<double>(obs.min()));
    double hi = std::max(0.0, static_cast<double>(obs.max()));
    if (symmetric && !is_unsigned) {
        hi = std::max(-lo, hi);
        lo = -hi;
    }
    if (obs.range() == 0.0) return params_for(0.0, 0.0, is_unsigned, symmetric, g);  // all zeros

    switch (spec.method) {
        case Calibration::MinMax:
            break;
        case Calibration::Percentile: {
            const double f = spec.percentile / 100.0;
            if (is_unsigned) {
                hi = std::min(hi, histogram_quantile(obs, f, false));
            } else if (symmetric) {
                hi = std::min(hi, histogram_quantile(obs, f, true));
                lo = -hi;
            } else {
                lo = std::min(0.0, std::max(lo, histogram_quantile(obs, 1.0 - f, false)));
                hi = std::max(0.0, std::min(hi, histogram_quantile(obs, f, false)));
            }
            break;
        }
        case Calibration::Mse: {
            double best_sse = -1.0, best_r = 1.0;
            for (int i = kActivationMseGrid; i >= 1; --i) {
                const double r = static_cast<double>(i) / kActivationMseGrid;
                const ActivationParams p = params_for(lo * r, hi * r, is_unsigned, symmetric, g);
                const double sse = histogram_sse(obs, p.scale, p.zero_point, g);
                if (best_sse < 0 || sse < best_sse) {
                    best_sse = sse;
                    best_r = r;
                }
            }
            lo *= best_r;
            hi *= best_r;
            break;
        }
    }
    return params_for(lo, hi, is_unsigned, symmetric, g);
}

}  // namespace dcs::compress
