#include "runtime/dataset.hpp"

#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "common/error.hpp"
#include "runtime/folder_dataset.hpp"
#include "runtime/hdf5_dataset.hpp"
#include "runtime/idx_reader.hpp"
#include "runtime/npy_dataset.hpp"

namespace dcs {
namespace {

std::string num_str(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

std::string list_str(const std::vector<float>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + num_str(v[i]);
    return s + "]";
}

std::string channels_str(int64_t c) { return std::to_string(c) + (c == 1 ? " channel" : " channels"); }

int64_t checked_numel(int64_t n, int64_t c, int64_t h, int64_t w) {
    if (n < 1 || c < 1 || h < 1 || w < 1) {
        throw std::invalid_argument("Dataset: every dimension must be >= 1, got n=" + std::to_string(n) +
                                    " c=" + std::to_string(c) + " h=" + std::to_string(h) + " w=" + std::to_string(w));
    }
    int64_t total = n;
    for (int64_t d : {c, h, w}) {
        if (total > INT64_MAX / d) throw std::invalid_argument("Dataset: n*c*h*w overflows");
        total *= d;
    }
    return total;
}

float be_float(const uint8_t* p) {
    const uint32_t u = uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

/// Big-endian signed/unsigned integer of an IDX integer type.
int64_t be_int(const uint8_t* p, IdxType type) {
    switch (type) {
    case IdxType::U8: return p[0];
    case IdxType::I8: return static_cast<int8_t>(p[0]);
    case IdxType::I16: return static_cast<int16_t>(uint16_t(p[0]) << 8 | uint16_t(p[1]));
    case IdxType::I32:
        return static_cast<int32_t>(uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]));
    default: return 0;
    }
}

Dataset load_idx_dataset(const DatasetConfig& cfg) {
    if (cfg.images.empty()) throw InputError("dataset.images: no image file given");
    if (cfg.labels.empty()) throw InputError("dataset.labels: no label file given");
    IdxArray img = read_idx(cfg.images);
    if (img.type != IdxType::U8 && img.type != IdxType::F32) {
        throw InputError(cfg.images + ": IDX image data of type " + idx_type_name(img.type) +
                         ", expected 0x08 (uint8) or 0x0D (float32)");
    }
    if (img.dims.size() != 3 && img.dims.size() != 4) {
        throw InputError(cfg.images + ": IDX images must have 3 dimensions (N, H, W) or 4 (N, C, H, W), got " +
                         std::to_string(img.dims.size()) + (img.dims.size() == 1 ? " (is this a label file?)" : ""));
    }
    IdxArray lab = read_idx(cfg.labels);
    if (lab.type == IdxType::F32 || lab.type == IdxType::F64) {
        throw InputError(cfg.labels + ": IDX label data of type " + idx_type_name(lab.type) +
                         ", expected an integer type (0x08 uint8)");
    }
    if (lab.dims.size() != 1) {
        throw InputError(cfg.labels + ": IDX labels must have 1 dimension (N), got " + std::to_string(lab.dims.size()) +
                         (lab.dims.size() >= 3 ? " (is this an image file?)" : ""));
    }
    const int64_t n = img.dims[0];
    if (lab.dims[0] != n) {
        throw InputError(cfg.labels + ": holds " + std::to_string(lab.dims[0]) + " labels, but " + cfg.images +
                         " holds " + std::to_string(n) + " images; expected one label per image");
    }
    const bool nchw = img.dims.size() == 4;
    const int64_t c = nchw ? img.dims[1] : 1;
    const int64_t h = img.dims[img.dims.size() - 2];
    const int64_t w = img.dims.back();

    std::vector<int64_t> labels(static_cast<size_t>(n));
    const int64_t lsize = idx_type_size(lab.type);
    for (int64_t i = 0; i < n; ++i) labels[i] = be_int(lab.payload.data() + i * lsize, lab.type);

    Dataset ds;
    if (img.type == IdxType::U8) {
        ds = Dataset::from_u8(n, c, h, w, std::move(img.payload), std::move(labels));
    } else {
        std::vector<float> pixels(img.payload.size() / 4);
        for (size_t i = 0; i < pixels.size(); ++i) {
            pixels[i] = be_float(img.payload.data() + 4 * i);
            if (!std::isfinite(pixels[i])) {
                throw InputError(cfg.images + ": pixel value " + num_str(pixels[i]) + " at element " +
                                 std::to_string(i) + ", expected finite float32 values");
            }
        }
        ds = Dataset::from_f32(n, c, h, w, std::move(pixels), std::move(labels));
    }
    ds.set_sources(cfg.images, cfg.labels);
    return ds;
}

}  // namespace

void check_preprocess(const Preprocess& pre, int64_t channels, const std::string& key) {
    if (!std::isfinite(pre.scale) || pre.scale <= 0.0f) {
        throw InputError(key + ".scale: must be a finite number > 0, got " + num_str(pre.scale));
    }
    const std::pair<const char*, const std::vector<float>*> lists[] = {{"mean", &pre.mean}, {"std", &pre.std}};
    for (const auto& [name, v] : lists) {
        if (v->empty()) throw InputError(key + "." + name + ": must have at least one entry, got []");
        for (float x : *v) {
            if (!std::isfinite(x)) throw InputError(key + "." + name + ": entries must be finite, got " + list_str(*v));
            if (v == &pre.std && x <= 0.0f) {
                throw InputError(key + ".std: entries must be > 0, got " + list_str(*v));
            }
        }
        if (channels > 0 && v->size() != 1 && static_cast<int64_t>(v->size()) != channels) {
            throw InputError(key + "." + name + ": must have 1 entry or one per channel (" + std::to_string(channels) +
                             "), the images have " + channels_str(channels) + ", got " + list_str(*v));
        }
    }
    if (channels <= 0 && pre.mean.size() > 1 && pre.std.size() > 1 && pre.mean.size() != pre.std.size()) {
        throw InputError(key + ": mean has " + std::to_string(pre.mean.size()) + " entries but std has " +
                         std::to_string(pre.std.size()) + "; expected one per channel in both, or 1");
    }
}

namespace {

/// One row per dataset format: its config word and its loader (each in its own file).
struct FormatDef {
    DatasetFormat format;
    const char* name;
    Dataset (*load)(const DatasetConfig& cfg, const std::vector<Subset>& used);
};

Dataset load_hdf5(const DatasetConfig& cfg, const std::vector<Subset>&) {
    if (cfg.file.empty()) throw InputError("dataset.hdf5.file: no HDF5 file given");
    return load_hdf5_dataset(cfg.file, cfg.images.empty() ? "/images" : cfg.images,
                             cfg.labels.empty() ? "/labels" : cfg.labels);
}

Dataset load_idx(const DatasetConfig& cfg, const std::vector<Subset>&) { return load_idx_dataset(cfg); }

const FormatDef kFormats[] = {
    {DatasetFormat::Idx, "idx", load_idx},
    {DatasetFormat::Hdf5, "hdf5", load_hdf5},
    {DatasetFormat::Npy, "npy", load_npy_dataset},
    {DatasetFormat::Folder, "folder", load_folder_dataset},
};

const FormatDef& format_def(DatasetFormat f) {
    for (const FormatDef& d : kFormats)
        if (d.format == f) return d;
    throw std::logic_error("unknown dataset format");
}

}  // namespace

const char* dataset_format_name(DatasetFormat f) { return format_def(f).name; }

Dataset Dataset::load(const DatasetConfig& cfg, const std::vector<Subset>& used) {
    return format_def(cfg.format).load(cfg, used);
}

void Dataset::set_sources(std::string images, std::string labels) {
    images_source_ = std::move(images);
    labels_source_ = std::move(labels);
}

void Dataset::check_labels(int64_t num_classes) const {
    if (!labelled_) return;
    for (size_t i = 0; i < labels_.size(); ++i) {
        const int64_t v = labels_[i];
        if (v < 0 || v >= num_classes) {
            throw InputError(labels_source_ + ": label " + std::to_string(v) + " at index " + std::to_string(i) +
                             " is outside [0, " + std::to_string(num_classes) + "); the model has " +
                             std::to_string(num_classes) + " classes");
        }
    }
}

void Dataset::check_subset(const Subset& s, const std::string& key) const {
    if (s.offset < 0) throw InputError(key + ": offset must be >= 0, got " + std::to_string(s.offset));
    if (s.count <= 0) throw InputError(key + ": count must be >= 1, got " + std::to_string(s.count));
    if (s.offset > count_ || s.count > count_ - s.offset) {
        throw InputError(key + ": offset " + std::to_string(s.offset) + " + count " + std::to_string(s.count) +
                         " exceeds the " + std::to_string(count_) + " samples in " + images_source_);
    }
}

Tensor Dataset::batch(int64_t offset, int64_t count, const Preprocess& pre) const {
    if (offset < 0 || count < 0 || offset > count_ || count > count_ - offset) {
        throw InputError("batch: samples " + std::to_string(offset) + " + " + std::to_string(count) +
                         " lie outside the " + std::to_string(count_) + " samples in " + images_source_);
    }
    check_preprocess(pre, c_);
    const int64_t plane = h_ * w_;
    // Stored image of each sample of the batch.
    std::vector<int64_t> stored(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
        stored[i] = slots_.empty() ? offset + i : slots_[offset + i];
        if (stored[i] < 0)
            throw std::logic_error("batch: sample " + std::to_string(offset + i) + " of " + images_source_ +
                                   " was not loaded (outside the subsets given to Dataset::load)");
    }
    Tensor t;
    t.dtype = DType::f32;
    t.shape = {count, c_, h_, w_};
    t.data.resize(static_cast<size_t>(count * c_ * plane));
    float* out = t.data.data();
    for (int64_t ch = 0; ch < c_; ++ch) {
        const float mean = pre.mean.size() == 1 ? pre.mean[0] : pre.mean[ch];
        const float sd = pre.std.size() == 1 ? pre.std[0] : pre.std[ch];
        if (!is_float_) {
            // Same expression as for floats, evaluated once per possible byte value.
            float lut[256];
            for (int p = 0; p < 256; ++p) lut[p] = (static_cast<float>(p) * pre.scale - mean) / sd;
            for (int64_t i = 0; i < count; ++i) {
                const uint8_t* src = u8_ + (stored[i] * c_ + ch) * plane;
                float* dst = out + (i * c_ + ch) * plane;
                for (int64_t k = 0; k < plane; ++k) dst[k] = lut[src[k]];
            }
        } else {
            for (int64_t i = 0; i < count; ++i) {
                const float* src = f32_ + (stored[i] * c_ + ch) * plane;
                float* dst = out + (i * c_ + ch) * plane;
                for (int64_t k = 0; k < plane; ++k) dst[k] = (src[k] * pre.scale - mean) / sd;
            }
        }
    }
    return t;
}

namespace {
/// Checks the sizes of an in-memory dataset; `what` names the constructor in the message.
void check_memory_dataset(const char* what, int64_t total, size_t pixels, int64_t n, size_t labels) {
    if (static_cast<int64_t>(pixels) != total || static_cast<int64_t>(labels) != n)
        throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(total) + " pixels and " +
                                    std::to_string(n) + " labels, got " + std::to_string(pixels) + " and " +
                                    std::to_string(labels));
}
}  // namespace

