// ONNX QDQ export of a calibrated int8 candidate (see onnx_export.hpp).
#include "runtime/onnx_export.hpp"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/op_table.hpp"

namespace dcs {
namespace {

constexpr int64_t kOpset = 13;  // per-axis DequantizeLinear needs 13

}  // namespace

/// The ModelProto being written, with unique-name bookkeeping.
class QdqWriter {
public:
    explicit QdqWriter(const Graph& graph) {
        model_.set_ir_version(7);
        model_.set_producer_name("dcsearch");
        model_.set_producer_version("0.1.0");
        auto* op = model_.add_opset_import();
        op->set_domain("");
        op->set_version(kOpset);
        g_ = model_.mutable_graph();
        g_->set_name("dcsearch_qdq");
        for (const auto& in : graph.inputs) used_.insert(in.name);
        for (const auto& kv : graph.initializers) used_.insert(kv.first);
        for (const auto& n : graph.nodes) {
            used_.insert(n.name);
            for (const auto& o : n.outputs) used_.insert(o);
        }
    }

    /// A name not used anywhere in the graph yet, starting from `base`.
    std::string fresh(const std::string& base) {
        std::string n = base;
        for (int i = 1; used_.count(n); ++i) n = base + "_" + std::to_string(i);
        used_.insert(n);
        return n;
    }

    onnx::TensorProto* init(const std::string& name, int type, const std::vector<int64_t>& shape) {
        auto* t = g_->add_initializer();
        t->set_name(name);
        t->set_data_type(type);
        for (int64_t d : shape) t->add_dims(d);
        return t;
    }
    void init_f32(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v) {
        init(name, onnx::TensorProto::FLOAT, shape)
            ->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    }
    void init_i64(const std::string& name, const std::vector<int64_t>& shape, const std::vector<int64_t>& v) {
        auto* t = init(name, onnx::TensorProto::INT64, shape);
        for (int64_t x : v) t->add_int64_data(x);
    }
    void init_8bit(const std::string& name, bool is_unsigned, const std::vector<int64_t>& shape, const void* data,
                   size_t n) {
        init(name, is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8, shape)
            ->set_raw_data(std::string(static_cast<const char*>(data), n));
    }

    onnx::NodeProto* node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs) {
        auto* n = g_->add_node();
        n->set_op_type(op);
        n->set_name(name);
        for (const auto& i : inputs) n->add_input(i);
        for (const auto& o : outputs) n->add_output(o);
        return n;
    }

    /// Inserts QuantizeLinear -> DequantizeLinear on `value`; returns the dequantized value's name.
    std::string qdq(const std::string& value, float scale, QType type) {
        const bool u8 = type == QType::U8;
        const std::string s = fresh(value + "_scale"), z = fresh(value + "_zero_point");
        init_f32(s, {}, {scale});
        const uint8_t zero = 0;
        init_8bit(z, u8, {}, &zero, 1);
        const std::string q = fresh(value + "_quantized"), dq = fresh(value + "_dequantized");
        node("QuantizeLinear", fresh(value + "_QuantizeLinear"), {value, s, z}, {q});
        node("DequantizeLinear", fresh(value + "_DequantizeLinear"), {q, s, z}, {dq});
        return dq;
    }

    onnx::ModelProto& model() { return model_; }
    onnx::GraphProto& graph() { return *g_; }

private:
    onnx::ModelProto model_;
    onnx::GraphProto* g_;
    std::set<std::string> used_;
};

namespace {

void set_ints(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& v) {
    if (v.empty()) return;
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
}
void set_int(onnx::NodeProto* n, const char* name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
}
void set_float(onnx::NodeProto* n, const char* name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
}
void set_string(onnx::NodeProto* n, const char* name, const std::string& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
}

void value_info(onnx::ValueInfoProto* vi, const std::string& name, const std::vector<int64_t>& shape) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    auto* sh = tt->mutable_shape();
    for (size_t i = 0; i < shape.size(); ++i) {
        auto* d = sh->add_dim();
        if (shape[i] < 0 || i == 0)
            d->set_dim_param("N");
        else
            d->set_dim_value(shape[i]);
    }
}

}  // namespace

