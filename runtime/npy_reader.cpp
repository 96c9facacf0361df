#include "runtime/npy_reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <new>

#include "common/error.hpp"

namespace dcs {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the reader assumes a little-endian host");

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
/// numpy itself refuses headers over 10,000 bytes by default; ours may be longer but not absurd.
constexpr uint64_t kMaxHeaderLen = uint64_t(1) << 20;
/// Deflate cannot expand more than about 1032:1; a member claiming more is corrupt.
constexpr uint64_t kMaxDeflateRatio = 1032;

// ---- A Python literal parser for the header dict (what numpy reads with ast.literal_eval) ------------------

struct PyValue {
    enum Kind { Str, Int, Bool, None, Tuple, List, Dict } kind = None;
    std::string str;             ///< Str
    int64_t num = 0;             ///< Int; Bool as 0 / 1
    std::vector<PyValue> items;  ///< Tuple, List; Dict as key, value, key, value, ...
    std::string text;            ///< the literal as written, for messages
};

class PyParser {
public:
    PyParser(const std::string& src, const std::string& source) : src_(src), source_(source) {}

    PyValue parse_all() {
        PyValue v = value();
        skip_space();
        if (pos_ != src_.size()) fail("unexpected text after the dict");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        size_t end = src_.size();
        while (end > 0 && is_space(src_[end - 1])) --end;
        const std::string shown = src_.substr(0, std::min<size_t>(end, 300));
        throw InputError(source_ + ": bad .npy header (" + what + " at character " + std::to_string(pos_ + 1) +
                         " of " + shown + ")");
    }

    static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

    void skip_space() {
        while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    }

    bool accept(char c) {
        skip_space();
        if (pos_ < src_.size() && src_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    void expect(char c) {
        if (!accept(c)) fail(std::string("expected '") + c + "'");
    }

    PyValue value() {
        skip_space();
        if (pos_ >= src_.size()) fail("unexpected end of header");
        const size_t start = pos_;
        PyValue v;
        const char c = src_[pos_];
        if (c == '\'' || c == '"') {
            v.kind = PyValue::Str;
            v.str = string_literal();
        } else if (c == '(' || c == '[') {
            ++pos_;
            const char close = c == '(' ? ')' : ']';
            v.kind = c == '(' ? PyValue::Tuple : PyValue::List;
            bool comma = false;
            while (!accept(close)) {
                if (!v.items.empty() && !comma) fail(std::string("expected ',' or '") + close + "'");
                v.items.push_back(value());
                comma = accept(',');
            }
            // "(3)" is the integer 3, not a tuple: Python needs the comma.
            if (v.kind == PyValue::Tuple && v.items.size() == 1 && !comma) {
                PyValue inner = std::move(v.items[0]);
                v = std::move(inner);
            }
        } else if (c == '{') {
            ++pos_;
            v.kind = PyValue::Dict;
            bool comma = false;
            while (!accept('}')) {
                if (!v.items.empty() && !comma) fail("expected ',' or '}'");
                v.items.push_back(value());
                expect(':');
                v.items.push_back(value());
                comma = accept(',');
            }
        } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
            v.kind = PyValue::Int;
            v.num = integer();
        } else if (word("True")) {
            v.kind = PyValue::Bool;
            v.num = 1;
        } else if (word("False")) {
            v.kind = PyValue::Bool;
        } else if (word("None")) {
            v.kind = PyValue::None;
        } else {
            fail("expected a Python literal");
        }
        v.text = src_.substr(start, pos_ - start);
        return v;
    }

    bool word(const char* w) {
        const size_t n = std::strlen(w);
        if (src_.compare(pos_, n, w) != 0) return false;
        const char next = pos_ + n < src_.size() ? src_[pos_ + n] : ' ';
        if (std::isalnum(static_cast<unsigned char>(next)) || next == '_') return false;
        pos_ += n;
        return true;
    }

    std::string string_literal() {
        const char quote = src_[pos_++];
        std::string out;
        while (true) {
            if (pos_ >= src_.size() || src_[pos_] == '\n') fail("unterminated string");
            char ch = src_[pos_++];
            if (ch == quote) return out;
            if (ch == '\\') {
                if (pos_ >= src_.size()) fail("unterminated string");
                ch = src_[pos_++];
                if (ch == 'n') ch = '\n';
                else if (ch == 't') ch = '\t';
            }
            out += ch;
        }
    }

    int64_t integer() {
        bool negative = false;
        if (src_[pos_] == '-' || src_[pos_] == '+') negative = src_[pos_++] == '-';
        skip_space();
        if (pos_ >= src_.size() || !std::isdigit(static_cast<unsigned char>(src_[pos_]))) fail("expected digits");
        uint64_t mag = 0;
        while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
            if (src_[pos_] != '_') {
                const uint64_t d = static_cast<uint64_t>(src_[pos_] - '0');
                if (mag > (uint64_t(std::numeric_limits<int64_t>::max()) - d) / 10) fail("integer out of range");
                mag = mag * 10 + d;
            }
            ++pos_;
        }
        if (pos_ < src_.size() && (src_[pos_] == 'L' || src_[pos_] == 'l')) ++pos_;  // Python 2 long suffix
        return negative ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
    }

