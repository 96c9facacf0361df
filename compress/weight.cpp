#include "compress/weight.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/cpu_features.hpp"
#include "compress/method.hpp"
#include "compress/prune.hpp"

namespace dcs::compress {

int64_t CompressedWeight::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

int64_t CompressedWeight::group_count() const {
    if (granularity == Granularity::PerTensor) return 1;
    if (out_axis < 0 || out_axis >= static_cast<int64_t>(shape.size()))
        throw std::invalid_argument("out_axis " + std::to_string(out_axis) + " out of range for shape " +
                                    shape_string(shape));
    return shape[static_cast<size_t>(out_axis)];
}

const WeightMethod& CompressedWeight::method() const {
    const WeightMethod* m = find_method(method_id);
    if (!m) throw std::invalid_argument("unknown weight-compression method id " + std::to_string(method_id));
    return *m;
}

int64_t CompressedWeight::kept_count() const {
    if (mask.empty()) return numel();
    int64_t k = 0;
    for (uint8_t m : mask) k += m != 0;
    return k;
}

std::vector<float> CompressedWeight::dequantize() const {
    std::vector<float> out(static_cast<size_t>(numel()));
    dequantize_into(out.data());
    return out;
}

void CompressedWeight::dequantize_into(float* out) const {
    method().decode(*this, out);
    if (mask.empty()) return;
    const int64_t n = numel();
    const uint8_t* m = mask.data();
    for (int64_t i = 0; i < n; ++i) {  // bitwise select, +0 for pruned (vectorizes, unlike a branch)
        uint32_t bits;
        std::memcpy(&bits, &out[i], sizeof bits);
        bits &= 0u - static_cast<uint32_t>(m[i] != 0);
        std::memcpy(&out[i], &bits, sizeof bits);
    }
}

bool CompressedWeight::has_int8_codes() const { return method().int8_codes; }

float CompressedWeight::channel_scale(int64_t c) const {
    if (!has_int8_codes()) throw std::logic_error("channel_scale: method " + std::string(method().name) + " has no scales");
    return scales.at(granularity == Granularity::PerChannel ? static_cast<size_t>(c) : 0);
}

int CompressedWeight::channel_zero_point(int64_t c) const {
    if (!has_int8_codes())
        throw std::logic_error("channel_zero_point: method " + std::string(method().name) + " has no zero points");
    return pruned_code(c);
}

int8_t CompressedWeight::pruned_code(int64_t c) const {
    if (zero_points.empty()) return 0;
    return zero_points.at(granularity == Granularity::PerChannel ? static_cast<size_t>(c) : 0);
}

bool CompressedWeight::operator==(const CompressedWeight& o) const {
    return shape == o.shape && out_axis == o.out_axis && bits == o.bits && method_id == o.method_id &&
           scheme == o.scheme && granularity == o.granularity && codes == o.codes && scales == o.scales &&
           zero_points == o.zero_points && codebook == o.codebook && mask == o.mask;
}

namespace {

DCS_VECTOR_CLONES void mask_copy(const float* __restrict w, int64_t n, const uint8_t* __restrict m, float* __restrict out) {
    // Bitwise select (+0 for pruned elements) so that the loop vectorizes.
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, &w[i], sizeof bits);
        bits &= 0u - static_cast<uint32_t>(m[i] != 0);
        std::memcpy(&out[i], &bits, sizeof bits);
    }
}

/// Whether any of n floats is an Inf or NaN: the values whose exponent bits are all set (an integer test,
/// which vectorizes).
DCS_VECTOR_CLONES bool any_not_finite(const float* __restrict w, int64_t n) {
    uint32_t special = 0;
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, &w[i], sizeof bits);
        special |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    return special != 0;
}

/// Element-wise passes over large weights run in chunks of this many elements on the OpenMP threads.
constexpr int64_t kChunk = 65536;

