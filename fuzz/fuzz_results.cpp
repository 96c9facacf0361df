/// Fuzz target: the results-file reader (HDF5 file, then every dataset and attribute it reads and
/// checks), as `report`, `export` and `search --resume` open it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_target.hpp"
#include "search/results_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = dcs::fuzz::scratch_dir() + "/results.h5";
    dcs::fuzz::write_file(path, data, size);
    dcs::fuzz::expect_input_errors_only("fuzz_results", [&] { dcs::search::read_results(path); });
    return 0;
}