    const std::string& src_;
    const std::string& source_;
    size_t pos_ = 0;
};

// ---- The header: dtype, order, shape -------------------------------------------------------------------------

struct NpyHeader {
    NpyType type = NpyType::U8;
    bool big_endian = false;  ///< stored big-endian with items wider than one byte: swap on read
    std::vector<int64_t> shape;
    uint64_t data_offset = 0;  ///< preamble + header length
    uint64_t data_bytes = 0;
};

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

const std::string kConvertHint = "convert it to one of bool, int8-64, uint8-64, float16/32/64";

/// Maps a descr string ('<f4', '|u1', '>i8', ...) to a type; throws with a conversion hint for the rest.
void parse_descr(const std::string& descr, NpyHeader& h, const std::string& source) {
    size_t at = 0;
    char order = '=';
    if (!descr.empty() && std::strchr("<>|=", descr[0])) order = descr[at++];
    const char kind = at < descr.size() ? descr[at++] : '\0';
    const std::string size = descr.substr(at);
    const std::string what = source + ": dtype '" + descr + "' ";
    switch (kind) {
    case 'O':
        throw InputError(what + "holds pickled Python objects, which are not read; save a numeric array, e.g. " +
                         "np.save(path, np.asarray(x, dtype=np.float32))");
    case 'U': case 'S': case 'a':
        throw InputError(what + "is a string type; save a numeric array (e.g. class indices as np.int64)");
    case 'V':
        throw InputError(what + "is a raw or structured record type; save each field as its own array");
    case 'c':
        throw InputError(what + "is complex; " + kConvertHint + " (e.g. np.abs(x) or x.real)");
    case 'M': case 'm':
        throw InputError(what + "is a date or time type; " + kConvertHint);
    default: break;
    }
    static const std::map<std::string, NpyType> types = {
        {"b1", NpyType::Bool}, {"i1", NpyType::I8},  {"u1", NpyType::U8},  {"i2", NpyType::I16},
        {"u2", NpyType::U16},  {"i4", NpyType::I32}, {"u4", NpyType::U32}, {"i8", NpyType::I64},
        {"u8", NpyType::U64},  {"f2", NpyType::F16}, {"f4", NpyType::F32}, {"f8", NpyType::F64}};
    const auto it = types.find(std::string(1, kind) + size);
    if (it == types.end()) throw InputError(what + "is not supported; " + kConvertHint + ", e.g. x.astype(np.float32)");
    h.type = it->second;
    h.big_endian = order == '>' && npy_type_size(h.type) > 1;
}

/// Interprets the header dict text (numpy's rules: exactly the keys 'descr', 'fortran_order', 'shape').
void parse_header_dict(const std::string& text, NpyHeader& h, const std::string& source) {
    const PyValue dict = PyParser(text, source).parse_all();
    if (dict.kind != PyValue::Dict) throw InputError(source + ": bad .npy header (not a dict: " + dict.text + ")");
    const PyValue* descr = nullptr;
    const PyValue* fortran = nullptr;
    const PyValue* shape = nullptr;
    for (size_t i = 0; i < dict.items.size(); i += 2) {
        const PyValue& key = dict.items[i];
        const PyValue* value = &dict.items[i + 1];
        if (key.kind == PyValue::Str && key.str == "descr") descr = value;
        else if (key.kind == PyValue::Str && key.str == "fortran_order") fortran = value;
        else if (key.kind == PyValue::Str && key.str == "shape") shape = value;
        else throw InputError(source + ": bad .npy header (unexpected key " + key.text + " in " + dict.text + ")");
    }
    if (!descr || !fortran || !shape) {
        throw InputError(source + ": bad .npy header (expected the keys 'descr', 'fortran_order' and 'shape', got " +
                         dict.text + ")");
    }
    if (descr->kind == PyValue::List) {
        throw InputError(source + ": structured dtype " + descr->text +
                         " is not supported; save each field as its own array");
    }
    if (descr->kind != PyValue::Str) {
        throw InputError(source + ": bad .npy header ('descr' must be a string like '<f4', got " + descr->text + ")");
    }
    if (fortran->kind != PyValue::Bool) {
        throw InputError(source + ": bad .npy header ('fortran_order' must be True or False, got " + fortran->text + ")");
    }
    if (shape->kind != PyValue::Tuple) {
        throw InputError(source + ": bad .npy header ('shape' must be a tuple of integers like (3,), got " +
                         shape->text + ")");
    }
    for (const PyValue& d : shape->items) {
        if (d.kind != PyValue::Int) {
            throw InputError(source + ": bad .npy header ('shape' must be a tuple of integers, got " + shape->text + ")");
        }
        if (d.num < 0) throw InputError(source + ": bad .npy header (negative dimension in shape " + shape->text + ")");
        h.shape.push_back(d.num);
    }
    parse_descr(descr->str, h, source);
    if (fortran->num && h.shape.size() > 1) {
        throw InputError(source + ": Fortran-order (column-major) array of shape " + shape_text(h.shape) +
                         " is not supported; save a C-order copy: np.save(path, np.ascontiguousarray(x))");
    }
    // A zero dimension makes the array empty whatever the others are; otherwise the byte size must fit.
    h.data_bytes = npy_type_size(h.type);
    if (std::find(h.shape.begin(), h.shape.end(), 0) != h.shape.end()) h.data_bytes = 0;
    for (int64_t d : h.shape) {
        if (h.data_bytes == 0) break;
        if (h.data_bytes > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(d)) {
            throw InputError(source + ": shape " + shape_text(h.shape) + " of " + npy_type_name(h.type) +
                             " is too large (its byte size overflows 64 bits)");
        }
        h.data_bytes *= uint64_t(d);
    }
}

/// Reads the preamble and header through `read` (which returns fewer bytes than asked only at the end), and
/// checks that `total` bytes hold exactly the header and the data. `holder` is "file" or "member".
NpyHeader read_header(const std::function<size_t(uint8_t*, size_t)>& read, uint64_t total,
                      const std::string& source, const char* holder) {
    uint8_t pre[12] = {};
    const size_t got = read(pre, 8);
    if (got < kMagicLen || std::memcmp(pre, kMagic, kMagicLen) != 0) {
        static const char hex[] = "0123456789abcdef";
        std::string start;
        for (size_t i = 0; i < std::min<size_t>(got, kMagicLen); ++i) {
            start += std::string(i ? " " : "") + hex[pre[i] >> 4] + hex[pre[i] & 15];
        }
        throw InputError(source + ": not a NumPy .npy " + holder + " (expected the magic string \\x93NUMPY, got " +
                         (got ? "bytes " + start : std::string("an empty ") + holder) + ")");
    }
    const std::string cut = source + ": truncated .npy header (the " + holder + " ends inside the preamble)";
    if (got < 8) throw InputError(cut);
    const int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0) {
        throw InputError(source + ": unsupported .npy format version " + std::to_string(major) + "." +
                         std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
    }
    // Version 1.0 has a 2-byte header length, 2.0 and 3.0 (UTF-8 header) a 4-byte one; little-endian.
    const size_t prefix = major == 1 ? 10 : 12;
    if (read(pre + 8, prefix - 8) < prefix - 8) throw InputError(cut);
    uint64_t hlen = 0;
    for (size_t i = prefix; i-- > 8;) hlen = hlen << 8 | pre[i];
    if (prefix + hlen > total) {
        throw InputError(source + ": truncated .npy header (header length " + std::to_string(hlen) + " from byte " +
                         std::to_string(prefix) + " goes beyond the end of the " + holder + " at byte " +
                         std::to_string(total) + ")");
    }
    if (hlen > kMaxHeaderLen) {
        throw InputError(source + ": implausible .npy header length " + std::to_string(hlen) + " (more than 1 MiB)");
    }
    std::string text(hlen, '\0');
    if (read(reinterpret_cast<uint8_t*>(&text[0]), hlen) != hlen) {
        throw InputError(source + ": truncated .npy header (the " + holder + " ends inside it)");
    }
    NpyHeader h;
    parse_header_dict(text, h, source);
    h.data_offset = prefix + hlen;
    const uint64_t held = total - h.data_offset;
    const std::string what = "shape " + shape_text(h.shape) + " of " + npy_type_name(h.type) + " needs " +
                             std::to_string(h.data_bytes) + " data bytes after the " + std::to_string(h.data_offset) +
                             "-byte header";
    if (held < h.data_bytes) {
        throw InputError(source + ": truncated .npy data: " + what + ", the " + holder + " holds " +
                         std::to_string(held));
    }
    if (held > h.data_bytes) {
        throw InputError(source + ": " + std::to_string(held - h.data_bytes) + " bytes of trailing data: " + what +
                         ", the " + holder + " holds " + std::to_string(held) + " (expected it to end at byte " +
                         std::to_string(h.data_offset + h.data_bytes) + ")");
    }
    return h;
}

template <typename U, typename Swap>
void swap_each(uint8_t* p, uint64_t n, Swap swap) {
    for (uint64_t i = 0; i < n; ++i) {
        U v;
        std::memcpy(&v, p + i * sizeof(U), sizeof(U));
        v = swap(v);
        std::memcpy(p + i * sizeof(U), &v, sizeof(U));
    }
}

/// Big-endian items of `item` bytes to little-endian, in place.
void swap_bytes(uint8_t* p, uint64_t bytes, size_t item) {
    if (item == 2) swap_each<uint16_t>(p, bytes / 2, [](uint16_t v) { return __builtin_bswap16(v); });
    if (item == 4) swap_each<uint32_t>(p, bytes / 4, [](uint32_t v) { return __builtin_bswap32(v); });
    if (item == 8) swap_each<uint64_t>(p, bytes / 8, [](uint64_t v) { return __builtin_bswap64(v); });
}

/// A heap buffer for `bytes` data bytes (at least one, so `data` is never null), aligned for any item type.
std::shared_ptr<uint8_t> allocate(uint64_t bytes, const std::string& source) {
    try {
        return std::shared_ptr<uint8_t>(new uint8_t[std::max<uint64_t>(bytes, 1)], std::default_delete<uint8_t[]>());
    } catch (const std::bad_alloc&) {
        throw InputError(source + ": cannot allocate " + std::to_string(bytes) + " bytes for the array");
    }
}

NpyArray make_array(const NpyHeader& h, std::string source) {
    NpyArray a;
    a.type = h.type;
    a.shape = h.shape;
    a.bytes = static_cast<size_t>(h.data_bytes);
    a.source = std::move(source);
    return a;
}

struct Fd {
    int fd = -1;
    ~Fd() { if (fd >= 0) ::close(fd); }
};

// ---- libzip --------------------------------------------------------------------------------------------------

struct ZipDiscard { void operator()(zip_t* z) const { zip_discard(z); } };
struct ZipFclose { void operator()(zip_file_t* f) const { zip_fclose(f); } };
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;

ZipPtr open_zip(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
    if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, expected a .npz file");
    if (!S_ISREG(st.st_mode)) throw InputError(path + ": not a regular file, expected a .npz file");
    int code = 0;
    zip_t* z = zip_open(path.c_str(), ZIP_RDONLY, &code);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, code);
        const std::string msg = zip_error_strerror(&e);
        zip_error_fini(&e);
        if (code == ZIP_ER_NOZIP) {
            throw InputError(path + ": not a .npz file (not a zip archive; libzip: " + msg + ")");
        }
        throw InputError(path + ": cannot read the .npz (zip) archive (libzip: " + msg + ")");
    }
    return ZipPtr(z);
}

