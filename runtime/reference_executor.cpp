#include "runtime/reference_executor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.hpp"

namespace dcs {
namespace {

/// Spatial geometry normalised to 3 dims (1-D and 2-D ops get leading dims of size 1), so one loop
/// nest serves 1-D to 3-D convolution and pooling.
struct Geo3 {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
};

Geo3 to_geo3(const Window& w) {
    Geo3 g;
    size_t sd = w.kernel.size(), off = 3 - sd;
    for (size_t i = 0; i < 3; ++i) {
        bool real = i >= off;
        size_t j = i - off;
        g.in[i] = real ? w.in[j] : 1;
        g.out[i] = real ? w.out[j] : 1;
        g.k[i] = real ? w.kernel[j] : 1;
        g.s[i] = real ? w.strides[j] : 1;
        g.d[i] = real ? w.dilations[j] : 1;
        g.pb[i] = real ? w.pad_begin[j] : 0;
        g.pe[i] = real ? w.pad_end[j] : 0;
    }
    return g;
}

std::vector<int64_t> spatial(const std::vector<int64_t>& shape) { return {shape.begin() + 2, shape.end()}; }

Tensor conv(const Tensor& x, const Tensor& w, const Tensor* b, const ConvAttrs& attrs, const std::string& where) {
    ConvAttrs a = attrs;
    a.kernel = spatial(w.shape);
    if (x.rank() != w.rank()) throw InputError(where + ": input and weight ranks differ");
    Window win = conv_window(a, spatial(x.shape), where);
    Geo3 g = to_geo3(win);
    const int64_t n_batch = x.shape[0], c_in = x.shape[1], c_out = w.shape[0], group = a.group;
    const int64_t cig = c_in / group, cog = c_out / group;
    if (cig != w.shape[1] || c_out % group != 0) throw InputError(where + ": channels do not match the weight and group");
    std::vector<int64_t> yshape{n_batch, c_out};
    yshape.insert(yshape.end(), win.out.begin(), win.out.end());
    Tensor y = Tensor::zeros(yshape);
    const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
    const int64_t k_sz = g.k[0] * g.k[1] * g.k[2];
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < n_batch; ++n)
        for (int64_t oc = 0; oc < c_out; ++oc) {
            float* yp = y.data.data() + (n * c_out + oc) * out_sz;
            const float bias = b ? b->data[oc] : 0.0f;
            std::fill(yp, yp + out_sz, bias);
            const int64_t grp = oc / cog;
            for (int64_t ic = 0; ic < cig; ++ic) {
                const float* xp = x.data.data() + (n * c_in + grp * cig + ic) * in_sz;
                const float* wp = w.data.data() + (oc * cig + ic) * k_sz;
                for (int64_t kd = 0; kd < g.k[0]; ++kd)
                    for (int64_t kh = 0; kh < g.k[1]; ++kh)
                        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                            const float wv = wp[(kd * g.k[1] + kh) * g.k[2] + kw];
                            // Output columns whose input column lies inside the image.
                            const int64_t off_w = kw * g.d[2] - g.pb[2];
                            int64_t ow_lo = off_w >= 0 ? 0 : (-off_w + g.s[2] - 1) / g.s[2];
                            int64_t ow_hi = g.in[2] - off_w <= 0 ? 0 : (g.in[2] - off_w - 1) / g.s[2] + 1;
                            ow_hi = std::min(ow_hi, g.out[2]);
                            for (int64_t od = 0; od < g.out[0]; ++od) {
                                const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                                if (id < 0 || id >= g.in[0]) continue;
                                for (int64_t oh = 0; oh < g.out[1]; ++oh) {
                                    const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                                    if (ih < 0 || ih >= g.in[1]) continue;
                                    float* yr = yp + (od * g.out[1] + oh) * g.out[2];
                                    const float* xr = xp + (id * g.in[1] + ih) * g.in[2] + off_w;
                                    if (g.s[2] == 1)
                                        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) yr[ow] += wv * xr[ow];
                                    else
                                        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) yr[ow] += wv * xr[ow * g.s[2]];
                                }
                            }
                        }
            }
        }
    return y;
}

