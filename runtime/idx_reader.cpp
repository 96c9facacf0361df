#include "runtime/idx_reader.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/error.hpp"

namespace dcs {
namespace {

namespace fs = std::filesystem;

bool is_gzip(const std::vector<uint8_t>& b, size_t at = 0) {
    return b.size() >= at + 2 && b[at] == 0x1f && b[at + 1] == 0x8b;
}

std::string hex_byte(uint8_t v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", v);
    return buf;
}

std::vector<uint8_t> read_raw(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) throw InputError(path + ": no such file");
    if (fs::is_directory(st)) throw InputError(path + ": is a directory, expected a file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path + ": cannot open for reading (" + std::strerror(errno) + ")");
    std::vector<uint8_t> bytes;
    in.seekg(0, std::ios::end);
    const std::streamoff len = in.tellg();
    if (len > 0) {
        bytes.resize(static_cast<size_t>(len));
        in.seekg(0, std::ios::beg);
        in.read(reinterpret_cast<char*>(bytes.data()), len);
        if (in.gcount() != len) throw InputError(path + ": read error");
    } else {
        // Not seekable (a pipe, /dev/stdin): read to the end.
        in.clear();
        in.seekg(0, std::ios::beg);
        in.clear();
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (in.bad()) throw InputError(path + ": read error");
    return bytes;
}

/// Inflates every gzip member of `in`; throws on corrupt, truncated or trailing data.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path) {
    std::vector<uint8_t> out;
    // The trailer's ISIZE (length mod 2^32) is a hint only; deflate cannot exceed ~1032:1.
    if (in.size() >= 18) {
        const size_t n = in.size();
        const uint64_t isize = uint64_t(in[n - 4]) | uint64_t(in[n - 3]) << 8 |
                               uint64_t(in[n - 2]) << 16 | uint64_t(in[n - 1]) << 24;
        out.reserve(static_cast<size_t>(std::min<uint64_t>(isize, uint64_t(in.size()) * 1032)));
    }
    size_t pos = 0;
    while (true) {
        z_stream zs;
        std::memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw InputError(path + ": zlib initialisation failed");
        zs.next_in = const_cast<Bytef*>(in.data() + pos);
        zs.avail_in = static_cast<uInt>(std::min<size_t>(in.size() - pos, std::numeric_limits<uInt>::max()));
        size_t fed_end = pos + zs.avail_in;
        int rc = Z_OK;
        while (rc != Z_STREAM_END) {
            if (out.size() == out.capacity()) out.reserve(std::max<size_t>(out.capacity() * 2, 1 << 16));
            const size_t old = out.size();
            out.resize(out.capacity());
            zs.next_out = out.data() + old;
            zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - old, std::numeric_limits<uInt>::max()));
            const uInt before_out = zs.avail_out;
            rc = inflate(&zs, Z_NO_FLUSH);
            out.resize(old + (before_out - zs.avail_out));
            if (rc == Z_STREAM_END) break;
            if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
                if (fed_end < in.size()) {  // more than 4 GiB of input: feed the next piece
                    zs.avail_in = static_cast<uInt>(std::min<size_t>(in.size() - fed_end, std::numeric_limits<uInt>::max()));
                    fed_end += zs.avail_in;
                    continue;
                }
                inflateEnd(&zs);
                throw InputError(path + ": gzip data is truncated (the compressed stream ends early after " +
                                 std::to_string(in.size()) + " bytes)");
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                const std::string msg = zs.msg ? zs.msg : "error code " + std::to_string(rc);
                inflateEnd(&zs);
                throw InputError(path + ": corrupt gzip data (" + msg + ")");
            }
        }
        const size_t consumed = static_cast<size_t>(zs.next_in - in.data());
        inflateEnd(&zs);
        pos = consumed;
        if (pos == in.size()) break;
        if (!is_gzip(in, pos)) {
            throw InputError(path + ": " + std::to_string(in.size() - pos) +
                             " bytes of trailing data after the gzip stream (expected end of file after " +
                             std::to_string(pos) + " bytes)");
        }
    }
    return out;
}

uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

