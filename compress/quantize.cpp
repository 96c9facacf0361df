/// The "uniform" method: affine quantization at 2..8 bits (see quantize.hpp).
#include "compress/quantize.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>

#include "compress/method.hpp"

namespace dcs::compress {

namespace {

void check_uniform_bits(int bits) {
    if (bits < 2 || bits > 8)
        throw std::invalid_argument("uniform quantization needs 2..8 bits, got " + std::to_string(bits));
}

/// Params covering [ratio*vmin, ratio*vmax] (vmin <= 0 <= vmax).
UniformParams params_for_range(double vmin, double vmax, double ratio, int bits, Scheme scheme) {
    UniformParams p;
    if (scheme == Scheme::Symmetric) {
        const double m = std::fmax(-vmin, vmax) * ratio;
        p.scale = static_cast<float>(m / uniform_code_max(bits, scheme));
        if (!(p.scale >= FLT_MIN)) p.scale = 1.0f;
        return p;
    }
    const double lo = vmin * ratio, hi = vmax * ratio;
    const double levels = static_cast<double>((1 << bits) - 1);
    p.scale = static_cast<float>((hi - lo) / levels);
    if (!(p.scale >= FLT_MIN)) p.scale = 1.0f;
    double z = std::nearbyint(-lo / static_cast<double>(p.scale));
    z = std::fmin(std::fmax(z, 0.0), levels);
    p.zero_point = static_cast<int>(z) + uniform_code_min(bits, scheme);
    return p;
}

}  // namespace

int uniform_code_min(int bits, Scheme scheme) {
    check_uniform_bits(bits);
    return scheme == Scheme::Symmetric ? -((1 << (bits - 1)) - 1) : -(1 << (bits - 1));
}

int uniform_code_max(int bits, Scheme) {
    check_uniform_bits(bits);
    return (1 << (bits - 1)) - 1;
}

double mse_clip_ratio(int i) { return 1.0 - (1.0 - kMseGridMin) * i / (kMseGridPoints - 1); }

namespace {

constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23, see quantize_uniform

// The MSE search's two kernels are compiled twice on x86-64 with GCC, for AVX2 and the baseline, and
// picked at load time. AVX2 does not include FMA, so both clones round identically.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define DCS_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DCS_VECTOR_CLONES
#endif

/// Squared error of n values under one group's parameters, in kLanes independent float lanes so that
/// the loop vectorizes without -ffast-math.
DCS_VECTOR_CLONES double flat_sse(const float* v, int64_t n, float s, float lo, float hi) {
    const float inv = 1.0f / s;
    constexpr int kLanes = 8;
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) {
            float x = v[i + j] * inv;
            x = x > lo ? x : lo;
            x = x < hi ? x : hi;
            x = (x + kRoundMagic) - kRoundMagic;
            const float d = v[i + j] - s * x;
            acc[j] += d * d;
        }
    double total = 0.0;
    for (; i < n; ++i) {
        float x = v[i] * inv;
        x = x > lo ? x : lo;
        x = x < hi ? x : hi;
        x = (x + kRoundMagic) - kRoundMagic;
        const float d = v[i] - s * x;
        total += static_cast<double>(d) * d;
    }
    for (float a : acc) total += a;
    return total;
}

/// Squared errors of `outer` rows of `channels` values, each channel with its own parameters, added
/// into acc[c] (element-wise across the row, so it vectorizes).
DCS_VECTOR_CLONES void rows_sse(const float* x, int64_t outer, size_t channels, const float* s, const float* inv,
                                const float* lo, const float* hi, float* acc) {
    // Blocks of 16 channels walk down the rows with parameters and sums held in registers.
    constexpr size_t kBlock = 16;
    size_t c0 = 0;
    for (; c0 + kBlock <= channels; c0 += kBlock) {
        float bs[kBlock], binv[kBlock], blo[kBlock], bhi[kBlock], bacc[kBlock];
        for (size_t j = 0; j < kBlock; ++j) {
            bs[j] = s[c0 + j];
            binv[j] = inv[c0 + j];
            blo[j] = lo[c0 + j];
            bhi[j] = hi[c0 + j];
            bacc[j] = 0.0f;
        }
        const float* row = x + c0;
        for (int64_t o = 0; o < outer; ++o, row += channels)
            for (size_t j = 0; j < kBlock; ++j) {
                float q = row[j] * binv[j];
                q = q > blo[j] ? q : blo[j];
                q = q < bhi[j] ? q : bhi[j];
                q = (q + kRoundMagic) - kRoundMagic;
                const float d = row[j] - bs[j] * q;
                bacc[j] += d * d;
            }
        for (size_t j = 0; j < kBlock; ++j) acc[c0 + j] += bacc[j];
    }
    for (int64_t o = 0; o < outer; ++o) {
        const float* row = x + o * static_cast<int64_t>(channels);
        for (size_t c = c0; c < channels; ++c) {
            float q = row[c] * inv[c];
            q = q > lo[c] ? q : lo[c];
            q = q < hi[c] ? q : hi[c];
            q = (q + kRoundMagic) - kRoundMagic;
            const float d = row[c] - s[c] * q;
            acc[c] += d * d;
        }
    }
}

/// Evaluates one candidate per group over the whole weight: sse[g] for params[g]. Scratch arrays are
/// reused between passes.
class SsePass {
public:
    SsePass(const float* x, const Layout& l, bool per_channel, int qmin, int qmax)
        : x_(x), l_(l), per_channel_(per_channel), qmin_(qmin), qmax_(qmax) {
        const auto groups = static_cast<size_t>(per_channel ? l.channels : 1);
        s_.resize(groups);
        inv_.resize(groups);
        lo_.resize(groups);
        hi_.resize(groups);
        acc_.resize(groups);
    }