Tensor pool(const Tensor& x, const PoolAttrs& a, bool is_max, const std::string& where) {
    if (x.rank() < 3) throw InputError(where + ": input " + shape_str(x.shape) + " must be N x C x spatial");
    Window win = pool_window(a, spatial(x.shape), where);
    Geo3 g = to_geo3(win);
    const int64_t planes = x.shape[0] * x.shape[1];
    std::vector<int64_t> yshape{x.shape[0], x.shape[1]};
    yshape.insert(yshape.end(), win.out.begin(), win.out.end());
    Tensor y = Tensor::zeros(yshape);
    const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], out_sz = g.out[0] * g.out[1] * g.out[2];
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const float* xp = x.data.data() + p * in_sz;
        float* yp = y.data.data() + p * out_sz;
        for (int64_t od = 0; od < g.out[0]; ++od)
            for (int64_t oh = 0; oh < g.out[1]; ++oh)
                for (int64_t ow = 0; ow < g.out[2]; ++ow) {
                    const int64_t o[3] = {od, oh, ow};
                    float best = -std::numeric_limits<float>::infinity(), sum = 0.0f;
                    int64_t valid = 0, padded = 1;
                    for (int i = 0; i < 3; ++i) {
                        // Elements of the window inside [-pad_begin, in + pad_end): the divisor when
                        // padding counts.
                        int64_t start = o[i] * g.s[i] - g.pb[i];
                        int64_t end = std::min(start + (g.k[i] - 1) * g.d[i] + 1, g.in[i] + g.pe[i]);
                        padded *= (end - start + g.d[i] - 1) / g.d[i];
                    }
                    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
                        const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                        if (id < 0 || id >= g.in[0]) continue;
                        for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                            const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                            if (ih < 0 || ih >= g.in[1]) continue;
                            for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                                const int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                                if (iw < 0 || iw >= g.in[2]) continue;
                                const float v = xp[(id * g.in[1] + ih) * g.in[2] + iw];
                                best = std::max(best, v);
                                sum += v;
                                ++valid;
                            }
                        }
                    }
                    float r;
                    if (is_max) r = best;
                    else r = sum / static_cast<float>(a.count_include_pad ? padded : std::max<int64_t>(valid, 1));
                    yp[(od * g.out[1] + oh) * g.out[2] + ow] = r;
                }
    }
    return y;
}

/// Strides of `shape` broadcast to `out` (0 where a dim is broadcast).
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& shape, const std::vector<int64_t>& out) {
    std::vector<int64_t> st(out.size(), 0);
    int64_t s = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        size_t o = out.size() - shape.size() + i;
        st[o] = shape[i] == 1 ? 0 : s;
        s *= shape[i];
    }
    return st;
}

/// Calls f(out_index, a_index, b_index) for every element of the broadcast result.
template <class F>
void for_each_broadcast(const std::vector<int64_t>& out, const std::vector<int64_t>& sa,
                        const std::vector<int64_t>& sb, F f) {
    const int64_t total = Tensor::numel_of(out);
    const size_t r = out.size();
    std::vector<int64_t> idx(r, 0);
    int64_t ia = 0, ib = 0;
    for (int64_t i = 0; i < total; ++i) {
        f(i, ia, ib);
        for (size_t d = r; d-- > 0;) {
            if (++idx[d] < out[d]) {
                ia += sa[d];
                ib += sb[d];
                break;
            }
            ia -= sa[d] * (out[d] - 1);
            ib -= sb[d] * (out[d] - 1);
            idx[d] = 0;
        }
    }
}

Tensor add(const Tensor& a, const Tensor& b, const std::string& where) {
    if (a.shape == b.shape) {
        Tensor y = a;
        for (size_t i = 0; i < y.data.size(); ++i) y.data[i] += b.data[i];
        return y;
    }
    auto out = broadcast_shapes(a.shape, b.shape, where);
    Tensor y = Tensor::zeros(out);
    auto sa = broadcast_strides(a.shape, out), sb = broadcast_strides(b.shape, out);
    for_each_broadcast(out, sa, sb, [&](int64_t i, int64_t ia, int64_t ib) { y.data[i] = a.data[ia] + b.data[ib]; });
    return y;
}

/// y[m, n] = sum_k A[m, k] * B[k, n] for row-major A (M x K) and B (K x N), accumulated into y.
void matmul_2d(const float* a, const float* b, float* y, int64_t m, int64_t k, int64_t n, int64_t lda_m,
               int64_t lda_k, int64_t ldb_k, int64_t ldb_n, float alpha) {
#pragma omp parallel for schedule(static) if (m > 4)
    for (int64_t i = 0; i < m; ++i) {
        float* yr = y + i * n;
        for (int64_t kk = 0; kk < k; ++kk) {
            const float av = alpha * a[i * lda_m + kk * lda_k];
            if (av == 0.0f) continue;
            if (ldb_n == 1) {
                const float* br = b + kk * ldb_k;
                for (int64_t j = 0; j < n; ++j) yr[j] += av * br[j];
            } else {
                for (int64_t j = 0; j < n; ++j) yr[j] += av * b[kk * ldb_k + j * ldb_n];
            }
        }
    }
}

