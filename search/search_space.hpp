#pragma once
/// The search space: for each compressible layer, the weight bit-widths and prune ratios it may take.
/// A genome has two genes per layer, [bits index, prune-ratio index], each into an ascending list, so
/// that neighbouring values are neighbouring indices (mutation steps use that).
#include <string>
#include <vector>

#include "compress/types.hpp"
#include "search/evaluator.hpp"

namespace dcs::search {

/// `compression.layers` entry: overrides the choice lists of the layers whose name matches a glob.
struct LayerOverride {
    std::string match;                 ///< fnmatch(3) glob on the layer name
    std::vector<int> weight_bits;      ///< empty: keep the global list
    std::vector<double> prune_ratios;  ///< empty: keep the global list
};

/// What the search minimises or maximises besides accuracy and size.
enum class Objective { Accuracy, Size, Bops, Latency };

struct LayerSpace {
    std::string name;
    std::vector<int> bits;        ///< ascending, unique
    std::vector<double> prunes;   ///< ascending, unique
};

class SearchSpace {
public:
    /// Builds the space over the compressible layers named `layer_names` (list_layers order): every
    /// layer gets the global lists; each matching override (later entries win) replaces a list.
    /// Overrides that match no layer add a warning.
    static SearchSpace build(const std::vector<std::string>& layer_names, const std::vector<int>& bits,
                             const std::vector<double>& prunes, const std::vector<LayerOverride>& overrides,
                             std::vector<std::string>* warnings = nullptr);

    const std::vector<LayerSpace>& layers() const { return layers_; }
    /// Number of choices of each gene (2 per layer).
    std::vector<int> gene_choices() const;
    std::vector<compress::LayerChoice> decode(const Genome& g) const;
    /// @throws std::invalid_argument when a choice is not in the space
    Genome encode(const std::vector<compress::LayerChoice>& choices) const;
    /// The reference genome: 8 bits (or the most available) and no pruning (or the least) everywhere.
    Genome reference_genome() const;
    /// Number of distinct genomes (saturating).
    double size() const;

private:
    std::vector<LayerSpace> layers_;
};

}  // namespace dcs::search
