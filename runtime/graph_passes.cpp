// Graph passes of the import: constant folding of shape arithmetic and BatchNorm folding (see
// graph_passes.hpp).
#include "runtime/graph_passes.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/error.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {

// ---- Constant folding of shape arithmetic ----
//
// Exporters (PyTorch's among them) compute pads and reshape targets with small subgraphs of shape
// operators: Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Slice, Transpose, Cast... When every
// input of such a node is a constant, it is evaluated here and becomes an initializer. Shape of an
// activation is known statically except for the batch, which stands as kBatchSentinel; a Reshape whose
// target holds it in front (x.view(x.size(0), -1)) copies the batch dimension, and any other use of it
// is refused.

namespace {

// ONNX TensorProto.DataType values (onnx.proto), the targets of Cast.
constexpr int64_t kOnnxFloat = 1, kOnnxUint8 = 2, kOnnxInt8 = 3, kOnnxInt16 = 5, kOnnxInt32 = 6, kOnnxInt64 = 7,
                  kOnnxBool = 9, kOnnxFloat16 = 10, kOnnxDouble = 11;

bool is_foldable(const std::string& op) {
    static const std::set<std::string> ops = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape",
                                              "ConstantOfShape", "Slice", "Transpose", "Cast", "Add", "Sub",
                                              "Mul", "Div", "Flatten"};
    return ops.count(op) > 0;
}

int64_t norm_axis_or(int64_t axis, int64_t rank, bool* ok) {
    if (axis < -rank || axis >= rank) {
        *ok = false;
        return 0;
    }
    return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
    std::vector<int64_t> st(shape.size(), 1);
    for (size_t i = shape.size(); i-- > 1;) st[i - 1] = st[i] * shape[i];
    return st;
}

/// Element i of t as double (float or int).
double elem(const Tensor& t, int64_t i) { return t.dtype == DType::i64 ? static_cast<double>(t.ints[i]) : t.data[i]; }

Tensor make_like(DType dt, std::vector<int64_t> shape) {
    Tensor t;
    t.dtype = dt;
    t.shape = shape;
    if (dt == DType::i64) t.ints.assign(static_cast<size_t>(Tensor::numel_of(shape)), 0);
    else t.data.assign(static_cast<size_t>(Tensor::numel_of(shape)), 0.0f);
    return t;
}

void set_elem(Tensor& t, int64_t i, const Tensor& src, int64_t j) {
    if (t.dtype == DType::i64) t.ints[i] = src.ints[j];
    else t.data[i] = src.data[j];
}

/// Copies the elements of `src` at multi-index map `index_of(out_index)` into a tensor of `shape`.
template <class F>
Tensor gather_elems(const Tensor& src, const std::vector<int64_t>& shape, F src_index) {
    Tensor out = make_like(src.dtype, shape);
    const int64_t n = out.numel();
    std::vector<int64_t> idx(shape.size(), 0);
    for (int64_t i = 0; i < n; ++i) {
        set_elem(out, i, src, src_index(idx));
        for (size_t d = shape.size(); d-- > 0;) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}

bool has_sentinel(const Tensor& t) {
    if (t.dtype != DType::i64) return false;
    for (int64_t v : t.ints)
        if (v == kBatchSentinel) return true;
    return false;
}
}  // namespace

