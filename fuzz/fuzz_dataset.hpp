#pragma once
/// Shared by the dataset fuzz targets: what the commands do with a dataset once it is loaded.
#include <algorithm>

#include "runtime/dataset.hpp"

namespace dcs::fuzz {

/// Checks the labels against 10 classes and a subset of up to 4 samples, and preprocesses that batch.
inline void check_and_batch(const Dataset& ds) {
    ds.check_labels(10);
    const Subset s{0, std::min<int64_t>(ds.size(), 4)};
    ds.check_subset(s, "dataset.validation");
    Preprocess pre;
    if (ds.channels() == 3) pre.mean = {0.5f, 0.5f, 0.5f};
    check_preprocess(pre, ds.channels());
    ds.batch(s.offset, s.count, pre);
}

}  // namespace dcs::fuzz
