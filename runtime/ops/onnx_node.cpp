#include "runtime/ops/onnx_node.hpp"

#include <onnx/onnx_pb.h>

#include <cmath>

#include "common/error.hpp"
#include "runtime/ops/op_table.hpp"

namespace dcs {

OnnxNode::OnnxNode(const onnx::NodeProto& node, const std::string& path, int64_t opset, ConstantFn constant,
                   ConvertFn convert)
    : n_(node), path_(path), opset_(opset), constant_(std::move(constant)), convert_(std::move(convert)) {}

const std::string& OnnxNode::op_type() const { return n_.op_type(); }

std::string OnnxNode::label() const {
    return n_.name().empty() ? (n_.output_size() > 0 ? "output " + n_.output(0) : std::string("?")) : n_.name();
}

int OnnxNode::input_size() const { return n_.input_size(); }
const std::string& OnnxNode::input(int i) const { return n_.input(i); }
int OnnxNode::output_size() const { return n_.output_size(); }
const std::string& OnnxNode::output(int i) const { return n_.output(i); }

void OnnxNode::fail(const std::string& msg) const {
    throw InputError(path_ + ": " + node_where(label(), n_.op_type()) + ": " + msg);
}

const onnx::AttributeProto* OnnxNode::attr(const char* name) const {
    for (const auto& a : n_.attribute())
        if (a.name() == name) return &a;
    return nullptr;
}

int64_t OnnxNode::attr_i(const char* name, int64_t dflt) const {
    const auto* a = attr(name);
    if (!a) return dflt;
    if (a->type() != onnx::AttributeProto::INT) fail(std::string("attribute ") + name + " must be an int");
    return a->i();
}

float OnnxNode::attr_f(const char* name, float dflt) const {
    const auto* a = attr(name);
    if (!a) return dflt;
    if (a->type() != onnx::AttributeProto::FLOAT) fail(std::string("attribute ") + name + " must be a float");
    return a->f();
}

std::vector<int64_t> OnnxNode::attr_ints(const char* name) const {
    const auto* a = attr(name);
    if (!a) return {};
    if (a->type() != onnx::AttributeProto::INTS) fail(std::string("attribute ") + name + " must be a list of ints");
    return {a->ints().begin(), a->ints().end()};
}

std::string OnnxNode::attr_s(const char* name, const std::string& dflt) const {
    const auto* a = attr(name);
    if (!a) return dflt;
    if (a->type() != onnx::AttributeProto::STRING) fail(std::string("attribute ") + name + " must be a string");
    return a->s();
}

AutoPad OnnxNode::auto_pad() const {
    std::string s = attr_s("auto_pad", "NOTSET");
    if (s == "NOTSET" || s.empty()) return AutoPad::NotSet;
    if (s == "SAME_UPPER") return AutoPad::SameUpper;
    if (s == "SAME_LOWER") return AutoPad::SameLower;
    if (s == "VALID") return AutoPad::Valid;
    fail("auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '" + s + "'");
}

bool OnnxNode::attr_tensor(const char* name, const std::string& what, Tensor* out) const {
    const auto* a = attr(name);
    if (!a) return false;
    if (!convert_) fail(std::string("attribute ") + name + ": tensor attributes cannot be read here");
    *out = convert_(a->t(), what);
    return true;
}

const Tensor& OnnxNode::require_constant(int index, const char* what) const {
    if (n_.input_size() <= index || n_.input(index).empty()) fail(std::string("missing input ") + what);
    const Tensor* t = constant(n_.input(index));
    if (!t) fail(std::string("input ") + what + " ('" + n_.input(index) + "') must be a constant initializer");
    return *t;
}

std::vector<int64_t> OnnxNode::as_ints(const Tensor& t) const {
    if (t.dtype == DType::i64) return t.ints;
    std::vector<int64_t> v;
    for (float f : t.data) {
        if (!(f >= -9.2e18f && f <= 9.2e18f) || f != std::trunc(f))
            fail("expected whole numbers in an integer input, got " + std::to_string(f));
        v.push_back(static_cast<int64_t>(f));
    }
    return v;
}

float OnnxNode::as_scalar(const Tensor& t, const char* what) const {
    const size_t count = t.dtype == DType::i64 ? t.ints.size() : t.data.size();
    if (count != 1) fail(std::string(what) + " must hold one value, got shape " + shape_str(t.shape));
    return t.dtype == DType::i64 ? static_cast<float>(t.ints[0]) : t.data[0];
}

void OnnxNode::need_inputs(int lo, int hi) const {
    if (n_.input_size() < lo || n_.input_size() > hi)
        fail("expected " + std::to_string(lo) + (lo == hi ? "" : " to " + std::to_string(hi)) + " inputs, got " +
             std::to_string(n_.input_size()));
    for (int i = 0; i < lo; ++i)
        if (n_.input(i).empty()) fail("required input " + std::to_string(i) + " is empty");
}

void OnnxNode::single_output() const {
    for (int i = 1; i < n_.output_size(); ++i)
        if (!n_.output(i).empty()) fail("optional output " + std::to_string(i) + " is not supported");
}

void OnnxNode::check_spatial(std::vector<int64_t>& v, size_t count, int64_t dflt, const char* what) const {
    if (v.empty()) v.assign(count, dflt);
    if (v.size() != count)
        fail(std::string(what) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(count));
}

}  // namespace dcs