Dataset Dataset::from_u8(int64_t n, int64_t c, int64_t h, int64_t w, std::vector<uint8_t> pixels,
                         std::vector<int64_t> labels) {
    check_memory_dataset("Dataset::from_u8", checked_numel(n, c, h, w), pixels.size(), n, labels.size());
    auto owner = std::make_shared<const std::vector<uint8_t>>(std::move(pixels));
    return from_storage(n, c, h, w, false, owner, owner->data(), std::move(labels));
}

Dataset Dataset::from_f32(int64_t n, int64_t c, int64_t h, int64_t w, std::vector<float> pixels,
                          std::vector<int64_t> labels) {
    check_memory_dataset("Dataset::from_f32", checked_numel(n, c, h, w), pixels.size(), n, labels.size());
    auto owner = std::make_shared<const std::vector<float>>(std::move(pixels));
    return from_storage(n, c, h, w, true, owner, owner->data(), std::move(labels));
}

Dataset Dataset::from_storage(int64_t n, int64_t c, int64_t h, int64_t w, bool is_float,
                              std::shared_ptr<const void> owner, const void* pixels, std::vector<int64_t> labels,
                              std::vector<int64_t> slots) {
    checked_numel(n, c, h, w);
    if (!labels.empty() && static_cast<int64_t>(labels.size()) != n)
        throw std::invalid_argument("Dataset::from_storage: " + std::to_string(labels.size()) + " labels for " +
                                    std::to_string(n) + " samples");
    if (!slots.empty() && static_cast<int64_t>(slots.size()) != n)
        throw std::invalid_argument("Dataset::from_storage: " + std::to_string(slots.size()) + " slots for " +
                                    std::to_string(n) + " samples");
    Dataset d;
    d.count_ = n;
    d.c_ = c;
    d.h_ = h;
    d.w_ = w;
    d.is_float_ = is_float;
    d.owner_ = std::move(owner);
    if (is_float)
        d.f32_ = static_cast<const float*>(pixels);
    else
        d.u8_ = static_cast<const uint8_t*>(pixels);
    d.labelled_ = !labels.empty();
    d.labels_ = d.labelled_ ? std::move(labels) : std::vector<int64_t>(static_cast<size_t>(n), -1);
    d.slots_ = std::move(slots);
    return d;
}

}  // namespace dcs
