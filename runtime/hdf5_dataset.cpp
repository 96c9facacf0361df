#include "runtime/hdf5_dataset.hpp"

#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace dcs {
namespace {

namespace fs = std::filesystem;

/// Owns one HDF5 identifier; the destructor closes it and never throws.
class H5Handle {
public:
    using Closer = herr_t (*)(hid_t);
    H5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
    H5Handle(const H5Handle&) = delete;
    H5Handle& operator=(const H5Handle&) = delete;
    H5Handle(H5Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
    H5Handle& operator=(H5Handle&& o) noexcept {
        if (this != &o) {
            reset();
            id_ = std::exchange(o.id_, -1);
            close_ = o.close_;
        }
        return *this;
    }
    ~H5Handle() { reset(); }
    void reset() {
        if (id_ >= 0) close_(id_);
        id_ = -1;
    }
    hid_t get() const { return id_; }
    bool valid() const { return id_ >= 0; }

private:
    hid_t id_;
    Closer close_;
};

std::string type_name(hid_t type) {
    const H5T_class_t cls = H5Tget_class(type);
    const size_t bits = H5Tget_size(type) * 8;
    switch (cls) {
    case H5T_INTEGER:
        return std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT: return "float" + std::to_string(bits);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    case H5T_VLEN: return "variable-length";
    default: return "unknown";
    }
}

std::string dims_str(const std::vector<hsize_t>& dims) {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

/// One dataset opened with its type and shape, ready to read.
struct OpenDataset {
    H5Handle dset{-1, H5Dclose};
    H5Handle type{-1, H5Tclose};
    std::vector<hsize_t> dims;
};

void open_dataset(hid_t file_id, const std::string& file, const std::string& path, const char* role,
                  OpenDataset& out) {
    const std::string where = file + ": " + role + " dataset '" + path + "'";
    if (path.empty() || path == "/") throw InputError(where + ": expected the path of a dataset inside the file");
    // Walk the path so that a missing group is reported rather than an HDF5 error stack.
    size_t pos = path[0] == '/' ? 1 : 0;
    while (true) {
        const size_t slash = path.find('/', pos);
        const std::string prefix = path.substr(0, slash);
        if (!prefix.empty() && prefix != "/") {
            if (H5Lexists(file_id, prefix.c_str(), H5P_DEFAULT) <= 0) {
                throw InputError(where + ": does not exist" +
                                 (prefix == path ? std::string() : " (no object '" + prefix + "')"));
            }
        }
        if (slash == std::string::npos) break;
        pos = slash + 1;
    }
    {
        H5Handle obj(H5Oopen(file_id, path.c_str(), H5P_DEFAULT), H5Oclose);
        if (!obj.valid()) throw InputError(where + ": cannot be opened");
        if (H5Iget_type(obj.get()) != H5I_DATASET) throw InputError(where + ": is a group, expected a dataset");
    }
    out.dset = H5Handle(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT), H5Dclose);
    if (!out.dset.valid()) throw InputError(where + ": cannot be opened as a dataset");
    out.type = H5Handle(H5Dget_type(out.dset.get()), H5Tclose);
    H5Handle space(H5Dget_space(out.dset.get()), H5Sclose);
    if (!out.type.valid() || !space.valid()) throw InputError(where + ": cannot read its type or shape");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) throw InputError(where + ": cannot read its shape");
    out.dims.assign(static_cast<size_t>(rank), 0);
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), out.dims.data(), nullptr) < 0) {
        throw InputError(where + ": cannot read its shape");
    }
}

}  // namespace

