// ONNX protobuf -> graph IR. Attributes are parsed here, once, into typed structs; everything past
// this file sees only runtime/graph.hpp.
#include "runtime/onnx_import.hpp"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "common/error.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace fs = std::filesystem;

namespace dcs {
namespace {

constexpr int64_t kMinOpset = 1;
constexpr int64_t kMaxOpset = 18;

std::string read_file_bytes(const std::string& path, const char* what) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw InputError(path + ": " + what + " not found");
    if (fs::is_directory(path, ec)) throw InputError(path + ": is a directory, expected a " + what + " file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path + ": cannot open " + what + " for reading");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw InputError(path + ": read error");
    return ss.str();
}

class Importer {
public:
    Importer(const std::string& path, const ImportOptions& options) : path_(path), options_(options) {
        dir_ = fs::path(path).parent_path();
        if (dir_.empty()) dir_ = ".";
    }

    Graph run(const onnx::ModelProto& model);
    Tensor convert_tensor(const onnx::TensorProto& t, const std::string& what) const;

private:
    [[noreturn]] void fail(const std::string& msg) const { throw InputError(path_ + ": " + msg); }
    std::string read_external(const onnx::TensorProto& t, const std::string& what) const;

    /// The name a value resolves to after Identity/Dropout elimination.
    std::string resolve(const std::string& name) const {
        std::string cur = name;
        for (size_t hops = 0; hops <= alias_.size(); ++hops) {
            auto it = alias_.find(cur);
            if (it == alias_.end()) return cur;
            cur = it->second;
        }
        fail("Identity/Dropout nodes form a cycle through '" + name + "'");
    }
    const Tensor* constant(const std::string& name) const {
        auto it = graph_.initializers.find(resolve(name));
        return it == graph_.initializers.end() ? nullptr : &it->second;
    }
    void convert_node(const onnx::NodeProto& n);
    /// Evaluates a shape-arithmetic node whose inputs are all constants; false when it cannot.
    bool try_fold(const OnnxNode& on);
    void fold_batch_norms();
    void topological_sort();
    void check_defined();

