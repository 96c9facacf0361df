/// Fuzz target: the IDX dataset reader (gzip, header, payload) and the dataset built from it.
///
/// The input holds an image file and a label file: a 2-byte big-endian length L, then L bytes of the
/// label file, then the image file. Both are written to scratch files and loaded as `dataset.images`
/// and `dataset.labels`, as a config names them; a loaded dataset is then checked and batched.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_dataset.hpp"
#include "fuzz/fuzz_target.hpp"
#include "runtime/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const size_t label_len = std::min<size_t>(size - 2, size_t(data[0]) << 8 | data[1]);
    static const std::string dir = dcs::fuzz::scratch_dir();
    dcs::DatasetConfig cfg;
    cfg.labels = dir + "/labels.idx";
    cfg.images = dir + "/images.idx";
    dcs::fuzz::write_file(cfg.labels, data + 2, label_len);
    dcs::fuzz::write_file(cfg.images, data + 2 + label_len, size - 2 - label_len);
    dcs::fuzz::expect_input_errors_only("fuzz_idx", [&] { dcs::fuzz::check_and_batch(dcs::Dataset::load(cfg)); });
    return 0;
}
