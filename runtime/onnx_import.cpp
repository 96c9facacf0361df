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
    [[noreturn]] void fail_node(const onnx::NodeProto& n, const std::string& msg) const {
        throw InputError(path_ + ": node '" + node_label(n) + "' (" + n.op_type() + "): " + msg);
    }
    std::string node_label(const onnx::NodeProto& n) const {
        return n.name().empty() ? (n.output_size() > 0 ? "output " + n.output(0) : std::string("?")) : n.name();
    }

    std::string read_external(const onnx::TensorProto& t, const std::string& what) const;

    const onnx::AttributeProto* attr(const onnx::NodeProto& n, const char* name) const {
        for (const auto& a : n.attribute())
            if (a.name() == name) return &a;
        return nullptr;
    }
    int64_t attr_i(const onnx::NodeProto& n, const char* name, int64_t dflt) const {
        const auto* a = attr(n, name);
        if (!a) return dflt;
        if (a->type() != onnx::AttributeProto::INT) fail_node(n, std::string("attribute ") + name + " must be an int");
        return a->i();
    }
    float attr_f(const onnx::NodeProto& n, const char* name, float dflt) const {
        const auto* a = attr(n, name);
        if (!a) return dflt;
        if (a->type() != onnx::AttributeProto::FLOAT) fail_node(n, std::string("attribute ") + name + " must be a float");
        return a->f();
    }
    std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const char* name) const {
        const auto* a = attr(n, name);
        if (!a) return {};
        if (a->type() != onnx::AttributeProto::INTS) fail_node(n, std::string("attribute ") + name + " must be a list of ints");
        return {a->ints().begin(), a->ints().end()};
    }
    std::string attr_s(const onnx::NodeProto& n, const char* name, const std::string& dflt) const {
        const auto* a = attr(n, name);
        if (!a) return dflt;
        if (a->type() != onnx::AttributeProto::STRING) fail_node(n, std::string("attribute ") + name + " must be a string");
        return a->s();
    }
    AutoPad parse_auto_pad(const onnx::NodeProto& n) const {
        std::string s = attr_s(n, "auto_pad", "NOTSET");
        if (s == "NOTSET" || s.empty()) return AutoPad::NotSet;
        if (s == "SAME_UPPER") return AutoPad::SameUpper;
        if (s == "SAME_LOWER") return AutoPad::SameLower;
        if (s == "VALID") return AutoPad::Valid;
        fail_node(n, "auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '" + s + "'");
    }

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
    const Tensor& require_constant(const onnx::NodeProto& n, int index, const char* what) const {
        if (n.input_size() <= index || n.input(index).empty()) fail_node(n, std::string("missing input ") + what);
        const Tensor* t = constant(n.input(index));
        if (!t) fail_node(n, std::string("input ") + what + " ('" + n.input(index) + "') must be a constant initializer");
        return *t;
    }
    /// Integer values of a constant input of node `n` (float tensors must hold whole numbers in range).
    std::vector<int64_t> as_ints(const onnx::NodeProto& n, const Tensor& t) const {
        if (t.dtype == DType::i64) return t.ints;
        std::vector<int64_t> v;
        for (float f : t.data) {
            if (!(f >= -9.2e18f && f <= 9.2e18f) || f != std::trunc(f))
                fail_node(n, "expected whole numbers in an integer input, got " + std::to_string(f));
            v.push_back(static_cast<int64_t>(f));
        }
        return v;
    }
    /// The single value of a one-element constant input; fails naming the node and input otherwise.
    float as_scalar(const onnx::NodeProto& n, const Tensor& t, const char* what) const {
        const size_t count = t.dtype == DType::i64 ? t.ints.size() : t.data.size();
        if (count != 1) fail_node(n, std::string(what) + " must hold one value, got shape " + shape_str(t.shape));
        return t.dtype == DType::i64 ? static_cast<float>(t.ints[0]) : t.data[0];
    }

    void convert_node(const onnx::NodeProto& n);
    /// Evaluates a shape-arithmetic node whose inputs are all constants; false when it cannot.
    bool try_fold(const onnx::NodeProto& n);
    void check_spatial(const onnx::NodeProto& n, std::vector<int64_t>& v, size_t count, int64_t dflt,
                       const char* what) const;
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

