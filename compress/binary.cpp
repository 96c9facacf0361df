/// The "binary" method (see binary.hpp).
#include "compress/binary.hpp"

#include <cmath>
#include <string>

#include "compress/method.hpp"

namespace dcs::compress {

float binary_scale(const float* values, int64_t n) {
    if (n == 0) return 0.0f;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += std::fabs(static_cast<double>(values[i]));
    return static_cast<float>(sum / static_cast<double>(n));
}

namespace {

const char* binary_unsupported(int, const WeightSpec&) { return nullptr; }

void binary_encode(const PrunedWeight& pw, const WeightSpec& spec, CompressedWeight& out) {
    out.scheme = Scheme::Symmetric;
    out.granularity = spec.granularity;
    const Layout l = out.layout();
    const int64_t n = l.numel();
    if (out.granularity == Granularity::PerTensor) {
        const std::vector<float> kept = kept_values(pw.weight(), n, out.mask);
        out.scales = {binary_scale(kept.data(), static_cast<int64_t>(kept.size()))};
    } else {
        // Per channel: sum |x| and count kept elements (pruned elements read as 0 and are not counted).
        const float* x = pw.masked();
        const auto channels = static_cast<size_t>(l.channels);
        std::vector<double> sum(channels, 0.0);
        std::vector<int64_t> count(channels, out.mask.empty() ? l.outer * l.inner : 0);
        const uint8_t* m = out.mask.empty() ? nullptr : out.mask.data();
        if (l.inner == 1) {  // rows of channels, vectorizable
            for (int64_t o = 0; o < l.outer; ++o, x += l.channels) {
                for (size_t c = 0; c < channels; ++c) sum[c] += std::fabs(static_cast<double>(x[c]));
                if (m) {
                    for (size_t c = 0; c < channels; ++c) count[c] += m[c];
                    m += l.channels;
                }
            }
        } else {
            for (int64_t o = 0; o < l.outer; ++o)
                for (size_t c = 0; c < channels; ++c) {
                    double s = 0.0;
                    for (int64_t i = 0; i < l.inner; ++i) s += std::fabs(static_cast<double>(x[i]));
                    sum[c] += s;
                    if (m) {
                        int64_t k = 0;
                        for (int64_t i = 0; i < l.inner; ++i) k += m[i];
                        count[c] += k;
                        m += l.inner;
                    }
                    x += l.inner;
                }
        }
        out.scales.resize(channels);
        for (size_t c = 0; c < channels; ++c)
            out.scales[c] = count[c] ? static_cast<float>(sum[c] / static_cast<double>(count[c])) : 0.0f;
    }
    out.zero_points.clear();
    out.codebook.clear();
    out.codes.resize(static_cast<size_t>(n));
    int8_t* code = out.codes.data();
    const float* w = pw.weight();
    for (int64_t i = 0; i < n; ++i) code[i] = w[i] >= 0.0f ? 1 : -1;
}

void binary_decode(const CompressedWeight& cw, float* out) {
    const Layout l = cw.layout();
    const bool per_channel = cw.granularity == Granularity::PerChannel;
    const int8_t* code = cw.codes.data();
    if (per_channel && l.inner == 1) {  // rows of channels, vectorizable
        const float* s = cw.scales.data();
        for (int64_t o = 0; o < l.outer; ++o, code += l.channels, out += l.channels)
            for (int64_t c = 0; c < l.channels; ++c) out[c] = s[c] * static_cast<float>(code[c]);
        return;
    }
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c) {
            const float s = cw.scales[per_channel ? static_cast<size_t>(c) : 0];
            for (int64_t i = 0; i < l.inner; ++i) out[i] = s * static_cast<float>(code[i]);
            code += l.inner;
            out += l.inner;
        }
}

CodeMap binary_code_map(int, Scheme) { return CodeMap{-1, 1, 2}; }

std::string binary_check(const CompressedWeight& cw) {
    const auto groups = static_cast<size_t>(cw.group_count());
    if (cw.scales.size() != groups)
        return "expected " + std::to_string(groups) + " scales, got " + std::to_string(cw.scales.size());
    for (float s : cw.scales)
        if (!(std::isfinite(s) && s >= 0.0f)) return "scale " + std::to_string(s) + " is not finite and >= 0";
    if (cw.scheme != Scheme::Symmetric) return "binary weight marked asymmetric";
    if (!cw.zero_points.empty() || !cw.codebook.empty()) return "binary weight with zero points or a codebook";
    return "";
}

}  // namespace

/// Row of method_table(): 1 bit, either scheme, per channel or per tensor.
extern const WeightMethod binary_method;
const WeightMethod binary_method = {
    /*id=*/1, "binary", Method::Quantize, /*min_bits=*/1, /*max_bits=*/1, /*int8_codes=*/true,
    binary_unsupported, binary_encode, binary_decode, binary_code_map, binary_check,
};

}  // namespace dcs::compress