    std::string path_;
    ImportOptions options_;
    fs::path dir_;
    int64_t opset_ = 0;
    Graph graph_;
    std::unordered_map<std::string, std::string> alias_;
    std::set<std::string> used_names_;      ///< IR node names given out so far
    std::set<std::string> reserved_names_;  ///< every name the file gives a node
    std::set<std::string> mask_outputs_;    ///< Dropout mask outputs (must stay unused)
    int64_t node_index_ = 0;
};

Tensor Importer::convert_tensor(const onnx::TensorProto& t, const std::string& what) const {
    std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
    for (int64_t d : dims)
        if (d < 0) fail(what + ": negative dimension in " + shape_str(dims));
    int64_t n = 1;
    for (int64_t d : dims) {
        if (d != 0 && n > (int64_t(1) << 40) / d) fail(what + ": dimensions " + shape_str(dims) + " are too large");
        n *= d;
    }
    std::string raw;
    bool has_raw = false;
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
        raw = read_external(t, what);
        has_raw = true;
    } else if (t.has_raw_data()) {
        raw = t.raw_data();
        has_raw = true;
    }
    auto check_count = [&](int64_t have) {
        if (have != n)
            fail(what + ": dims " + shape_str(dims) + " need " + std::to_string(n) + " elements, the data holds " +
                 std::to_string(have));
    };
    auto from_raw = [&](size_t elem) {
        if (raw.size() % elem != 0)
            fail(what + ": raw data of " + std::to_string(raw.size()) + " bytes is not a whole number of elements");
        check_count(static_cast<int64_t>(raw.size() / elem));
    };
    Tensor out;
    out.shape = dims;
    switch (t.data_type()) {
        case onnx::TensorProto::FLOAT:
            out.dtype = DType::f32;
            if (has_raw) {
                from_raw(4);
                out.data.resize(n);
                if (n) std::memcpy(out.data.data(), raw.data(), n * 4);
            } else {
                check_count(t.float_data_size());
                out.data.assign(t.float_data().begin(), t.float_data().end());
            }
            break;
        case onnx::TensorProto::DOUBLE:
            out.dtype = DType::f32;
            if (has_raw) {
                from_raw(8);
                out.data.resize(n);
                for (int64_t i = 0; i < n; ++i) {
                    double d;
                    std::memcpy(&d, raw.data() + 8 * i, 8);
                    out.data[i] = static_cast<float>(d);
                }
            } else {
                check_count(t.double_data_size());
                for (double d : t.double_data()) out.data.push_back(static_cast<float>(d));
            }
            break;
        case onnx::TensorProto::INT64:
            out.dtype = DType::i64;
            if (has_raw) {
                from_raw(8);
                out.ints.resize(n);
                if (n) std::memcpy(out.ints.data(), raw.data(), n * 8);
            } else {
                check_count(t.int64_data_size());
                out.ints.assign(t.int64_data().begin(), t.int64_data().end());
            }
            break;
        case onnx::TensorProto::INT32:
            out.dtype = DType::i64;
            if (has_raw) {
                from_raw(4);
                out.ints.resize(n);
                for (int64_t i = 0; i < n; ++i) {
                    int32_t v;
                    std::memcpy(&v, raw.data() + 4 * i, 4);
                    out.ints[i] = v;
                }
            } else {
                check_count(t.int32_data_size());
                out.ints.assign(t.int32_data().begin(), t.int32_data().end());
            }
            break;
        default:
            fail(what + ": data type " + std::to_string(t.data_type()) +
                 " is not supported (expected float, double, int32 or int64)");
    }
    return out;
}

std::string Importer::read_external(const onnx::TensorProto& t, const std::string& what) const {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
        try {
            if (kv.key() == "location") location = kv.value();
            else if (kv.key() == "offset") offset = std::stoll(kv.value());
            else if (kv.key() == "length") length = std::stoll(kv.value());
        } catch (const std::exception&) {
            fail(what + ": external data " + kv.key() + " '" + kv.value() + "' is not a number");
        }
    }
    if (location.empty()) fail(what + ": external data without a location");
    fs::path rel(location);
    if (rel.is_absolute()) fail(what + ": external data location '" + location + "' must be relative to the model's directory");
    for (const auto& part : rel)
        if (part == "..") fail(what + ": external data location '" + location + "' escapes the model's directory");
    std::error_code ec;
    fs::path base = fs::weakly_canonical(dir_, ec);
    fs::path full = fs::weakly_canonical(dir_ / rel, ec);
    if (ec) fail(what + ": external data '" + location + "' cannot be resolved");
    auto b = base.string(), f = full.string();
    if (f.compare(0, b.size(), b) != 0 || (f.size() > b.size() && f[b.size()] != '/'))
        fail(what + ": external data location '" + location + "' escapes the model's directory");
    if (!fs::is_regular_file(full, ec)) fail(what + ": external data file '" + full.string() + "' not found");
    auto size = static_cast<int64_t>(fs::file_size(full, ec));
    if (offset < 0 || offset > size) fail(what + ": external data offset " + std::to_string(offset) + " is beyond the end of '" + location + "'");
    if (length < 0) length = size - offset;
    if (offset + length > size)
        fail(what + ": external data '" + location + "' holds " + std::to_string(size) + " bytes, offset+length needs " +
             std::to_string(offset + length));
    std::ifstream in(full, std::ios::binary);
    std::string buf(static_cast<size_t>(length), '\0');
    in.seekg(offset);
    in.read(buf.data(), length);
    if (!in) fail(what + ": cannot read external data '" + location + "'");
    return buf;
}

// ---- Constant folding of shape arithmetic ----
//
// Exporters (PyTorch's among them) compute pads and reshape targets with small subgraphs of shape
// operators: Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Slice, Transpose, Cast... When every
// input of such a node is a constant, it is evaluated here and becomes an initializer. Shape of an
// activation is known statically except for the batch, which stands as kBatchSentinel; a Reshape whose
// target holds it in front (x.view(x.size(0), -1)) copies the batch dimension, and any other use of it
// is refused.

