/// Fuzz target: the NumPy array reader (.npy header and data, .npz archives via libzip) and the
/// dataset built from it.
///
/// The input is written to a scratch file twice, as `x.npy` and as `x.npz`, and loaded as
/// `dataset.format: npy` loads it: the .npy as unlabelled images, the .npz with its `images` and
/// (when present) `labels` arrays. A loaded dataset is then checked and batched.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_dataset.hpp"
#include "fuzz/fuzz_target.hpp"
#include "runtime/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string dir = dcs::fuzz::scratch_dir();
    const std::string npy = dir + "/x.npy", npz = dir + "/x.npz";
    dcs::fuzz::write_file(npy, data, size);
    dcs::fuzz::write_file(npz, data, size);
    dcs::DatasetConfig as_npy, as_npz;
    as_npy.format = as_npz.format = dcs::DatasetFormat::Npy;
    as_npy.images = npy;
    as_npz.file = npz;
    for (const dcs::DatasetConfig* cfg : {&as_npy, &as_npz}) {
        dcs::fuzz::expect_input_errors_only("fuzz_npy", [&] { dcs::fuzz::check_and_batch(dcs::Dataset::load(*cfg)); });
    }
    return 0;
}
