#pragma once
/// Labelled images stored in an HDF5 file: an image dataset N×H×W or N×C×H×W (uint8 or floating point)
/// and a 1-D integer label dataset of length N.
#include <string>

#include "runtime/dataset.hpp"

namespace dcs {

/// Reads `images_path` and `labels_path` (paths inside the HDF5 file `file`, e.g. "/images").
/// Floating-point images of any width are held as float32; integer labels of any width and sign
/// are converted to int64.
/// Throws InputError naming the file and the dataset when the file is missing or not HDF5, a dataset
/// is missing or is a group, or has the wrong rank, element type or length.
Dataset load_hdf5_dataset(const std::string& file, const std::string& images_path, const std::string& labels_path);

}  // namespace dcs