Dataset load_hdf5_dataset(const std::string& file, const std::string& images_path, const std::string& labels_path) {
    // HDF5 would otherwise print its error stack to stderr on every failed call; we report instead.
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);

    std::error_code ec;
    const fs::file_status st = fs::status(file, ec);
    if (ec || !fs::exists(st)) throw InputError(file + ": no such file");
    if (fs::is_directory(st)) throw InputError(file + ": is a directory, expected an HDF5 file");
    const htri_t is_h5 = H5Fis_hdf5(file.c_str());
    if (is_h5 < 0) throw InputError(file + ": cannot be read");
    if (is_h5 == 0) throw InputError(file + ": not an HDF5 file");
    H5Handle fid(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!fid.valid()) throw InputError(file + ": cannot open the HDF5 file");

    OpenDataset img;
    open_dataset(fid.get(), file, images_path, "image", img);
    const std::string img_where = file + ": image dataset '" + images_path + "'";
    if (img.dims.size() != 3 && img.dims.size() != 4) {
        throw InputError(img_where + ": expected rank 3 (N, H, W) or 4 (N, C, H, W), got shape " + dims_str(img.dims));
    }
    uint64_t total = 1;
    for (hsize_t d : img.dims) {
        if (d == 0) throw InputError(img_where + ": has an empty dimension, shape " + dims_str(img.dims));
        if (total > uint64_t(std::numeric_limits<int64_t>::max()) / 4 / d) {
            throw InputError(img_where + ": shape " + dims_str(img.dims) + " is too large");
        }
        total *= d;
    }
    const int64_t n = static_cast<int64_t>(img.dims[0]);
    const int64_t c = img.dims.size() == 4 ? static_cast<int64_t>(img.dims[1]) : 1;
    const int64_t h = static_cast<int64_t>(img.dims[img.dims.size() - 2]);
    const int64_t w = static_cast<int64_t>(img.dims.back());
    const H5T_class_t img_class = H5Tget_class(img.type.get());
    const bool is_u8 = img_class == H5T_INTEGER && H5Tget_size(img.type.get()) == 1 &&
                       H5Tget_sign(img.type.get()) == H5T_SGN_NONE;
    if (!is_u8 && img_class != H5T_FLOAT) {
        throw InputError(img_where + ": element type " + type_name(img.type.get()) + ", expected uint8 or float32");
    }

    OpenDataset lab;
    open_dataset(fid.get(), file, labels_path, "label", lab);
    const std::string lab_where = file + ": label dataset '" + labels_path + "'";
    if (lab.dims.size() != 1) throw InputError(lab_where + ": expected rank 1 (N), got shape " + dims_str(lab.dims));
    if (H5Tget_class(lab.type.get()) != H5T_INTEGER) {
        throw InputError(lab_where + ": element type " + type_name(lab.type.get()) + ", expected an integer type");
    }
    if (static_cast<int64_t>(lab.dims[0]) != n) {
        throw InputError(lab_where + ": has " + std::to_string(lab.dims[0]) + " labels, expected " +
                         std::to_string(n) + " (one per image in '" + images_path + "')");
    }

    std::vector<int64_t> labels(static_cast<size_t>(n));
    if (H5Dread(lab.dset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels.data()) < 0) {
        throw InputError(lab_where + ": read failed");
    }
    Dataset ds;
    if (is_u8) {
        std::vector<uint8_t> pixels(static_cast<size_t>(total));
        if (H5Dread(img.dset.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, pixels.data()) < 0) {
            throw InputError(img_where + ": read failed");
        }
        ds = Dataset::from_u8(n, c, h, w, std::move(pixels), std::move(labels));
    } else {
        std::vector<float> pixels(static_cast<size_t>(total));
        if (H5Dread(img.dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, pixels.data()) < 0) {
            throw InputError(img_where + ": read failed");
        }
        for (size_t i = 0; i < pixels.size(); ++i) {
            if (!std::isfinite(pixels[i])) {
                throw InputError(img_where + ": non-finite pixel value at element " + std::to_string(i) +
                                 ", expected finite numbers");
            }
        }
        ds = Dataset::from_f32(n, c, h, w, std::move(pixels), std::move(labels));
    }
    ds.set_sources(file + ":" + images_path, file + ":" + labels_path);
    return ds;
}

}  // namespace dcs
