#include "runtime/layer_hessian.hpp"

#include <algorithm>
#include <map>
#include <string>

#include "common/error.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/reference_executor.hpp"

namespace dcs {
namespace {

const Node& layer_node(const Graph& graph, const LayerInfo& layer) {
    const Node* n = graph.find_node(layer.name);
    if (!n) throw InputError("layer '" + layer.name + "' is not a node of the model");
    return *n;
}

/// Adds the im2col columns of a Conv input [N, C, spatial...] to h, one group at a time.
void add_conv_input(const Node& node, const std::vector<int64_t>& weight_shape, const Tensor& x,
                    compress::LayerHessian& h) {
    const std::string where = node_where(node);
    ConvAttrs a = std::get<ConvAttrs>(node.attrs);
    a.kernel.assign(weight_shape.begin() + std::min<size_t>(2, weight_shape.size()), weight_shape.end());
    const int64_t groups = h.groups, sd = x.rank() - 2;
    if (sd < 1 || x.shape[1] % groups != 0) throw InputError(where + ": input " + shape_str(x.shape) + " does not fit the layer");
    const int64_t cig = x.shape[1] / groups;
    if (h.columns % cig != 0) throw InputError(where + ": input " + shape_str(x.shape) + " does not fit the weight");
    if (static_cast<int64_t>(a.kernel.size()) != sd) throw InputError(where + ": input and weight ranks differ");
    const std::vector<int64_t> in(x.shape.begin() + 2, x.shape.end());
    const Window win = conv_window(a, in, where);
    int64_t in_size = 1, out_size = 1, kernel_size = 1;
    for (int64_t s = 0; s < sd; ++s) {
        in_size *= win.in[s];
        out_size *= win.out[s];
        kernel_size *= win.kernel[s];
    }
    if (cig * kernel_size != h.columns) throw InputError(where + ": input " + shape_str(x.shape) + " does not fit the weight");
    // For each (output position, kernel position): the flat input offset, or -1 in the padding.
    std::vector<int64_t> offset(static_cast<size_t>(out_size * kernel_size));
    std::vector<int64_t> op(static_cast<size_t>(sd)), kp(static_cast<size_t>(sd));
    for (int64_t p = 0; p < out_size; ++p) {
        for (int64_t s = sd - 1, r = p; s >= 0; --s) {
            op[s] = r % win.out[s];
            r /= win.out[s];
        }
        for (int64_t q = 0; q < kernel_size; ++q) {
            for (int64_t s = sd - 1, r = q; s >= 0; --s) {
                kp[s] = r % win.kernel[s];
                r /= win.kernel[s];
            }
            int64_t flat = 0;
            for (int64_t s = 0; s < sd && flat >= 0; ++s) {
                const int64_t pos = op[s] * win.strides[s] - win.pad_begin[s] + kp[s] * win.dilations[s];
                flat = pos < 0 || pos >= win.in[s] ? -1 : flat * win.in[s] + pos;
            }
            offset[p * kernel_size + q] = flat;
        }
    }
    std::vector<float> cols(static_cast<size_t>(out_size * h.columns));
    for (int64_t n = 0; n < x.shape[0]; ++n)
        for (int64_t g = 0; g < groups; ++g) {
            const float* xg = x.data.data() + (n * x.shape[1] + g * cig) * in_size;
            for (int64_t p = 0; p < out_size; ++p) {
                float* col = cols.data() + p * h.columns;
                for (int64_t c = 0; c < cig; ++c)
                    for (int64_t q = 0; q < kernel_size; ++q) {
                        const int64_t o = offset[p * kernel_size + q];
                        col[c * kernel_size + q] = o < 0 ? 0.0f : xg[c * in_size + o];
                    }
            }
            h.add(g, cols.data(), out_size);
        }
}

}  // namespace

compress::LayerHessian empty_hessian(const Graph& graph, const LayerInfo& layer) {
    const Node& n = layer_node(graph, layer);
    const int64_t numel = Tensor::numel_of(layer.weight_shape);
    const int64_t channels = layer.weight_shape.at(static_cast<size_t>(layer.out_axis));
    const int64_t groups = n.op == OpKind::Conv ? std::get<ConvAttrs>(n.attrs).group : 1;
    return compress::LayerHessian(groups, numel / channels);
}

void add_layer_input(const Node& node, const std::vector<int64_t>& weight_shape, const Tensor& x,
                     compress::LayerHessian& h) {
    if (node.op == OpKind::Conv) return add_conv_input(node, weight_shape, x, h);
    const int64_t k = h.columns;
    if (node.op == OpKind::Gemm && std::get<GemmAttrs>(node.attrs).trans_a) {
        if (x.rank() != 2 || x.shape[0] != k)
            throw InputError(node_where(node) + ": input " + shape_str(x.shape) + " does not fit the weight");
        const int64_t m = x.shape[1];
        std::vector<float> rows(static_cast<size_t>(m * k));
        for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < m; ++j) rows[j * k + i] = x.data[i * m + j];
        return h.add(0, rows.data(), m);
    }
    if (x.rank() < 1 || x.shape.back() != k)
        throw InputError(node_where(node) + ": input " + shape_str(x.shape) + " does not fit the weight");
    h.add(0, x.data.data(), static_cast<int64_t>(x.data.size()) / k);
}

std::vector<compress::LayerHessian> layer_hessians(const Graph& graph, const std::vector<LayerInfo>& layers,
                                                   const std::vector<Tensor>& batches) {
    // The model with every layer's input as an extra output, so one reference pass yields them all.
    Graph probe = graph;
    std::map<std::string, size_t> output_of;
    std::vector<const Node*> nodes;
    std::vector<compress::LayerHessian> hs;
    for (const LayerInfo& l : layers) {
        const Node& n = layer_node(graph, l);
        nodes.push_back(&n);
        hs.push_back(empty_hessian(graph, l));
        if (!output_of.count(n.inputs[0])) {
            output_of[n.inputs[0]] = probe.outputs.size();
            probe.outputs.push_back(n.inputs[0]);
        }
    }
    const ReferenceExecutor ex(probe);
    for (const Tensor& batch : batches) {
        const std::vector<Tensor> outs = ex.run({batch});
        for (size_t i = 0; i < layers.size(); ++i)
            add_layer_input(*nodes[i], layers[i].weight_shape, outs.at(output_of.at(nodes[i]->inputs[0])), hs[i]);
    }
    for (compress::LayerHessian& h : hs) h.factor();
    return hs;
}

}  // namespace dcs