std::vector<std::string> names_of(zip_t* z) {
    std::vector<std::string> names;
    const zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        const char* raw = zip_get_name(z, static_cast<zip_uint64_t>(i), 0);
        if (!raw) continue;
        std::string name = raw;
        if (name.empty() || name.back() == '/') continue;
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
        names.push_back(name);
    }
    return names;
}

/// "'images', 'labels'" or "no arrays", for messages.
std::string names_text(const std::vector<std::string>& names) {
    if (names.empty()) return "no arrays";
    std::string text;
    for (const std::string& n : names) text += (text.empty() ? "'" : ", '") + n + "'";
    return text;
}

std::string lower_extension(const std::string& path) {
    const size_t dot = path.find_last_of('.');
    const size_t slash = path.find_last_of('/');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string ext = path.substr(dot);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return ext;
}

}  // namespace

const char* npy_type_name(NpyType t) {
    switch (t) {
    case NpyType::Bool: return "bool";
    case NpyType::I8: return "int8";
    case NpyType::U8: return "uint8";
    case NpyType::I16: return "int16";
    case NpyType::U16: return "uint16";
    case NpyType::I32: return "int32";
    case NpyType::U32: return "uint32";
    case NpyType::I64: return "int64";
    case NpyType::U64: return "uint64";
    case NpyType::F16: return "float16";
    case NpyType::F32: return "float32";
    case NpyType::F64: return "float64";
    }
    return "unknown";
}

