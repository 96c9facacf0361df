#pragma once
/// A compressed weight tensor and the one call that produces it: prune, then encode with the method the
/// registry picks (method.hpp). See docs/compression.md for the code ranges and rounding.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/layout.hpp"
#include "compress/types.hpp"

namespace dcs::compress {

struct WeightMethod;

/// A compressed weight tensor: int8 container codes in the weight's own layout, the keep mask, and the
/// method's side data (scales, zero points or codebook). It can produce the dequantized floats.
///
/// Codes per method (b = bits; the int8 container holds every code exactly):
///
/// | method  | code range                         | dequantized element               | pruned code  |
/// |---------|------------------------------------|-----------------------------------|--------------|
/// | binary  | {-1, +1}                           | scales[g] * code                  | 0            |
/// | uniform, symmetric  | [-(2^(b-1)-1), 2^(b-1)-1] | scales[g] * code               | 0            |
/// | uniform, asymmetric | [-2^(b-1), 2^(b-1)-1]     | scales[g] * (code - zero_points[g]) | zero_points[g] |
/// | cluster | [-2^(b-1), 2^(b-1)-1]              | codebook[code + 2^(b-1)]          | 0            |
///
/// g is the output channel for Granularity::PerChannel and 0 for PerTensor. Pruned elements always
/// dequantize to +0.0f.
struct CompressedWeight {
    std::vector<int64_t> shape;                         ///< the weight's dimensions
    int64_t out_axis = 0;                               ///< output-channel axis, in [0, rank)
    int bits = 8;                                       ///< 1..8
    uint8_t method_id = 0;                              ///< WeightMethod::id of the method that made it
    Scheme scheme = Scheme::Symmetric;                  ///< normalised: Symmetric for binary and cluster
    Granularity granularity = Granularity::PerChannel;  ///< normalised: PerTensor for cluster
    std::vector<int8_t> codes;        ///< one per element, row-major in the weight's layout
    std::vector<float> scales;        ///< one per group (binary, uniform); empty for cluster
    std::vector<int8_t> zero_points;  ///< one per group (uniform asymmetric), else empty
    std::vector<float> codebook;      ///< 2^bits centroids, ascending (cluster), else empty
    std::vector<uint8_t> mask;        ///< 1 = kept, 0 = pruned; empty when no element is pruned

    /// Product of shape.
    int64_t numel() const;
    /// [outer, channels, inner] view; throws std::invalid_argument on a bad shape or out_axis.
    Layout layout() const { return weight_layout(shape, out_axis); }
    /// Number of scale / zero-point groups: channels (PerChannel) or 1 (PerTensor).
    int64_t group_count() const;
    /// The method table row; throws std::invalid_argument on an unknown method_id.
    const WeightMethod& method() const;
    /// Whether flat element i (in [0, numel())) is pruned.
    bool is_pruned(int64_t i) const { return !mask.empty() && mask[static_cast<size_t>(i)] == 0; }
    /// Elements not pruned.
    int64_t kept_count() const;

    /// The dequantized weight, same shape and layout as the input of compress_weight.
    std::vector<float> dequantize() const;
    /// Same, into `out` (numel() floats).
    void dequantize_into(float* out) const;

    /// For the int8 runtime: true when `codes` are integer weights w_q with
    /// dequantized = channel_scale(c) * (w_q - channel_zero_point(c)) exactly (binary, uniform).
    /// False for clustering, whose codes are codebook indices: the int8 runtime then re-quantizes the
    /// dequantized weights to 8 bits.
    bool has_int8_codes() const;
    /// Scale of output channel c in [0, channels) (the shared one for PerTensor).
    /// @throws std::logic_error when !has_int8_codes(); std::out_of_range for a channel without scale
    float channel_scale(int64_t c) const;
    /// Zero point of output channel c (0 unless asymmetric), in the int8 code range.
    /// @throws as channel_scale
    int channel_zero_point(int64_t c) const;
    /// The code a pruned element of output channel c carries: the zero point, or 0.
    int8_t pruned_code(int64_t c) const;

    bool operator==(const CompressedWeight& o) const;
    bool operator!=(const CompressedWeight& o) const { return !(*this == o); }
};

/// What compressing a weight derives from the weight and its pruning alone, whatever the bit width and
/// the method: the layout, the finite check, the keep mask and the weight with pruned elements read as
/// +0, plus data a method derives from those on first use (memo(): the uniform method's value ranges and
/// packed rows). compress_weight(w, shape, out_axis, {bits, ratio}, spec) equals
/// compress_weight(PrunedWeight(w, shape, out_axis, ratio, spec.pruning), bits, spec), so one
/// PrunedWeight serves every bit width of a layer at one prune ratio; the search's weight cache keeps one
/// per (layer, prune ratio). It refers to `w`, which must outlive it. Not for concurrent use.
class PrunedWeight {
public:
    /// @throws std::invalid_argument as compress_weight: null w, bad shape or out_axis, prune_ratio
    ///         outside [0, 1), a non-finite weight (with its index)
    PrunedWeight(const float* w, std::vector<int64_t> shape, int64_t out_axis, double prune_ratio, Pruning pruning);
    PrunedWeight(const PrunedWeight&) = delete;
    PrunedWeight& operator=(const PrunedWeight&) = delete;

