#include "runtime/reference_executor.hpp"

#include "common/error.hpp"
#include "runtime/ops/op_table.hpp"

namespace dcs {

ReferenceExecutor::ReferenceExecutor(const Graph& graph) : graph_(graph) {
    for (size_t i = 0; i < graph.nodes.size(); ++i)
        for (const auto& in : graph.nodes[i].inputs) last_use_[in] = i;
    for (const auto& o : graph.outputs) last_use_[o] = graph.nodes.size();
}

std::vector<Tensor> ReferenceExecutor::run(const std::vector<Tensor>& inputs,
                                           const std::map<std::string, Tensor>* overrides) const {
    if (inputs.size() != graph_.inputs.size())
        throw InputError("the model takes " + std::to_string(graph_.inputs.size()) + " inputs, got " +
                         std::to_string(inputs.size()));
    std::map<std::string, Tensor> values;
    for (size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i].dtype != DType::f32) throw InputError("input '" + graph_.inputs[i].name + "' must be float");
        values[graph_.inputs[i].name] = inputs[i];
    }
    auto get = [&](const std::string& name, const std::string& where) -> const Tensor& {
        if (overrides) {
            auto o = overrides->find(name);
            if (o != overrides->end()) return o->second;
        }
        auto it = values.find(name);
        if (it != values.end()) return it->second;
        auto ini = graph_.initializers.find(name);
        if (ini != graph_.initializers.end()) return ini->second;
        throw InputError(where + ": value '" + name + "' is not available");
    };
    for (size_t ni = 0; ni < graph_.nodes.size(); ++ni) {
        const Node& n = graph_.nodes[ni];
        const std::string where = node_where(n);
        const Tensor& x = get(n.inputs[0], where);
        if (x.dtype != DType::f32) throw InputError(where + ": expected a float input");
        RefArgs args{n, where, {}};
        for (const auto& in : n.inputs) args.inputs.push_back(in.empty() ? nullptr : &get(in, where));
        Tensor y = op_def(n.op).reference(args);
        values[n.outputs[0]] = std::move(y);
        // Free intermediate values nobody reads any more.
        for (const auto& in : n.inputs) {
            auto lu = last_use_.find(in);
            if (lu != last_use_.end() && lu->second == ni) values.erase(in);
        }
    }
    std::vector<Tensor> outs;
    for (const auto& o : graph_.outputs) outs.push_back(get(o, "graph output"));
    return outs;
}

}  // namespace dcs