/// any_not_finite, chunk by chunk on the threads for large weights.
bool any_not_finite_parallel(const float* w, int64_t n) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    int found = 0;
#pragma omp parallel for schedule(static) reduction(| : found) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) found |= any_not_finite(w + c * kChunk, std::min(kChunk, n - c * kChunk));
    return found != 0;
}

/// mask_copy, chunk by chunk on the threads for large weights.
void mask_copy_parallel(const float* w, int64_t n, const uint8_t* m, float* out) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c)
        mask_copy(w + c * kChunk, std::min(kChunk, n - c * kChunk), m + c * kChunk, out + c * kChunk);
}

}  // namespace

const float* masked_weight(const float* w, int64_t n, const std::vector<uint8_t>& mask,
                           std::unique_ptr<float[]>& storage) {
    if (mask.empty()) return w;
    storage.reset(new float[static_cast<size_t>(n)]);  // uninitialized: every element is written
    mask_copy_parallel(w, n, mask.data(), storage.get());
    return storage.get();
}

DCS_VECTOR_CLONES void value_range(const float* x, int64_t n, float* lo, float* hi) {
    // Eight independent lanes (a GCC vector), element i into lane i % 8; min and max are exact in any order.
    typedef float Lanes __attribute__((vector_size(8 * sizeof(float))));
    float mn0 = x[0], mx0 = x[0];
    int64_t i = 0;
    if (n >= 8) {
        Lanes mn, mx;
        std::memcpy(&mn, x, sizeof mn);
        mx = mn;
        for (i = 8; i + 8 <= n; i += 8) {
            Lanes v;
            std::memcpy(&v, x + i, sizeof v);
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        for (int j = 0; j < 8; ++j) {
            mn0 = mn[j] < mn0 ? mn[j] : mn0;
            mx0 = mx[j] > mx0 ? mx[j] : mx0;
        }
    }
    for (; i < n; ++i) {
        mn0 = x[i] < mn0 ? x[i] : mn0;
        mx0 = x[i] > mx0 ? x[i] : mx0;
    }
    *lo = mn0;
    *hi = mx0;
}

std::vector<float> kept_values(const float* w, int64_t n, const std::vector<uint8_t>& mask) {
    if (mask.empty()) return std::vector<float>(w, w + n);
    std::vector<float> v(static_cast<size_t>(n));
    float* out = v.data();
    const uint8_t* m = mask.data();
    size_t k = 0;
    for (int64_t i = 0; i < n; ++i) {  // branch-free compaction: write always, advance when kept
        out[k] = w[i];
        k += m[i] != 0;
    }
    v.resize(k);
    return v;
}

namespace {

/// code where m != 0, else z (bitwise, so that the loops vectorize).
inline int8_t select_code(uint8_t m, int8_t code, int8_t z) {
    const auto keep = static_cast<uint8_t>(0u - static_cast<unsigned>(m != 0));
    return static_cast<int8_t>((static_cast<uint8_t>(code) & keep) | (static_cast<uint8_t>(z) & ~keep));
}

/// Sets the code of every pruned element to its channel's pruned code.
void apply_pruned_codes(CompressedWeight& cw, const Layout& l) {
    int8_t* __restrict code = cw.codes.data();
    const uint8_t* __restrict m = cw.mask.data();
    if (cw.zero_points.empty() || cw.granularity == Granularity::PerTensor) {
        const int8_t z = cw.pruned_code(0);
        const int64_t n = l.numel();
        for (int64_t i = 0; i < n; ++i) code[i] = select_code(m[i], code[i], z);
        return;
    }
    const int8_t* __restrict zp = cw.zero_points.data();
    if (l.inner == 1) {
        for (int64_t o = 0; o < l.outer; ++o, code += l.channels, m += l.channels)
            for (int64_t c = 0; c < l.channels; ++c) code[c] = select_code(m[c], code[c], zp[c]);
        return;
    }
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c, code += l.inner, m += l.inner)
            for (int64_t e = 0; e < l.inner; ++e) code[e] = select_code(m[e], code[e], zp[c]);
}

/// Whether every pruned element carries its channel's pruned code.
bool pruned_codes_ok(const CompressedWeight& cw, const Layout& l) {
    const int8_t* code = cw.codes.data();
    const uint8_t* m = cw.mask.data();
    bool ok = true;
    if (cw.zero_points.empty() || cw.granularity == Granularity::PerTensor) {
        const int8_t z = cw.pruned_code(0);
        const int64_t n = l.numel();
        for (int64_t i = 0; i < n; ++i) ok &= (m[i] != 0) | (code[i] == z);
        return ok;
    }
    const int8_t* zp = cw.zero_points.data();
    if (l.inner == 1) {
        for (int64_t o = 0; o < l.outer; ++o, code += l.channels, m += l.channels)
            for (int64_t c = 0; c < l.channels; ++c) ok &= (m[c] != 0) | (code[c] == zp[c]);
        return ok;
    }
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c, code += l.inner, m += l.inner)
            for (int64_t e = 0; e < l.inner; ++e) ok &= (m[e] != 0) | (code[e] == zp[c]);
    return ok;
}

}  // namespace

