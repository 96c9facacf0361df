#include "runtime/npy_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "common/error.hpp"
#include "runtime/npy_reader.hpp"

namespace dcs {
namespace {

std::string shape_text(const std::vector<int64_t>& s) {
    std::string t = "(";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + (s.size() == 1 ? ",)" : ")");
}

template <typename T>
void widen(const NpyArray& a, std::vector<int64_t>& out) {
    for (size_t i = 0; i < out.size(); ++i) {
        T v;
        std::memcpy(&v, a.data + i * sizeof(T), sizeof(T));
        out[i] = static_cast<int64_t>(v);
    }
}

/// Labels as int64 from a 1-D integer array of `n` entries.
std::vector<int64_t> labels_of(const NpyArray& a, int64_t n, const std::string& images_source) {
    if (a.shape.size() != 1) throw InputError(a.source + ": labels must be 1-D (N,), got shape " + shape_text(a.shape));
    if (a.shape[0] != n)
        throw InputError(a.source + ": holds " + std::to_string(a.shape[0]) + " labels, but " + images_source +
                         " holds " + std::to_string(n) + " images; expected one label per image");
    std::vector<int64_t> out(static_cast<size_t>(n));
    switch (a.type) {
        case NpyType::I8:
            widen<int8_t>(a, out);
            break;
        case NpyType::U8:
            widen<uint8_t>(a, out);
            break;
        case NpyType::I16:
            widen<int16_t>(a, out);
            break;
        case NpyType::U16:
            widen<uint16_t>(a, out);
            break;
        case NpyType::I32:
            widen<int32_t>(a, out);
            break;
        case NpyType::U32:
            widen<uint32_t>(a, out);
            break;
        case NpyType::I64:
            widen<int64_t>(a, out);
            break;
        case NpyType::U64:
            widen<uint64_t>(a, out);
            for (size_t i = 0; i < out.size(); ++i)
                if (out[i] < 0) throw InputError(a.source + ": label at index " + std::to_string(i) + " exceeds int64");
            break;
        default:
            throw InputError(a.source + ": labels of type " + npy_type_name(a.type) +
                             ", expected an integer type (e.g. y.astype(np.int64))");
    }
    return out;
}

}  // namespace

Dataset load_npy_dataset(const DatasetConfig& cfg, const std::vector<Subset>&) {
    const bool npz = !cfg.file.empty();
    const std::string images_name = cfg.images.empty() ? "images" : cfg.images;
    if (!npz && cfg.images.empty()) throw InputError("dataset.images: no .npy image file given");
    NpyArray img = npz ? read_npz(cfg.file, images_name) : read_npy(cfg.images);
    std::optional<NpyArray> lab;
    if (npz) {
        const auto names = npz_names(cfg.file);
        const std::string want = cfg.labels.empty() ? "labels" : cfg.labels;
        if (!cfg.labels.empty() || std::find(names.begin(), names.end(), want) != names.end())
            lab = read_npz(cfg.file, want);
    } else if (!cfg.labels.empty()) {
        lab = read_npy(cfg.labels);
    }

    const auto& s = img.shape;
    if (img.type != NpyType::U8 && img.type != NpyType::F32)
        throw InputError(img.source + ": images of type " + npy_type_name(img.type) +
                         ", expected uint8 or float32 (e.g. x.astype(np.float32))");
    if (s.size() != 3 && s.size() != 4)
        throw InputError(img.source + ": images must be N×H×W or N×C×H×W, got shape " + shape_text(s) +
                         (s.size() == 1 ? " (is this a label array?)" : ""));
    for (int64_t d : s)
        if (d < 1) throw InputError(img.source + ": images of shape " + shape_text(s) + " have an empty dimension");
    if (s.size() == 4 && (s[3] == 1 || s[3] == 3) && s[1] != 1 && s[1] != 3)
        throw InputError(img.source + ": images of shape " + shape_text(s) +
                         " look channels-last (N×H×W×C); expected N×C×H×W, e.g. np.transpose(x, (0, 3, 1, 2))");
    const int64_t n = s[0], c = s.size() == 4 ? s[1] : 1, h = s[s.size() - 2], w = s.back();
    const bool is_float = img.type == NpyType::F32;
    if (is_float) {
        const size_t count = img.bytes / sizeof(float);
        for (size_t i = 0; i < count; ++i) {
            float v;
            std::memcpy(&v, img.data + i * sizeof(float), sizeof v);
            if (!std::isfinite(v))
                throw InputError(img.source + ": pixel value " + std::to_string(v) + " at element " +
                                 std::to_string(i) + ", expected finite float32 values");
        }
    }
    if (is_float && reinterpret_cast<uintptr_t>(img.data) % alignof(float) != 0) {
        // A stored .npz member may start at any byte: copy it so the floats are aligned.
        auto copy = std::make_shared<std::vector<float>>(img.bytes / sizeof(float));
        std::memcpy(copy->data(), img.data, img.bytes);
        img.data = reinterpret_cast<const uint8_t*>(copy->data());
        img.owner = copy;
    }
    std::vector<int64_t> labels;
    if (lab) labels = labels_of(*lab, n, img.source);
    Dataset ds = Dataset::from_storage(n, c, h, w, is_float, img.owner, img.data, std::move(labels));
    ds.set_sources(img.source, lab ? lab->source : "");
    return ds;
}

}  // namespace dcs
