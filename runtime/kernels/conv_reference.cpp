#include "runtime/kernels/conv_reference.hpp"

#include "runtime/kernels/output_stage.hpp"

namespace dcs::kernels {

namespace {

/// Element i of 8-bit or fp32 data as a float (8-bit: the code).
float value_at(QType t, const void* p, int64_t i) {
    if (t == QType::U8) return static_cast<const uint8_t*>(p)[i];
    if (t == QType::S8) return static_cast<const int8_t*>(p)[i];
    return static_cast<const float*>(p)[i];
}

}  // namespace

void conv_reference(const LayerDesc& d, const QLayer& q, const void* x, void* y, int64_t nb, const void* residual) {
    const int64_t ic = d.xs[1], ih = d.xs[2], iw = d.xs[3], oc = d.ws[0], oh = d.ys[2], ow = d.ys[3];
    const int64_t icg = d.ws[1], kh = d.ws[2], kw = d.ws[3], ocg = oc / d.group;
    const int64_t sh = d.win.strides[0], sw = d.win.strides[1], dh = d.win.dilations[0], dw = d.win.dilations[1];
    const int64_t ph = d.win.pad_begin[0], pw = d.win.pad_begin[1];
    float lo, hi;
    host_out_range(d.act, q.act_lo, q.act_hi, d.yt, &lo, &hi);
    for (int64_t n = 0; n < nb; ++n)
        for (int64_t r = 0; r < oh; ++r)
            for (int64_t c = 0; c < ow; ++c)
                for (int64_t o = 0; o < oc; ++o) {
                    const int64_t g = o / ocg;
                    int32_t acc = 0;
                    for (int64_t ci = 0; ci < icg; ++ci)
                        for (int64_t i = 0; i < kh; ++i) {
                            const int64_t h = r * sh - ph + i * dh;
                            if (h < 0 || h >= ih) continue;
                            for (int64_t j = 0; j < kw; ++j) {
                                const int64_t w = c * sw - pw + j * dw;
                                if (w < 0 || w >= iw) continue;
                                const int64_t xi = ((n * ih + h) * iw + w) * ic + g * icg + ci;
                                acc += static_cast<int32_t>(value_at(d.xt, x, xi)) * q.codes[((o * icg + ci) * kh + i) * kw + j];
                            }
                        }
                    const int64_t yi = ((n * oh + r) * ow + c) * oc + o;
                    float f = (static_cast<float>(acc) + q.bias[o]) * q.out_scale[o];
                    if (d.sum) {  // the integer reference's order: f + sum_scale * residual, then the clamp
                        const float s = q.sum_scale * value_at(d.rt, residual, yi);
                        f = f + s;
                    }
                    store_reference(f, lo, hi, d.yt, y, yi);
                }
}

}  // namespace dcs::kernels
