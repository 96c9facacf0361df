// Tests runtime/npy_reader.cpp. Reference files are written by numpy (/usr/bin/python3, numpy 1.24) with the
// raw element bytes beside each (a.astype(little-endian).tobytes()); broken files are crafted here.
#include "runtime/npy_reader.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "support/process.hpp"

using dcs::InputError;
using dcs::NpyArray;
using dcs::NpyType;
using dcs::test::TempDir;
using Bytes = std::string;

namespace {

/// Writes the reference arrays with numpy into `dir`; every array `x` has its raw bytes in `x.raw`.
const char* kMakeScript = R"PY(
import sys, os, numpy as np
d = sys.argv[1]
def save(name, a, raw=None):
    np.save(os.path.join(d, name + '.npy'), a)
    raw_bytes = (raw if raw is not None else a)
    raw_bytes = raw_bytes.astype(raw_bytes.dtype.newbyteorder('<')).tobytes()
    open(os.path.join(d, name + '.raw'), 'wb').write(raw_bytes)
rng = np.random.default_rng(23)
types = ['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64',
         'float16', 'float32', 'float64']
for t in types:
    if t == 'bool':
        a = rng.integers(0, 2, (3, 5)).astype(bool)
    elif t.startswith('float'):
        a = rng.normal(size=(3, 5)).astype(t)
    else:
        info = np.iinfo(t)
        a = rng.integers(info.min, info.max, (3, 5), dtype=t, endpoint=True)
    save('le_' + t, a)
    save('be_' + t, a.astype(a.dtype.newbyteorder('>')), a)
images = rng.integers(0, 256, (4, 1, 6, 7), dtype=np.uint8)
labels = np.arange(4, dtype=np.int64)
save('images', images)
save('labels', labels)
save('scalar', np.array(3.5, dtype=np.float32))
save('onedim', np.linspace(0, 1, 11, dtype=np.float32))
save('empty', np.zeros((0, 3), dtype=np.float32))
for v in [(2, 0), (3, 0)]:
    with open(os.path.join(d, 'v%d.npy' % v[0]), 'wb') as f:
        np.lib.format.write_array(f, images, version=v)
np.save(os.path.join(d, 'big.npy'), np.zeros(32 << 20, dtype=np.uint8))
np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(rng.normal(size=(3, 4)).astype(np.float32)))
np.save(os.path.join(d, 'object.npy'), np.array([1, 'a', None], dtype=object), allow_pickle=True)
np.save(os.path.join(d, 'structured.npy'), np.zeros(3, dtype=[('a', '<i4'), ('b', '<f4')]))
np.save(os.path.join(d, 'string.npy'), np.array(['cat', 'dog']))
np.save(os.path.join(d, 'complex.npy'), np.zeros(3, dtype=np.complex64))
big_f32 = rng.normal(size=(50, 40)).astype(np.float32)
save('big_f32', big_f32)
np.savez(os.path.join(d, 'stored.npz'), images=images, labels=labels)
np.savez_compressed(os.path.join(d, 'deflated.npz'), images=images, labels=labels,
                    be=labels.astype('>i8'), big_f32=big_f32)
)PY";

class NpyReader : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        const auto r = dcs::test::run_process({"/usr/bin/python3", "-c", kMakeScript, dir_->path.string()}, 120);
        ASSERT_EQ(r.status, 0) << r.err;
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }
    static std::string file(const std::string& name) { return dir_->file(name); }
    static Bytes raw(const std::string& name) { return dcs::test::slurp(file(name + ".raw")); }
    static Bytes bytes_of(const NpyArray& a) { return Bytes(reinterpret_cast<const char*>(a.data), a.bytes); }

    static TempDir* dir_;
};
TempDir* NpyReader::dir_ = nullptr;

/// A .npy file: the preamble of `version`, the header dict `dict` padded with spaces to a multiple of 64
/// (preamble included) and ended by '\n', then `data`.
Bytes npy_file(const std::string& dict, const Bytes& data, int version = 1) {
    const size_t prefix = version == 1 ? 10 : 12;
    Bytes header = dict;
    while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    Bytes out = std::string("\x93NUMPY", 6) + char(version) + char(0);
    for (size_t i = 0; i < prefix - 8; ++i) out += char((header.size() >> (8 * i)) & 0xff);
    return out + header + data;
}

const std::string kF4x3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";

/// Runs `fn`, expecting an InputError whose one-line message holds every string in `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
    try {
        fn();
        ADD_FAILURE() << "no InputError; expected one holding '" << parts.front() << "'";
    } catch (const InputError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
}