ExportNode::ExportNode(QdqWriter& writer, const Node& n, std::vector<std::string> ins, std::string bias,
                       const std::map<std::string, std::vector<int64_t>>& value_shapes)
    : node(n), where(node_where(n)), inputs(std::move(ins)), corrected_bias(std::move(bias)), shapes(value_shapes),
      w_(writer) {}

void ExportNode::emit(const char* op_type) { proto_ = w_.node(op_type, node.name, inputs, node.outputs); }
void ExportNode::set_int(const char* name, int64_t v) { dcs::set_int(proto_, name, v); }
void ExportNode::set_ints(const char* name, const std::vector<int64_t>& v) { dcs::set_ints(proto_, name, v); }
void ExportNode::set_float(const char* name, float v) { dcs::set_float(proto_, name, v); }
void ExportNode::set_string(const char* name, const std::string& v) { dcs::set_string(proto_, name, v); }

std::string ExportNode::const_f32(const std::string& base, const std::vector<int64_t>& shape,
                                  const std::vector<float>& v) {
    const std::string name = w_.fresh(base);
    w_.init_f32(name, shape, v);
    return name;
}

std::string ExportNode::const_i64(const std::string& base, const std::vector<int64_t>& shape,
                                  const std::vector<int64_t>& v) {
    const std::string name = w_.fresh(base);
    w_.init_i64(name, shape, v);
    return name;
}