    void run(const std::vector<UniformParams>& params, std::vector<double>& sse) {
        if (!per_channel_) {
            sse[0] = flat_sse(x_, l_.numel(), params[0].scale, static_cast<float>(qmin_ - params[0].zero_point),
                              static_cast<float>(qmax_ - params[0].zero_point));
            return;
        }
        const auto channels = static_cast<size_t>(l_.channels);
        if (l_.inner > 1) {
            std::fill(sse.begin(), sse.end(), 0.0);
            const float* x = x_;
            for (int64_t o = 0; o < l_.outer; ++o)
                for (size_t c = 0; c < channels; ++c) {
                    sse[c] += flat_sse(x, l_.inner, params[c].scale, static_cast<float>(qmin_ - params[c].zero_point),
                                       static_cast<float>(qmax_ - params[c].zero_point));
                    x += l_.inner;
                }
            return;
        }
        // inner == 1 (MatMul [K, N]): rows of N channels; vectorize across channels.
        for (size_t c = 0; c < channels; ++c) {
            s_[c] = params[c].scale;
            inv_[c] = 1.0f / params[c].scale;
            lo_[c] = static_cast<float>(qmin_ - params[c].zero_point);
            hi_[c] = static_cast<float>(qmax_ - params[c].zero_point);
            acc_[c] = 0.0f;
        }
        rows_sse(x_, l_.outer, channels, s_.data(), inv_.data(), lo_.data(), hi_.data(), acc_.data());
        for (size_t c = 0; c < channels; ++c) sse[c] = acc_[c];
    }

private:
    const float* x_;
    Layout l_;
    bool per_channel_;
    int qmin_, qmax_;
    std::vector<float> s_, inv_, lo_, hi_, acc_;
};

}  // namespace

double uniform_sse(const float* v, int64_t n, UniformParams p, int bits, Scheme scheme) {
    return flat_sse(v, n, p.scale, static_cast<float>(uniform_code_min(bits, scheme) - p.zero_point),
                    static_cast<float>(uniform_code_max(bits, scheme) - p.zero_point));
}

