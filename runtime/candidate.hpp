#pragma once
/// A candidate: one compression choice per compressible layer, applied to a model's weights.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compress/dcz.hpp"
#include "compress/types.hpp"
#include "runtime/graph.hpp"

namespace dcs {

/// A model with every compressible layer compressed as a candidate says.
struct CompressedModel {
    std::vector<compress::CompressedWeight> weights;  ///< one per layer, in list_layers() order
    std::map<std::string, Tensor> overrides;           ///< weight initializer name -> dequantized weight
    uint64_t size_bytes = 0;                            ///< length of the .dcz file this model packs to
};

/// Compresses every layer of `layers` (from list_layers(graph)) with `choices` (same order, same size).
/// @throws InputError when the sizes differ; dcs::UnsupportedError when a method cannot serve a choice
CompressedModel compress_model(const Graph& graph, const std::vector<LayerInfo>& layers,
                               const std::vector<compress::LayerChoice>& choices, const compress::WeightSpec& spec,
                               bool huffman = false);

/// The .dcz contents of a compressed model: the graph structure (serialize_structure), each layer's
/// compressed weight, and every other float initializer (biases included) in fp32.
compress::DczContents dcz_contents(const Graph& graph, const std::vector<LayerInfo>& layers,
                                   const CompressedModel& model, bool huffman = false);

/// A deterministic text description of the graph without weights: inputs, outputs, nodes with
/// attributes, and initializer names with shapes. It is the "rest of the model" in a .dcz file.
std::string serialize_structure(const Graph& graph);

}  // namespace dcs

#include "runtime/evaluate.hpp"

namespace dcs {

/// What evaluating one candidate measured.
struct CandidateMetrics {
    double accuracy = 0.0;     ///< fraction in [0, 1]
    uint64_t size_bytes = 0;   ///< packed (.dcz) size; 4 bytes per parameter for the fp32 baseline
    double bops = 0.0;         ///< bit operations per sample: MACs x weight bits x activation bits
    double seconds = 0.0;      ///< compression + forward passes
    int64_t samples = 0;
};

/// Evaluates candidates of one model on one validation subset; the batches are prepared once.
class CandidateEvaluator {
public:
    /// `graph` and `data` must outlive the evaluator.
    CandidateEvaluator(const Graph& graph, const Dataset& data, const Subset& validation, const Preprocess& pre,
                       const ModelIo& io, const compress::WeightSpec& spec, int activation_bits = 8);

    const std::vector<LayerInfo>& layers() const { return layers_; }
    /// The fp32 model (BOPs count 32-bit weights and activations).
    CandidateMetrics baseline() const;
    /// One candidate: one choice per layer, in layers() order.
    /// @throws InputError / UnsupportedError when a choice cannot be applied
    CandidateMetrics evaluate(const std::vector<compress::LayerChoice>& choices) const;

private:
    const Graph& graph_;
    std::vector<LayerInfo> layers_;
    SubsetEvaluator eval_;
    compress::WeightSpec spec_;
    int activation_bits_;
};

/// BOPs of a compressed model: per layer, MACs x bits x activation bits, with output channels whose
/// weights are all pruned counted as removed.
double compressed_bops(const std::vector<LayerInfo>& layers, const CompressedModel& model, int activation_bits);

}  // namespace dcs