std::string qdq_model_bytes(const Graph& graph, const QuantizedModel& model,
                            const std::map<std::string, Int8LayerWeights>& weights, bool bias_correction) {
    const QuantPlan& plan = model.plan;
    QdqWriter w(graph);
    const auto shapes = graph.infer_shapes(1);
    std::map<std::string, const QStep*> layer_step;
    for (const auto& s : plan.steps)
        if (s.layer) layer_step[s.node->name] = &s;

    // Layer weights: int8 codes + per-channel DequantizeLinear producing the original weight name.
    std::set<std::string> replaced;
    std::map<std::string, std::string> bias_input;  // node -> replacement bias value (bias correction)
    for (const auto& info : list_layers(graph)) {
        auto it = weights.find(info.name);
        if (it == weights.end()) throw InputError("QDQ export: no int8 weights for layer '" + info.name + "'");
        const Int8LayerWeights& lw = it->second;
        const int64_t ch = info.weight_shape.at(info.out_axis);
        if (static_cast<int64_t>(lw.codes.size()) != Tensor::numel_of(info.weight_shape) ||
            static_cast<int64_t>(lw.scales.size()) != ch)
            throw InputError("QDQ export: layer '" + info.name + "': " + std::to_string(lw.codes.size()) +
                             " codes and " + std::to_string(lw.scales.size()) + " scales do not match the weight " +
                             shape_str(info.weight_shape));
        std::vector<float> scales(lw.scales);
        for (float& s : scales)
            if (!(s > 0.0f)) s = 1.0f;  // a fully pruned channel: its codes are all 0, any scale serves
        const std::string codes = w.fresh(info.weight + "_quantized");
        const std::string scale = w.fresh(info.weight + "_scale");
        const std::string zp = w.fresh(info.weight + "_zero_point");
        w.init_8bit(codes, false, info.weight_shape, lw.codes.data(), lw.codes.size());
        w.init_f32(scale, {ch}, scales);
        std::vector<int8_t> zeros(static_cast<size_t>(ch), 0);
        w.init_8bit(zp, false, {ch}, zeros.data(), zeros.size());
        auto* dq =
            w.node("DequantizeLinear", w.fresh(info.weight + "_DequantizeLinear"), {codes, scale, zp}, {info.weight});
        set_int(dq, "axis", info.out_axis);
        replaced.insert(info.weight);

        if (bias_correction) {
            // The runtime's bias is in accumulator units: b[c] / (alpha * s_x * s_w[c]); undo that.
            const QStep& step = *layer_step.at(info.name);
            const QLayer& ql = model.layers.at(info.name);
            const float sx = plan.values.at(step.input).scale;
            const float alpha = step.node->op == OpKind::Gemm ? std::get<GemmAttrs>(step.node->attrs).alpha : 1.0f;
            std::vector<float> b(static_cast<size_t>(ch));
            for (int64_t c = 0; c < ch; ++c) {
                const float sw = lw.scales[c] > 0.0f ? lw.scales[c] : 1.0f;
                b[c] = ql.bias.at(c) * alpha * sx * sw;
            }
            const std::string bn = w.fresh(info.name + "_corrected_bias");
            w.init_f32(bn, {ch}, b);
            bias_input[info.name] = bn;
        }
    }
    for (const auto& kv : graph.initializers) {
        if (replaced.count(kv.first)) continue;
        const Tensor& t = kv.second;
        if (t.dtype == DType::i64)
            w.init_i64(kv.first, t.shape, t.ints);
        else
            w.init_f32(kv.first, t.shape, t.data);
    }

    std::map<std::string, std::string> renamed;  // value -> its dequantized copy
    auto quantize_after = [&](const std::string& v) {
        auto it = plan.values.find(v);
        if (it == plan.values.end() || it->second.type == QType::F32) return;
        renamed[v] = w.qdq(v, it->second.scale, it->second.type);
    };
    for (const auto& in : graph.inputs) {
        value_info(w.graph().add_input(), in.name, in.shape);
        quantize_after(in.name);
    }
    std::map<std::string, std::string> edge_qdq;  // fp32 value -> its quantized copy for layers
    for (const Node& n : graph.nodes) {
        std::vector<std::string> ins;
        for (const auto& i : n.inputs) {
            auto it = renamed.find(i);
            ins.push_back(it == renamed.end() ? i : it->second);
        }
        auto ls = layer_step.find(n.name);
        if (ls != layer_step.end()) {
            const QValue& xv = plan.values.at(ls->second->input);
            if (xv.type == QType::F32 && !ins.empty()) {
                // An fp32 value the int8 layer quantizes as it reads it.
                auto e = edge_qdq.find(ins[0]);
                if (e == edge_qdq.end()) e = edge_qdq.emplace(ins[0], w.qdq(ins[0], xv.scale, xv.qtype)).first;
                ins[0] = e->second;
            }
        }
        auto bias = bias_input.find(n.name);
        ExportNode e(w, n, std::move(ins), bias == bias_input.end() ? std::string() : bias->second, shapes);
        const OpDef& def = op_def(n.op);
        if (def.export_onnx) def.export_onnx(e);
        // A node the export cannot write must not silently drop out of the model.
        if (!e.emitted()) throw UnsupportedError("QDQ export: " + e.where + ": the operator has no ONNX export");
        for (const auto& o : n.outputs) quantize_after(o);
    }
    for (const auto& o : graph.outputs) {
        auto it = shapes.find(o);
        value_info(w.graph().add_output(), o, it == shapes.end() ? std::vector<int64_t>{} : it->second);
    }
    // Initializers no node reads (biases replaced by corrected ones) would only be dead weight.
    std::set<std::string> read;
    for (const auto& n : w.graph().node())
        for (const auto& i : n.input()) read.insert(i);
    auto* inits = w.graph().mutable_initializer();
    google::protobuf::RepeatedPtrField<onnx::TensorProto> kept;
    for (auto& t : *inits)
        if (read.count(t.name())) *kept.Add() = std::move(t);
    inits->Swap(&kept);
    std::string bytes;
    if (!w.model().SerializeToString(&bytes)) throw std::runtime_error("QDQ export: cannot serialize the model");
    return bytes;
}

void write_qdq_model(const Graph& graph, const QuantizedModel& model,
                     const std::map<std::string, Int8LayerWeights>& weights, const std::string& path,
                     bool bias_correction) {
    const std::string bytes = qdq_model_bytes(graph, model, weights, bias_correction);
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::runtime_error("cannot write " + tmp);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        f.flush();
        if (!f) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

}  // namespace dcs
