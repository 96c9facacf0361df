#pragma once
/// Image folders as torchvision's ImageFolder reads them (one subfolder per class) or flat (unlabelled):
/// scanning in a deterministic order and decoding a list of images in parallel. Semantics:
/// docs/datasets-images.md.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/image_codec.hpp"

namespace dcs {

/// The files of an image folder in ImageFolder order.
struct ImageFolderIndex {
    std::vector<std::string> files;    ///< paths (root joined with the relative path), in ImageFolder order
    std::vector<int64_t> labels;       ///< class index per file (empty when unlabelled)
    std::vector<std::string> classes;  ///< class names (subfolder names), index = label
    bool labelled = true;
};

/// Scans `root`: one subfolder per class (class index = position in the sorted subfolder names, byte order,
/// as torchvision's ImageFolder), or `classes` given explicitly (their order is the label order; other
/// subfolders are ignored; a missing folder is an error naming it). Files inside a class folder are found
/// recursively (symbolic links followed) in ImageFolder's order: directories in byte order of their path,
/// the files of each directory by name. A root with no subfolders but image files directly inside is an
/// unlabelled set (labelled = false, files sorted by name).
/// Hidden entries (name starting with '.') are ignored. Within class folders (and a flat root) a file whose
/// extension is not .jpg/.jpeg/.png (case-insensitive) is an InputError naming it (JPEG and PNG only).
/// Throws InputError for: root missing or not a directory, no classes and no images, a class folder with no
/// image, image files at the top level next to class folders, a named class missing (or named twice).
ImageFolderIndex scan_image_folder(const std::string& root, const std::vector<std::string>& classes = {});

/// Decodes and transforms images `indices` of `index` into `out` (indices.size() x channels x crop_h x crop_w,
/// CHW per image) in parallel (OpenMP, schedule dynamic; honours OMP_NUM_THREADS). `t.crop_h` and `t.crop_w`
/// must be > 0 (every image gets the same size); std::invalid_argument otherwise, or for an index out of range.
/// On failure throws the InputError of the lowest failing index (deterministic).
/// `progress`: when not empty, called from the calling thread about once per second with (done, total) while
/// decoding, and once more with (total, total) at the end if it was called before.
/// `jpeg`: decoder settings (the defaults decode as PIL; see JpegOptions).
void decode_images(const ImageFolderIndex& index, const std::vector<int64_t>& indices, const ImageTransform& t,
                   uint8_t* out, const std::function<void(int64_t, int64_t)>& progress = {},
                   const JpegOptions& jpeg = {});

}  // namespace dcs
