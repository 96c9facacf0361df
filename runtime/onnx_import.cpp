// ONNX protobuf -> graph IR. Each node's attributes are parsed once, by its operator row
// (runtime/ops/), into typed structs; the graph passes (runtime/graph_passes.hpp) fold constant shape
// arithmetic and BatchNorm. Everything past the import sees only runtime/graph.hpp.
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
#include "runtime/graph_passes.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"

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

void Importer::convert_node(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    const OnnxNode on(
        n, path_, opset_, [this](const std::string& v) { return constant(v); },
        [this](const onnx::TensorProto& t, const std::string& what) { return convert_tensor(t, what); });
    if (!n.domain().empty() && n.domain() != "ai.onnx")
        on.fail("operator domain '" + n.domain() + "' is not supported (only the default ONNX domain)");
    if (n.output_size() == 0) on.fail("node has no outputs");

    // Nodes that produce no IR node.
    if (fold_constant_node(on, graph_, [this](const std::string& v) { return resolve(v); })) return;
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
                throw InputError(path_ + ": " + node_where(node) + " uses a Dropout mask, which is not supported");
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
    if (options_.fold_batch_norm) fold_batch_norms(graph_);
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