/// Bytes read by read()/pread() calls of this process so far (Linux /proc/self/io "rchar").
long long read_chars() {
    std::ifstream in("/proc/self/io");
    std::string key;
    long long value = -1;
    while (in >> key >> value) {
        if (key == "rchar:") return value;
    }
    return -1;
}

TEST_F(NpyReader, EveryTypeLittleAndBigEndianMatchesNumpyBytes) {
    const std::vector<std::pair<std::string, NpyType>> types = {
        {"bool", NpyType::Bool}, {"int8", NpyType::I8},      {"uint8", NpyType::U8},     {"int16", NpyType::I16},
        {"uint16", NpyType::U16}, {"int32", NpyType::I32},   {"uint32", NpyType::U32},   {"int64", NpyType::I64},
        {"uint64", NpyType::U64}, {"float16", NpyType::F16}, {"float32", NpyType::F32}, {"float64", NpyType::F64}};
    for (const auto& [name, type] : types) {
        EXPECT_STREQ(dcs::npy_type_name(type), name.c_str());
        for (const std::string order : {"le_", "be_"}) {
            SCOPED_TRACE(order + name);
            const NpyArray a = dcs::read_npy(file(order + name + ".npy"));
            EXPECT_EQ(a.type, type);
            EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 5}));
            EXPECT_EQ(a.count(), 15);
            EXPECT_EQ(a.bytes, 15 * dcs::npy_type_size(type));
            EXPECT_EQ(bytes_of(a), raw(order + name));
            EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % dcs::npy_type_size(type), 0u);
            // Single-byte types are mapped whatever their byte-order mark; wider big-endian ones are swapped.
            EXPECT_EQ(a.mapped, order == "le_" || dcs::npy_type_size(type) == 1);
            EXPECT_EQ(a.source, file(order + name + ".npy"));
        }
    }
}

TEST_F(NpyReader, ShapesVersionsAndEmptyArrays) {
    const NpyArray images = dcs::read_array(file("images.npy"));
    EXPECT_EQ(images.shape, (std::vector<int64_t>{4, 1, 6, 7}));
    EXPECT_EQ(bytes_of(images), raw("images"));
    for (const std::string v : {"v2.npy", "v3.npy"}) {
        const NpyArray a = dcs::read_npy(file(v));
        EXPECT_EQ(a.shape, images.shape) << v;
        EXPECT_EQ(bytes_of(a), raw("images")) << v;
        EXPECT_TRUE(a.mapped) << v;
    }
    const NpyArray scalar = dcs::read_npy(file("scalar.npy"));
    EXPECT_TRUE(scalar.shape.empty());
    EXPECT_EQ(scalar.count(), 1);
    float s = 0;
    ASSERT_EQ(scalar.bytes, sizeof s);
    std::memcpy(&s, scalar.data, sizeof s);
    EXPECT_EQ(s, 3.5f);
    const NpyArray onedim = dcs::read_npy(file("onedim.npy"));
    EXPECT_EQ(onedim.shape, (std::vector<int64_t>{11}));
    EXPECT_EQ(bytes_of(onedim), raw("onedim"));
    const NpyArray empty = dcs::read_npy(file("empty.npy"));
    EXPECT_EQ(empty.shape, (std::vector<int64_t>{0, 3}));
    EXPECT_EQ(empty.bytes, 0u);
    EXPECT_EQ(empty.count(), 0);
}

TEST_F(NpyReader, NpyIsMappedNotReadAndOutlivesTheArrayObject) {
    const std::string path = file("big.npy");
    const long long before = read_chars();
    ASSERT_GE(before, 0);
    NpyArray a = dcs::read_npy(path);
    const long long read = read_chars() - before;
    ASSERT_TRUE(a.mapped);
    ASSERT_EQ(a.bytes, size_t(32) << 20);
    EXPECT_LT(read, 64 * 1024) << "the reader read " << read << " bytes of a 32 MiB file";
    // The mapping is of this file, and the data pointer lies inside it.
    std::ifstream maps("/proc/self/maps");
    std::string line;
    bool found = false;
    while (std::getline(maps, line)) {
        if (line.size() < path.size() || line.compare(line.size() - path.size(), path.size(), path) != 0) continue;
        unsigned long long lo = 0, hi = 0;
        std::sscanf(line.c_str(), "%llx-%llx", &lo, &hi);
        const auto p = reinterpret_cast<uintptr_t>(a.data);
        found = found || (p >= lo && p + a.bytes <= hi);
    }
    EXPECT_TRUE(found) << "no mapping of " << path << " holds the data";
    // The owner alone keeps the data alive.
    std::shared_ptr<const void> owner = a.owner;
    const uint8_t* data = a.data;
    a = NpyArray();
    EXPECT_EQ(data[(32 << 20) - 1], 0);
}

