#include "search/search_space.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <stdexcept>

namespace dcs::search {

namespace {
template <class T>
std::vector<T> sorted_unique(std::vector<T> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}
}  // namespace

SearchSpace SearchSpace::build(const std::vector<std::string>& layer_names, const std::vector<int>& bits,
                               const std::vector<double>& prunes, const std::vector<LayerOverride>& overrides,
                               std::vector<std::string>* warnings) {
    SearchSpace s;
    std::vector<bool> used(overrides.size(), false);
    for (const auto& name : layer_names) {
        LayerSpace ls{name, bits, prunes};
        for (size_t i = 0; i < overrides.size(); ++i) {
            if (fnmatch(overrides[i].match.c_str(), name.c_str(), 0) != 0) continue;
            used[i] = true;
            if (!overrides[i].weight_bits.empty()) ls.bits = overrides[i].weight_bits;
            if (!overrides[i].prune_ratios.empty()) ls.prunes = overrides[i].prune_ratios;
        }
        ls.bits = sorted_unique(ls.bits);
        ls.prunes = sorted_unique(ls.prunes);
        if (ls.bits.empty() || ls.prunes.empty())
            throw std::invalid_argument("layer '" + name + "' has no bit-width or prune-ratio choices");
        s.layers_.push_back(std::move(ls));
    }
    if (warnings)
        for (size_t i = 0; i < overrides.size(); ++i)
            if (!used[i])
                warnings->push_back("compression.layers: match '" + overrides[i].match +
                                    "' matches no compressible layer (dcsearch inspect lists them)");
    return s;
}

std::vector<int> SearchSpace::gene_choices() const {
    std::vector<int> c;
    for (const auto& l : layers_) {
        c.push_back(static_cast<int>(l.bits.size()));
        c.push_back(static_cast<int>(l.prunes.size()));
    }
    return c;
}

std::vector<compress::LayerChoice> SearchSpace::decode(const Genome& g) const {
    if (g.size() != 2 * layers_.size()) throw std::invalid_argument("genome length does not match the space");
    std::vector<compress::LayerChoice> out;
    for (size_t i = 0; i < layers_.size(); ++i)
        out.push_back({layers_[i].bits.at(static_cast<size_t>(g[2 * i])), layers_[i].prunes.at(static_cast<size_t>(g[2 * i + 1]))});
    return out;
}

Genome SearchSpace::encode(const std::vector<compress::LayerChoice>& choices) const {
    if (choices.size() != layers_.size()) throw std::invalid_argument("wrong number of layer choices");
    Genome g;
    for (size_t i = 0; i < layers_.size(); ++i) {
        auto b = std::find(layers_[i].bits.begin(), layers_[i].bits.end(), choices[i].weight_bits);
        auto p = std::find(layers_[i].prunes.begin(), layers_[i].prunes.end(), choices[i].prune_ratio);
        if (b == layers_[i].bits.end() || p == layers_[i].prunes.end())
            throw std::invalid_argument("layer '" + layers_[i].name + "': choice not in the search space");
        g.push_back(static_cast<int>(b - layers_[i].bits.begin()));
        g.push_back(static_cast<int>(p - layers_[i].prunes.begin()));
    }
    return g;
}

Genome SearchSpace::reference_genome() const {
    Genome g;
    for (const auto& l : layers_) {
        auto b = std::find(l.bits.begin(), l.bits.end(), 8);
        g.push_back(b != l.bits.end() ? static_cast<int>(b - l.bits.begin()) : static_cast<int>(l.bits.size()) - 1);
        g.push_back(0);
    }
    return g;
}

double SearchSpace::size() const {
    double n = 1;
    for (const auto& l : layers_) n *= static_cast<double>(l.bits.size() * l.prunes.size());
    return n;
}

}  // namespace dcs::search
