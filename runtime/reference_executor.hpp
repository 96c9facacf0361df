#pragma once
/// The fp32 reference executor: plain loops, written to be read and trusted. Every faster path
/// (oneDNN fp32, oneDNN int8) is tested against it.
#include <map>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace dcs {

class ReferenceExecutor {
public:
    /// Keeps a reference to `graph`, which must outlive the executor.
    explicit ReferenceExecutor(const Graph& graph);

    /// Runs the graph. `inputs` follow graph.inputs' order; the result follows graph.outputs'.
    /// `overrides` replaces initializers by name (e.g. dequantized weights of a candidate).
    /// Throws InputError on shape mismatches, naming the node.
    std::vector<Tensor> run(const std::vector<Tensor>& inputs,
                            const std::map<std::string, Tensor>* overrides = nullptr) const;

private:
    const Graph& graph_;
    std::map<std::string, size_t> last_use_;  ///< value -> index of the last node reading it
};

}  // namespace dcs