std::vector<UniformParams> choose_uniform_group_params(const float* x, const Layout& l, Granularity granularity,
                                                       int bits, Scheme scheme, WeightClip clip) {
    check_uniform_bits(bits);
    const bool per_channel = granularity == Granularity::PerChannel;
    const auto groups = static_cast<size_t>(per_channel ? l.channels : 1);
    // Ranges, always including 0.
    std::vector<float> vmin(groups, 0.0f), vmax(groups, 0.0f);
    if (!per_channel) {
        if (l.numel() > 0) value_range(x, l.numel(), &vmin[0], &vmax[0]);
        vmin[0] = std::min(vmin[0], 0.0f);
        vmax[0] = std::max(vmax[0], 0.0f);
    } else if (l.inner == 1) {  // rows of channels: element-wise over the row, vectorizable
        float *mn = vmin.data(), *mx = vmax.data();
        for (int64_t o = 0; o < l.outer; ++o) {
            const float* row = x + o * l.channels;
            for (size_t c = 0; c < groups; ++c) {
                mn[c] = row[c] < mn[c] ? row[c] : mn[c];
                mx[c] = row[c] > mx[c] ? row[c] : mx[c];
            }
        }
    } else {
        const float* p = x;
        float *mn = vmin.data(), *mx = vmax.data();
        for (int64_t o = 0; o < l.outer; ++o)
            for (size_t c = 0; c < groups; ++c) {
                float lo = mn[c], hi = mx[c];
                for (int64_t i = 0; i < l.inner; ++i) {
                    lo = p[i] < lo ? p[i] : lo;
                    hi = p[i] > hi ? p[i] : hi;
                }
                mn[c] = lo;
                mx[c] = hi;
                p += l.inner;
            }
    }
    std::vector<UniformParams> best(groups);
    for (size_t g = 0; g < groups; ++g) best[g] = params_for_range(vmin[g], vmax[g], 1.0, bits, scheme);
    if (clip == WeightClip::MaxAbs) return best;

    SsePass pass(x, l, per_channel, uniform_code_min(bits, scheme), uniform_code_max(bits, scheme));
    std::vector<double> best_sse(groups), sse(groups);
    std::vector<int> best_i(groups, 0), cand_i(groups);
    std::vector<UniformParams> cand(groups);
    pass.run(best, best_sse);
    auto evaluate = [&] {
        for (size_t g = 0; g < groups; ++g) cand[g] = params_for_range(vmin[g], vmax[g], mse_clip_ratio(cand_i[g]), bits, scheme);
        pass.run(cand, sse);
        for (size_t g = 0; g < groups; ++g)
            if (sse[g] < best_sse[g] || (sse[g] == best_sse[g] && cand_i[g] < best_i[g])) {
                best_sse[g] = sse[g];
                best_i[g] = cand_i[g];
                best[g] = cand[g];
            }
    };
    for (int i = kMseCoarseStep; i < kMseGridPoints; i += kMseCoarseStep) {
        std::fill(cand_i.begin(), cand_i.end(), i);
        evaluate();
    }
    const std::vector<int> coarse = best_i;
    for (int d = -(kMseCoarseStep - 1); d <= kMseCoarseStep - 1; ++d) {
        if (d == 0) continue;
        for (size_t g = 0; g < groups; ++g) {
            const int i = coarse[g] + d;
            cand_i[g] = i >= 0 && i < kMseGridPoints ? i : coarse[g];  // out of the grid: re-evaluate the best
        }
        evaluate();
    }
    return best;
}

UniformParams choose_uniform_params(const float* values, int64_t n, int bits, Scheme scheme, WeightClip clip) {
    return choose_uniform_group_params(values, Layout{1, 1, n}, Granularity::PerTensor, bits, scheme, clip)[0];
}

