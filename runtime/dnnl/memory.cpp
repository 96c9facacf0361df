#include "runtime/dnnl/memory.hpp"

#include <sys/mman.h>

#include <algorithm>

namespace dcs::dnnl_exec {

dt to_dt(QType t) {
    switch (t) {
        case QType::F32: return dt::f32;
        case QType::S8: return dt::s8;
        case QType::U8: return dt::u8;
    }
    return dt::f32;
}

memory::desc make_md(const std::vector<int64_t>& shape, dt type, bool channels_last) {
    const size_t r = shape.size();
    memory::dims strides(r, 1);
    if (channels_last && r >= 3 && r <= 5) {
        int64_t s = shape[1];  // C innermost
        for (size_t d = r; d-- > 2;) {
            strides[d] = s;
            s *= shape[d];
        }
        strides[1] = 1;
        strides[0] = s;
    } else {
        for (size_t d = r; d-- > 1;) strides[d - 1] = strides[d] * shape[d];
    }
    return memory::desc(dims_of(shape), type, strides);
}

bool same_physical(const memory::desc& a, const memory::desc& b) {
    if (a == b) return true;
    const auto &da = a.data, &db = b.data;
    if (da.ndims != db.ndims || da.data_type != db.data_type || da.format_kind != dnnl_blocked ||
        db.format_kind != dnnl_blocked || da.format_desc.blocking.inner_nblks != 0 ||
        db.format_desc.blocking.inner_nblks != 0 || da.extra.flags != 0 || db.extra.flags != 0)
        return false;
    for (int i = 0; i < da.ndims; ++i) {
        if (da.dims[i] != db.dims[i] || da.padded_dims[i] != db.padded_dims[i]) return false;
        if (da.dims[i] > 1 && da.format_desc.blocking.strides[i] != db.format_desc.blocking.strides[i]) return false;
    }
    return true;
}

memory::desc retype(const memory::desc& md, dt type) {
    dnnl_memory_desc_t d = md.data;
    d.data_type = static_cast<dnnl_data_type_t>(type);
    return memory::desc(d);
}

/// Zeroed memory for a prepared layer's reordered weights, which the weight cache keeps: fresh pages
/// for every new layer choice. From 128 KB on they are mapped and populated in one call (MAP_POPULATE)
/// rather than faulted in one by one on first touch: 235 KB took 105 us through aligned_alloc and
/// memset, 61 us populated (this machine; lenet300's search overhead -8%). Page-aligned: only for
/// weights (activation buffers at the same page offsets could alias in the L1 cache).
std::shared_ptr<void> weight_buffer(size_t bytes) {
    const size_t n = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    if (n >= (size_t{128} << 10)) {
        void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (m != MAP_FAILED) return std::shared_ptr<void>(m, [n](void* q) { munmap(q, n); });
    }
    return aligned_buffer(bytes);
}

float conversion_scale(QType src, float src_scale, QType dst, float dst_scale) {
    if (is8(src) && is8(dst)) return src_scale / dst_scale;
    if (!is8(src) && is8(dst)) return 1.0f / dst_scale;
    if (is8(src) && !is8(dst)) return src_scale;
    return 1.0f;
}

memory::dims pad_right(const Window& w) {
    memory::dims pr(w.kernel.size());
    for (size_t i = 0; i < w.kernel.size(); ++i) {
        const int64_t eff = (w.kernel[i] - 1) * w.dilations[i] + 1;
        const int64_t floor_out = (w.in[i] + w.pad_begin[i] + w.pad_end[i] - eff) / w.strides[i] + 1;
        pr[i] = floor_out == w.out[i] ? w.pad_end[i] : (w.out[i] - 1) * w.strides[i] + eff - w.in[i] - w.pad_begin[i];
    }
    return pr;
}

memory::dims minus_one(const std::vector<int64_t>& d) {
    memory::dims r(d.size());
    for (size_t i = 0; i < d.size(); ++i) r[i] = d[i] - 1;
    return r;
}

}  // namespace dcs::dnnl_exec
