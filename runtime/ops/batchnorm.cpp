// BatchNormalization (inference): the nodes the import could not fold into a Conv or Gemm
// (runtime/graph_passes.hpp), run as a per-channel affine.
#include <cmath>
#include <ostream>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

void parse(const OnnxNode& n, Node& node) {
    n.need_inputs(5, 5);
    if (n.attr_i("training_mode", 0) != 0) n.fail("training_mode=1 is not supported (inference only)");
    if (n.attr_i("spatial", 1) != 1) n.fail("spatial=0 is not supported");
    n.single_output();
    node.attrs = BatchNormAttrs{n.attr_f("epsilon", 1e-5f)};
}

std::vector<int64_t> infer_shape(const ShapeArgs& s) {
    const auto& x = s.input(0);
    if (x.size() < 2) throw InputError(s.where + ": input must have a channel dimension");
    for (size_t i = 1; i < 5; ++i)
        if (Tensor::numel_of(s.input(i)) != x[1])
            throw InputError(s.where + ": parameter '" + s.node.inputs[i] + "' " + shape_str(s.input(i)) +
                             " does not match " + std::to_string(x[1]) + " channels");
    return x;
}

Tensor reference(const RefArgs& args) {
    const Tensor& x = args.in(0);
    const Tensor& scale = args.in(1);
    const Tensor& bias = args.in(2);
    const Tensor& mean = args.in(3);
    const Tensor& var = args.in(4);
    const float eps = std::get<BatchNormAttrs>(args.node.attrs).epsilon;
    if (x.rank() < 2 || scale.numel() != x.shape[1] || bias.numel() != x.shape[1] || mean.numel() != x.shape[1] ||
        var.numel() != x.shape[1])
        throw InputError(args.where + ": parameters do not match the input's channels");
    Tensor y = x;
    const int64_t c = x.shape[1];
    int64_t inner = 1;
    for (int64_t d = 2; d < x.rank(); ++d) inner *= x.shape[d];
    for (int64_t n = 0; n < x.shape[0]; ++n)
        for (int64_t ch = 0; ch < c; ++ch) {
            const float s = scale.data[ch] / std::sqrt(var.data[ch] + eps);
            const float t = bias.data[ch] - mean.data[ch] * s;
            float* p = y.data.data() + (n * c + ch) * inner;
            for (int64_t i = 0; i < inner; ++i) p[i] = p[i] * s + t;
        }
    return y;
}

void export_onnx(ExportNode& e) {
    e.emit("BatchNormalization");
    e.set_float("epsilon", std::get<BatchNormAttrs>(e.node.attrs).epsilon);
}

void describe(const Node& n, std::ostream& os) { os << " epsilon=" << std::get<BatchNormAttrs>(n.attrs).epsilon; }

}  // namespace

const OpDef& batch_norm_op() {
    static const OpDef def{OpKind::BatchNorm, "BatchNormalization", 1, 18,
                           "folded into the preceding Conv or Gemm when that node's output feeds only the BN and "
                           "its weight is a constant; a shared weight is copied first, never changed in place; "
                           "otherwise kept and executed as a per-channel affine",
                           Int8Class::F32Only, parse, infer_shape, reference, export_onnx, describe};
    return def;
}

}  // namespace dcs
