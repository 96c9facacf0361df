#include "compress/layout.hpp"

#include <stdexcept>
#include <string>

namespace dcs::compress {

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

Layout weight_layout(const std::vector<int64_t>& shape, int64_t out_axis) {
    const auto rank = static_cast<int64_t>(shape.size());
    if (rank == 0) throw std::invalid_argument("weight shape []: a weight needs rank >= 1");
    if (out_axis < 0 || out_axis >= rank)
        throw std::invalid_argument("out_axis " + std::to_string(out_axis) + " out of range [0, " +
                                    std::to_string(rank) + ") for weight shape " + shape_string(shape));
    Layout l;
    int64_t n = 1;
    for (int64_t a = 0; a < rank; ++a) {
        const int64_t d = shape[static_cast<size_t>(a)];
        if (d < 1)
            throw std::invalid_argument("weight shape " + shape_string(shape) + ": dimension " +
                                        std::to_string(a) + " is " + std::to_string(d) + ", expected >= 1");
        if (d > kMaxWeightElements / n)
            throw std::invalid_argument("weight shape " + shape_string(shape) + ": more than 2^40 elements");
        n *= d;
        if (a < out_axis) l.outer *= d;
        else if (a == out_axis) l.channels = d;
        else l.inner *= d;
    }
    return l;
}

}  // namespace dcs::compress
