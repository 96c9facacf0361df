#pragma once
/// Whole-file reading (raw or gzip) and the IDX array format of the MNIST family
/// (http://yann.lecun.com/exdb/mnist/: magic 0x00 0x00 <type> <ndims>, big-endian uint32 dims, data).
#include <cstdint>
#include <string>
#include <vector>

namespace dcs {

/// IDX element type codes.
enum class IdxType : uint8_t {
    U8 = 0x08,
    I8 = 0x09,
    I16 = 0x0B,
    I32 = 0x0C,
    F32 = 0x0D,
    F64 = 0x0E,
};

/// "uint8", "float32", ... for a valid code; "unknown" otherwise.
const char* idx_type_name(IdxType type);

/// Bytes per element of a valid IDX type code.
int64_t idx_type_size(IdxType type);

/// One IDX file in memory. `payload` holds the data bytes exactly as stored (big-endian).
struct IdxArray {
    IdxType type = IdxType::U8;
    std::vector<int64_t> dims;
    std::vector<uint8_t> payload;
    bool was_gzip = false;  ///< the file was gzip-compressed (for messages)
};

/// Reads a whole file into memory, decompressing it when it starts with the gzip magic (1f 8b),
/// whatever its name. Concatenated gzip members are joined.
/// Throws InputError naming `path` when it is missing, a directory, unreadable, or corrupt gzip
/// (including truncated data and trailing bytes that are not another gzip member).
std::vector<uint8_t> read_file_bytes(const std::string& path, bool* was_gzip = nullptr);

/// Parses an IDX file (raw or gzip). Checks the magic, the type code, that every dimension is
/// >= 1 and that the header's dimensions account for exactly the bytes the file holds.
/// Throws InputError naming `path`, with expected and actual byte counts where they disagree.
IdxArray read_idx(const std::string& path);

/// Parses IDX bytes already in memory; `path` is used only in messages.
IdxArray parse_idx(std::vector<uint8_t> bytes, const std::string& path, bool was_gzip = false);

}  // namespace dcs