namespace {

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

bool Importer::try_fold(const OnnxNode& on) {
    const onnx::NodeProto& n = on.proto();
    const std::string& op = n.op_type();
    if (!is_foldable(op)) return false;
    std::vector<const Tensor*> in;
    for (int i = 0; i < n.input_size(); ++i) {
        if (n.input(i).empty()) {
            in.push_back(nullptr);
            continue;
        }
        const Tensor* t = constant(n.input(i));
        if (!t && !(op == "Shape" && i == 0)) return false;
        in.push_back(t);
    }
    if (in.empty() || n.output_size() < 1) return false;
    auto out_name = n.output(0);
    auto fail_here = [&](const std::string& msg) { on.fail(msg); };
    Tensor out;
    if (op == "Shape") {
        std::vector<int64_t> shape;
        if (in[0]) {
            shape = in[0]->shape;
        } else {
            // The static shape of an activation: infer over the nodes converted so far.
            std::map<std::string, std::vector<int64_t>> shapes;
            try {
                shapes = graph_.infer_shapes(1);
            } catch (const InputError& e) {
                fail_here(std::string("cannot infer the shape of its input: ") + e.what());
            }
            auto it = shapes.find(resolve(n.input(0)));
            if (it == shapes.end()) return false;
            shape = it->second;
            bool dynamic_batch = false;
            for (const auto& gi : graph_.inputs)
                if (!gi.shape.empty() && gi.shape[0] < 0) dynamic_batch = true;
            if (dynamic_batch && !shape.empty()) shape[0] = kBatchSentinel;
        }
        int64_t r = static_cast<int64_t>(shape.size());
        int64_t start = on.attr_i("start", 0), end = on.attr_i("end", r);
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
        int64_t axis = norm_axis_or(on.attr_i("axis", 0), data.rank(), &ok);
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
        std::vector<int64_t> axes = opset_ >= 13 ? (in.size() > 1 && in[1] ? on.as_ints(*in[1]) : std::vector<int64_t>{})
                                                 : on.attr_ints("axes");
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
        int64_t axis = norm_axis_or(on.attr_i("axis", 0), r, &ok);
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
            int64_t axis = on.attr_i("axis", 1);
            if (axis < 0) axis += data.rank();
            if (axis < 0 || axis > data.rank()) ok = false;
            if (!ok) fail_here("axis out of range");
            int64_t a = 1;
            for (int64_t d = 0; d < axis; ++d) a *= data.shape[d];
            out.shape = {a, a ? data.numel() / a : 0};
        } else {
            ReshapeAttrs ra;
            ra.shape = opset_ < 5 ? on.attr_ints("shape") : on.as_ints(*in.at(1));
            ra.allow_zero = on.attr_i("allowzero", 0) != 0;
            if (std::find(ra.shape.begin(), ra.shape.end(), kBatchSentinel) != ra.shape.end())
                fail_here("reshapes a constant with the batch size");
            out.shape = reshape_target(ra, data.shape, node_where(on.label(), "Reshape"));
        }
    } else if (op == "ConstantOfShape") {
        Tensor shape_t = *in.at(0);
        if (has_sentinel(shape_t)) fail_here("a constant shaped by the batch size is not supported");
        auto shape = on.as_ints(shape_t);
        for (int64_t d : shape)
            if (d < 0 || d > (1 << 24)) fail_here("shape " + shape_str(shape) + " is out of range");
        Tensor v = Tensor({}, {0.0f});
        if (const auto* a = on.attr("value")) v = convert_tensor(a->t(), node_where(on.label(), op) + " value");
        if (v.numel() != 1) fail_here("value must have one element");
        out = make_like(v.dtype, shape);
        for (int64_t i = 0; i < out.numel(); ++i) set_elem(out, i, v, 0);
    } else if (op == "Slice") {
        const Tensor& data = *in.at(0);
        std::vector<int64_t> starts, ends, axes, steps;
        if (opset_ < 10) {
            starts = on.attr_ints("starts");
            ends = on.attr_ints("ends");
            axes = on.attr_ints("axes");
        } else {
            if (in.size() < 3) fail_here("needs starts and ends");
            starts = on.as_ints(*in[1]);
            ends = on.as_ints(*in[2]);
            if (in.size() > 3 && in[3]) axes = on.as_ints(*in[3]);
            if (in.size() > 4 && in[4]) steps = on.as_ints(*in[4]);
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
        std::vector<int64_t> perm = on.attr_ints("perm");
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
        const int64_t to = on.attr_i("to", 0);
        const bool to_int = to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32 ||
                            to == onnx::TensorProto::INT8 || to == onnx::TensorProto::UINT8 ||
                            to == onnx::TensorProto::INT16 || to == onnx::TensorProto::BOOL;
        const bool to_float = to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE ||
                              to == onnx::TensorProto::FLOAT16;
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
        auto shape = broadcast_shapes(a.shape, b.shape, node_where(on.label(), op));
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
    graph_.initializers[out_name] = std::move(out);
    return true;
}

void Importer::convert_node(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    const OnnxNode on(n, path_, opset_, [this](const std::string& v) { return constant(v); });
    if (!n.domain().empty() && n.domain() != "ai.onnx")
        on.fail("operator domain '" + n.domain() + "' is not supported (only the default ONNX domain)");
    if (n.output_size() == 0) on.fail("node has no outputs");

    // Nodes that produce no IR node.
    if (try_fold(on)) return;
    if (op == "Identity" || op == "Dropout") {
        if (n.input_size() < 1 || n.input(0).empty()) on.fail("missing input");
        if (op == "Dropout") {
            if (n.output_size() > 1 && !n.output(1).empty()) {
                // The mask output is all ones in inference; supported only when unused.
                mask_outputs_.insert(n.output(1));
            }
            if (on.attr("is_test") && on.attr_i("is_test", 1) == 0) on.fail("training-mode Dropout is not supported");
            if (n.input_size() > 2 && !n.input(2).empty()) {
                const Tensor* tm = constant(n.input(2));
                if (!tm || on.as_scalar(*tm, "training_mode") != 0) on.fail("training_mode must be a constant false");
            }
        }
        alias_[n.output(0)] = n.input(0);
        return;
    }
    if (op == "Constant") {
        Tensor t;
        if (const auto* a = on.attr("value")) {
            t = convert_tensor(a->t(), node_where(on.label(), "Constant") + " value");
        } else if (const auto* af = on.attr("value_float")) {
            t = Tensor({}, {af->f()});
        } else if (const auto* afs = on.attr("value_floats")) {
            t = Tensor({afs->floats_size()}, {afs->floats().begin(), afs->floats().end()});
        } else if (const auto* ai = on.attr("value_int")) {
            t = Tensor::from_ints({}, {ai->i()});
        } else if (const auto* ais = on.attr("value_ints")) {
            t = Tensor::from_ints({ais->ints_size()}, {ais->ints().begin(), ais->ints().end()});
        } else {
            on.fail("Constant without a supported value attribute (value, value_float(s), value_int(s))");
        }
        graph_.initializers[n.output(0)] = std::move(t);
        return;
    }

    Node node;
    node.name = n.name();
    if (node.name.empty() || used_names_.count(node.name)) {
        do {
            node.name = op + "_" + std::to_string(node_index_++);
        } while (used_names_.count(node.name) || reserved_names_.count(node.name));
    }
    used_names_.insert(node.name);
    for (const auto& in : n.input()) node.inputs.push_back(in.empty() ? std::string() : resolve(in));
    node.outputs.push_back(n.output(0));
    const OpDef* def = find_op(op);
    if (!def) on.fail("operator not supported; supported: " + std::string(supported_operators()));
    if (opset_ < def->min_opset || opset_ > def->max_opset)
        on.fail("opset " + std::to_string(opset_) + " is not supported for this operator (" +
                std::to_string(def->min_opset) + " to " + std::to_string(def->max_opset) + ")");
    node.op = def->kind;
    def->parse(on, node);
    graph_.nodes.push_back(std::move(node));
}

void Importer::topological_sort() {
    std::map<std::string, size_t> producer;
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
        for (const auto& o : graph_.nodes[i].outputs) {
            if (producer.count(o) || graph_.initializers.count(o))
                throw InputError(path_ + ": value '" + o + "' is produced twice (node '" + graph_.nodes[i].name + "')");
            producer[o] = i;
        }
    std::vector<int> indeg(graph_.nodes.size(), 0);
    std::vector<std::vector<size_t>> users(graph_.nodes.size());
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
        for (const auto& in : graph_.nodes[i].inputs) {
            auto it = producer.find(in);
            if (it != producer.end()) {
                indeg[i]++;
                users[it->second].push_back(i);
            }
        }
    std::vector<size_t> order, ready;
    for (size_t i = graph_.nodes.size(); i-- > 0;)
        if (indeg[i] == 0) ready.push_back(i);
    // Keep the file's order where it is already valid: always take the lowest ready index.
    std::sort(ready.begin(), ready.end(), std::greater<>());
    while (!ready.empty()) {
        size_t i = ready.back();
        ready.pop_back();
        order.push_back(i);
        for (size_t u : users[i])
            if (--indeg[u] == 0) {
                ready.push_back(u);
                std::sort(ready.begin(), ready.end(), std::greater<>());
            }
    }
    if (order.size() != graph_.nodes.size()) {
        for (size_t i = 0; i < graph_.nodes.size(); ++i)
            if (indeg[i] > 0) throw InputError(path_ + ": the graph has a cycle through node '" + graph_.nodes[i].name + "'");
    }
    std::vector<Node> sorted;
    sorted.reserve(order.size());
    for (size_t i : order) sorted.push_back(std::move(graph_.nodes[i]));
    graph_.nodes = std::move(sorted);
}

void Importer::check_defined() {
    std::set<std::string> defined;
    for (const auto& in : graph_.inputs) defined.insert(in.name);
    for (const auto& kv : graph_.initializers) defined.insert(kv.first);
    for (const auto& node : graph_.nodes) {
        for (const auto& in : node.inputs) {
            if (in.empty()) continue;
            if (mask_outputs_.count(in))
                throw InputError(path_ + ": node '" + node.name + "' uses a Dropout mask, which is not supported");
            if (!defined.count(in))
                throw InputError(path_ + ": " + node_where(node) + " reads '" + in +
                                 "', which no node, input or initializer defines");
            // Shape-like inputs became attributes during conversion: every remaining operand is data.
            auto it = graph_.initializers.find(in);
            if (it != graph_.initializers.end() && it->second.dtype != DType::f32)
                throw InputError(path_ + ": " + node_where(node) + " reads '" + in +
                                 "', an integer tensor; expected float data");
        }
        for (const auto& o : node.outputs) defined.insert(o);
    }
    for (const auto& o : graph_.outputs) {
        if (mask_outputs_.count(o)) throw InputError(path_ + ": graph output '" + o + "' is a Dropout mask, which is not supported");
        if (!defined.count(o)) throw InputError(path_ + ": graph output '" + o + "' is not produced by any node");
    }
}

/// Folds y = BN(Conv(x)) or y = BN(Gemm(x)) into the Conv/Gemm when the producer's output feeds only
/// the BN, its weight and bias are constants, and it is not a graph output.
void Importer::fold_batch_norms() {
    std::map<std::string, int> consumers;
    for (const auto& node : graph_.nodes)
        for (const auto& in : node.inputs) consumers[in]++;
    for (const auto& o : graph_.outputs) consumers[o]++;
    std::map<std::string, int> weight_users;
    for (const auto& node : graph_.nodes)
        for (size_t i = 1; i < node.inputs.size(); ++i) weight_users[node.inputs[i]]++;

    std::map<std::string, size_t> producer;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) producer[graph_.nodes[i].outputs[0]] = i;

    std::vector<bool> removed(graph_.nodes.size(), false);
    for (size_t bi = 0; bi < graph_.nodes.size(); ++bi) {
        Node& bn = graph_.nodes[bi];
        if (bn.op != OpKind::BatchNorm) continue;
        auto pit = producer.find(bn.inputs[0]);
        if (pit == producer.end() || consumers[bn.inputs[0]] != 1) continue;
        Node& prod = graph_.nodes[pit->second];
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
            for (int k = 0; graph_.initializers.count(name); ++k) name = base + "_bnfold" + (k ? std::to_string(k) : "");
            return name;
        };
        std::string wname = weight_users[prod.inputs[1]] > 1 ? fresh(prod.inputs[1]) : prod.inputs[1];
        graph_.initializers[wname] = std::move(nw);
        prod.inputs[1] = wname;
        std::string bname;
        if (bias && weight_users[prod.inputs[2]] <= 1) bname = prod.inputs[2];
        else bname = fresh(prod.name + ".bias");
        graph_.initializers[bname] = Tensor({channels}, b);
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
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
        if (!removed[i]) kept.push_back(std::move(graph_.nodes[i]));
    graph_.nodes = std::move(kept);
}

Graph Importer::run(const onnx::ModelProto& model) {
    if (!model.has_graph()) fail("not an ONNX model (no graph)");
    for (const auto& imp : model.opset_import())
        if (imp.domain().empty() || imp.domain() == "ai.onnx") opset_ = imp.version();
    if (opset_ == 0) {
        if (model.opset_import_size() == 0 && model.ir_version() < 3) opset_ = 1;
        else fail("no default-domain opset_import (not an ONNX model?)");
    }
    if (opset_ < kMinOpset || opset_ > kMaxOpset)
        fail("opset " + std::to_string(opset_) + " is not supported (expected " + std::to_string(kMinOpset) + " to " +
             std::to_string(kMaxOpset) + ")");
    graph_.opset = opset_;
    const auto& g = model.graph();
    if (g.node_size() == 0) fail("the graph has no nodes");

    for (const auto& init : g.initializer()) {
        if (init.name().empty()) fail("an initializer has no name");
        graph_.initializers[init.name()] = convert_tensor(init, "initializer '" + init.name() + "'");
    }
    for (const auto& kv : options_.constant_inputs) graph_.initializers[kv.first] = kv.second;
    for (const auto& in : g.input()) {
        if (graph_.initializers.count(in.name())) continue;
        ValueInfo vi;
        vi.name = in.name();
        if (in.type().has_tensor_type()) {
            const auto& tt = in.type().tensor_type();
            if (tt.elem_type() != onnx::TensorProto::FLOAT && tt.elem_type() != 0)
                fail("input '" + in.name() + "' has element type " + std::to_string(tt.elem_type()) + ", expected float");
            if (tt.has_shape())
                for (const auto& d : tt.shape().dim()) vi.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
        } else {
            fail("input '" + in.name() + "' is not a tensor");
        }
        graph_.inputs.push_back(vi);
    }

    for (const auto& n : g.node())
        if (!n.name().empty()) reserved_names_.insert(n.name());
    for (const auto& n : g.node()) convert_node(n);
    // Identity/Dropout may come after their consumers in the file: resolve aliases once all are known.
    for (auto& node : graph_.nodes)
        for (auto& in : node.inputs)
            if (!in.empty()) in = resolve(in);
    for (const auto& o : g.output()) graph_.outputs.push_back(resolve(o.name()));
    if (graph_.outputs.empty()) fail("the graph has no outputs");

    topological_sort();
    check_defined();
    if (options_.fold_batch_norm) fold_batch_norms();
    // Drop initializers no node reads (folded BN parameters, shape arithmetic, unused weights): they
    // are not part of the model that runs, nor of its size.
    std::set<std::string> used;
    for (const auto& node : graph_.nodes)
        for (const auto& in : node.inputs) used.insert(in);
    for (const auto& o : graph_.outputs) used.insert(o);
    for (auto it = graph_.initializers.begin(); it != graph_.initializers.end();)
        it = used.count(it->first) ? std::next(it) : graph_.initializers.erase(it);
    return std::move(graph_);
}

}  // namespace