PrunedWeight::PrunedWeight(const float* w, std::vector<int64_t> shape, int64_t out_axis, double prune_ratio,
                           Pruning pruning)
    : w_(w),
      shape_(std::move(shape)),
      out_axis_(out_axis),
      layout_(weight_layout(shape_, out_axis_)),
      ratio_(prune_ratio),
      pruning_(pruning) {
    if (!w) throw std::invalid_argument("compress_weight: null weight pointer");
    prune_count(0, prune_ratio);  // validates the ratio
    const int64_t n = layout_.numel();
    if (any_not_finite_parallel(w, n))
        for (int64_t i = 0; i < n; ++i)
            if (!std::isfinite(w[i]))
                throw std::invalid_argument("weight element " + std::to_string(i) + " of shape " + shape_string(shape_) +
                                            " is not finite (" + std::to_string(w[i]) + ")");
    mask_ = prune_mask(w, layout_, prune_ratio, pruning);
    masked_weight(w, n, mask_, masked_);  // keeps masked_ empty when nothing is pruned
}

size_t PrunedWeight::bytes() const {
    return sizeof(*this) + mask_.size() + (masked_ ? 4 * mask_.size() : 0) + memo_bytes_;
}

CompressedWeight compress_weight(const PrunedWeight& pruned, int bits, const WeightSpec& spec) {
    if (bits < 1 || bits > 8) throw std::invalid_argument("weight_bits must be in 1..8, got " + std::to_string(bits));
    if (spec.pruning != pruned.pruning())
        throw std::invalid_argument("compress_weight: the spec's pruning kind differs from the pruned weight's");
    const WeightMethod& method = select_method(bits, spec);
    CompressedWeight cw;
    cw.shape = pruned.shape();
    cw.out_axis = pruned.out_axis();
    cw.bits = bits;
    cw.method_id = method.id;
    cw.mask = pruned.mask();
    method.encode(pruned, spec, cw);
    if (!cw.mask.empty()) apply_pruned_codes(cw, pruned.layout());
    return cw;
}

CompressedWeight compress_weight(const float* w, const std::vector<int64_t>& shape, int64_t out_axis,
                                 const LayerChoice& choice, const WeightSpec& spec) {
    if (!w) throw std::invalid_argument("compress_weight: null weight pointer");
    weight_layout(shape, out_axis);  // validates shape and axis first, as the messages always came
    if (choice.weight_bits < 1 || choice.weight_bits > 8)
        throw std::invalid_argument("weight_bits must be in 1..8, got " + std::to_string(choice.weight_bits));
    return compress_weight(PrunedWeight(w, shape, out_axis, choice.prune_ratio, spec.pruning), choice.weight_bits, spec);
}

