#pragma once
/// 8-bit max and average pooling of channels-last data on the host (kernel table rows "max_nhwc" and
/// "avg_nhwc"; portable, with AVX-512 paths chosen when the kernel is made).
///
/// 8-bit max pooling (4-D) runs on the host: oneDNN 2.6's int8 pooling (jit_int) works on 64-byte channel
/// vectors and spends most of its time on masking with few channels (LeNet's 6, the example ResNet's 16:
/// 3-6x slower than fp32 pooling), and is slower with many channels too (a 2x2 pool after a 1 -> C conv
/// at 28x28, whole model, one thread: C = 64 80k -> 99k images/s, 128 41k -> 48k, 256 15.2k -> 16.1k),
/// while a plain loop over channels-last data is memory bound. Max pooling on 8-bit codes is exact
/// either way. DCS_DISABLE_KERNELS=max_nhwc,avg_nhwc turns them off (for benchmarks against oneDNN's own
/// pooling).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernels/host_layer.hpp"

namespace dcs::kernels {

/// A pooling layer of one plan (its batch size).
struct HostPool final : HostLayer {
    bool max = true;  ///< else average
    QType t = QType::U8;
    std::vector<int64_t> xs, ys;
    Window win;
    bool include_pad = false;
    bool simd = false;  ///< max: the 2x2 AVX-512 VBMI path where it applies; average: the AVX-512 loop
    void run(const void* x, void* y, int64_t nb, const void* residual) const override;
    std::string impl() const override;
};

/// Why the kernels do not serve `d` ("" when they do).
std::string max_pool_declines(const LayerDesc& d);
std::string avg_pool_declines(const LayerDesc& d);

/// The kernel for `d` (which it serves), its AVX-512 path chosen with cpu::has() now.
std::shared_ptr<HostLayer> make_pool(const LayerDesc& d);

/// The plain loops over every channel (the references of both rows).
void pool_reference(const LayerDesc& d, const QLayer& q, const void* x, void* y, int64_t nb, const void* residual);

}  // namespace dcs::kernels