TEST_F(NpyReader, NpzStoredAndDeflatedMembers) {
    for (const std::string name : {"stored.npz", "deflated.npz"}) {
        SCOPED_TRACE(name);
        const std::string path = file(name);
        const std::vector<std::string> names = dcs::npz_names(path);
        ASSERT_GE(names.size(), 2u);
        EXPECT_EQ(names[0], "images");
        EXPECT_EQ(names[1], "labels");
        const NpyArray images = dcs::read_npz(path, "images");
        EXPECT_EQ(images.type, NpyType::U8);
        EXPECT_EQ(images.shape, (std::vector<int64_t>{4, 1, 6, 7}));
        EXPECT_EQ(bytes_of(images), raw("images"));
        EXPECT_EQ(images.source, path + ":images");
        EXPECT_FALSE(images.mapped);
        const NpyArray labels = dcs::read_array(path, "labels");
        EXPECT_EQ(labels.type, NpyType::I64);
        EXPECT_EQ(bytes_of(labels), raw("labels"));
        EXPECT_EQ(bytes_of(dcs::read_npz(path, "labels.npy")), raw("labels"));  // the member's own name works too
    }
    const NpyArray be = dcs::read_npz(file("deflated.npz"), "be");
    EXPECT_EQ(be.type, NpyType::I64);
    EXPECT_EQ(bytes_of(be), raw("labels"));
    EXPECT_EQ(bytes_of(dcs::read_npz(file("deflated.npz"), "big_f32")), raw("big_f32"));
}

TEST_F(NpyReader, HeaderSyntaxThatNumpyAccepts) {
    TempDir d;
    const Bytes data(12, '\0');
    const std::vector<std::string> dicts = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,),}",
        "{ 'shape' : ( 3 , ) ,\t'fortran_order':False,'descr':'<f4' }",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (3,)}",  // Fortran order is C order at rank 1
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,)}",  // Python 2 writers
        "{'descr': '=f4', 'fortran_order': False, 'shape': (1, 3, 1)}",
    };
    for (size_t i = 0; i < dicts.size(); ++i) {
        const std::string path = d.write("ok" + std::to_string(i) + ".npy", npy_file(dicts[i], data, i % 2 ? 2 : 1));
        const NpyArray a = dcs::read_npy(path);
        EXPECT_EQ(a.type, NpyType::F32) << dicts[i];
        EXPECT_EQ(a.count(), 3) << dicts[i];
    }
    // Any padding: a 16-byte-aligned header as old numpy wrote it, and one with no padding but the newline.
    Bytes unpadded = std::string("\x93NUMPY\x01\x00", 8) + char(kF4x3.size() + 1) + char(0) + kF4x3 + "\n" + data;
    EXPECT_EQ(dcs::read_npy(d.write("unpadded.npy", unpadded)).count(), 3);
    // A scalar: "()"; a misaligned float32 offset (not written by numpy) is read into memory.
    Bytes scalar = std::string("\x93NUMPY\x01\x00", 8);
    const std::string sdict = "{'descr': '<f4', 'fortran_order': False, 'shape': ()}\n";
    scalar += char(sdict.size()) + std::string(1, '\0') + sdict + Bytes(4, '\x01');
    const NpyArray s = dcs::read_npy(d.write("scalar.npy", scalar));
    EXPECT_TRUE(s.shape.empty());
    EXPECT_EQ(s.bytes, 4u);
    EXPECT_EQ((10 + sdict.size()) % 4 != 0, !s.mapped);
    EXPECT_EQ(bytes_of(s), Bytes(4, '\x01'));
}

TEST_F(NpyReader, UnsupportedDtypesAndOrderSayWhatToDo) {
    expect_error([] { dcs::read_npy(file("fortran.npy")); },
                 {file("fortran.npy"), "Fortran-order", "(3, 4)", "np.ascontiguousarray"});
    expect_error([] { dcs::read_npy(file("object.npy")); }, {file("object.npy"), "'|O'", "pickled"});
    expect_error([] { dcs::read_npy(file("structured.npy")); }, {file("structured.npy"), "structured", "each field"});
    expect_error([] { dcs::read_npy(file("string.npy")); }, {file("string.npy"), "'<U3'", "string"});
    expect_error([] { dcs::read_npy(file("complex.npy")); }, {file("complex.npy"), "'<c8'", "complex"});
}

