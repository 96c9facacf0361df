#pragma once
/// Error-compensating rounding (`compression.rounding: gptq`) for the uniform method.
///
/// GPTQ (Frantar et al., 2022) quantizes a layer's weight column by column and spreads each column's
/// rounding error over the columns not yet quantized through the upper Cholesky factor U of H^-1
/// (H^-1 = U^T U), where H = sum x x^T over the layer's fp32 inputs x on the calibration subset. This
/// minimises, greedily, the layer's output error sum ||W x - Q x||^2. With pruning, the mask is chosen
/// first much as SparseGPT (Frantar & Alistarh, 2023) does: in blocks of kGptqBlock columns, the weights
/// of smallest OBS saliency w^2 / U_jj^2 (on the weights already compensated for the earlier blocks)
/// are pruned and their error spread likewise. Unlike SparseGPT, which prunes the same ratio in every
/// block, a block prunes as many as it holds of the layer's elements of smallest static OBS saliency
/// w^2 / [H^-1]_jj, so the layer as a whole prunes exactly prune_count(numel, ratio) and inputs that
/// matter little (or never fire) lose more weights than the others. Then the scales are chosen on the original weight with
/// that mask exactly as the nearest quantizer chooses them (compress/quantize.hpp: granularity, scheme,
/// clip), and GPTQ quantizes the kept weights, pruned ones counting as 0. The result is an ordinary
/// uniform CompressedWeight: same codes, side data, mask and packed format as nearest rounding. GPTQ
/// and OBS are greedy, so the nearest-rounding result (magnitude mask) is returned instead whenever its
/// output error on the calibration inputs, hessian_error(), is smaller (rare: 2 bits, heavy pruning).
///
/// The weight is seen as a [rows, columns] matrix per its Layout (compress/layout.hpp): row = output
/// channel c, column j = o * inner + i for element (o, c, i), so y_c = sum_j W[c, j] x_j. Column j is
/// input feature j for Gemm and MatMul, and (ic, kh, kw) in that order (im2col) for a Conv
/// [OC, IC/group, KH, KW]; each Conv group has its own H over its own input channels.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "compress/layout.hpp"
#include "compress/types.hpp"
#include "compress/weight.hpp"

namespace dcs::compress {

/// GPTQ's dampening: this fraction of the mean diagonal of H is added to its diagonal (percdamp).
inline constexpr double kGptqDamp = 0.01;
/// Columns per block of the OBS mask selection (SparseGPT uses 128 on layers of thousands of columns;
/// ours have 25 to a few thousand, and smaller blocks follow the compensated weights more closely).
inline constexpr int64_t kGptqBlock = 16;

/// The Hessian of a layer's reconstruction error, per group: H_g = sum x x^T over the input vectors x
/// (of `columns` values) that the output channels of group g see. Output channel c is in group
/// c / (channels / groups).
struct LayerHessian {
    int64_t groups = 1;
    int64_t columns = 0;
    int64_t samples = 0;    ///< input vectors added, over all groups
    std::vector<double> h;  ///< groups blocks of columns x columns, row-major, symmetric

    LayerHessian() = default;
    /// Zeroed; @throws std::invalid_argument when groups < 1 or columns < 1
    LayerHessian(int64_t groups, int64_t columns);
    /// H_g += sum of x x^T over n input vectors (n rows of `columns` floats, contiguous).
    /// Deterministic: every element sums its terms in row order, whatever the thread count.
    void add(int64_t g, const float* x, int64_t n);
    /// H_g, columns x columns.
    const double* group(int64_t g) const { return h.data() + g * columns * columns; }
    /// Makes `factors` from H once all inputs are added, so that every compression of the layer reuses
    /// them (else gptq_compress_weight factors H on each call: O(columns^3) per group).
    void factor();
    size_t bytes() const;

    /// Per group, what GPTQ uses of H_g: the inputs that are never nonzero (H_jj == 0: their weights
    /// are zeroed, H_jj set to 1) and the upper factor U of the dampened inverse, H^-1 = U^T U
    /// (row-major columns x columns). Empty until factor().
    struct Factor {
        std::vector<uint8_t> dead;
        std::vector<double> u;
    };
    std::vector<Factor> factors;
};

/// Compresses one weight with GPTQ (and the OBS mask when choice.prune_ratio > 0). Same contract and
/// result type as compress_weight(); pruning keeps exactly prune_count(numel, ratio) elements pruned
/// (unstructured) or prunes the channels filter_prune_mask picks (filter, then GPTQ on the rest).
/// Choices the uniform method does not serve (1 bit: binary; method: cluster) are compressed by
/// compress_weight(), i.e. with nearest rounding. Deterministic.
/// @param hessian the layer's H: columns = numel / channels and groups dividing channels
/// @throws std::invalid_argument as compress_weight, or when the Hessian does not fit the weight
CompressedWeight gptq_compress_weight(const float* w, const std::vector<int64_t>& shape, int64_t out_axis,
                                      const LayerChoice& choice, const WeightSpec& spec, const LayerHessian& hessian);

/// sum over rows c of (W - Q)[c] H_g(c) (W - Q)[c]^T: the output error sum ||W x - Q x||^2 over the
/// inputs H was made of (for tests and measurements).
double hessian_error(const float* w, const float* q, const Layout& l, const LayerHessian& hessian);

}  // namespace dcs::compress