Tensor gemm(const Tensor& a, const Tensor& b, const Tensor* c, const GemmAttrs& g, const std::string& where) {
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

Tensor matmul(const Tensor& a0, const Tensor& b0, const std::string& where) {
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

Tensor batch_norm(const Tensor& x, const Tensor& scale, const Tensor& bias, const Tensor& mean, const Tensor& var,
                  float eps, const std::string& where) {
    if (x.rank() < 2 || scale.numel() != x.shape[1] || bias.numel() != x.shape[1] || mean.numel() != x.shape[1] ||
        var.numel() != x.shape[1])
        throw InputError(where + ": parameters do not match the input's channels");
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

Tensor softmax(const Tensor& x, const AxisAttrs& a, const std::string& where) {
    const int64_t r = x.rank();
    if (a.axis < -r || a.axis >= r) throw InputError(where + ": axis " + std::to_string(a.axis) + " out of range");
    const int64_t axis = a.axis < 0 ? a.axis + r : a.axis;
    int64_t outer = 1, len = 1, inner = 1;
    for (int64_t d = 0; d < r; ++d) {
        if (d < axis) outer *= x.shape[d];
        else if (d == axis || a.legacy_softmax) len *= x.shape[d];
        else inner *= x.shape[d];
    }
    Tensor y = x;
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            float* p = y.data.data() + o * len * inner + i;
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < len; ++j) mx = std::max(mx, p[j * inner]);
            double sum = 0.0;
            for (int64_t j = 0; j < len; ++j) {
                p[j * inner] = std::exp(p[j * inner] - mx);
                sum += p[j * inner];
            }
            for (int64_t j = 0; j < len; ++j) p[j * inner] = static_cast<float>(p[j * inner] / sum);
        }
    return y;
}

Tensor pad(const Tensor& x, const PadAttrs& a, const std::string& where) {
    const int64_t r = x.rank();
    if (static_cast<int64_t>(a.pads.size()) != 2 * r) throw InputError(where + ": pads do not match the input rank");
    std::vector<int64_t> out(r);
    for (int64_t d = 0; d < r; ++d) {
        out[d] = x.shape[d] + a.pads[d] + a.pads[d + r];
        if (out[d] < 0) throw InputError(where + ": pads crop more than the input");
    }
    Tensor y = Tensor::zeros(out);
    std::fill(y.data.begin(), y.data.end(), a.value);
    const int64_t total = y.numel();
    std::vector<int64_t> idx(r, 0), in_stride(r, 1);
    for (int64_t d = r - 1; d > 0; --d) in_stride[d - 1] = in_stride[d] * x.shape[d];
    for (int64_t i = 0; i < total; ++i) {
        int64_t src = 0;
        bool inside = true;
        for (int64_t d = 0; d < r; ++d) {
            int64_t s = idx[d] - a.pads[d];
            if (s < 0 || s >= x.shape[d]) {
                inside = false;
                break;
            }
            src += s * in_stride[d];
        }
        if (inside) y.data[i] = x.data[src];
        for (int64_t d = r; d-- > 0;) {
            if (++idx[d] < out[d]) break;
            idx[d] = 0;
        }
    }
    return y;
}

Tensor concat(const std::vector<const Tensor*>& xs, int64_t axis0, const std::string& where) {
    const int64_t r = xs[0]->rank();
    if (axis0 < -r || axis0 >= r) throw InputError(where + ": axis out of range");
    const int64_t axis = axis0 < 0 ? axis0 + r : axis0;
    std::vector<int64_t> out = xs[0]->shape;
    out[axis] = 0;
    for (const Tensor* t : xs) {
        if (t->rank() != r) throw InputError(where + ": inputs have different ranks");
        for (int64_t d = 0; d < r; ++d)
            if (d != axis && t->shape[d] != xs[0]->shape[d]) throw InputError(where + ": inputs differ off the axis");
        out[axis] += t->shape[axis];
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= out[d];
    for (int64_t d = axis + 1; d < r; ++d) inner *= out[d];
    Tensor y = Tensor::zeros(out);
    int64_t off = 0;
    for (const Tensor* t : xs) {
        const int64_t chunk = t->shape[axis] * inner;
        for (int64_t o = 0; o < outer; ++o)
            std::copy(t->data.begin() + o * chunk, t->data.begin() + (o + 1) * chunk,
                      y.data.begin() + o * out[axis] * inner + off);
        off += chunk;
    }
    return y;
}

}  // namespace

ReferenceExecutor::ReferenceExecutor(const Graph& graph) : graph_(graph) {
    for (size_t i = 0; i < graph.nodes.size(); ++i)
        for (const auto& in : graph.nodes[i].inputs) last_use_[in] = i;
    for (const auto& o : graph.outputs) last_use_[o] = graph.nodes.size();
}

std::vector<Tensor> ReferenceExecutor::run(const std::vector<Tensor>& inputs,
                                           const std::map<std::string, Tensor>* overrides) const {
    if (inputs.size() != graph_.inputs.size())
        throw InputError("the model takes " + std::to_string(graph_.inputs.size()) + " inputs, got " +
                         std::to_string(inputs.size()));
    std::map<std::string, Tensor> values;
    for (size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i].dtype != DType::f32) throw InputError("input '" + graph_.inputs[i].name + "' must be float");
        values[graph_.inputs[i].name] = inputs[i];
    }
    auto get = [&](const std::string& name, const std::string& where) -> const Tensor& {
        if (overrides) {
            auto o = overrides->find(name);
            if (o != overrides->end()) return o->second;
        }
        auto it = values.find(name);
        if (it != values.end()) return it->second;
        auto ini = graph_.initializers.find(name);
        if (ini != graph_.initializers.end()) return ini->second;
        throw InputError(where + ": value '" + name + "' is not available");
    };
    for (size_t ni = 0; ni < graph_.nodes.size(); ++ni) {
        const Node& n = graph_.nodes[ni];
        const std::string where = "node '" + n.name + "' (" + op_name(n.op) + ")";
        const Tensor& x = get(n.inputs[0], where);
        if (x.dtype != DType::f32) throw InputError(where + ": expected a float input");
        auto opt = [&](size_t i) -> const Tensor* {
            return n.inputs.size() > i && !n.inputs[i].empty() ? &get(n.inputs[i], where) : nullptr;
        };
        Tensor y;
        switch (n.op) {
            case OpKind::Conv: y = conv(x, get(n.inputs[1], where), opt(2), std::get<ConvAttrs>(n.attrs), where); break;
            case OpKind::Gemm: y = gemm(x, get(n.inputs[1], where), opt(2), std::get<GemmAttrs>(n.attrs), where); break;
            case OpKind::MatMul: y = matmul(x, get(n.inputs[1], where), where); break;
            case OpKind::Add: y = add(x, get(n.inputs[1], where), where); break;
            case OpKind::Relu:
                y = x;
                for (float& v : y.data) v = v > 0.0f ? v : 0.0f;
                break;
            case OpKind::Clip: {
                const auto& c = std::get<ClipAttrs>(n.attrs);
                y = x;
                for (float& v : y.data) v = std::min(std::max(v, c.min), c.max);
                break;
            }
            case OpKind::MaxPool: y = pool(x, std::get<PoolAttrs>(n.attrs), true, where); break;
            case OpKind::AveragePool: y = pool(x, std::get<PoolAttrs>(n.attrs), false, where); break;
            case OpKind::GlobalAveragePool: {
                if (x.rank() < 3) throw InputError(where + ": input must be N x C x spatial");
                std::vector<int64_t> out = x.shape;
                std::fill(out.begin() + 2, out.end(), 1);
                y = Tensor::zeros(out);
                const int64_t planes = x.shape[0] * x.shape[1], sz = x.numel() / std::max<int64_t>(planes, 1);
                for (int64_t p = 0; p < planes; ++p) {
                    double s = 0.0;
                    for (int64_t i = 0; i < sz; ++i) s += x.data[p * sz + i];
                    y.data[p] = static_cast<float>(s / static_cast<double>(sz));
                }
                break;
            }
            case OpKind::Flatten: {
                int64_t axis = std::get<AxisAttrs>(n.attrs).axis;
                if (axis < 0) axis += x.rank();
                if (axis < 0 || axis > x.rank()) throw InputError(where + ": axis out of range");
                int64_t a = 1;
                for (int64_t d = 0; d < axis; ++d) a *= x.shape[d];
                y = x;
                y.shape = {a, a ? x.numel() / a : 0};
                break;
            }
            case OpKind::Reshape:
                y = x;
                y.shape = reshape_target(std::get<ReshapeAttrs>(n.attrs), x.shape, where);
                break;
            case OpKind::Pad: y = pad(x, std::get<PadAttrs>(n.attrs), where); break;
            case OpKind::Concat: {
                std::vector<const Tensor*> xs;
                for (const auto& in : n.inputs) xs.push_back(&get(in, where));
                y = concat(xs, std::get<AxisAttrs>(n.attrs).axis, where);
                break;
            }
            case OpKind::Softmax: y = softmax(x, std::get<AxisAttrs>(n.attrs), where); break;
            case OpKind::BatchNorm:
                y = batch_norm(x, get(n.inputs[1], where), get(n.inputs[2], where), get(n.inputs[3], where),
                               get(n.inputs[4], where), std::get<BatchNormAttrs>(n.attrs).epsilon, where);
                break;
        }
        values[n.outputs[0]] = std::move(y);
        // Free intermediate values nobody reads any more.
        for (const auto& in : n.inputs) {
            auto lu = last_use_.find(in);
            if (lu != last_use_.end() && lu->second == ni) values.erase(in);
        }
    }
    std::vector<Tensor> outs;
    for (const auto& o : graph_.outputs) outs.push_back(get(o, "graph output"));
    return outs;
}

}  // namespace dcs