std::string check_compressed_weight(const CompressedWeight& cw) {
    Layout l;
    try {
        l = cw.layout();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    const WeightMethod* m = find_method(cw.method_id);
    if (!m) return "unknown weight-compression method id " + std::to_string(cw.method_id);
    if (cw.bits < m->min_bits || cw.bits > m->max_bits)
        return std::string("method ") + m->name + " does not serve " + std::to_string(cw.bits) + " bits";
    if (cw.scheme != Scheme::Symmetric && cw.scheme != Scheme::Asymmetric) return "invalid scheme";
    if (cw.granularity != Granularity::PerChannel && cw.granularity != Granularity::PerTensor)
        return "invalid granularity";
    const auto n = static_cast<size_t>(l.numel());
    if (cw.codes.size() != n) return "expected " + std::to_string(n) + " codes, got " + std::to_string(cw.codes.size());
    if (!cw.mask.empty() && cw.mask.size() != n)
        return "expected an empty mask or " + std::to_string(n) + " mask bytes, got " + std::to_string(cw.mask.size());
    std::string side = m->check(cw);
    if (!side.empty()) return std::string(m->name) + ": " + side;
    const CodeMap map = m->code_map(cw.bits, cw.scheme);
    bool valid[256];
    for (int code = -128; code < 128; ++code) valid[code + 128] = map.valid(code);
    const int8_t* codes = cw.codes.data();
    const uint8_t* mask = cw.mask.empty() ? nullptr : cw.mask.data();
    bool ok = true;
    if (map.step == 1 || map.step == 2) {
        // Branch-free range and parity test (pruned elements read as code_min), which vectorizes.
        const auto lo = static_cast<int8_t>(map.code_min);
        int8_t kmin = 127, kmax = -128;
        uint8_t parity = 0, mask_bits = 0;
        if (!mask) {
            for (size_t i = 0; i < n; ++i) {
                const int8_t v = codes[i];
                kmin = v < kmin ? v : kmin;
                kmax = v > kmax ? v : kmax;
                parity |= static_cast<uint8_t>(v - lo);
            }
        } else {
            for (size_t i = 0; i < n; ++i) {
                const auto keep = static_cast<int8_t>(-static_cast<int8_t>(mask[i] != 0));  // 0 or all ones
                const auto v = static_cast<int8_t>((codes[i] & keep) | (lo & ~keep));
                kmin = v < kmin ? v : kmin;
                kmax = v > kmax ? v : kmax;
                parity |= static_cast<uint8_t>(v - lo);
                mask_bits |= mask[i];
            }
        }
        ok = kmin >= map.code_min && kmax <= map.code_max && (map.step == 1 || (parity & 1) == 0) && mask_bits <= 1;
    } else {
        for (size_t i = 0; i < n; ++i) ok &= (mask && mask[i] == 0) || valid[codes[i] + 128];
        if (mask)
            for (size_t i = 0; i < n; ++i) ok &= mask[i] <= 1;
    }
    if (ok && mask) ok = pruned_codes_ok(cw, l);
    if (ok) return "";
    // Find the first offender for the message.
    size_t i = 0;
    for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t c = 0; c < l.channels; ++c) {
            const int8_t zero = cw.pruned_code(c);
            for (int64_t e = 0; e < l.inner; ++e, ++i) {
                const int code = codes[i];
                if (cw.mask.empty() || cw.mask[i] == 1) {
                    if (!valid[code + 128])
                        return "code " + std::to_string(code) + " at element " + std::to_string(i) + " outside the method's codes";
                } else if (cw.mask[i] != 0) {
                    return "mask byte " + std::to_string(cw.mask[i]) + " at element " + std::to_string(i) + " is not 0 or 1";
                } else if (code != zero) {
                    return "pruned element " + std::to_string(i) + " has code " + std::to_string(code) + ", expected " +
                           std::to_string(zero);
                }
            }
        }
    return "inconsistent codes";
}

}  // namespace dcs::compress
