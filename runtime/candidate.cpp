#include "runtime/candidate.hpp"

#include <set>
#include <sstream>

#include "common/error.hpp"
#include "compress/weight.hpp"

namespace dcs {
namespace {

std::string ints(const std::vector<int64_t>& v) { return shape_str(v); }

const char* auto_pad_name(AutoPad p) {
    switch (p) {
        case AutoPad::NotSet: return "NOTSET";
        case AutoPad::SameUpper: return "SAME_UPPER";
        case AutoPad::SameLower: return "SAME_LOWER";
        case AutoPad::Valid: return "VALID";
    }
    return "?";
}

}  // namespace

std::string serialize_structure(const Graph& graph) {
    std::ostringstream ss;
    ss.precision(9);
    ss << "opset " << graph.opset << "\n";
    for (const auto& in : graph.inputs) ss << "input " << in.name << " " << ints(in.shape) << "\n";
    for (const auto& o : graph.outputs) ss << "output " << o << "\n";
    for (const auto& kv : graph.initializers) ss << "tensor " << kv.first << " " << ints(kv.second.shape) << "\n";
    for (const auto& n : graph.nodes) {
        ss << "node " << op_name(n.op) << " " << n.name << " (";
        for (size_t i = 0; i < n.inputs.size(); ++i) ss << (i ? "," : "") << n.inputs[i];
        ss << ") -> " << n.outputs[0];
        std::visit(
            [&](const auto& a) {
                using T = std::decay_t<decltype(a)>;
                if constexpr (std::is_same_v<T, ConvAttrs>)
                    ss << " group=" << a.group << " strides=" << ints(a.strides) << " pads=" << ints(a.pads)
                       << " dilations=" << ints(a.dilations) << " auto_pad=" << auto_pad_name(a.auto_pad);
                else if constexpr (std::is_same_v<T, GemmAttrs>)
                    ss << " transA=" << a.trans_a << " transB=" << a.trans_b << " alpha=" << a.alpha << " beta=" << a.beta;
                else if constexpr (std::is_same_v<T, PoolAttrs>)
                    ss << " kernel=" << ints(a.kernel) << " strides=" << ints(a.strides) << " pads=" << ints(a.pads)
                       << " dilations=" << ints(a.dilations) << " auto_pad=" << auto_pad_name(a.auto_pad)
                       << " ceil=" << a.ceil_mode << " count_include_pad=" << a.count_include_pad;
                else if constexpr (std::is_same_v<T, ClipAttrs>)
                    ss << " min=" << a.min << " max=" << a.max;
                else if constexpr (std::is_same_v<T, AxisAttrs>)
                    ss << " axis=" << a.axis << " legacy=" << a.legacy_softmax;
                else if constexpr (std::is_same_v<T, PadAttrs>)
                    ss << " pads=" << ints(a.pads) << " value=" << a.value;
                else if constexpr (std::is_same_v<T, BatchNormAttrs>)
                    ss << " epsilon=" << a.epsilon;
                else if constexpr (std::is_same_v<T, ReshapeAttrs>)
                    ss << " shape=" << ints(a.shape) << " allowzero=" << a.allow_zero;
            },
            n.attrs);
        ss << "\n";
    }
    return ss.str();
}

CompressedModel compress_model(const Graph& graph, const std::vector<LayerInfo>& layers,
                               const std::vector<compress::LayerChoice>& choices, const compress::WeightSpec& spec,
                               bool huffman) {
    if (layers.size() != choices.size())
        throw InputError("a candidate has " + std::to_string(choices.size()) + " layer choices, the model " +
                         std::to_string(layers.size()) + " compressible layers");
    CompressedModel m;
    m.weights.reserve(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
        const Tensor& w = graph.initializers.at(layers[i].weight);
        m.weights.push_back(
            compress::compress_weight(w.data.data(), w.shape, layers[i].out_axis, choices[i], spec));
        Tensor dq;
        dq.shape = w.shape;
        dq.data = m.weights.back().dequantize();
        m.overrides[layers[i].weight] = std::move(dq);
    }
    m.size_bytes = compress::dcz_size(dcz_contents(graph, layers, m, huffman));
    return m;
}

compress::DczContents dcz_contents(const Graph& graph, const std::vector<LayerInfo>& layers,
                                   const CompressedModel& model, bool huffman) {
    compress::DczContents c;
    std::string structure = serialize_structure(graph);
    c.graph.assign(structure.begin(), structure.end());
    c.huffman = huffman;
    std::set<std::string> compressed;
    for (size_t i = 0; i < layers.size(); ++i) {
        c.layers.emplace_back(layers[i].name, model.weights.at(i));
        compressed.insert(layers[i].weight);
    }
    for (const auto& kv : graph.initializers) {
        if (compressed.count(kv.first) || kv.second.dtype != DType::f32) continue;
        c.others.emplace_back(kv.first, compress::FloatTensor{kv.second.shape, kv.second.data});
    }
    return c;
}

}  // namespace dcs

#include <chrono>

namespace dcs {

CandidateEvaluator::CandidateEvaluator(const Graph& graph, const Dataset& data, const Subset& validation,
                                       const Preprocess& pre, const ModelIo& io, const compress::WeightSpec& spec,
                                       int activation_bits)
    : graph_(graph),
      layers_(list_layers(graph)),
      eval_(graph, data, validation, pre, io),
      spec_(spec),
      activation_bits_(activation_bits) {}

CandidateMetrics CandidateEvaluator::baseline() const {
    auto t0 = std::chrono::steady_clock::now();
    EvalResult r = eval_.run_reference();
    CandidateMetrics m;
    m.accuracy = r.accuracy;
    m.samples = r.samples;
    m.size_bytes = static_cast<uint64_t>(fp32_size_bytes(graph_));
    for (const auto& l : layers_) m.bops += static_cast<double>(l.macs) * 32.0 * 32.0;
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return m;
}

double compressed_bops(const std::vector<LayerInfo>& layers, const CompressedModel& model, int activation_bits) {
    double bops = 0.0;
    for (size_t i = 0; i < layers.size(); ++i) {
        const auto& w = model.weights.at(i);
        double kept_fraction = 1.0;
        if (!w.mask.empty()) {
            // Output channels whose weights are all pruned do no work.
            const auto l = w.layout();
            int64_t removed = 0;
            for (int64_t c = 0; c < l.channels; ++c) {
                bool all = true;
                for (int64_t o = 0; o < l.outer && all; ++o)
                    for (int64_t k = 0; k < l.inner && all; ++k)
                        all = w.mask[static_cast<size_t>((o * l.channels + c) * l.inner + k)] == 0;
                removed += all;
            }
            kept_fraction = 1.0 - static_cast<double>(removed) / static_cast<double>(l.channels);
        }
        bops += static_cast<double>(layers[i].macs) * kept_fraction * w.bits * activation_bits;
    }
    return bops;
}

CandidateMetrics CandidateEvaluator::evaluate(const std::vector<compress::LayerChoice>& choices) const {
    auto t0 = std::chrono::steady_clock::now();
    CompressedModel cm = compress_model(graph_, layers_, choices, spec_);
    EvalResult r = eval_.run_reference(&cm.overrides);
    CandidateMetrics m;
    m.accuracy = r.accuracy;
    m.samples = r.samples;
    m.size_bytes = cm.size_bytes;
    m.bops = compressed_bops(layers_, cm, activation_bits_);
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return m;
}

}  // namespace dcs
