#pragma once
/// Images in class folders (the layout torchvision's ImageFolder reads), decoded once per run.
#include <vector>

#include "runtime/dataset.hpp"

namespace dcs {

/// dataset.format: folder. Scans `cfg.root` (runtime/image_folder.hpp: class index = position of the
/// class folder in sorted order, or in `cfg.classes`; a root with images and no class folders is
/// unlabelled), then decodes, resizes and crops to `cfg.image` only the samples inside `used` (all when
/// empty), in parallel, holding them as uint8. Progress goes to stderr while decoding takes long.
/// Throws InputError naming the folder or file and what was expected.
Dataset load_folder_dataset(const DatasetConfig& cfg, const std::vector<Subset>& used);

}  // namespace dcs
