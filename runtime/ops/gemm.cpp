// Gemm and MatMul: the inner-product layers.
#include <ostream>

#include "common/error.hpp"
#include "runtime/ops/export_node.hpp"
#include "runtime/ops/onnx_node.hpp"
#include "runtime/ops/op_table.hpp"
#include "runtime/ops/op_util.hpp"

namespace dcs {
namespace {

void parse_gemm(const OnnxNode& n, Node& node) {
    n.need_inputs(2, 3);
    n.single_output();
    GemmAttrs a;
    a.trans_a = n.attr_i("transA", 0) != 0;
    a.trans_b = n.attr_i("transB", 0) != 0;
    a.alpha = n.attr_f("alpha", 1.0f);
    a.beta = n.attr_f("beta", 1.0f);
    node.attrs = a;
}

std::vector<int64_t> infer_gemm(const ShapeArgs& s) {
    const std::string& where = s.where;
    const auto& x = s.input(0);
    const auto& a = std::get<GemmAttrs>(s.node.attrs);
    const auto& b = s.input(1);
    if (x.size() != 2 || b.size() != 2)
        throw InputError(where + ": A " + shape_str(x) + " and B " + shape_str(b) + " must be 2-D");
    int64_t m = a.trans_a ? x[1] : x[0], k = a.trans_a ? x[0] : x[1];
    int64_t kb = a.trans_b ? b[1] : b[0], nn = a.trans_b ? b[0] : b[1];
    if (k != kb) throw InputError(where + ": A " + shape_str(x) + " and B " + shape_str(b) + " disagree on K");
    std::vector<int64_t> out = {m, nn};
    if (s.has_input(2)) {
        auto bc = broadcast_shapes(s.input(2), out, where);
        if (bc != out) throw InputError(where + ": C " + shape_str(s.input(2)) + " does not broadcast to " + shape_str(out));
    }
    return out;
}

Tensor reference_gemm(const RefArgs& r) {
    const Tensor& a = r.in(0);
    const Tensor& b = r.in(1);
    const Tensor* c = r.opt(2);
    const GemmAttrs& g = std::get<GemmAttrs>(r.node.attrs);
    const std::string& where = r.where;
    if (a.rank() != 2 || b.rank() != 2) throw InputError(where + ": A and B must be 2-D");
    const int64_t m = g.trans_a ? a.shape[1] : a.shape[0], k = g.trans_a ? a.shape[0] : a.shape[1];
    const int64_t kb = g.trans_b ? b.shape[1] : b.shape[0], n = g.trans_b ? b.shape[0] : b.shape[1];
    if (k != kb) throw InputError(where + ": A " + shape_str(a.shape) + " and B " + shape_str(b.shape) + " disagree on K");
    Tensor y = Tensor::zeros({m, n});
    if (c && g.beta != 0.0f) {
        auto sc = broadcast_strides(c->shape, y.shape);
        for_each_broadcast(y.shape, sc, sc, [&](int64_t i, int64_t ic, int64_t) { y.data[i] = g.beta * c->data[ic]; });
    }
    if (!g.trans_b) {
        matmul_2d(a.data.data(), b.data.data(), y.data.data(), m, k, n, g.trans_a ? 1 : k, g.trans_a ? m : 1, n, 1,
                  g.alpha);
    } else {
        // B stored N x K: dot products over contiguous rows.
#pragma omp parallel for schedule(static) if (m > 4)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                float s = 0.0f;
                const float* br = b.data.data() + j * k;
                if (!g.trans_a) {
                    const float* ar = a.data.data() + i * k;
                    for (int64_t kk = 0; kk < k; ++kk) s += ar[kk] * br[kk];
                } else {
                    for (int64_t kk = 0; kk < k; ++kk) s += a.data[kk * m + i] * br[kk];
                }
                y.data[i * n + j] += g.alpha * s;
            }
    }
    return y;
}

void export_gemm(ExportNode& e) {
    const auto& a = std::get<GemmAttrs>(e.node.attrs);
    float beta = a.beta;
    if (!e.corrected_bias.empty()) {
        e.inputs.resize(3);
        e.inputs[2] = e.corrected_bias;
        beta = 1.0f;
    }
    e.emit("Gemm");
    e.set_int("transA", a.trans_a);
    e.set_int("transB", a.trans_b);
    e.set_float("alpha", a.alpha);
    e.set_float("beta", beta);
}

void describe_gemm(const Node& n, std::ostream& os) {
    const auto& a = std::get<GemmAttrs>(n.attrs);
    os << " transA=" << a.trans_a << " transB=" << a.trans_b << " alpha=" << a.alpha << " beta=" << a.beta;
}

void parse_matmul(const OnnxNode& n, Node&) { n.need_inputs(2, 2); }

std::vector<int64_t> infer_matmul(const ShapeArgs& s) {
    const std::string& where = s.where;
    const auto& x = s.input(0);
    auto a = x, b = s.input(1);
    if (a.empty() || b.empty()) throw InputError(where + ": MatMul of a scalar");
    bool a1 = a.size() == 1, b1 = b.size() == 1;
    if (a1) a.insert(a.begin(), 1);
    if (b1) b.push_back(1);
    if (a.back() != b[b.size() - 2])
        throw InputError(where + ": shapes " + shape_str(x) + " and " + shape_str(s.input(1)) + " disagree on K");
    std::vector<int64_t> out = broadcast_shapes(std::vector<int64_t>(a.begin(), a.end() - 2),
                                                std::vector<int64_t>(b.begin(), b.end() - 2), where);
    if (!a1) out.push_back(a[a.size() - 2]);
    if (!b1) out.push_back(b.back());
    return out;
}

Tensor reference_matmul(const RefArgs& r) {
    const Tensor& a0 = r.in(0);
    const Tensor& b0 = r.in(1);
    const std::string& where = r.where;
    std::vector<int64_t> as = a0.shape, bs = b0.shape;
    bool a1 = as.size() == 1, b1 = bs.size() == 1;
    if (a1) as.insert(as.begin(), 1);
    if (b1) bs.push_back(1);
    if (as.size() < 2 || bs.size() < 2 || as.back() != bs[bs.size() - 2])
        throw InputError(where + ": shapes " + shape_str(a0.shape) + " and " + shape_str(b0.shape) + " disagree on K");
    const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
    std::vector<int64_t> ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
    auto batch = broadcast_shapes(ab, bb, where);
    auto sa = broadcast_strides(ab, batch), sb = broadcast_strides(bb, batch);
    std::vector<int64_t> out = batch;
    out.push_back(m);
    out.push_back(n);
    Tensor y = Tensor::zeros(out);
    if (batch.empty()) {
        matmul_2d(a0.data.data(), b0.data.data(), y.data.data(), m, k, n, k, 1, n, 1, 1.0f);
    } else {
        for_each_broadcast(batch, sa, sb, [&](int64_t i, int64_t ia, int64_t ib) {
            matmul_2d(a0.data.data() + ia * m * k, b0.data.data() + ib * k * n, y.data.data() + i * m * n, m, k, n, k, 1,
                      n, 1, 1.0f);
        });
    }
    std::vector<int64_t> final_shape(batch);
    if (!a1) final_shape.push_back(m);
    if (!b1) final_shape.push_back(n);
    y.shape = final_shape;
    return y;
}

void export_matmul(ExportNode& e) {
    if (!e.corrected_bias.empty())
        throw UnsupportedError("QDQ export: " + e.where + ": bias correction of a MatMul without bias");
    e.emit("MatMul");
}

}  // namespace

const OpDef& gemm_op() {
    static const OpDef def{OpKind::Gemm, "Gemm", 1, 18,
                           "`transA`, `transB`, `alpha`, `beta`; C broadcast to [M, N]",
                           Int8Class::Layer, parse_gemm, infer_gemm, reference_gemm, export_gemm, describe_gemm};
    return def;
}

const OpDef& matmul_op() {
    static const OpDef def{OpKind::MatMul, "MatMul", 1, 18,
                           "numpy semantics (1-D promotion, batch broadcasting)",
                           Int8Class::Layer, parse_matmul, infer_matmul, reference_matmul, export_matmul};
    return def;
}

}  // namespace dcs
