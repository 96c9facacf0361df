#include "runtime/graph.hpp"

#include <algorithm>
#include <sstream>

#include "common/error.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {

std::string shape_str(const std::vector<int64_t>& shape) {
    std::ostringstream ss;
    ss << '[';
    for (size_t i = 0; i < shape.size(); ++i) ss << (i ? ", " : "") << shape[i];
    ss << ']';
    return ss.str();
}

const char* op_name(OpKind op) {
    const auto& table = op_table();
    const auto i = static_cast<size_t>(op);
    return i < table.size() ? table[i]->onnx_name : "?";
}

const Node* Graph::find_node(const std::string& name) const {
    for (const auto& n : nodes)
        if (n.name == name) return &n;
    return nullptr;
}

namespace {

Window make_window(const std::vector<int64_t>& in, const std::vector<int64_t>& kernel,
                   const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                   const std::vector<int64_t>& pads, AutoPad auto_pad, bool ceil_mode, const std::string& where) {
    size_t sd = kernel.size();
    if (in.size() != sd)
        throw InputError(where + ": input has " + std::to_string(in.size()) + " spatial dims, the kernel " +
                         std::to_string(sd));
    const bool explicit_pads = auto_pad == AutoPad::NotSet;
    if (strides.size() != sd || dilations.size() != sd || (explicit_pads && pads.size() != 2 * sd))
        throw InputError(where + ": kernel " + shape_str(kernel) + " has " + std::to_string(sd) +
                         " spatial dims, but strides " + shape_str(strides) + ", dilations " + shape_str(dilations) +
                         " and pads " + shape_str(pads) + " do not match it");
    // Bounds that keep the window arithmetic below far from int64 overflow; real models are far inside.
    constexpr int64_t kMax = int64_t(1) << 24;
    auto bounded = [&](const std::vector<int64_t>& v, int64_t lo, const char* what) {
        for (int64_t x : v)
            if (x < lo || x > kMax)
                throw InputError(where + ": " + what + " " + shape_str(v) + " outside [" + std::to_string(lo) + ", " +
                                 std::to_string(kMax) + "]");
    };
    bounded(in, 1, "spatial input size");
    bounded(kernel, 1, "kernel");
    bounded(strides, 1, "strides");
    bounded(dilations, 1, "dilations");
    if (explicit_pads) bounded(pads, 0, "pads");
    Window w;
    w.in = in;
    w.kernel = kernel;
    w.strides = strides;
    w.dilations = dilations;
    w.pad_begin.assign(sd, 0);
    w.pad_end.assign(sd, 0);
    w.out.assign(sd, 0);
    for (size_t i = 0; i < sd; ++i) {
        int64_t eff = (kernel[i] - 1) * dilations[i] + 1;
        int64_t s = strides[i];
        if (auto_pad == AutoPad::SameUpper || auto_pad == AutoPad::SameLower) {
            w.out[i] = (in[i] + s - 1) / s;
            int64_t total = std::max<int64_t>(0, (w.out[i] - 1) * s + eff - in[i]);
            w.pad_begin[i] = auto_pad == AutoPad::SameUpper ? total / 2 : total - total / 2;
            w.pad_end[i] = total - w.pad_begin[i];
        } else {
            if (auto_pad == AutoPad::NotSet) {
                w.pad_begin[i] = pads[i];
                w.pad_end[i] = pads[i + sd];
            }
            int64_t span = in[i] + w.pad_begin[i] + w.pad_end[i] - eff;
            if (span < 0)
                throw InputError(where + ": kernel " + shape_str(kernel) + " does not fit the padded input " +
                                 shape_str(in));
            if (ceil_mode) {
                w.out[i] = (span + s - 1) / s + 1;
                // A window may not start in the end padding (PyTorch and the ONNX reference agree).
                if ((w.out[i] - 1) * s >= in[i] + w.pad_begin[i]) w.out[i]--;
            } else {
                w.out[i] = span / s + 1;
            }
        }
    }
    return w;
}

}  // namespace

Window conv_window(const ConvAttrs& a, const std::vector<int64_t>& in, const std::string& where) {
    return make_window(in, a.kernel, a.strides, a.dilations, a.pads, a.auto_pad, false, where);
}

Window pool_window(const PoolAttrs& a, const std::vector<int64_t>& in, const std::string& where) {
    return make_window(in, a.kernel, a.strides, a.dilations, a.pads, a.auto_pad, a.ceil_mode, where);
}