TEST_F(NpyReader, BrokenNpyFiles) {
    TempDir d;
    const auto check = [&](const std::string& name, const Bytes& content, const std::vector<std::string>& parts) {
        SCOPED_TRACE(name);
        const std::string path = d.write(name, content);
        std::vector<std::string> all = {path};
        all.insert(all.end(), parts.begin(), parts.end());
        expect_error([&] { dcs::read_npy(path); }, all);
    };
    check("truncated.npy", npy_file(kF4x3, Bytes(10, 'x')), {"truncated .npy data", "needs 12 data bytes", "holds 10"});
    check("trailing.npy", npy_file(kF4x3, Bytes(15, 'x')), {"3 bytes of trailing data", "needs 12", "holds 15"});
    check("header_cut.npy", npy_file(kF4x3, "").substr(0, 30), {"truncated .npy header", "header length 118"});
    check("preamble_cut.npy", Bytes("\x93NUMPY\x02\x00\x01", 9), {"truncated .npy header", "preamble"});
    check("magic_only.npy", Bytes("\x93NUMPY", 6), {"truncated .npy header"});
    check("bad_magic.npy", "\x93NUMPX" + npy_file(kF4x3, Bytes(12, 'x')).substr(6), {"magic", "93 4e 55 4d 50 58"});
    check("text.npy", "label,value\n1,2\n", {"not a NumPy .npy file", "6c 61 62 65 6c 2c"});
    check("empty.npy", "", {"not a NumPy .npy file", "empty file"});
    check("version.npy", "\x93NUMPY\x04" + npy_file(kF4x3, Bytes(12, 'x')).substr(7), {"version 4.0"});
    const std::vector<std::pair<std::string, std::string>> dicts = {
        {"{'descr': '<f4', 'fortran_order': False}", "expected the keys"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}", "expected ',' or '}'"},
        {"['descr', '<f4']", "not a dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", "unexpected key 'extra'"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", "'fortran_order' must be True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", "'shape' must be a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 'a')}", "'shape' must be a tuple of integers"},
        {"{'descr': 4, 'fortran_order': False, 'shape': (3,)}", "'descr' must be a string"},
        {"{'descr': '<f4', 'fortran_order': Flase, 'shape': (3,)}", "expected a Python literal"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (3,)}", "expected ':'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} junk", "unexpected text after the dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,", "unexpected end of header"},
        {"{'descr': '<f3', 'fortran_order': False, 'shape': (3,)}", "dtype '<f3' is not supported"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", "negative dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", "integer out of range"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", "overflows 64 bits"},
    };
    for (size_t i = 0; i < dicts.size(); ++i) {
        check("dict" + std::to_string(i) + ".npy", npy_file(dicts[i].first, Bytes(12, 'x')), {dicts[i].second});
    }
    // A header length that runs past the end of the file (version 2.0: 4-byte length).
    Bytes beyond = npy_file(kF4x3, Bytes(12, 'x'), 2);
    beyond[11] = '\x01';
    check("beyond.npy", beyond, {"header length 16777332", "beyond the end of the file"});
    // A header that fits in the file but is absurdly long.
    check("long_header.npy", npy_file(kF4x3 + std::string(2 << 20, ' '), Bytes(12, 'x'), 2),
          {"implausible .npy header length 2097268"});
    // Missing file, directory.
    expect_error([] { dcs::read_npy("/nonexistent/x.npy"); }, {"/nonexistent/x.npy", "No such file"});
    expect_error([&] { dcs::read_npy(d.path.string()); }, {d.path.string(), "is a directory"});
    // A FIFO (nothing will ever write to it) is refused at once instead of blocking.
    ASSERT_EQ(mkfifo(d.file("fifo.npy").c_str(), 0600), 0);
    expect_error([&] { dcs::read_npy(d.file("fifo.npy")); }, {"fifo.npy", "not a regular file"});
    ASSERT_EQ(mkfifo(d.file("fifo.npz").c_str(), 0600), 0);
    expect_error([&] { dcs::read_npz(d.file("fifo.npz"), "x"); }, {"fifo.npz", "not a regular file"});
}

