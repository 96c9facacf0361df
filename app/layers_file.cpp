#include "app/layers_file.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "app/config.hpp"
#include "common/error.hpp"

namespace dcs {

std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates);

namespace {

struct Ctx {
    const std::string& path;
    [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& what) const {
        std::string line = n.Mark().line >= 0 ? " line " + std::to_string(n.Mark().line + 1) : "";
        throw InputError(path + line + ": " + key + ": " + what);
    }
};

compress::LayerChoice parse_choice(const Ctx& c, const YAML::Node& n, const std::string& key,
                                   compress::LayerChoice base) {
    if (!n.IsMap()) c.fail(n, key, "expected a map {weight_bits: B, prune_ratio: R}");
    for (const auto& kv : n) {
        std::string k = kv.first.as<std::string>();
        const YAML::Node& v = kv.second;
        if (k == "weight_bits") {
            int bits = 0;
            try {
                double d = v.as<double>();
                if (d != std::floor(d)) throw YAML::Exception(v.Mark(), "fraction");
                bits = static_cast<int>(d);
            } catch (const YAML::Exception&) {
                c.fail(v, key + ".weight_bits", "must be an integer bit-width in 1..8, got '" + (v.IsScalar() ? v.Scalar() : "a " + std::string(v.IsMap() ? "map" : "list")) + "'");
            }
            if (bits < 1 || bits > 8) c.fail(v, key + ".weight_bits", "must be an integer bit-width in 1..8, got " + std::to_string(bits));
            base.weight_bits = bits;
        } else if (k == "prune_ratio") {
            double r = -1;
            try {
                r = v.as<double>();
            } catch (const YAML::Exception&) {
                c.fail(v, key + ".prune_ratio", "must be a number in [0, 1), got '" + (v.IsScalar() ? v.Scalar() : "?") + "'");
            }
            if (!(r >= 0.0 && r < 1.0)) c.fail(v, key + ".prune_ratio", "must be a number in [0, 1), got " + v.Scalar());
            base.prune_ratio = r;
        } else {
            std::string near = nearest_word(k, {"weight_bits", "prune_ratio"});
            c.fail(kv.first, key + "." + k, "unknown key" + (near.empty() ? std::string() : "; did you mean '" + near + "'?"));
        }
    }
    return base;
}

}  // namespace

std::vector<compress::LayerChoice> parse_layers_file(const std::string& text, const std::string& path,
                                                     const std::vector<LayerInfo>& layers) {
    Ctx c{path};
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw InputError(path + " line " + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
    }
    if (!root.IsMap()) throw InputError(path + ": expected a map with 'default' and 'layers'");
    compress::LayerChoice dflt{8, 0.0};
    std::vector<compress::LayerChoice> out;
    std::vector<std::string> names;
    for (const auto& l : layers) names.push_back(l.name);
    std::map<std::string, compress::LayerChoice> given;
    for (const auto& kv : root) {
        std::string k = kv.first.as<std::string>();
        if (k == "default") {
            dflt = parse_choice(c, kv.second, "default", dflt);
        } else if (k == "layers") {
            if (kv.second.IsNull()) continue;
            if (!kv.second.IsMap()) c.fail(kv.second, "layers", "expected a map from layer name to {weight_bits, prune_ratio}");
        } else {
            std::string near = nearest_word(k, {"default", "layers"});
            c.fail(kv.first, k, "unknown key" + (near.empty() ? std::string() : "; did you mean '" + near + "'?"));
        }
    }
    if (root["layers"] && root["layers"].IsMap()) {
        for (const auto& kv : root["layers"]) {
            std::string name = kv.first.as<std::string>();
            bool known = false;
            for (const auto& n : names) known = known || n == name;
            if (!known) {
                std::string near = nearest_word(name, names);
                c.fail(kv.first, "layers." + name,
                       "the model has no compressible layer of that name" +
                           (near.empty() ? std::string() : "; did you mean '" + near + "'?") +
                           " (dcsearch inspect lists them)");
            }
            given[name] = parse_choice(c, kv.second, "layers." + name, compress::LayerChoice{-1, -1.0});
        }
    }
    for (const auto& l : layers) {
        compress::LayerChoice ch = dflt;
        auto it = given.find(l.name);
        if (it != given.end()) {
            if (it->second.weight_bits > 0) ch.weight_bits = it->second.weight_bits;
            if (it->second.prune_ratio >= 0) ch.prune_ratio = it->second.prune_ratio;
        }
        out.push_back(ch);
    }
    return out;
}

std::vector<compress::LayerChoice> load_layers_file(const std::string& path, const std::vector<LayerInfo>& layers) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw InputError(path + ": layers file not found");
    if (std::filesystem::is_directory(path, ec)) throw InputError(path + ": is a directory, expected a layers.yaml file");
    std::ifstream in(path);
    if (!in) throw InputError(path + ": cannot open for reading");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_layers_file(ss.str(), path, layers);
}

std::string format_layers_file(const std::vector<LayerInfo>& layers, const std::vector<compress::LayerChoice>& choices) {
    std::ostringstream ss;
    ss << "default: {weight_bits: 8, prune_ratio: 0.0}\nlayers:\n";
    for (size_t i = 0; i < layers.size(); ++i)
        ss << "  \"" << layers[i].name << "\": {weight_bits: " << choices.at(i).weight_bits
           << ", prune_ratio: " << choices.at(i).prune_ratio << "}\n";
    return ss.str();
}

}  // namespace dcs
