#pragma once
/// Shared by the fuzz targets: the contract every parser must keep on any bytes.
///
/// A parser given bad input throws dcs::InputError (UnsupportedError is one); the command-line front
/// end turns that into one message and exit status 2. Anything else escaping it (another exception,
/// a crash, a sanitizer report) is a bug: the target aborts so the fuzzer keeps the input.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <unistd.h>

#include "common/error.hpp"

namespace dcs::fuzz {

/// Runs `body`; InputError is the expected outcome of bad input, anything else aborts.
template <class Body>
void expect_input_errors_only(const char* target, Body&& body) {
    try {
        body();
    } catch (const InputError& e) {
        // Bad input must be described in one line (the CLI prints what() as its whole message).
        const std::string what = e.what();
        if (what.empty() || what.find('\n') != std::string::npos) {
            std::fprintf(stderr, "%s: InputError message is empty or spans lines: %s\n", target, what.c_str());
            std::abort();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: unexpected exception (not InputError): %s\n", target, e.what());
        std::abort();
    } catch (...) {
        std::fprintf(stderr, "%s: unexpected non-std exception\n", target);
        std::abort();
    }
}

/// A scratch directory of this process (under $TMPDIR or /tmp), created once.
std::string scratch_dir();

/// Writes `size` bytes to `path` (replacing it); aborts when the scratch file system fails.
void write_file(const std::string& path, const unsigned char* data, size_t size);

}  // namespace dcs::fuzz
