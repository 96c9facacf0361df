#pragma once
/// The per-layer configuration file (`layers.yaml`, see DESIGN.md): read by `eval --layers`, written by
/// `export`.
#include <string>
#include <vector>

#include "compress/types.hpp"
#include "runtime/graph.hpp"

namespace dcs {

/// Reads `path` and returns one choice per layer of `layers` (in that order). Layers not named take
/// `default` (8 bits, no pruning when absent).
/// Throws InputError naming the file, line and key: unknown keys or layer names (with the nearest
/// known one), bits outside 1..8, prune ratios outside [0, 1), wrong types, YAML syntax errors.
std::vector<compress::LayerChoice> load_layers_file(const std::string& path, const std::vector<LayerInfo>& layers);

/// Same, from text; `path` is used in messages.
std::vector<compress::LayerChoice> parse_layers_file(const std::string& text, const std::string& path,
                                                     const std::vector<LayerInfo>& layers);

/// The YAML text of a per-layer configuration (what `export` writes).
std::string format_layers_file(const std::vector<LayerInfo>& layers, const std::vector<compress::LayerChoice>& choices);

}  // namespace dcs