bool fold_constant_node(const OnnxNode& n, Graph& graph, const std::function<std::string(const std::string&)>& resolve) {
    const std::string& op = n.op_type();
    if (!is_foldable(op)) return false;
    std::vector<const Tensor*> in;
    for (int i = 0; i < n.input_size(); ++i) {
        if (n.input(i).empty()) {
            in.push_back(nullptr);
            continue;
        }
        const Tensor* t = n.constant(n.input(i));
        if (!t && !(op == "Shape" && i == 0)) return false;
        in.push_back(t);
    }
    if (in.empty() || n.output_size() < 1) return false;
    auto out_name = n.output(0);
    auto fail_here = [&](const std::string& msg) { n.fail(msg); };
    Tensor out;
    if (op == "Shape") {
        std::vector<int64_t> shape;
        if (in[0]) {
            shape = in[0]->shape;
        } else {
            // The static shape of an activation: infer over the nodes converted so far.
            std::map<std::string, std::vector<int64_t>> shapes;
            try {
                shapes = graph.infer_shapes(1);
            } catch (const InputError& e) {
                fail_here(std::string("cannot infer the shape of its input: ") + e.what());
            }
            auto it = shapes.find(resolve(n.input(0)));
            if (it == shapes.end()) return false;
            shape = it->second;
            bool dynamic_batch = false;
            for (const auto& gi : graph.inputs)
                if (!gi.shape.empty() && gi.shape[0] < 0) dynamic_batch = true;
            if (dynamic_batch && !shape.empty()) shape[0] = kBatchSentinel;
        }
        int64_t r = static_cast<int64_t>(shape.size());
        int64_t start = n.attr_i("start", 0), end = n.attr_i("end", r);
        if (start < 0) start += r;
        if (end < 0) end += r;
        start = std::clamp<int64_t>(start, 0, r);
        end = std::clamp<int64_t>(end, start, r);
        out = Tensor::from_ints({end - start}, std::vector<int64_t>(shape.begin() + start, shape.begin() + end));
    } else if (op == "Gather") {
        const Tensor& data = *in.at(0);
        const Tensor& ind = *in.at(1);
        if (ind.dtype != DType::i64) fail_here("indices must be integers");
        bool ok = true;
        int64_t axis = norm_axis_or(n.attr_i("axis", 0), data.rank(), &ok);
        if (!ok) fail_here("axis out of range");
        std::vector<int64_t> shape(data.shape.begin(), data.shape.begin() + axis);
        shape.insert(shape.end(), ind.shape.begin(), ind.shape.end());
        shape.insert(shape.end(), data.shape.begin() + axis + 1, data.shape.end());
        auto st = strides_of(data.shape);
        const int64_t ir = ind.rank();
        out = gather_elems(data, shape, [&](const std::vector<int64_t>& idx) {
            int64_t src = 0;
            for (int64_t d = 0; d < axis; ++d) src += idx[d] * st[d];
            int64_t flat = 0, mul = 1;
            for (int64_t d = ir; d-- > 0;) {
                flat += idx[axis + d] * mul;
                mul *= ind.shape[d];
            }
            int64_t g = ind.ints[flat];
            if (g < 0) g += data.shape[axis];
            if (g < 0 || g >= data.shape[axis]) fail_here("index out of range");
            src += g * st[axis];
            for (int64_t d = axis + 1; d < data.rank(); ++d) src += idx[d - 1 + ir] * st[d];
            return src;
        });
    } else if (op == "Unsqueeze" || op == "Squeeze") {
        const Tensor& data = *in.at(0);
        std::vector<int64_t> axes = n.opset() >= 13 ? (in.size() > 1 && in[1] ? n.as_ints(*in[1]) : std::vector<int64_t>{})
                                                 : n.attr_ints("axes");
        std::vector<int64_t> shape = data.shape;
        if (op == "Unsqueeze") {
            const int64_t r = data.rank() + static_cast<int64_t>(axes.size());
            for (auto& a : axes) a = a < 0 ? a + r : a;
            std::sort(axes.begin(), axes.end());
            for (int64_t a : axes) {
                if (a < 0 || a > static_cast<int64_t>(shape.size())) fail_here("axis out of range");
                shape.insert(shape.begin() + a, 1);
            }
        } else {
            std::vector<int64_t> keep;
            for (int64_t d = 0; d < data.rank(); ++d) {
                bool drop = axes.empty() ? data.shape[d] == 1
                                         : std::any_of(axes.begin(), axes.end(), [&](int64_t a) {
                                               return (a < 0 ? a + data.rank() : a) == d;
                                           });
                if (!drop) keep.push_back(data.shape[d]);
            }
            shape = keep;
        }
        out = data;
        out.shape = shape;
    } else if (op == "Concat") {
        const int64_t r = in[0]->rank();
        bool ok = true;
        int64_t axis = norm_axis_or(n.attr_i("axis", 0), r, &ok);
        if (!ok) fail_here("axis out of range");
        std::vector<int64_t> shape = in[0]->shape;
        shape[axis] = 0;
        for (const Tensor* t : in) {
            if (t->dtype != in[0]->dtype || t->rank() != r) fail_here("inputs differ in type or rank");
            shape[axis] += t->shape[axis];
        }
        out = make_like(in[0]->dtype, shape);
        int64_t outer = 1, inner = 1;
        for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
        for (int64_t d = axis + 1; d < r; ++d) inner *= shape[d];
        int64_t off = 0;
        for (const Tensor* t : in) {
            const int64_t chunk = t->shape[axis] * inner;
            for (int64_t o = 0; o < outer; ++o)
                for (int64_t k = 0; k < chunk; ++k) set_elem(out, o * shape[axis] * inner + off + k, *t, o * chunk + k);
            off += chunk;
        }
    } else if (op == "Reshape" || op == "Flatten") {
        const Tensor& data = *in.at(0);
        if (has_sentinel(data)) return false;
        out = data;
        if (op == "Flatten") {
            bool ok = true;
            int64_t axis = n.attr_i("axis", 1);
            if (axis < 0) axis += data.rank();
            if (axis < 0 || axis > data.rank()) ok = false;
            if (!ok) fail_here("axis out of range");
            int64_t a = 1;
            for (int64_t d = 0; d < axis; ++d) a *= data.shape[d];
            out.shape = {a, a ? data.numel() / a : 0};
        } else {
            ReshapeAttrs ra;
            ra.shape = n.opset() < 5 ? n.attr_ints("shape") : n.as_ints(*in.at(1));
            ra.allow_zero = n.attr_i("allowzero", 0) != 0;
            if (std::find(ra.shape.begin(), ra.shape.end(), kBatchSentinel) != ra.shape.end())
                fail_here("reshapes a constant with the batch size");
            out.shape = reshape_target(ra, data.shape, node_where(n.label(), "Reshape"));
        }
    } else if (op == "ConstantOfShape") {
        Tensor shape_t = *in.at(0);
        if (has_sentinel(shape_t)) fail_here("a constant shaped by the batch size is not supported");
        auto shape = n.as_ints(shape_t);
        for (int64_t d : shape)
            if (d < 0 || d > (1 << 24)) fail_here("shape " + shape_str(shape) + " is out of range");
        Tensor v = Tensor({}, {0.0f});
        n.attr_tensor("value", node_where(n.label(), op) + " value", &v);
        if (v.numel() != 1) fail_here("value must have one element");
        out = make_like(v.dtype, shape);
        for (int64_t i = 0; i < out.numel(); ++i) set_elem(out, i, v, 0);
    } else if (op == "Slice") {
        const Tensor& data = *in.at(0);
        std::vector<int64_t> starts, ends, axes, steps;
        if (n.opset() < 10) {
            starts = n.attr_ints("starts");
            ends = n.attr_ints("ends");
            axes = n.attr_ints("axes");
        } else {
            if (in.size() < 3) fail_here("needs starts and ends");
            starts = n.as_ints(*in[1]);
            ends = n.as_ints(*in[2]);
            if (in.size() > 3 && in[3]) axes = n.as_ints(*in[3]);
            if (in.size() > 4 && in[4]) steps = n.as_ints(*in[4]);
        }
        if (has_sentinel(data)) {
            // Slicing the batch out of a shape is fine only if the batch is not kept.
        }
        if (axes.empty())
            for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
        if (steps.empty()) steps.assign(starts.size(), 1);
        if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
            fail_here("starts, ends, axes and steps differ in length");
        const int64_t r = data.rank();
        std::vector<int64_t> st(r, 0), step(r, 1), shape = data.shape;
        for (size_t i = 0; i < starts.size(); ++i) {
            bool ok = true;
            int64_t a = norm_axis_or(axes[i], r, &ok);
            if (!ok || steps[i] == 0) fail_here("bad axis or step");
            const int64_t dim = data.shape[a];
            int64_t s = starts[i], e = ends[i];
            if (s < 0) s += dim;
            if (e < 0) e += dim;
            if (steps[i] > 0) {
                s = std::clamp<int64_t>(s, 0, dim);
                e = std::clamp<int64_t>(e, 0, dim);
                shape[a] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
            } else {
                s = std::clamp<int64_t>(s, 0, dim - 1);
                e = std::clamp<int64_t>(e, -1, dim - 1);
                shape[a] = s > e ? (s - e - steps[i] - 1) / (-steps[i]) : 0;
            }
            st[a] = s;
            step[a] = steps[i];
        }
        auto dst = strides_of(data.shape);
        out = gather_elems(data, shape, [&](const std::vector<int64_t>& idx) {
            int64_t src = 0;
            for (int64_t d = 0; d < r; ++d) src += (st[d] + idx[d] * step[d]) * dst[d];
            return src;
        });
    } else if (op == "Transpose") {
        const Tensor& data = *in.at(0);
        std::vector<int64_t> perm = n.attr_ints("perm");
        const int64_t r = data.rank();
        if (perm.empty())
            for (int64_t d = r; d-- > 0;) perm.push_back(d);
        if (static_cast<int64_t>(perm.size()) != r) fail_here("perm does not match the rank");
        std::vector<int64_t> shape(r);
        for (int64_t d = 0; d < r; ++d) {
            if (perm[d] < 0 || perm[d] >= r) fail_here("perm out of range");
            shape[d] = data.shape[perm[d]];
        }
        auto dst = strides_of(data.shape);
        out = gather_elems(data, shape, [&](const std::vector<int64_t>& idx) {
            int64_t src = 0;
            for (int64_t d = 0; d < r; ++d) src += idx[d] * dst[perm[d]];
            return src;
        });
    } else if (op == "Cast") {
        const Tensor& data = *in.at(0);
        const int64_t to = n.attr_i("to", 0);
        const bool to_int = to == kOnnxInt64 || to == kOnnxInt32 || to == kOnnxInt8 || to == kOnnxUint8 ||
                            to == kOnnxInt16 || to == kOnnxBool;
        const bool to_float = to == kOnnxFloat || to == kOnnxDouble || to == kOnnxFloat16;
        if (!to_int && !to_float) fail_here("cast to type " + std::to_string(to) + " is not supported");
        if (to_float && has_sentinel(data)) fail_here("computes with the batch size");
        if (to_int && data.dtype != DType::i64) {
            out = Tensor::from_ints(data.shape, {});
            for (float f : data.data) {  // a float cast to an integer type truncates toward zero
                if (!(f >= -9.2e18f && f <= 9.2e18f)) fail_here("casts " + std::to_string(f) + " to an integer type");
                out.ints.push_back(static_cast<int64_t>(f));
            }
        } else {
            out = make_like(to_int ? DType::i64 : DType::f32, data.shape);
            for (int64_t i = 0; i < data.numel(); ++i) {
                if (to_int) out.ints[i] = data.ints[i];
                else out.data[i] = static_cast<float>(elem(data, i));
            }
        }
    } else {  // Add, Sub, Mul, Div on constants
        if (in.size() != 2 || !in[0] || !in[1]) return false;
        const Tensor &a = *in[0], &b = *in[1];
        if (has_sentinel(a) || has_sentinel(b)) fail_here("computes with the batch size, which is not supported");
        if (a.dtype != b.dtype) fail_here("operands differ in type");
        auto shape = broadcast_shapes(a.shape, b.shape, node_where(n.label(), op));
        out = make_like(a.dtype, shape);
        auto sa = strides_of(a.shape), sb = strides_of(b.shape);
        const size_t r = shape.size();
        std::vector<int64_t> idx(r, 0);
        for (int64_t i = 0; i < out.numel(); ++i) {
            int64_t ia = 0, ib = 0;
            for (size_t d = 0; d < r; ++d) {
                size_t da = d + a.shape.size() - r, db = d + b.shape.size() - r;
                if (d + a.shape.size() >= r && a.shape[da] != 1) ia += idx[d] * sa[da];
                if (d + b.shape.size() >= r && b.shape[db] != 1) ib += idx[d] * sb[db];
            }
            if (a.dtype == DType::i64) {
                int64_t x = a.ints[ia], y = b.ints[ib];
                if (op == "Div" && y == 0) fail_here("integer division by zero");
                int64_t v = 0;
                const bool overflow = op == "Add"   ? __builtin_add_overflow(x, y, &v)
                                      : op == "Sub" ? __builtin_sub_overflow(x, y, &v)
                                      : op == "Mul" ? __builtin_mul_overflow(x, y, &v)
                                                    : (x == INT64_MIN && y == -1) || ((v = x / y), false);
                if (overflow) fail_here("integer arithmetic overflows int64");
                out.ints[i] = v;
            } else {
                float x = a.data[ia], y = b.data[ib];
                out.data[i] = op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y;
            }
            for (size_t d = r; d-- > 0;) {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
    }
    graph.initializers[out_name] = std::move(out);
    return true;
}

/// Folds y = BN(Conv(x)) or y = BN(Gemm(x)) into the Conv/Gemm when the producer's output feeds only
/// the BN, its weight and bias are constants, and it is not a graph output.
void fold_batch_norms(Graph& graph) {
    auto constant = [&](const std::string& name) -> const Tensor* {
        auto it = graph.initializers.find(name);
        return it == graph.initializers.end() ? nullptr : &it->second;
    };
    std::map<std::string, int> consumers;
    for (const auto& node : graph.nodes)
        for (const auto& in : node.inputs) consumers[in]++;
    for (const auto& o : graph.outputs) consumers[o]++;
    std::map<std::string, int> weight_users;
    for (const auto& node : graph.nodes)
        for (size_t i = 1; i < node.inputs.size(); ++i) weight_users[node.inputs[i]]++;

    std::map<std::string, size_t> producer;
    for (size_t i = 0; i < graph.nodes.size(); ++i) producer[graph.nodes[i].outputs[0]] = i;

    std::vector<bool> removed(graph.nodes.size(), false);
    for (size_t bi = 0; bi < graph.nodes.size(); ++bi) {
        Node& bn = graph.nodes[bi];
        if (bn.op != OpKind::BatchNorm) continue;
        auto pit = producer.find(bn.inputs[0]);
        if (pit == producer.end() || consumers[bn.inputs[0]] != 1) continue;
        Node& prod = graph.nodes[pit->second];
        if (prod.op != OpKind::Conv && prod.op != OpKind::Gemm) continue;
        const Tensor* scale = constant(bn.inputs[1]);
        const Tensor* shift = constant(bn.inputs[2]);
        const Tensor* mean = constant(bn.inputs[3]);
        const Tensor* var = constant(bn.inputs[4]);
        const Tensor* w = prod.inputs.size() > 1 ? constant(prod.inputs[1]) : nullptr;
        if (!scale || !shift || !mean || !var || !w) continue;
        if (scale->dtype != DType::f32 || w->dtype != DType::f32) continue;
        int64_t channels = scale->numel();
        if (shift->numel() != channels || mean->numel() != channels || var->numel() != channels) continue;

        int64_t out_axis;
        if (prod.op == OpKind::Conv) {
            out_axis = 0;
        } else {
            const auto& ga = std::get<GemmAttrs>(prod.attrs);
            if (w->rank() != 2) continue;
            out_axis = ga.trans_b ? 0 : 1;
        }
        if (w->shape[out_axis] != channels) continue;
        const Tensor* bias = prod.inputs.size() > 2 && !prod.inputs[2].empty() ? constant(prod.inputs[2]) : nullptr;
        if (prod.inputs.size() > 2 && !prod.inputs[2].empty() && !bias) continue;
        if (bias && bias->dtype != DType::f32) continue;
        if (bias && bias->numel() != channels && bias->numel() != 1) continue;
        if (bias && prod.op == OpKind::Gemm && bias->rank() == 2 && bias->shape[1] != channels && bias->numel() != 1) continue;

        float eps = std::get<BatchNormAttrs>(bn.attrs).epsilon;
        std::vector<float> s(channels), b(channels);
        float alpha = 1.0f, beta = 1.0f;
        if (prod.op == OpKind::Gemm) {
            alpha = std::get<GemmAttrs>(prod.attrs).alpha;
            beta = std::get<GemmAttrs>(prod.attrs).beta;
        }
        for (int64_t c = 0; c < channels; ++c) {
            double inv = 1.0 / std::sqrt(static_cast<double>(var->data[c]) + eps);
            double sc = scale->data[c] * inv;
            double b0 = bias ? bias->data[bias->numel() == 1 ? 0 : c] * static_cast<double>(beta) : 0.0;
            s[c] = static_cast<float>(sc * alpha);
            b[c] = static_cast<float>((b0 - mean->data[c]) * sc + shift->data[c]);
        }
        Tensor nw = *w;
        int64_t inner = 1;
        for (int64_t d = out_axis + 1; d < nw.rank(); ++d) inner *= nw.shape[d];
        int64_t outer = 1;
        for (int64_t d = 0; d < out_axis; ++d) outer *= nw.shape[d];
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t i = 0; i < inner; ++i) nw.data[(o * channels + c) * inner + i] *= s[c];

        // Never modify a weight another node shares: fold into fresh names.
        auto fresh = [&](const std::string& base) {
            std::string name = base;
            for (int k = 0; graph.initializers.count(name); ++k) name = base + "_bnfold" + (k ? std::to_string(k) : "");
            return name;
        };
        std::string wname = weight_users[prod.inputs[1]] > 1 ? fresh(prod.inputs[1]) : prod.inputs[1];
        graph.initializers[wname] = std::move(nw);
        prod.inputs[1] = wname;
        std::string bname;
        if (bias && weight_users[prod.inputs[2]] <= 1) bname = prod.inputs[2];
        else bname = fresh(prod.name + ".bias");
        graph.initializers[bname] = Tensor({channels}, b);
        if (prod.inputs.size() < 3) prod.inputs.resize(3);
        prod.inputs[2] = bname;
        if (prod.op == OpKind::Gemm) {
            auto& ga = std::get<GemmAttrs>(prod.attrs);
            ga.alpha = 1.0f;
            ga.beta = 1.0f;
        }
        // The producer now writes the BN's output.
        prod.outputs[0] = bn.outputs[0];
        removed[bi] = true;
    }
    std::vector<Node> kept;
    for (size_t i = 0; i < graph.nodes.size(); ++i)
        if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
    graph.nodes = std::move(kept);
}

}  // namespace dcs
