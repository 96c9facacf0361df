#include "runtime/kernels/kernel_table.hpp"

#include <cstdlib>
#include <mutex>
#include <set>

#include "common/error.hpp"
#include "runtime/kernels/conv_1ic.hpp"
#include "runtime/kernels/conv_amx_1x1.hpp"
#include "runtime/kernels/conv_dw.hpp"
#include "runtime/kernels/conv_reference.hpp"
#include "runtime/kernels/conv_vnni.hpp"
#include "runtime/kernels/pooling.hpp"

namespace dcs::kernels {

namespace {

using cpu::Isa;

/// conv_ic1 serves up to 16 output channels, but from 9 on the VNNI convolution is faster where it
/// serves (resnet_bn's 1 -> 16 3x3 conv: whole model 74k -> 88k images/s on one thread, 137k ->
/// 156-164k on two).
std::string conv_ic1_row_declines(const LayerDesc& d) {
    std::string why = conv_1ic_declines(d);
    if (why.empty() && d.ws[0] > kHostConvBlock && why_not(*find_kernel("conv_vnni"), d).empty())
        why = std::to_string(d.ws[0]) + " output channels > " + std::to_string(kHostConvBlock) + " and conv_vnni serves it";
    return why;
}


struct Disabled {
    std::mutex mu;
    bool read = false;
    std::string list;
    std::set<std::string> names;
};

Disabled& disabled() {
    static Disabled d;
    return d;
}

/// Parses `list` into d (the caller holds d.mu).
void parse_disabled(Disabled& d, const std::string& list) {
    std::set<std::string> names;
    size_t i = 0;
    while (i <= list.size()) {
        size_t j = list.find(',', i);
        if (j == std::string::npos) j = list.size();
        const std::string name = list.substr(i, j - i);
        if (name == "all") {
            for (const auto& row : kernel_table()) names.insert(row.name);
        } else if (!name.empty()) {
            if (!find_kernel(name)) {
                std::string known;
                for (const auto& row : kernel_table()) known += std::string(row.name) + ", ";
                throw InputError("DCS_DISABLE_KERNELS: '" + name + "' is not a kernel (" + known + "all)");
            }
            names.insert(name);
        }
        i = j + 1;
    }
    d.list = list;
    d.names = std::move(names);
    d.read = true;
}

/// Reads DCS_DISABLE_KERNELS on the first query (the caller holds d.mu).
void read_environment(Disabled& d) {
    if (d.read) return;
    const char* v = std::getenv("DCS_DISABLE_KERNELS");
    parse_disabled(d, v ? v : "");
}

bool is_disabled(const KernelRow& row) {
    Disabled& d = disabled();
    std::lock_guard<std::mutex> lock(d.mu);
    read_environment(d);
    return d.names.count(row.name) > 0;
}

}  // namespace

// The rows in the order they are tried: where two serve a layer, the first was measured faster there
// (the figures are beside each kernel). A function-local table: usable during static initialisation.
const std::vector<KernelRow>& kernel_table() {
    static const std::vector<KernelRow> table = {
        {"conv_ic1", LayerKind::Conv, {Isa::Avx512}, conv_ic1_row_declines, make_conv_1ic, conv_reference},
        {"conv_dw", LayerKind::Conv, {Isa::Avx512, Isa::Avx512Vnni, Isa::Avx512Vbmi}, conv_dw_declines, make_conv_dw,
         conv_reference},
        {"conv1x1_amx", LayerKind::Conv, {Isa::Avx512, Isa::Avx512Vnni, Isa::Amx}, conv_amx_1x1_declines, make_conv_amx_1x1,
         conv_reference},
        {"conv_vnni", LayerKind::Conv, {Isa::Avx512, Isa::Avx512Vnni}, conv_vnni_declines, make_conv_vnni, conv_reference},
        {"max_nhwc", LayerKind::MaxPool, {}, max_pool_declines, make_pool, pool_reference},
        {"avg_nhwc", LayerKind::AvgPool, {}, avg_pool_declines, make_pool, pool_reference},
    };
    return table;
}

const KernelRow* find_kernel(const std::string& name) {
    for (const auto& row : kernel_table())
        if (name == row.name) return &row;
    return nullptr;
}

std::string unavailable(const KernelRow& row) {
    if (is_disabled(row)) return "disabled by DCS_DISABLE_KERNELS";
    for (Isa isa : row.needs)
        if (!cpu::has(isa)) return std::string("needs ") + cpu::name(isa);
    return "";
}

std::string why_not(const KernelRow& row, const LayerDesc& d) {
    std::string why = unavailable(row);
    return why.empty() ? row.declines(d) : why;
}

Choice choose(const LayerDesc& d) {
    Choice c;
    for (const auto& row : kernel_table()) {
        if (row.kind != d.kind) continue;
        const std::string why = why_not(row, d);
        if (why.empty()) {
            c.row = &row;
            return c;
        }
        c.declined += (c.declined.empty() ? "" : "; ") + std::string(row.name) + ": " + why;
    }
    return c;
}

void set_disabled_kernels(const std::string& list) {
    Disabled& d = disabled();
    std::lock_guard<std::mutex> lock(d.mu);
    parse_disabled(d, list);
}

std::string disabled_kernels() {
    Disabled& d = disabled();
    std::lock_guard<std::mutex> lock(d.mu);
    read_environment(d);
    return d.list;
}

}  // namespace dcs::kernels