    const float* weight() const { return w_; }             ///< the original floats
    const float* masked() const { return masked_ ? masked_.get() : w_; }  ///< pruned elements +0
    const std::vector<uint8_t>& mask() const { return mask_; }  ///< 1 = kept; empty when none is pruned
    const std::vector<int64_t>& shape() const { return shape_; }
    int64_t out_axis() const { return out_axis_; }
    const Layout& layout() const { return layout_; }
    double prune_ratio() const { return ratio_; }
    Pruning pruning() const { return pruning_; }

    /// Data a method derives from this weight, made by make() on the first call with `key` and kept;
    /// T::bytes() tells the memory it holds. The same key must always be used with the same T.
    template <class T, class Make>
    const T& memo(const std::string& key, Make&& make) const {
        auto it = memos_.find(key);
        if (it == memos_.end()) {
            auto value = std::make_shared<const T>(make());
            memo_bytes_ += value->bytes();
            it = memos_.emplace(key, std::move(value)).first;
        }
        return *static_cast<const T*>(it->second.get());
    }

    /// Memory held besides the original weight: mask, masked copy and memos.
    size_t bytes() const;

private:
    const float* w_;
    std::vector<int64_t> shape_;
    int64_t out_axis_;
    Layout layout_;
    double ratio_;
    Pruning pruning_;
    std::vector<uint8_t> mask_;
    std::unique_ptr<float[]> masked_;
    mutable std::map<std::string, std::shared_ptr<const void>> memos_;
    mutable size_t memo_bytes_ = 0;
};

/// Encodes a pruned weight at `bits` with the method the registry picks for (bits, spec); spec.pruning
/// must be the PrunedWeight's.
/// @throws std::invalid_argument for bits outside 1..8 or a pruning kind other than the PrunedWeight's
/// @throws dcs::UnsupportedError when no method serves (bits, spec)
CompressedWeight compress_weight(const PrunedWeight& pruned, int bits, const WeightSpec& spec);

/// Prunes and encodes one weight tensor.
/// @param w        numel(shape) finite floats, row-major
/// @param shape    rank >= 1, every dimension >= 1
/// @param out_axis output-channel axis in [0, rank): 0 for Conv [OC,IC,KH,KW] and Gemm transB=1 [N,K],
///                 1 for MatMul / Gemm transB=0 [K,N]
/// @param choice   weight_bits in 1..8; prune_ratio in [0, 1): prune_count() elements (unstructured) or
///                 channels (filter) are zeroed
/// @param spec     granularity, scheme, pruning kind, method (quantize / cluster), clip rule
/// @return the compressed weight; its pruned elements dequantize to exactly +0
/// @throws std::invalid_argument naming the offending value: null w, bad shape or out_axis, bits outside
///         1..8, prune_ratio outside [0, 1), a non-finite weight (with its index)
/// @throws dcs::UnsupportedError when no method in the table serves (bits, spec) (lists each reason)
CompressedWeight compress_weight(const float* w, const std::vector<int64_t>& shape, int64_t out_axis,
                                 const LayerChoice& choice, const WeightSpec& spec);

/// Checks that `cw` is internally consistent (shape, sizes, code ranges, side data, pruned codes).
/// @return empty when consistent, else what is wrong (one line)
std::string check_compressed_weight(const CompressedWeight& cw);

// Helpers for the methods' encode functions.

/// The weight with pruned elements replaced by +0: `w` itself when `mask` is empty, else a copy kept in
/// `storage`. Range and error computations can run on it unchanged, because every method represents 0
/// exactly and the range always includes it.
const float* masked_weight(const float* w, int64_t n, const std::vector<uint8_t>& mask,
                           std::unique_ptr<float[]>& storage);

/// Smallest and largest of n >= 1 values (vectorized: independent lanes, no -ffast-math needed).
void value_range(const float* x, int64_t n, float* lo, float* hi);

/// The kept values (mask byte != 0, or all when `mask` is empty) in memory order.
std::vector<float> kept_values(const float* w, int64_t n, const std::vector<uint8_t>& mask);

}  // namespace dcs::compress
