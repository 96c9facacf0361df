#pragma once
/// Images and labels stored as NumPy arrays: .npy files (memory-mapped) or arrays of an .npz archive.
#include <vector>

#include "runtime/dataset.hpp"

namespace dcs {

/// dataset.format: npy. Images: uint8 or float32, N×H×W or N×C×H×W; labels: optional, any integer type,
/// length N (none: an unlabelled dataset). With `cfg.file` (an .npz archive) `cfg.images` and
/// `cfg.labels` name arrays in it (default "images", and "labels" when present); else they are .npy
/// files. Throws InputError naming the file (and array) and what was expected.
Dataset load_npy_dataset(const DatasetConfig& cfg, const std::vector<Subset>& used);

}  // namespace dcs