std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      const std::string& where) {
    size_t r = std::max(a.size(), b.size());
    std::vector<int64_t> out(r);
    for (size_t i = 0; i < r; ++i) {
        int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
        int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
        if (da != db && da != 1 && db != 1)
            throw InputError(where + ": shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

std::vector<int64_t> reshape_target(const ReshapeAttrs& a, const std::vector<int64_t>& in, const std::string& where) {
    std::vector<int64_t> out = a.shape;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] == 0 && !a.allow_zero) {
            if (i >= in.size()) throw InputError(where + ": shape " + shape_str(a.shape) + " copies a dim the input " + shape_str(in) + " lacks");
            out[i] = in[i];
        }
        if (out[i] == -1) {
            if (infer >= 0) throw InputError(where + ": shape " + shape_str(a.shape) + " has more than one -1");
            infer = static_cast<int64_t>(i);
        } else if (out[i] < 0) {
            throw InputError(where + ": shape " + shape_str(a.shape) + " has a negative dim");
        } else {
            known = dim_mul(known, out[i], where);
        }
    }
    int64_t total = Tensor::numel_of(in);
    if (infer >= 0) {
        if (known == 0 || total % known != 0)
            throw InputError(where + ": cannot reshape " + shape_str(in) + " to " + shape_str(a.shape));
        out[infer] = total / known;
    } else if (known != total) {
        throw InputError(where + ": cannot reshape " + shape_str(in) + " (" + std::to_string(total) + " elements) to " +
                         shape_str(a.shape));
    }
    return out;
}

std::map<std::string, std::vector<int64_t>> Graph::infer_shapes(int64_t batch) const {
    std::map<std::string, std::vector<int64_t>> s;
    for (const auto& kv : initializers) s[kv.first] = kv.second.shape;
    for (const auto& in : inputs) {
        auto shape = in.shape;
        for (size_t i = 0; i < shape.size(); ++i)
            if (shape[i] < 0) {
                if (i == 0) shape[i] = batch;
                else throw InputError("input '" + in.name + "' has a dynamic dimension " + std::to_string(i) +
                                      "; only the batch (first) dimension may be dynamic");
            }
        s[in.name] = shape;
    }
    for (const auto& n : nodes) {
        const std::string where = node_where(n);
        auto get = [&](size_t i) -> const std::vector<int64_t>& {
            auto it = s.find(n.inputs.at(i));
            if (it == s.end()) throw InputError(where + ": input '" + n.inputs[i] + "' has no known shape");
            return it->second;
        };
        get(0);
        std::vector<int64_t> out = op_def(n.op).infer_shape(ShapeArgs{n, where, get});
        s[n.outputs[0]] = out;
    }
    return s;
}

std::vector<LayerInfo> list_layers(const Graph& graph) {
    std::vector<LayerInfo> layers;
    std::map<std::string, std::vector<int64_t>> shapes;
    bool have_shapes = true;
    try {
        shapes = graph.infer_shapes(1);
    } catch (const InputError&) {
        have_shapes = false;
    }
    for (const auto& n : graph.nodes) {
        if (n.op != OpKind::Conv && n.op != OpKind::Gemm && n.op != OpKind::MatMul) continue;
        if (n.inputs.size() < 2) continue;
        auto wit = graph.initializers.find(n.inputs[1]);
        if (wit == graph.initializers.end() || wit->second.dtype != DType::f32) continue;
        const Tensor& w = wit->second;
        LayerInfo l;
        l.name = n.name;
        l.op = n.op;
        l.weight = n.inputs[1];
        l.weight_shape = w.shape;
        if (n.op == OpKind::Conv) {
            l.out_axis = 0;
        } else if (n.op == OpKind::Gemm) {
            if (w.rank() != 2) continue;
            l.out_axis = std::get<GemmAttrs>(n.attrs).trans_b ? 0 : 1;
        } else {
            if (w.rank() != 2) continue;
            l.out_axis = 1;
        }
        l.params = w.numel();
        if (n.op != OpKind::MatMul && n.inputs.size() > 2 && !n.inputs[2].empty()) {
            auto bit = graph.initializers.find(n.inputs[2]);
            if (bit != graph.initializers.end()) {
                l.bias = n.inputs[2];
                l.params += bit->second.numel();
            }
        }
        if (have_shapes) {
            const int64_t out_elems = Tensor::numel_of(shapes.at(n.outputs[0]));
            // A Conv's output element needs (C/group) * prod(kernel) MACs = weight elements / out channels.
            const int64_t per_output =
                n.op == OpKind::Conv ? (w.shape[0] > 0 ? w.numel() / w.shape[0] : 0) : w.shape[l.out_axis == 0 ? 1 : 0];
            if (__builtin_mul_overflow(out_elems, per_output, &l.macs))
                throw InputError(node_where(n) + ": multiply-accumulates per sample overflow int64");
        }
        layers.push_back(std::move(l));
    }
    return layers;
}

}  // namespace dcs