TEST_F(NpyReader, BrokenNpzFiles) {
    TempDir d;
    expect_error([&] { dcs::npz_names(d.write("text.npz", "images,labels\n")); }, {"text.npz", "not a zip archive"});
    expect_error([&] { dcs::read_npz(d.file("text.npz"), "images"); }, {"text.npz", "not a zip archive"});
    expect_error([] { dcs::read_npz(file("stored.npz"), "pixels"); },
                 {file("stored.npz"), "no array 'pixels'", "'images', 'labels'"});
    expect_error([] { dcs::read_array(file("stored.npz")); },
                 {file("stored.npz"), "needs the name", "'images', 'labels'"});
    expect_error([] { dcs::read_array(file("images.raw")); }, {"images.raw", "expected a .npy file or a .npz"});
    expect_error([] { dcs::read_npz("/nonexistent/d.npz", "x"); }, {"/nonexistent/d.npz", "No such file"});

    // A zip archive cut in half: its central directory is gone.
    const Bytes stored = dcs::test::slurp(file("stored.npz"));
    expect_error([&] { dcs::read_npz(d.write("cut.npz", stored.substr(0, stored.size() / 2)), "images"); },
                 {"cut.npz", "not a zip archive"});

    // One data byte flipped in the stored member: the CRC check fails when the member is read to its end.
    const size_t npy_at = stored.find("\x93NUMPY");
    ASSERT_NE(npy_at, std::string::npos);
    Bytes flipped = stored;
    flipped[npy_at + 128 + 5] ^= 0x40;  // images.npy: 128-byte header, then the data
    expect_error([&] { dcs::read_npz(d.write("crc.npz", flipped), "images"); }, {"crc.npz:images", "CRC"});

    // A byte flipped inside a deflated member's compressed data: inflation or the CRC check fails.
    const Bytes deflated = dcs::test::slurp(file("deflated.npz"));
    const size_t member = deflated.find("big_f32.npy");
    ASSERT_NE(member, std::string::npos);
    const size_t local = deflated.rfind("PK\x03\x04", member);
    ASSERT_NE(local, std::string::npos);
    const auto u16 = [&](size_t at) { return size_t(uint8_t(deflated[at])) | size_t(uint8_t(deflated[at + 1])) << 8; };
    const size_t data_at = local + 30 + u16(local + 26) + u16(local + 28);
    Bytes broken = deflated;
    broken[data_at + 200] ^= 0x10;
    expect_error([&] { dcs::read_npz(d.write("inflate.npz", broken), "big_f32"); }, {"inflate.npz:big_f32", "corrupt"});

    // A member that is not a .npy file, and a member holding a truncated .npy file (made by numpy's zipfile).
    const std::string script =
        "import zipfile, sys\n"
        "with zipfile.ZipFile(sys.argv[1], 'w') as z:\n"
        "    z.writestr('notes.txt', 'hello')\n"
        "    z.writestr('short.npy', open(sys.argv[2], 'rb').read()[:-3])\n"
        "    z.writestr('lzma.npy', open(sys.argv[2], 'rb').read(), compress_type=zipfile.ZIP_LZMA)\n";
    const auto r = dcs::test::run_process({"/usr/bin/python3", "-c", script, d.file("odd.npz"), file("labels.npy")});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(dcs::npz_names(d.file("odd.npz")), (std::vector<std::string>{"notes.txt", "short", "lzma"}));
    expect_error([&] { dcs::read_npz(d.file("odd.npz"), "notes.txt"); },
                 {"odd.npz:notes.txt", "not a NumPy .npy member"});
    expect_error([&] { dcs::read_npz(d.file("odd.npz"), "short"); },
                 {"odd.npz:short", "truncated .npy data", "needs 32", "holds 29"});
    expect_error([&] { dcs::read_npz(d.file("odd.npz"), "lzma"); }, {"odd.npz:lzma", "compression method 14"});

    // A deflated member whose central directory entry claims an impossible expansion (a zip bomb's trick).
    Bytes bomb = deflated;
    const size_t central = bomb.find(std::string("PK\x01\x02", 4));
    ASSERT_NE(central, std::string::npos);
    ASSERT_EQ(bomb.substr(central + 46, 10), "images.npy");
    bomb.replace(central + 24, 4, "\xff\xff\xff\x7f");
    expect_error([&] { dcs::read_npz(d.write("bomb.npz", bomb), "images"); },
                 {"bomb.npz:images", "claims 2147483647 bytes"});
}

}  // namespace