bool valid_type(uint8_t code) {
    switch (code) {
    case 0x08: case 0x09: case 0x0B: case 0x0C: case 0x0D: case 0x0E: return true;
    default: return false;
    }
}

}  // namespace

const char* idx_type_name(IdxType type) {
    switch (type) {
    case IdxType::U8: return "uint8";
    case IdxType::I8: return "int8";
    case IdxType::I16: return "int16";
    case IdxType::I32: return "int32";
    case IdxType::F32: return "float32";
    case IdxType::F64: return "float64";
    }
    return "unknown";
}

int64_t idx_type_size(IdxType type) {
    switch (type) {
    case IdxType::U8: case IdxType::I8: return 1;
    case IdxType::I16: return 2;
    case IdxType::I32: case IdxType::F32: return 4;
    case IdxType::F64: return 8;
    }
    return 1;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, bool* was_gzip) {
    std::vector<uint8_t> raw = read_raw(path);
    const bool gz = is_gzip(raw);
    if (was_gzip) *was_gzip = gz;
    if (!gz) return raw;
    return gunzip(raw, path);
}

IdxArray read_idx(const std::string& path) {
    bool gz = false;
    std::vector<uint8_t> bytes = read_file_bytes(path, &gz);
    return parse_idx(std::move(bytes), path, gz);
}

IdxArray parse_idx(std::vector<uint8_t> bytes, const std::string& path, bool was_gzip) {
    const std::string holds = was_gzip ? "the file holds (after gunzip) " : "the file holds ";
    const uint64_t size = bytes.size();
    if (size < 4) {
        throw InputError(path + ": too short for an IDX header: expected at least 4 bytes, " + holds +
                         std::to_string(size));
    }
    if (bytes[0] != 0 || bytes[1] != 0) {
        throw InputError(path + ": not an IDX file: expected magic bytes 0x00 0x00, got " + hex_byte(bytes[0]) +
                         " " + hex_byte(bytes[1]));
    }
    if (!valid_type(bytes[2])) {
        throw InputError(path + ": unknown IDX type code " + hex_byte(bytes[2]) +
                         ", expected 0x08 (uint8), 0x09, 0x0B, 0x0C, 0x0D (float32) or 0x0E");
    }
    IdxArray a;
    a.type = static_cast<IdxType>(bytes[2]);
    a.was_gzip = was_gzip;
    const int ndims = bytes[3];
    if (ndims == 0) throw InputError(path + ": IDX header declares 0 dimensions, expected at least 1");
    const uint64_t header = 4 + 4 * uint64_t(ndims);
    if (size < header) {
        throw InputError(path + ": IDX header declares " + std::to_string(ndims) + " dimensions (" +
                         std::to_string(header) + " header bytes) but " + holds + std::to_string(size) + " bytes");
    }
    uint64_t elems = 1;
    bool overflow = false;
    std::string dims_text;
    for (int i = 0; i < ndims; ++i) {
        const uint32_t d = be32(bytes.data() + 4 + 4 * i);
        if (d == 0) throw InputError(path + ": IDX dimension " + std::to_string(i) + " is 0, expected >= 1");
        a.dims.push_back(d);
        dims_text += (i ? " x " : "") + std::to_string(d);
        if (elems > std::numeric_limits<uint64_t>::max() / 16 / d) overflow = true;
        else elems *= d;
    }
    const uint64_t esize = static_cast<uint64_t>(idx_type_size(a.type));
    const std::string what = dims_text + " " + idx_type_name(a.type) + " values";
    if (overflow) {
        throw InputError(path + ": IDX header promises " + what + ", far more than the " + std::to_string(size) +
                         " bytes " + (was_gzip ? "the file holds (after gunzip)" : "the file holds"));
    }
    const uint64_t expected = header + elems * esize;
    if (expected != size) {
        std::string msg = path + ": IDX header promises " + what + " (" + std::to_string(expected) +
                          " bytes with the header) but " + holds + std::to_string(size) + " bytes";
        msg += expected > size ? " (truncated)" : " (" + std::to_string(size - expected) + " bytes of trailing data)";
        throw InputError(msg);
    }
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
    a.payload = std::move(bytes);
    return a;
}

}  // namespace dcs
