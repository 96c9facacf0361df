/// Fuzz target: the YAML config loader (yaml-cpp parsing, every key's validation).
#include <cstddef>
#include <cstdint>
#include <string>

#include "app/config.hpp"
#include "fuzz/fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = dcs::fuzz::scratch_dir() + "/config.yaml";
    dcs::fuzz::expect_input_errors_only("fuzz_config", [&] {
        dcs::parse_config(std::string(reinterpret_cast<const char*>(data), size), path);
    });
    return 0;
}
