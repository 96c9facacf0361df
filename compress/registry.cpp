#include <stdexcept>
#include <string>

#include "common/error.hpp"
#include "compress/method.hpp"

namespace dcs::compress {

// Each method lives in its own file and defines one of these.
extern const WeightMethod binary_method;   // binary.cpp: 1 bit, sign x scale
extern const WeightMethod uniform_method;  // quantize.cpp: 2..8 bits, symmetric / asymmetric
extern const WeightMethod cluster_method;  // cluster.cpp: k-means weight sharing, 1..8 bits

const std::vector<const WeightMethod*>& method_table() {
    // Selection order: the first row that serves a request wins.
    static const std::vector<const WeightMethod*> table = {
        &binary_method,
        &uniform_method,
        &cluster_method,
    };
    return table;
}

const WeightMethod& select_method(int bits, const WeightSpec& spec) {
    if (bits < 1 || bits > 8)
        throw std::invalid_argument("weight_bits must be in 1..8, got " + std::to_string(bits));
    std::string reasons;
    for (const WeightMethod* m : method_table()) {
        const char* why = nullptr;
        if (m->method != spec.method) why = "other method";
        else if (bits < m->min_bits || bits > m->max_bits) why = "bit-width out of range";
        else why = m->unsupported(bits, spec);
        if (!why) return *m;
        reasons += std::string(reasons.empty() ? "" : "; ") + m->name + ": " + why;
    }
    throw UnsupportedError("no weight-compression method serves " + std::to_string(bits) + " bits (" +
                           reasons + ")");
}

const WeightMethod* find_method(uint8_t id) {
    for (const WeightMethod* m : method_table())
        if (m->id == id) return m;
    return nullptr;
}

const WeightMethod* find_method(const std::string& name) {
    for (const WeightMethod* m : method_table())
        if (name == m->name) return m;
    return nullptr;
}

}  // namespace dcs::compress
