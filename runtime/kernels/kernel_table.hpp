#pragma once
/// The kernel table: dcsearch's hand-written host kernels, one row per kernel, in the order the
/// executor tries them (fastest first; oneDNN serves what every row declines). A row names the CPU
/// features the kernel needs (cpu::has(), evaluated when a plan is compiled), says whether it serves a
/// layer and, when not, why ("input channels 3 > 1"), makes the kernel, and points to a portable plain-
/// loop reference of the same arithmetic (tests/runtime/test_kernels.cpp compares each kernel with it).
///
///     const Choice c = choose(desc);               // c.row: null when oneDNN is to serve the layer
///     if (c.row) layer = c.row->make(desc);        // c.declined: the reasons of the rows tried before
///
/// implementations() names a host kernel "host:<row name>..." ("host:conv_vnni_avx512") and lists the
/// reasons of the rows tried before it (`dcsearch eval --explain` prints them). DCS_DISABLE_KERNELS
/// (a comma-separated list of row names, or `all`) turns rows off; tests use set_disabled_kernels().
/// Adding a kernel: its file in runtime/kernels/ (declines / make / the kernel), a reference (or
/// conv_reference), and a row below in kernel_table.cpp at the place its speed earns.
#include <memory>
#include <string>
#include <vector>

#include "common/cpu_features.hpp"
#include "runtime/kernels/host_layer.hpp"

namespace dcs::kernels {

struct KernelRow {
    const char* name;  ///< "conv_vnni": DCS_DISABLE_KERNELS, decline reasons, implementations() ("host:conv_vnni...")
    LayerKind kind;    ///< the layers it is offered
    std::vector<cpu::Isa> needs;  ///< every feature the kernel (or its fastest path) needs
    /// Why it does not serve `d` (shape, types, fused ops; not the CPU features); "" when it does.
    std::string (*declines)(const LayerDesc& d);
    /// The kernel for `d`, which it serves, on a CPU with `needs`.
    std::shared_ptr<HostLayer> (*make)(const LayerDesc& d);
    /// The plain-loop reference: what make(d)->run() computes, with the candidate parameters `q`.
    void (*reference)(const LayerDesc& d, const QLayer& q, const void* x, void* y, int64_t nb, const void* residual);
};

/// Every row, in the order they are tried.
const std::vector<KernelRow>& kernel_table();

/// The row named `name`, or null.
const KernelRow* find_kernel(const std::string& name);

/// Why `row` cannot run in this process: "disabled by DCS_DISABLE_KERNELS", "needs avx512_vnni" (the
/// first missing feature, cpu::has()); "" when it can.
std::string unavailable(const KernelRow& row);

/// unavailable(row), else row.declines(d): "" when the row serves `d` here.
std::string why_not(const KernelRow& row, const LayerDesc& d);

/// The kernel that serves a layer, and why the rows tried before it declined.
struct Choice {
    const KernelRow* row = nullptr;  ///< null: no host kernel (oneDNN serves the layer)
    std::string declined;            ///< "conv_dw: not depthwise; conv1x1_amx: needs amx" (empty when none)
};

/// The first row of d.kind that serves `d`.
Choice choose(const LayerDesc& d);

/// Replaces DCS_DISABLE_KERNELS for the rest of the process: a comma-separated list of row names, `all`
/// (every row) or "" (none). Takes effect at the next plan compilation (executors compile plans per
/// batch size on first use). Not to be called while another thread compiles an executor.
/// @throws InputError naming an unknown kernel
void set_disabled_kernels(const std::string& list);

/// The current list (as set, or read from DCS_DISABLE_KERNELS).
std::string disabled_kernels();

/// set_disabled_kernels() for a scope (tests).
class ScopedDisabledKernels {
public:
    explicit ScopedDisabledKernels(const std::string& list) : saved_(disabled_kernels()) { set_disabled_kernels(list); }
    ~ScopedDisabledKernels() { set_disabled_kernels(saved_); }
    ScopedDisabledKernels(const ScopedDisabledKernels&) = delete;
    ScopedDisabledKernels& operator=(const ScopedDisabledKernels&) = delete;

private:
    std::string saved_;
};

}  // namespace dcs::kernels