namespace {

/// Operators the import removes or turns into initializers: not rows of the operator table.
struct ImportOnlyOp {
    const char* name;
    const char* doc;
};
constexpr ImportOnlyOp kImportOnly[] = {
    {"Constant", "`value`, `value_float(s)`, `value_int(s)`; becomes an initializer"},
    {"Identity", "removed at import"},
    {"Dropout", "removed at import (inference); a used mask output or training mode is an error"},
};

}  // namespace

std::vector<std::string> supported_operator_names() {
    std::vector<std::string> names;
    for (const OpDef* d : op_table()) names.push_back(d->onnx_name);
    for (const auto& op : kImportOnly) names.push_back(op.name);
    return names;
}

const char* supported_operators() {
    static const std::string list = [] {
        std::string s;
        for (const auto& name : supported_operator_names()) s += (s.empty() ? "" : ", ") + name;
        return s;
    }();
    return list.c_str();
}

std::string supported_operators_markdown() {
    std::string s = "| operator | notes |\n|---|---|\n";
    for (const OpDef* d : op_table()) s += std::string("| ") + d->onnx_name + " | " + d->doc + " |\n";
    for (const auto& op : kImportOnly) s += std::string("| ") + op.name + " | " + op.doc + " |\n";
    return s;
}

Graph import_onnx_bytes(const std::string& bytes, const std::string& path, const ImportOptions& options) {
    onnx::ModelProto model;
    if (bytes.empty()) throw InputError(path + ": empty file, expected an ONNX model");
    if (bytes.size() > static_cast<size_t>(INT32_MAX)) throw InputError(path + ": file larger than 2 GiB; use external data");
    if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        throw InputError(path + ": not a valid ONNX model (protobuf parse failed)");
    Importer imp(path, options);
    return imp.run(model);
}

Graph import_onnx(const std::string& path, const ImportOptions& options) {
    return import_onnx_bytes(read_file_bytes(path, "model"), path, options);
}

Tensor read_tensor_pb(const std::string& path) {
    std::string bytes = read_file_bytes(path, "tensor");
    onnx::TensorProto t;
    if (!t.ParseFromString(bytes)) throw InputError(path + ": not a serialized TensorProto");
    return Importer(path, {}).convert_tensor(t, "tensor '" + t.name() + "'");
}

}  // namespace dcs
