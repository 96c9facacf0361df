#include "fuzz/fuzz_target.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/stat.h>

namespace dcs::fuzz {

namespace {
/// Removes the scratch directory when the process exits normally.
struct Scratch {
    std::string path;
    ~Scratch() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};
}  // namespace

std::string scratch_dir() {
    static const Scratch dir{[] {
        const char* tmp = std::getenv("TMPDIR");
        std::string d = std::string(tmp && *tmp ? tmp : "/tmp") + "/dcs-fuzz-" + std::to_string(getpid());
        if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
            std::perror(d.c_str());
            std::abort();
        }
        return d;
    }()};
    return dir.path;
}

void write_file(const std::string& path, const unsigned char* data, size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort();
    }
}

}  // namespace dcs::fuzz