size_t npy_type_size(NpyType t) {
    switch (t) {
    case NpyType::Bool: case NpyType::I8: case NpyType::U8: return 1;
    case NpyType::I16: case NpyType::U16: case NpyType::F16: return 2;
    case NpyType::I32: case NpyType::U32: case NpyType::F32: return 4;
    case NpyType::I64: case NpyType::U64: case NpyType::F64: return 8;
    }
    return 1;
}

int64_t NpyArray::count() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

NpyArray read_npy(const std::string& path) {
    Fd f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block the open
    if (f.fd < 0) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st;
    if (::fstat(f.fd, &st) != 0) throw InputError(path + ": cannot stat (" + std::strerror(errno) + ")");
    if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, expected a .npy file");
    if (!S_ISREG(st.st_mode)) throw InputError(path + ": not a regular file, expected a .npy file");
    const uint64_t total = static_cast<uint64_t>(st.st_size);

    // pread from `pos` until `n` bytes or the end of the file.
    uint64_t pos = 0;
    const auto read_at = [&](uint8_t* dst, size_t n) -> size_t {
        size_t done = 0;
        while (done < n) {
            const ssize_t r = ::pread(f.fd, dst + done, n - done, static_cast<off_t>(pos));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw InputError(path + ": read error (" + std::strerror(errno) + ")");
            if (r == 0) break;
            done += static_cast<size_t>(r);
            pos += static_cast<uint64_t>(r);
        }
        return done;
    };
    const NpyHeader h = read_header(read_at, total, path, "file");
    NpyArray a = make_array(h, path);
    const size_t item = npy_type_size(h.type);

    if (!h.big_endian && h.data_offset % item == 0) {
        void* base = ::mmap(nullptr, static_cast<size_t>(total), PROT_READ, MAP_SHARED, f.fd, 0);
        if (base == MAP_FAILED) throw InputError(path + ": cannot memory-map (" + std::strerror(errno) + ")");
        a.owner = std::shared_ptr<const void>(base, [total](const void* p) {
            ::munmap(const_cast<void*>(p), static_cast<size_t>(total));
        });
        a.data = static_cast<const uint8_t*>(base) + h.data_offset;
        a.mapped = true;
        return a;
    }
    // Big-endian (or an item misaligned in the file, which numpy never writes): read into memory.
    std::shared_ptr<uint8_t> buf = allocate(h.data_bytes, path);
    pos = h.data_offset;
    if (read_at(buf.get(), static_cast<size_t>(h.data_bytes)) != h.data_bytes) {
        throw InputError(path + ": the file shrank while being read");
    }
    if (h.big_endian) swap_bytes(buf.get(), h.data_bytes, item);
    a.data = buf.get();
    a.owner = std::move(buf);
    return a;
}