namespace {

const char* uniform_unsupported(int, const WeightSpec&) { return nullptr; }

void uniform_encode(const float* w, const WeightSpec& spec, CompressedWeight& out) {
    out.scheme = spec.scheme;
    out.granularity = spec.granularity;
    const Layout l = out.layout();
    std::vector<float> storage;
    const float* x = masked_weight(w, l.numel(), out.mask, storage);
    const std::vector<UniformParams> params =
        choose_uniform_group_params(x, l, out.granularity, out.bits, out.scheme, spec.clip);
    const bool asym = out.scheme == Scheme::Asymmetric;
    out.scales.resize(params.size());
    out.zero_points.assign(asym ? params.size() : 0, 0);
    for (size_t g = 0; g < params.size(); ++g) {
        out.scales[g] = params[g].scale;
        if (asym) out.zero_points[g] = static_cast<int8_t>(params[g].zero_point);
    }
    const int qmin = uniform_code_min(out.bits, out.scheme), qmax = uniform_code_max(out.bits, out.scheme);
    const bool per_channel = out.granularity == Granularity::PerChannel;
    out.codes.resize(static_cast<size_t>(l.numel()));
    int8_t* code = out.codes.data();
    if (per_channel && l.inner == 1) {  // rows of channels: per-channel arrays, vectorizable
        const auto channels = static_cast<size_t>(l.channels);
        std::vector<float> scale(channels), lo(channels), hi(channels), zp(channels);
        for (size_t c = 0; c < channels; ++c) {
            scale[c] = params[c].scale;
            zp[c] = static_cast<float>(params[c].zero_point);
            lo[c] = static_cast<float>(qmin - params[c].zero_point);
            hi[c] = static_cast<float>(qmax - params[c].zero_point);
        }
        for (int64_t o = 0; o < l.outer; ++o) {
            const float* row = x + o * l.channels;
            int8_t* out_row = code + o * l.channels;
            for (size_t c = 0; c < channels; ++c) {
                // Same arithmetic as quantize_uniform.
                float q = row[c] / scale[c];
                q = q > lo[c] ? q : lo[c];
                q = q < hi[c] ? q : hi[c];
                q = (q + 12582912.0f) - 12582912.0f;
                out_row[c] = static_cast<int8_t>(static_cast<int>(q + zp[c]));
            }
        }
        return;
    }
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c) {
            const UniformParams p = params[per_channel ? static_cast<size_t>(c) : 0];
            for (int64_t i = 0; i < l.inner; ++i) code[i] = static_cast<int8_t>(quantize_uniform(x[i], p, qmin, qmax));
            code += l.inner;
            x += l.inner;
        }
}

void uniform_decode(const CompressedWeight& cw, float* out) {
    const Layout l = cw.layout();
    const bool per_channel = cw.granularity == Granularity::PerChannel;
    const bool asym = cw.scheme == Scheme::Asymmetric;
    const int8_t* code = cw.codes.data();
    if (per_channel && l.inner == 1) {  // rows of channels, vectorizable
        const auto channels = static_cast<size_t>(l.channels);
        std::vector<int32_t> zp(channels, 0);
        if (asym)
            for (size_t c = 0; c < channels; ++c) zp[c] = cw.zero_points[c];
        const float* s = cw.scales.data();
        for (int64_t o = 0; o < l.outer; ++o, code += l.channels, out += l.channels)
            for (size_t c = 0; c < channels; ++c) out[c] = s[c] * static_cast<float>(code[c] - zp[c]);
        return;
    }
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c) {
            const size_t g = per_channel ? static_cast<size_t>(c) : 0;
            const UniformParams p{cw.scales[g], asym ? cw.zero_points[g] : 0};
            for (int64_t i = 0; i < l.inner; ++i) out[i] = dequantize_uniform(code[i], p);
            code += l.inner;
            out += l.inner;
        }
}

CodeMap uniform_code_map(int bits, Scheme scheme) {
    return CodeMap{uniform_code_min(bits, scheme), uniform_code_max(bits, scheme), 1};
}

std::string uniform_check(const CompressedWeight& cw) {
    const auto groups = static_cast<size_t>(cw.group_count());
    if (cw.scales.size() != groups)
        return "expected " + std::to_string(groups) + " scales, got " + std::to_string(cw.scales.size());
    for (float s : cw.scales)
        if (!(std::isfinite(s) && s > 0.0f)) return "scale " + std::to_string(s) + " is not finite and positive";
    if (cw.scheme == Scheme::Asymmetric) {
        if (cw.zero_points.size() != groups)
            return "expected " + std::to_string(groups) + " zero points, got " + std::to_string(cw.zero_points.size());
        const int lo = uniform_code_min(cw.bits, cw.scheme), hi = uniform_code_max(cw.bits, cw.scheme);
        for (int z : cw.zero_points)
            if (z < lo || z > hi) return "zero point " + std::to_string(z) + " outside the code range";
    } else if (!cw.zero_points.empty()) {
        return "symmetric weight with zero points";
    }
    if (!cw.codebook.empty()) return "uniform weight with a codebook";
    return "";
}

}  // namespace

/// Row of method_table(): 2..8 bits, symmetric or asymmetric, per channel or per tensor.
extern const WeightMethod uniform_method;
const WeightMethod uniform_method = {
    /*id=*/2, "uniform", Method::Quantize, /*min_bits=*/2, /*max_bits=*/8, /*int8_codes=*/true,
    uniform_unsupported, uniform_encode, uniform_decode, uniform_code_map, uniform_check,
};

}  // namespace dcs::compress
