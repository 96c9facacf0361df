#pragma once
/// oneDNN memory helpers of the executor (runtime/dnnl_executor.cpp and runtime/dnnl/): types,
/// descriptors, layouts, buffers. Internal: included by the executor's files only.
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/int8_reference.hpp"
#include "runtime/kernels/host_layer.hpp"

namespace dcs::dnnl_exec {

using dnnl::memory;
using dt = memory::data_type;
using kernels::aligned_buffer;
using kernels::untouched_buffer;

dt to_dt(QType t);

inline bool is8(QType t) { return t != QType::F32; }

inline memory::dims dims_of(const std::vector<int64_t>& s) { return memory::dims(s.begin(), s.end()); }

/// Dense row-major strides, or channels-last (N, spatial..., C) for ranks 3 to 5.
memory::desc make_md(const std::vector<int64_t>& shape, dt type, bool channels_last);

/// Same bytes in the same places: same dims and type, and the same strides on every dim of size > 1.
bool same_physical(const memory::desc& a, const memory::desc& b);

/// The same layout with another element type.
memory::desc retype(const memory::desc& md, dt type);

/// Zeroed memory for a prepared layer's reordered weights (see the .cpp).
std::shared_ptr<void> weight_buffer(size_t bytes);

inline std::string where_of(const Node& n) { return "node '" + n.name + "' (" + op_name(n.op) + ")"; }

/// Reorder scale from a value stored as `src` to `dst` (the same expression the integer reference uses).
float conversion_scale(QType src, float src_scale, QType dst, float dst_scale);

/// Right padding that makes oneDNN's floor formula give the window's output size (ceil_mode).
memory::dims pad_right(const Window& w);

memory::dims minus_one(const std::vector<int64_t>& d);

}  // namespace dcs::dnnl_exec