std::vector<std::string> npz_names(const std::string& path) {
    const ZipPtr z = open_zip(path);
    return names_of(z.get());
}

NpyArray read_npz(const std::string& path, const std::string& name) {
    const ZipPtr z = open_zip(path);
    const std::string source = path + ":" + name;
    zip_int64_t index = zip_name_locate(z.get(), (name + ".npy").c_str(), 0);
    if (index < 0 && !name.empty()) index = zip_name_locate(z.get(), name.c_str(), 0);
    if (index < 0) {
        throw InputError(path + ": no array '" + name + "' in the archive (it holds " + names_text(names_of(z.get())) +
                         ")");
    }
    const zip_uint64_t idx = static_cast<zip_uint64_t>(index);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z.get(), idx, 0, &st) != 0) {
        throw InputError(source + ": cannot read the member's entry (libzip: " + zip_strerror(z.get()) + ")");
    }
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
        throw InputError(source + ": the member is encrypted; save the archive with np.savez or np.savez_compressed");
    }
    if ((st.valid & ZIP_STAT_COMP_METHOD) && !zip_compression_method_supported(st.comp_method, 0)) {
        throw InputError(source + ": the member uses zip compression method " + std::to_string(st.comp_method) +
                         ", which libzip cannot read; save the archive with np.savez or np.savez_compressed");
    }
    if (!(st.valid & ZIP_STAT_SIZE)) throw InputError(source + ": the archive does not record the member's size");
    if ((st.valid & ZIP_STAT_COMP_SIZE) && (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method != ZIP_CM_STORE &&
        st.size > st.comp_size * kMaxDeflateRatio + 1024) {
        throw InputError(source + ": corrupt archive (the member claims " + std::to_string(st.size) +
                         " bytes from " + std::to_string(st.comp_size) + " compressed bytes)");
    }
    std::unique_ptr<zip_file_t, ZipFclose> file(zip_fopen_index(z.get(), idx, 0));
    if (!file) throw InputError(source + ": cannot open the member (libzip: " + zip_strerror(z.get()) + ")");

    // zip_fread until `n` bytes or the end of the member; libzip checks the CRC when it reaches the end.
    const auto read = [&](uint8_t* dst, size_t n) -> size_t {
        size_t done = 0;
        while (done < n) {
            const zip_int64_t r = zip_fread(file.get(), dst + done, n - done);
            if (r < 0) {
                throw InputError(source + ": corrupt member (libzip: " +
                                 zip_error_strerror(zip_file_get_error(file.get())) + ")");
            }
            if (r == 0) break;
            done += static_cast<size_t>(r);
        }
        return done;
    };
    const NpyHeader h = read_header(read, st.size, source, "member");
    NpyArray a = make_array(h, source);
    std::shared_ptr<uint8_t> buf = allocate(h.data_bytes, source);
    if (read(buf.get(), static_cast<size_t>(h.data_bytes)) != h.data_bytes) {
        throw InputError(source + ": corrupt member (its data ends before the " + std::to_string(st.size) +
                         " bytes the archive records)");
    }
    uint8_t extra = 0;
    if (read(&extra, 1) != 0) {
        throw InputError(source + ": corrupt member (it holds more than the " + std::to_string(st.size) +
                         " bytes the archive records)");
    }
    if (h.big_endian) swap_bytes(buf.get(), h.data_bytes, npy_type_size(h.type));
    a.data = buf.get();
    a.owner = std::move(buf);
    return a;
}

NpyArray read_array(const std::string& path, const std::string& name) {
    const std::string ext = lower_extension(path);
    if (ext == ".npy") return read_npy(path);
    if (ext == ".npz") {
        if (name.empty()) {
            throw InputError(path + ": a .npz archive needs the name of the array to read (it holds " +
                             names_text(npz_names(path)) + ")");
        }
        return read_npz(path, name);
    }
    throw InputError(path + ": expected a .npy file or a .npz archive (by its extension), got '" + ext + "'");
}

}  // namespace dcs
