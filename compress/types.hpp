#pragma once
/// Settings shared by the compression methods. Parsed once from the config (app/config.cpp),
/// passed down as typed values.
#include <cstdint>

namespace dcs::compress {

enum class Granularity { PerChannel, PerTensor };
enum class Scheme { Symmetric, Asymmetric };
enum class Pruning { Unstructured, Filter };
/// How activation ranges are calibrated.
enum class Calibration { MinMax, Percentile, Mse };
/// How weight values are represented: uniform quantization or k-means weight sharing.
enum class Method { Quantize, Cluster };
/// How the weight quantization range is chosen.
enum class WeightClip { MaxAbs, Mse };
/// How weights are rounded to codes: each to its nearest code on its own, or column by column with
/// each column's error spread over the rest through the layer's input Hessian (GPTQ; with pruning the
/// mask is chosen by OBS saliency, as SparseGPT does). See compress/gptq.hpp.
enum class Rounding { Nearest, Gptq };

/// One layer's compression choice: what the search varies.
struct LayerChoice {
    int weight_bits = 8;       ///< 1..8
    double prune_ratio = 0.0;  ///< [0, 1)
    bool operator==(const LayerChoice& o) const {
        return weight_bits == o.weight_bits && prune_ratio == o.prune_ratio;
    }
};

/// Fixed per-search settings: how a LayerChoice is applied to a weight tensor.
struct WeightSpec {
    Granularity granularity = Granularity::PerChannel;
    Scheme scheme = Scheme::Symmetric;
    Pruning pruning = Pruning::Unstructured;
    Method method = Method::Quantize;
    WeightClip clip = WeightClip::MaxAbs;
    /// Gptq needs the layer's input Hessian: compress_weight() ignores it, gptq_compress_weight() uses it.
    Rounding rounding = Rounding::Nearest;
};

}  // namespace dcs::compress