void Importer::check_spatial(const onnx::NodeProto& n, std::vector<int64_t>& v, size_t count, int64_t dflt,
                             const char* what) const {
    if (v.empty()) v.assign(count, dflt);
    if (v.size() != count)
        fail_node(n, std::string(what) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(count));
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
constexpr int64_t kBatchSentinel = -4611686018427387000LL;

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

bool Importer::try_fold(const onnx::NodeProto& n) {
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
    auto fail_here = [&](const std::string& msg) { fail_node(n, msg); };
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
        int64_t start = attr_i(n, "start", 0), end = attr_i(n, "end", r);
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
        int64_t axis = norm_axis_or(attr_i(n, "axis", 0), data.rank(), &ok);
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
        std::vector<int64_t> axes = opset_ >= 13 ? (in.size() > 1 && in[1] ? as_ints(n, *in[1]) : std::vector<int64_t>{})
                                                 : attr_ints(n, "axes");
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
        int64_t axis = norm_axis_or(attr_i(n, "axis", 0), r, &ok);
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
            int64_t axis = attr_i(n, "axis", 1);
            if (axis < 0) axis += data.rank();
            if (axis < 0 || axis > data.rank()) ok = false;
            if (!ok) fail_here("axis out of range");
            int64_t a = 1;
            for (int64_t d = 0; d < axis; ++d) a *= data.shape[d];
            out.shape = {a, a ? data.numel() / a : 0};
        } else {
            ReshapeAttrs ra;
            ra.shape = opset_ < 5 ? attr_ints(n, "shape") : as_ints(n, *in.at(1));
            ra.allow_zero = attr_i(n, "allowzero", 0) != 0;
            if (std::find(ra.shape.begin(), ra.shape.end(), kBatchSentinel) != ra.shape.end())
                fail_here("reshapes a constant with the batch size");
            out.shape = reshape_target(ra, data.shape, "node '" + node_label(n) + "' (Reshape)");
        }
    } else if (op == "ConstantOfShape") {
        Tensor shape_t = *in.at(0);
        if (has_sentinel(shape_t)) fail_here("a constant shaped by the batch size is not supported");
        auto shape = as_ints(n, shape_t);
        for (int64_t d : shape)
            if (d < 0 || d > (1 << 24)) fail_here("shape " + shape_str(shape) + " is out of range");
        Tensor v = Tensor({}, {0.0f});
        if (const auto* a = attr(n, "value")) v = convert_tensor(a->t(), "node '" + node_label(n) + "' value");
        if (v.numel() != 1) fail_here("value must have one element");
        out = make_like(v.dtype, shape);
        for (int64_t i = 0; i < out.numel(); ++i) set_elem(out, i, v, 0);
    } else if (op == "Slice") {
        const Tensor& data = *in.at(0);
        std::vector<int64_t> starts, ends, axes, steps;
        if (opset_ < 10) {
            starts = attr_ints(n, "starts");
            ends = attr_ints(n, "ends");
            axes = attr_ints(n, "axes");
        } else {
            if (in.size() < 3) fail_here("needs starts and ends");
            starts = as_ints(n, *in[1]);
            ends = as_ints(n, *in[2]);
            if (in.size() > 3 && in[3]) axes = as_ints(n, *in[3]);
            if (in.size() > 4 && in[4]) steps = as_ints(n, *in[4]);
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
        std::vector<int64_t> perm = attr_ints(n, "perm");
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
        const int64_t to = attr_i(n, "to", 0);
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
        auto shape = broadcast_shapes(a.shape, b.shape, "node '" + node_label(n) + "' (" + op + ")");
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
    if (!n.domain().empty() && n.domain() != "ai.onnx")
        fail_node(n, "operator domain '" + n.domain() + "' is not supported (only the default ONNX domain)");
    if (n.output_size() == 0) fail_node(n, "node has no outputs");

    // Nodes that produce no IR node.
    if (try_fold(n)) return;
    if (op == "Identity" || op == "Dropout") {
        if (n.input_size() < 1 || n.input(0).empty()) fail_node(n, "missing input");
        if (op == "Dropout") {
            if (n.output_size() > 1 && !n.output(1).empty()) {
                // The mask output is all ones in inference; supported only when unused.
                mask_outputs_.insert(n.output(1));
            }
            if (attr(n, "is_test") && attr_i(n, "is_test", 1) == 0) fail_node(n, "training-mode Dropout is not supported");
            if (n.input_size() > 2 && !n.input(2).empty()) {
                const Tensor* tm = constant(n.input(2));
                if (!tm || as_scalar(n, *tm, "training_mode") != 0) fail_node(n, "training_mode must be a constant false");
            }
        }
        alias_[n.output(0)] = n.input(0);
        return;
    }
    if (op == "Constant") {
        Tensor t;
        if (const auto* a = attr(n, "value")) {
            t = convert_tensor(a->t(), "node '" + node_label(n) + "' (Constant) value");
        } else if (const auto* af = attr(n, "value_float")) {
            t = Tensor({}, {af->f()});
        } else if (const auto* afs = attr(n, "value_floats")) {
            t = Tensor({afs->floats_size()}, {afs->floats().begin(), afs->floats().end()});
        } else if (const auto* ai = attr(n, "value_int")) {
            t = Tensor::from_ints({}, {ai->i()});
        } else if (const auto* ais = attr(n, "value_ints")) {
            t = Tensor::from_ints({ais->ints_size()}, {ais->ints().begin(), ais->ints().end()});
        } else {
            fail_node(n, "Constant without a supported value attribute (value, value_float(s), value_int(s))");
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
    auto need_inputs = [&](int lo, int hi) {
        int have = 0;
        for (int i = 0; i < n.input_size(); ++i) have = n.input(i).empty() ? have : i + 1;
        if (n.input_size() < lo || n.input_size() > hi)
            fail_node(n, "expected " + std::to_string(lo) + (lo == hi ? "" : " to " + std::to_string(hi)) +
                             " inputs, got " + std::to_string(n.input_size()));
        for (int i = 0; i < lo; ++i)
            if (n.input(i).empty()) fail_node(n, "required input " + std::to_string(i) + " is empty");
    };
    auto single_output = [&]() {
        for (int i = 1; i < n.output_size(); ++i)
            if (!n.output(i).empty()) fail_node(n, "optional output " + std::to_string(i) + " is not supported");
    };

    if (op == "Conv") {
        need_inputs(2, 3);
        single_output();
        node.op = OpKind::Conv;
        ConvAttrs a;
        a.group = attr_i(n, "group", 1);
        if (a.group < 1) fail_node(n, "group must be >= 1, got " + std::to_string(a.group));
        a.kernel = attr_ints(n, "kernel_shape");
        a.strides = attr_ints(n, "strides");
        a.pads = attr_ints(n, "pads");
        a.dilations = attr_ints(n, "dilations");
        a.auto_pad = parse_auto_pad(n);
        size_t sd = a.kernel.size();
        if (const Tensor* w = constant(n.input(1))) {
            if (w->rank() < 3) fail_node(n, "weight must have rank >= 3, got " + shape_str(w->shape));
            if (sd && sd != size_t(w->rank() - 2)) fail_node(n, "kernel_shape does not match the weight " + shape_str(w->shape));
            std::vector<int64_t> k(w->shape.begin() + 2, w->shape.end());
            if (sd && a.kernel != k) fail_node(n, "kernel_shape " + shape_str(a.kernel) + " does not match the weight " + shape_str(w->shape));
            a.kernel = k;
            sd = k.size();
        }
        if (sd == 0) sd = std::max(a.strides.size(), std::max(a.dilations.size(), a.pads.size() / 2));
        if (sd == 0) fail_node(n, "cannot tell the kernel's rank: give kernel_shape or a constant weight");
        if (sd > 3) fail_node(n, "only 1-D to 3-D convolutions are supported");
        check_spatial(n, a.strides, sd, 1, "strides");
        check_spatial(n, a.dilations, sd, 1, "dilations");
        if (a.pads.empty()) a.pads.assign(2 * sd, 0);
        if (a.pads.size() != 2 * sd) fail_node(n, "pads has " + std::to_string(a.pads.size()) + " values, expected " + std::to_string(2 * sd));
        for (auto v : a.strides) if (v < 1) fail_node(n, "strides must be >= 1");
        for (auto v : a.dilations) if (v < 1) fail_node(n, "dilations must be >= 1");
        for (auto v : a.pads) if (v < 0) fail_node(n, "pads must be >= 0");
        node.attrs = a;
    } else if (op == "Gemm") {
        need_inputs(2, 3);
        single_output();
        node.op = OpKind::Gemm;
        GemmAttrs a;
        a.trans_a = attr_i(n, "transA", 0) != 0;
        a.trans_b = attr_i(n, "transB", 0) != 0;
        a.alpha = attr_f(n, "alpha", 1.0f);
        a.beta = attr_f(n, "beta", 1.0f);
        node.attrs = a;
    } else if (op == "MatMul") {
        need_inputs(2, 2);
        node.op = OpKind::MatMul;
    } else if (op == "Add") {
        need_inputs(2, 2);
        if (attr(n, "broadcast") || attr(n, "axis")) fail_node(n, "the legacy broadcast/axis attributes are not supported");
        node.op = OpKind::Add;
    } else if (op == "Relu") {
        need_inputs(1, 1);
        node.op = OpKind::Relu;
    } else if (op == "Clip") {
        need_inputs(1, 3);
        node.op = OpKind::Clip;
        ClipAttrs a;
        if (opset_ < 11) {
            a.min = attr_f(n, "min", a.min);
            a.max = attr_f(n, "max", a.max);
        } else {
            if (n.input_size() > 1 && !n.input(1).empty()) a.min = as_scalar(n, require_constant(n, 1, "min"), "min");
            if (n.input_size() > 2 && !n.input(2).empty()) a.max = as_scalar(n, require_constant(n, 2, "max"), "max");
        }
        node.inputs.resize(1);
        node.attrs = a;
    } else if (op == "MaxPool" || op == "AveragePool") {
        need_inputs(1, 1);
        single_output();
        node.op = op == "MaxPool" ? OpKind::MaxPool : OpKind::AveragePool;
        PoolAttrs a;
        a.kernel = attr_ints(n, "kernel_shape");
        if (a.kernel.empty()) fail_node(n, "kernel_shape is required");
        size_t sd = a.kernel.size();
        if (sd > 3) fail_node(n, "only 1-D to 3-D pooling is supported");
        a.strides = attr_ints(n, "strides");
        a.pads = attr_ints(n, "pads");
        a.dilations = attr_ints(n, "dilations");
        a.auto_pad = parse_auto_pad(n);
        a.ceil_mode = attr_i(n, "ceil_mode", 0) != 0;
        a.count_include_pad = attr_i(n, "count_include_pad", 0) != 0;
        if (attr_i(n, "storage_order", 0) != 0) fail_node(n, "storage_order=1 is not supported");
        check_spatial(n, a.strides, sd, 1, "strides");
        check_spatial(n, a.dilations, sd, 1, "dilations");
        if (a.pads.empty()) a.pads.assign(2 * sd, 0);
        if (a.pads.size() != 2 * sd) fail_node(n, "pads has " + std::to_string(a.pads.size()) + " values, expected " + std::to_string(2 * sd));
        for (auto v : a.kernel) if (v < 1) fail_node(n, "kernel_shape must be >= 1");
        for (auto v : a.strides) if (v < 1) fail_node(n, "strides must be >= 1");
        for (auto v : a.dilations) if (v < 1) fail_node(n, "dilations must be >= 1");
        for (auto v : a.pads) if (v < 0) fail_node(n, "pads must be >= 0");
        node.attrs = a;
    } else if (op == "GlobalAveragePool") {
        need_inputs(1, 1);
        node.op = OpKind::GlobalAveragePool;
    } else if (op == "Flatten") {
        need_inputs(1, 1);
        node.op = OpKind::Flatten;
        node.attrs = AxisAttrs{attr_i(n, "axis", 1)};
    } else if (op == "Reshape") {
        node.op = OpKind::Reshape;
        ReshapeAttrs a;
        if (opset_ < 5) {
            need_inputs(1, 1);
            a.shape = attr_ints(n, "shape");
        } else {
            need_inputs(2, 2);
            a.shape = as_ints(n, require_constant(n, 1, "shape"));
        }
        for (size_t i = 0; i < a.shape.size(); ++i)
            if (a.shape[i] == kBatchSentinel) {
                // x.view(x.size(0), ...): the batch dimension copied from the input.
                if (i != 0 || attr_i(n, "allowzero", 0) != 0) fail_node(n, "uses the batch size other than as the first dimension");
                a.shape[i] = 0;
            }
        a.allow_zero = attr_i(n, "allowzero", 0) != 0;
        node.inputs.resize(1);
        node.attrs = a;
    } else if (op == "Pad") {
        node.op = OpKind::Pad;
        PadAttrs a;
        std::string mode = attr_s(n, "mode", "constant");
        if (mode != "constant") fail_node(n, "mode '" + mode + "' is not supported (only constant)");
        if (opset_ < 11) {
            need_inputs(1, 1);
            a.pads = attr_ints(n, "pads");
            a.value = attr_f(n, "value", 0.0f);
        } else {
            need_inputs(2, 4);
            a.pads = as_ints(n, require_constant(n, 1, "pads"));
            if (n.input_size() > 2 && !n.input(2).empty()) a.value = as_scalar(n, require_constant(n, 2, "constant_value"), "constant_value");
            if (n.input_size() > 3 && !n.input(3).empty()) fail_node(n, "the axes input is not supported");
        }
        node.inputs.resize(1);
        node.attrs = a;
    } else if (op == "Concat") {
        if (n.input_size() < 1) fail_node(n, "needs at least one input");
        node.op = OpKind::Concat;
        if (!attr(n, "axis")) fail_node(n, "axis is required");
        node.attrs = AxisAttrs{attr_i(n, "axis", 1)};
    } else if (op == "Softmax") {
        need_inputs(1, 1);
        node.op = OpKind::Softmax;
        // Before opset 13 Softmax flattened to 2-D at `axis` (default 1); from 13 it is per-axis (default -1).
        node.attrs = AxisAttrs{attr_i(n, "axis", opset_ < 13 ? 1 : -1), opset_ < 13};
    } else if (op == "BatchNormalization") {
        need_inputs(5, 5);
        if (attr_i(n, "training_mode", 0) != 0) fail_node(n, "training_mode=1 is not supported (inference only)");
        if (attr_i(n, "spatial", 1) != 1) fail_node(n, "spatial=0 is not supported");
        single_output();
        node.op = OpKind::BatchNorm;
        node.attrs = BatchNormAttrs{attr_f(n, "epsilon", 1e-5f)};
    } else {
        fail_node(n, "operator not supported; supported: " + std::string(supported_operators()));
    }
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
                throw InputError(path_ + ": node '" + node.name + "' (" + op_name(node.op) + ") reads '" + in +
                                 "', which no node, input or initializer defines");
            // Shape-like inputs became attributes during conversion: every remaining operand is data.
            auto it = graph_.initializers.find(in);
            if (it != graph_.initializers.end() && it->second.dtype != DType::f32)
                throw InputError(path_ + ": node '" + node.name + "' (" + op_name(node.op) + ") reads '" + in +
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

const char* supported_operators() {
    return "Conv, Gemm, MatMul, Add, Relu, Clip, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, "
           "Pad (constant), Constant, Identity, Dropout, BatchNormalization, Concat, Softmax";
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
