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
