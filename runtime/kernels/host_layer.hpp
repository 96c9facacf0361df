#pragma once
/// What the host kernels of runtime/kernels/ share with the executor and the kernel table: the
/// description of a layer (LayerDesc) that decides which kernel serves it, and a kernel made for one
/// layer (HostLayer), which takes each candidate's parameters and runs batches.
///
/// Data are channels-last: x is [N, H, W, C] (xt), y [N, OH, OW, OC] (yt), a residual like y (rt).
/// The arithmetic is the integer reference's (runtime/int8_reference.hpp); each family has a plain
/// loop reference of it (KernelRow::reference in kernel_table.hpp) that tests compare bit for bit.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/int8_reference.hpp"

namespace dcs::kernels {

enum class LayerKind { Conv, MaxPool, AvgPool };

/// A layer as the kernel table sees it (int8 Conv, 8-bit MaxPool / AveragePool / GlobalAveragePool).
struct LayerDesc {
    LayerKind kind = LayerKind::Conv;
    std::vector<int64_t> xs, ys;  ///< input and output shapes [N, C, H, W] (N: the plan's batch)
    std::vector<int64_t> ws;      ///< Conv: the weight's shape [OC, IC / group, KH, KW]
    Window win;                   ///< kernel, strides, dilations, pads (Conv: the kernel from ws)
    int64_t group = 1;
    QType xt = QType::U8, yt = QType::U8;  ///< input and output types (pooling: both the data's)
    QAct act = QAct::None;
    bool sum = false;          ///< a fused residual Add (QLayer::sum_scale)
    QType rt = QType::U8;      ///< the residual's type
    bool include_pad = false;  ///< AveragePool's count_include_pad
};

/// A host kernel made for one layer: one per layer, shared by every plan (batch size, image stream),
/// as it depends on the layer's per-image shapes only (pooling: one per plan).
struct HostLayer {
    virtual ~HostLayer() = default;
    /// Takes a candidate's parameters (codes, bias, scales, activation bounds); refilled whenever a
    /// candidate's weights are loaded. Pooling has none.
    virtual void fill(const QLayer& q) { (void)q; }
    /// Computes `nb` images: x and y channels-last; `residual` (like y) for a fused Add, else null.
    virtual void run(const void* x, void* y, int64_t nb, const void* residual) const = 0;
    /// The implementation name of implementations(): "host:conv_vnni_avx512".
    virtual std::string impl() const = 0;
    std::shared_ptr<const void> loaded;  ///< the prepared layer it holds (the executor's)
};

/// 64-byte aligned memory (at least 64 bytes, a multiple of 64), not touched: large blocks take no
/// resident memory until written.
inline std::shared_ptr<void> untouched_buffer(size_t bytes) {
    const size_t n = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    void* p = std::aligned_alloc(64, n);
    if (!p) throw std::bad_alloc();
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

/// Zeroed, 64-byte aligned memory (at least 64 bytes, a multiple of 64).
inline std::shared_ptr<void> aligned_buffer(size_t bytes) {
    auto p = untouched_buffer(bytes);
    std::memset(p.get(), 0, std::max<size_t>(64, (bytes + 63) / 64 * 64));
    return p;
}

/// Calls f(TX{}, TY{}) with the C++ types of an 8-bit input type and an output type.
template <class F>
void with_types(QType xt, QType yt, F&& f) {
    auto out = [&](auto tx) {
        switch (yt) {
            case QType::U8: return f(tx, uint8_t{});
            case QType::S8: return f(tx, int8_t{});
            case QType::F32: return f(tx, float{});
        }
    };
    if (xt == QType::U8) out(uint8_t{});
    else out(int8_t{});
}

/// The window of a 2-D host convolution: kernel, strides, leading pads, input and output sizes.
template <class H>
void set_conv_geometry(H& hc, const LayerDesc& d) {
    hc.kh = d.ws[2];
    hc.kw = d.ws[3];
    hc.sh = d.win.strides[0];
    hc.sw = d.win.strides[1];
    hc.ph = d.win.pad_begin[0];
    hc.pw = d.win.pad_begin[1];
    hc.ih = d.xs[2];
    hc.iw = d.xs[3];
    hc.oh = d.ys[2];
    hc.ow = d.ys[3];
}

}  // namespace dcs::kernels
