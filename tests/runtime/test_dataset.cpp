// Tests runtime/dataset.cpp, runtime/idx_reader.cpp and runtime/hdf5_dataset.cpp.
#include "runtime/dataset.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#if __has_include(<hdf5.h>)
#include <hdf5.h>
#else
#include <hdf5/serial/hdf5.h>  // Debian keeps the serial headers here
#endif

#include "common/error.hpp"
#include "runtime/hdf5_dataset.hpp"
#include "runtime/idx_reader.hpp"

namespace fs = std::filesystem;
using dcs::Dataset;
using dcs::DatasetConfig;
using dcs::DatasetFormat;
using dcs::InputError;
using dcs::Preprocess;
using dcs::Subset;
using Bytes = std::vector<uint8_t>;

namespace {

const std::string kFashionDir = "/usr/share/datasets/fashion-mnist/";
const std::string kT10kImages = kFashionDir + "t10k-images-idx3-ubyte.gz";
const std::string kT10kLabels = kFashionDir + "t10k-labels-idx1-ubyte.gz";

/// A fresh directory under the system temp dir, removed with its contents at the end of the test.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "dcs_test_dataset_XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

void write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

Bytes gzip_bytes(const Bytes& raw) {
    z_stream zs;
    std::memset(&zs, 0, sizeof zs);
    EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    Bytes out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 64);
    zs.next_in = const_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

Bytes gunzip_file(const std::string& path) {
    Bytes out;
    gzFile f = gzopen(path.c_str(), "rb");
    EXPECT_NE(f, nullptr) << path;
    if (!f) return out;
    char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
    gzclose(f);
    return out;
}

/// An IDX file: magic 0 0 type ndims, big-endian dims, then `payload` as given.
Bytes idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& payload) {
    Bytes b{0, 0, type, static_cast<uint8_t>(dims.size())};
    for (uint32_t d : dims) {
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
    }
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

Bytes be_floats(const std::vector<float>& v) {
    Bytes b;
    for (float f : v) {
        uint32_t u;
        std::memcpy(&u, &f, 4);
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(u >> s));
    }
    return b;
}

Bytes iota_bytes(size_t n, uint8_t start = 0) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(start + i);
    return b;
}

DatasetConfig idx_config(const std::string& images, const std::string& labels) {
    DatasetConfig cfg;
    cfg.format = DatasetFormat::Idx;
    cfg.images = images;
    cfg.labels = labels;
    return cfg;
}

Preprocess identity() {
    Preprocess p;
    p.scale = 1.0f;
    p.mean = {0.0f};
    p.std = {1.0f};
    return p;
}

/// Expects InputError whose one-line message contains every string of `parts`.
void expect_input_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
    try {
        fn();
        ADD_FAILURE() << "expected InputError containing '" << parts.at(0) << "'";
    } catch (const InputError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
}

/// Small valid IDX pair: 4 images 1x2x3 (pixels 0..23) and labels 0..3, written raw.
struct SmallIdx {
    std::string images, labels;
    explicit SmallIdx(const TempDir& dir, const std::string& stem = "small") {
        images = dir.file(stem + "-images.idx");
        labels = dir.file(stem + "-labels.idx");
        write_file(images, idx_bytes(0x08, {4, 2, 3}, iota_bytes(24)));
        write_file(labels, idx_bytes(0x08, {4}, {0, 1, 2, 3}));
    }
};

// ---------------------------------------------------------------- HDF5 fixtures (HDF5 C API)

struct H5Writer {
    hid_t file;
    explicit H5Writer(const std::string& path) {
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
        file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        EXPECT_GE(file, 0) << path;
    }
    ~H5Writer() { H5Fclose(file); }
    void group(const std::string& name) {
        const hid_t g = H5Gcreate2(file, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        EXPECT_GE(g, 0);
        H5Gclose(g);
    }
    /// Writes `data` (in the memory type `mem`) as a dataset of file type `stored` and shape `dims`.
    void dataset(const std::string& name, const std::vector<hsize_t>& dims, hid_t stored, hid_t mem, const void* data) {
        const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
        const hid_t d = H5Dcreate2(file, name.c_str(), stored, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ASSERT_GE(d, 0) << name;
        EXPECT_GE(H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
        H5Dclose(d);
        H5Sclose(space);
    }
};

DatasetConfig h5_config(const std::string& file, const std::string& images = "", const std::string& labels = "") {
    DatasetConfig cfg;
    cfg.format = DatasetFormat::Hdf5;
    cfg.file = file;
    cfg.images = images;
    cfg.labels = labels;
    return cfg;
}

}  // namespace

// ---------------------------------------------------------------- Fashion-MNIST golden values

// Golden values computed with /usr/bin/python3 (gzip + numpy 1.24) from the Debian copy of
// Fashion-MNIST: x = frombuffer(gzip.open(f).read(), uint8)[16:].reshape(10000, 28, 28).
TEST(FashionMnist, T10kGoldenValues) {
    if (!fs::exists(kT10kImages)) GTEST_SKIP() << "Fashion-MNIST not installed at " << kFashionDir;
    const Dataset ds = Dataset::load(idx_config(kT10kImages, kT10kLabels));
    ASSERT_EQ(ds.size(), 10000);
    EXPECT_EQ(ds.channels(), 1);
    EXPECT_EQ(ds.height(), 28);
    EXPECT_EQ(ds.width(), 28);
    EXPECT_FALSE(ds.is_float());
    EXPECT_EQ(ds.images_source(), kT10kImages);

    // The first test image is an ankle boot (class 9); classes are balanced, 1000 each.
    const std::vector<int64_t> first10{9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    EXPECT_EQ(std::vector<int64_t>(ds.labels().begin(), ds.labels().begin() + 10), first10);
    EXPECT_EQ(ds.labels()[9997], 8);
    EXPECT_EQ(ds.labels()[9999], 5);
    std::vector<int> per_class(10, 0);
    for (int64_t l : ds.labels()) per_class.at(static_cast<size_t>(l))++;
    for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << c;
    EXPECT_NO_THROW(ds.check_labels(10));

    const dcs::Tensor all = ds.batch(0, 10000, identity());
    ASSERT_EQ(all.shape, (std::vector<int64_t>{10000, 1, 28, 28}));
    auto px = [&](int64_t n, int64_t y, int64_t x) { return all.data[static_cast<size_t>((n * 28 + y) * 28 + x)]; };
    const std::vector<float> row14{0,   0,   0,   0,   0,   0,   2,   4,   1,   0,   0,   0,   98,  136,
                                   110, 109, 110, 162, 135, 144, 149, 159, 167, 144, 158, 169, 119, 0};
    for (int x = 0; x < 28; ++x) EXPECT_EQ(px(0, 14, x), row14[x]) << x;
    EXPECT_EQ(px(1, 5, 14), 242.0f);
    EXPECT_EQ(px(5000, 14, 14), 198.0f);
    EXPECT_EQ(px(0, 20, 17), 255.0f);
    double sum0 = 0, sum_last = 0, total = 0;
    for (int64_t i = 0; i < 784; ++i) sum0 += all.data[i];
    for (int64_t i = 0; i < 784; ++i) sum_last += all.data[9999 * 784 + i];
    for (float v : all.data) total += v;
    EXPECT_EQ(sum0, 33456.0);
    EXPECT_EQ(sum_last, 24390.0);
    EXPECT_EQ(total, 573469082.0);

    // The DESIGN.md preprocessing; numpy float32 gives -0.81019837 for pixel 0 and the formula below.
    Preprocess fashion;
    fashion.scale = 0.00392156862745098f;
    fashion.mean = {0.2860f};
    fashion.std = {0.3530f};
    const dcs::Tensor one = ds.batch(0, 1, fashion);
    EXPECT_NEAR(one.data[14 * 28 + 0], -0.81019837f, 1e-6f);
    EXPECT_EQ(one.data[14 * 28 + 13], (136.0f * fashion.scale - 0.2860f) / 0.3530f);
}

TEST(FashionMnist, GzipAndRawCopiesGiveIdenticalBatches) {
    if (!fs::exists(kT10kImages)) GTEST_SKIP() << "Fashion-MNIST not installed at " << kFashionDir;
    TempDir dir;
    // Raw copies made with zlib's gzread, not with the reader under test; names keep no ".gz" hint
    // and the gzip copy gets a misleading name: the format is detected from the bytes.
    const std::string raw_images = dir.file("images.idx"), raw_labels = dir.file("labels.idx");
    write_file(raw_images, gunzip_file(kT10kImages));
    write_file(raw_labels, gunzip_file(kT10kLabels));
    const std::string gz_images = dir.file("images-not-named-gz.idx");
    fs::copy_file(kT10kImages, gz_images);

    const Dataset raw = Dataset::load(idx_config(raw_images, raw_labels));
    const Dataset gz = Dataset::load(idx_config(gz_images, kT10kLabels));
    EXPECT_EQ(raw.labels(), gz.labels());
    Preprocess pre;
    pre.mean = {0.2860f};
    pre.std = {0.3530f};
    const dcs::Tensor a = raw.batch(0, raw.size(), pre), b = gz.batch(0, gz.size(), pre);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_TRUE(a.data == b.data);
}

// ---------------------------------------------------------------- IDX reading

TEST(Idx, NchwUint8RawAndGzip) {
    TempDir dir;
    // 2 images, 3 channels, 2x2.
    const Bytes pixels = iota_bytes(24, 10);
    write_file(dir.file("img"), idx_bytes(0x08, {2, 3, 2, 2}, pixels));
    write_file(dir.file("img.gz"), gzip_bytes(idx_bytes(0x08, {2, 3, 2, 2}, pixels)));
    write_file(dir.file("lab"), gzip_bytes(idx_bytes(0x08, {2}, {7, 3})));
    for (const char* name : {"img", "img.gz"}) {
        const Dataset ds = Dataset::load(idx_config(dir.file(name), dir.file("lab")));
        EXPECT_EQ(ds.size(), 2);
        EXPECT_EQ(ds.channels(), 3);
        EXPECT_EQ(ds.height(), 2);
        EXPECT_EQ(ds.width(), 2);
        EXPECT_EQ(ds.labels(), (std::vector<int64_t>{7, 3}));
        const dcs::Tensor t = ds.batch(1, 1, identity());
        ASSERT_EQ(t.shape, (std::vector<int64_t>{1, 3, 2, 2}));
        for (int i = 0; i < 12; ++i) EXPECT_EQ(t.data[i], 10 + 12 + i) << name << " " << i;
    }
}

TEST(Idx, Float32ImagesAreBigEndianAndScaled) {
    TempDir dir;
    const std::vector<float> values{0.5f, -1.25f, 3.0f, 100.0f, 0.0f, 7.75f};
    write_file(dir.file("img"), idx_bytes(0x0D, {2, 1, 3}, be_floats(values)));
    write_file(dir.file("lab"), idx_bytes(0x08, {2}, {1, 0}));
    const Dataset ds = Dataset::load(idx_config(dir.file("img"), dir.file("lab")));
    EXPECT_TRUE(ds.is_float());
    Preprocess pre;
    pre.scale = 2.0f;
    pre.mean = {1.0f};
    pre.std = {4.0f};
    const dcs::Tensor t = ds.batch(0, 2, pre);
    ASSERT_EQ(t.shape, (std::vector<int64_t>{2, 1, 1, 3}));
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(t.data[i], (values[i] * 2.0f - 1.0f) / 4.0f) << i;
}

TEST(Idx, Float32ImagesMustBeFinite) {
    TempDir dir;
    write_file(dir.file("img"), idx_bytes(0x0D, {1, 1, 2}, be_floats({1.0f, std::nanf("")})));
    write_file(dir.file("lab"), idx_bytes(0x08, {1}, {0}));
    expect_input_error([&] { Dataset::load(idx_config(dir.file("img"), dir.file("lab"))); },
                       {dir.file("img"), "element 1", "finite"});
}

TEST(Idx, ConcatenatedGzipMembersAreJoined) {
    TempDir dir;
    const Bytes whole = idx_bytes(0x08, {3, 2, 2}, iota_bytes(12));
    Bytes two = gzip_bytes(Bytes(whole.begin(), whole.begin() + 9));
    const Bytes rest = gzip_bytes(Bytes(whole.begin() + 9, whole.end()));
    two.insert(two.end(), rest.begin(), rest.end());
    write_file(dir.file("img"), two);
    write_file(dir.file("lab"), idx_bytes(0x08, {3}, {0, 1, 2}));
    const Dataset ds = Dataset::load(idx_config(dir.file("img"), dir.file("lab")));
    const dcs::Tensor t = ds.batch(0, 3, identity());
    for (int i = 0; i < 12; ++i) EXPECT_EQ(t.data[i], i);
}

TEST(Idx, SignedLabelTypesAreDecoded) {
    TempDir dir;
    write_file(dir.file("img"), idx_bytes(0x08, {3, 1, 1}, {1, 2, 3}));
    // int32 big-endian labels 5, 258, -1.
    write_file(dir.file("lab"), idx_bytes(0x0C, {3}, {0, 0, 0, 5, 0, 0, 1, 2, 0xff, 0xff, 0xff, 0xff}));
    const Dataset ds = Dataset::load(idx_config(dir.file("img"), dir.file("lab")));
    EXPECT_EQ(ds.labels(), (std::vector<int64_t>{5, 258, -1}));
    expect_input_error([&] { ds.check_labels(300); }, {dir.file("lab"), "label -1", "index 2", "[0, 300)"});
}

TEST(Idx, MissingFileOrDirectoryNamesThePath) {
    TempDir dir;
    SmallIdx ok(dir);
    const std::string missing = dir.file("no-such-images.gz");
    expect_input_error([&] { Dataset::load(idx_config(missing, ok.labels)); }, {missing, "no such file"});
    expect_input_error([&] { Dataset::load(idx_config(ok.images, missing)); }, {missing, "no such file"});
    const std::string subdir = dir.file("adir");
    fs::create_directory(subdir);
    expect_input_error([&] { Dataset::load(idx_config(subdir, ok.labels)); }, {subdir, "directory"});
    expect_input_error([&] { Dataset::load(idx_config("", ok.labels)); }, {"dataset.images"});
    expect_input_error([&] { Dataset::load(idx_config(ok.images, "")); }, {"dataset.labels"});
}

TEST(Idx, UnreadableFileNamesThePath) {
    if (geteuid() == 0) GTEST_SKIP() << "root can read files without permission";
    TempDir dir;
    SmallIdx ok(dir);
    fs::permissions(ok.images, fs::perms::none);
    expect_input_error([&] { Dataset::load(idx_config(ok.images, ok.labels)); }, {ok.images, "cannot open"});
}

TEST(Idx, HeaderMustMatchTheFileLength) {
    TempDir dir;
    SmallIdx ok(dir);
    // 4 images of 2x3 = 24 bytes of data + 16 header bytes = 40; the file holds 16 + 20.
    const std::string truncated = dir.file("truncated");
    write_file(truncated, idx_bytes(0x08, {4, 2, 3}, iota_bytes(20)));
    expect_input_error([&] { Dataset::load(idx_config(truncated, ok.labels)); },
                       {truncated, "40 bytes", "holds 36 bytes", "truncated"});
    const std::string trailing = dir.file("trailing");
    write_file(trailing, idx_bytes(0x08, {4, 2, 3}, iota_bytes(27)));
    expect_input_error([&] { Dataset::load(idx_config(trailing, ok.labels)); },
                       {trailing, "40 bytes", "holds 43 bytes", "3 bytes of trailing data"});
    // The same checks apply after decompression, and the message says so.
    const std::string truncated_gz = dir.file("truncated.gz");
    write_file(truncated_gz, gzip_bytes(idx_bytes(0x08, {4, 2, 3}, iota_bytes(20))));
    expect_input_error([&] { Dataset::load(idx_config(truncated_gz, ok.labels)); },
                       {truncated_gz, "40 bytes", "after gunzip", "36 bytes"});
    // A header promising far more than any file could hold must not overflow.
    const std::string huge = dir.file("huge");
    write_file(huge, idx_bytes(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu}, iota_bytes(8)));
    expect_input_error([&] { Dataset::load(idx_config(huge, ok.labels)); }, {huge, "4294967295 x"});
    const std::string labels_short = dir.file("labels-short");
    write_file(labels_short, idx_bytes(0x08, {4}, {0, 1, 2}));
    expect_input_error([&] { Dataset::load(idx_config(ok.images, labels_short)); },
                       {labels_short, "12 bytes", "holds 11 bytes"});
}

TEST(Idx, MalformedHeaders) {
    TempDir dir;
    SmallIdx ok(dir);
    const std::string f = dir.file("bad");
    auto load_images = [&] { Dataset::load(idx_config(f, ok.labels)); };

    write_file(f, {});
    expect_input_error(load_images, {f, "too short", "at least 4 bytes"});
    write_file(f, {0, 0, 8});
    expect_input_error(load_images, {f, "too short", "holds 3"});
    write_file(f, {0x89, 'P', 'N', 'G', 0, 0, 0, 0});
    expect_input_error(load_images, {f, "not an IDX file", "0x89"});
    write_file(f, idx_bytes(0x07, {4, 2, 3}, iota_bytes(24)));
    expect_input_error(load_images, {f, "unknown IDX type code 0x07"});
    write_file(f, {0, 0, 8, 3, 0, 0, 0, 4});
    expect_input_error(load_images, {f, "3 dimensions", "16 header bytes", "holds 8 bytes"});
    write_file(f, {0, 0, 8, 0});
    expect_input_error(load_images, {f, "0 dimensions"});
    write_file(f, idx_bytes(0x08, {4, 0, 3}, {}));
    expect_input_error(load_images, {f, "dimension 1 is 0"});
    // Valid IDX, wrong content for images.
    write_file(f, idx_bytes(0x0C, {4, 1, 1}, Bytes(16, 0)));
    expect_input_error(load_images, {f, "int32", "0x08", "0x0D"});
    write_file(f, idx_bytes(0x08, {4, 6}, iota_bytes(24)));
    expect_input_error(load_images, {f, "3 dimensions (N, H, W) or 4", "got 2"});
    expect_input_error([&] { Dataset::load(idx_config(ok.labels, ok.labels)); }, {ok.labels, "label file"});
    // Valid IDX, wrong content for labels.
    expect_input_error([&] { Dataset::load(idx_config(ok.images, ok.images)); }, {ok.images, "1 dimension (N)", "got 3"});
    write_file(f, idx_bytes(0x0D, {4}, be_floats({0, 1, 2, 3})));
    expect_input_error([&] { Dataset::load(idx_config(ok.images, f)); }, {f, "float32", "integer"});
}

TEST(Idx, ImageAndLabelCountsMustAgree) {
    TempDir dir;
    SmallIdx ok(dir);
    const std::string labels5 = dir.file("labels5");
    write_file(labels5, idx_bytes(0x08, {5}, {0, 1, 2, 3, 4}));
    expect_input_error([&] { Dataset::load(idx_config(ok.images, labels5)); },
                       {labels5, "5 labels", ok.images, "4 images"});
}

TEST(Idx, CorruptGzip) {
    TempDir dir;
    SmallIdx ok(dir);
    const Bytes gz = gzip_bytes(idx_bytes(0x08, {4, 2, 3}, iota_bytes(24)));
    const std::string f = dir.file("bad.gz");
    auto load_images = [&] { Dataset::load(idx_config(f, ok.labels)); };

    write_file(f, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
    expect_input_error(load_images, {f, "gzip data is truncated"});
    write_file(f, Bytes(gz.begin(), gz.end() - 3));  // missing part of the trailer
    expect_input_error(load_images, {f, "gzip"});
    Bytes flipped = gz;
    flipped[gz.size() - 6] ^= 0xff;  // breaks the CRC
    write_file(f, flipped);
    expect_input_error(load_images, {f, "corrupt gzip data"});
    Bytes garbage = gz;
    garbage[12] ^= 0x5a;
    garbage[13] ^= 0xa5;
    write_file(f, garbage);
    expect_input_error(load_images, {f, "gzip"});
    Bytes trailing = gz;
    trailing.insert(trailing.end(), {'j', 'u', 'n', 'k'});
    write_file(f, trailing);
    expect_input_error(load_images, {f, "4 bytes of trailing data after the gzip stream"});
    write_file(f, {0x1f, 0x8b});
    expect_input_error(load_images, {f, "gzip"});
}

TEST(Idx, ReadFileBytesReportsGzip) {
    TempDir dir;
    write_file(dir.file("a"), {1, 2, 3});
    write_file(dir.file("b"), gzip_bytes({1, 2, 3}));
    bool gz = true;
    EXPECT_EQ(dcs::read_file_bytes(dir.file("a"), &gz), (Bytes{1, 2, 3}));
    EXPECT_FALSE(gz);
    EXPECT_EQ(dcs::read_file_bytes(dir.file("b"), &gz), (Bytes{1, 2, 3}));
    EXPECT_TRUE(gz);
    const dcs::IdxArray a = dcs::parse_idx(idx_bytes(0x0B, {2}, {0, 1, 0xff, 0xfe}), "mem");
    EXPECT_EQ(a.type, dcs::IdxType::I16);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{2}));
    EXPECT_EQ(a.payload.size(), 4u);
}

// ---------------------------------------------------------------- HDF5

TEST(Hdf5, Uint8NhwWithIntegerLabels) {
    TempDir dir;
    const std::string f = dir.file("data.h5");
    {
        H5Writer w(f);
        const Bytes pixels = iota_bytes(3 * 2 * 4, 5);
        w.dataset("images", {3, 2, 4}, H5T_STD_U8LE, H5T_NATIVE_UCHAR, pixels.data());
        const int32_t labels[] = {2, 0, 1};
        w.dataset("labels", {3}, H5T_STD_I32BE, H5T_NATIVE_INT32, labels);
    }
    const Dataset ds = Dataset::load(h5_config(f));  // default paths /images and /labels
    EXPECT_EQ(ds.size(), 3);
    EXPECT_EQ(ds.channels(), 1);
    EXPECT_EQ(ds.height(), 2);
    EXPECT_EQ(ds.width(), 4);
    EXPECT_FALSE(ds.is_float());
    EXPECT_EQ(ds.labels(), (std::vector<int64_t>{2, 0, 1}));
    const dcs::Tensor t = ds.batch(0, 3, identity());
    ASSERT_EQ(t.shape, (std::vector<int64_t>{3, 1, 2, 4}));
    for (int i = 0; i < 24; ++i) EXPECT_EQ(t.data[i], 5 + i);
    EXPECT_NE(ds.labels_source().find(f), std::string::npos);
}

TEST(Hdf5, Float32NchwInGroupsWithUint8Labels) {
    TempDir dir;
    const std::string f = dir.file("data.h5");
    std::vector<float> pixels(2 * 3 * 2 * 2);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = 0.25f * static_cast<float>(i) - 1.0f;
    {
        H5Writer w(f);
        w.group("/fashion");
        w.group("/fashion/test");
        w.dataset("/fashion/test/x", {2, 3, 2, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, pixels.data());
        const uint8_t labels[] = {9, 4};
        w.dataset("/fashion/test/y", {2}, H5T_STD_U8LE, H5T_NATIVE_UCHAR, labels);
    }
    const Dataset ds = Dataset::load(h5_config(f, "/fashion/test/x", "/fashion/test/y"));
    EXPECT_EQ(ds.size(), 2);
    EXPECT_EQ(ds.channels(), 3);
    EXPECT_TRUE(ds.is_float());
    EXPECT_EQ(ds.labels(), (std::vector<int64_t>{9, 4}));
    Preprocess pre;
    pre.scale = 0.5f;
    pre.mean = {0.0f, 1.0f, 2.0f};
    pre.std = {1.0f, 2.0f, 4.0f};
    const dcs::Tensor t = ds.batch(0, 2, pre);
    ASSERT_EQ(t.shape, (std::vector<int64_t>{2, 3, 2, 2}));
    for (size_t i = 0; i < pixels.size(); ++i) {
        const size_t c = (i / 4) % 3;
        EXPECT_EQ(t.data[i], (pixels[i] * 0.5f - pre.mean[c]) / pre.std[c]) << i;
    }
}

TEST(Hdf5, Float64AndInt64AreConverted) {
    TempDir dir;
    const std::string f = dir.file("data.h5");
    {
        H5Writer w(f);
        const double pixels[] = {0.5, 1.5};
        w.dataset("images", {2, 1, 1}, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, pixels);
        const int64_t labels[] = {3, 1};
        w.dataset("labels", {2}, H5T_STD_I64LE, H5T_NATIVE_INT64, labels);
    }
    const Dataset ds = Dataset::load(h5_config(f));
    EXPECT_EQ(ds.labels(), (std::vector<int64_t>{3, 1}));
    const dcs::Tensor t = ds.batch(0, 2, identity());
    EXPECT_EQ(t.data, (std::vector<float>{0.5f, 1.5f}));
}

TEST(Hdf5, ErrorsNameFileAndDataset) {
    TempDir dir;
    const std::string f = dir.file("bad.h5");
    const Bytes u8(2 * 2 * 2, 1);
    const int32_t labels2[] = {0, 1};
    {
        H5Writer w(f);
        w.group("/grp");
        w.dataset("/ok_images", {2, 2, 2}, H5T_STD_U8LE, H5T_NATIVE_UCHAR, u8.data());
        w.dataset("/ok_labels", {2}, H5T_STD_I32LE, H5T_NATIVE_INT32, labels2);
        w.dataset("/rank2", {2, 4}, H5T_STD_U8LE, H5T_NATIVE_UCHAR, u8.data());
        w.dataset("/rank5", {2, 1, 1, 2, 2}, H5T_STD_U8LE, H5T_NATIVE_UCHAR, u8.data());
        const int16_t i16[8] = {};
        w.dataset("/int16_images", {2, 2, 2}, H5T_STD_I16LE, H5T_NATIVE_INT16, i16);
        const float fl[2] = {0, 1};
        w.dataset("/float_labels", {2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fl);
        const int32_t l3[3] = {0, 1, 2};
        w.dataset("/labels3", {3}, H5T_STD_I32LE, H5T_NATIVE_INT32, l3);
        w.dataset("/labels_2d", {2, 1}, H5T_STD_I32LE, H5T_NATIVE_INT32, labels2);
        const float bad[8] = {0, 1, 2, 3, 4, 5, 6, INFINITY};
        w.dataset("/inf_images", {2, 2, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, bad);
    }
    auto load = [&](const std::string& images, const std::string& labels) {
        return [=] { Dataset::load(h5_config(f, images, labels)); };
    };
    EXPECT_NO_THROW(load("/ok_images", "/ok_labels")());
    expect_input_error(load("/images", "/ok_labels"), {f, "'/images'", "does not exist"});
    expect_input_error(load("/ok_images", "/nope/labels"), {f, "'/nope/labels'", "no object '/nope'"});
    expect_input_error(load("/grp", "/ok_labels"), {f, "'/grp'", "group, expected a dataset"});
    expect_input_error(load("/rank2", "/ok_labels"), {f, "'/rank2'", "rank 3", "[2, 4]"});
    expect_input_error(load("/rank5", "/ok_labels"), {f, "'/rank5'", "[2, 1, 1, 2, 2]"});
    expect_input_error(load("/int16_images", "/ok_labels"), {f, "'/int16_images'", "int16", "uint8 or float32"});
    expect_input_error(load("/ok_images", "/float_labels"), {f, "'/float_labels'", "float32", "integer"});
    expect_input_error(load("/ok_images", "/labels3"), {f, "'/labels3'", "3 labels", "expected 2"});
    expect_input_error(load("/ok_images", "/labels_2d"), {f, "'/labels_2d'", "rank 1", "[2, 1]"});
    expect_input_error(load("/inf_images", "/ok_labels"), {f, "'/inf_images'", "non-finite"});
    expect_input_error(load("/", "/ok_labels"), {f, "'/'"});
}

TEST(Hdf5, MissingOrNonHdf5File) {
    TempDir dir;
    const std::string missing = dir.file("missing.h5");
    expect_input_error([&] { Dataset::load(h5_config(missing)); }, {missing, "no such file"});
    const std::string text = dir.file("text.h5");
    write_file(text, {'n', 'o', 't', ' ', 'h', 'd', 'f', '5'});
    expect_input_error([&] { Dataset::load(h5_config(text)); }, {text, "not an HDF5 file"});
    expect_input_error([&] { Dataset::load(h5_config(dir.file(""))); }, {"directory"});
    expect_input_error([&] { Dataset::load(h5_config("")); }, {"dataset.hdf5.file"});
}

// ---------------------------------------------------------------- checks and preprocessing

TEST(Dataset, CheckLabels) {
    TempDir dir;
    SmallIdx ok(dir);
    const Dataset ds = Dataset::load(idx_config(ok.images, ok.labels));
    EXPECT_NO_THROW(ds.check_labels(4));
    expect_input_error([&] { ds.check_labels(3); },
                       {ok.labels, "label 3", "index 3", "outside [0, 3)", "3 classes"});
    const Dataset mem = Dataset::from_u8(2, 1, 1, 1, {0, 0}, {0, -2});
    expect_input_error([&] { mem.check_labels(10); }, {"<memory>", "label -2", "index 1"});
}

TEST(Dataset, CheckSubset) {
    TempDir dir;
    SmallIdx ok(dir);
    const Dataset ds = Dataset::load(idx_config(ok.images, ok.labels));
    EXPECT_NO_THROW(ds.check_subset({0, 4}, "dataset.validation"));
    EXPECT_NO_THROW(ds.check_subset({3, 1}, "dataset.validation"));
    expect_input_error([&] { ds.check_subset({3, 2}, "dataset.validation"); },
                       {"dataset.validation: offset 3 + count 2 exceeds the 4 samples in " + ok.images});
    expect_input_error([&] { ds.check_subset({-1, 2}, "dataset.calibration"); },
                       {"dataset.calibration: offset must be >= 0, got -1"});
    expect_input_error([&] { ds.check_subset({0, 0}, "dataset.calibration"); },
                       {"dataset.calibration: count must be >= 1, got 0"});
    expect_input_error([&] { ds.check_subset({5, 1}, "dataset.validation"); }, {"offset 5 + count 1 exceeds"});
    expect_input_error([&] { ds.check_subset({2, INT64_MAX}, "dataset.validation"); }, {"exceeds the 4 samples"});
}

TEST(Dataset, PreprocessingMath) {
    // Two images, two channels of 2 pixels each.
    const Dataset ds = Dataset::from_u8(2, 2, 1, 2, {0, 255, 10, 20, 1, 2, 3, 4}, {0, 1});
    Preprocess pre;
    pre.scale = 0.1f;
    pre.mean = {1.0f, -2.0f};
    pre.std = {0.5f, 4.0f};
    const dcs::Tensor t = ds.batch(0, 2, pre);
    ASSERT_EQ(t.shape, (std::vector<int64_t>{2, 2, 1, 2}));
    // By hand: (0*0.1-1)/0.5 = -2, (255*0.1-1)/0.5 = 49, (10*0.1+2)/4 = 0.75, (20*0.1+2)/4 = 1, ...
    const std::vector<float> by_hand{-2.0f, 49.0f, 0.75f, 1.0f, -1.8f, -1.6f, 0.575f, 0.6f};
    for (size_t i = 0; i < by_hand.size(); ++i) EXPECT_NEAR(t.data[i], by_hand[i], 1e-5f) << i;

    // One mean/std for all channels; a batch from the middle.
    pre.mean = {1.0f};
    pre.std = {2.0f};
    const dcs::Tensor second = ds.batch(1, 1, pre);
    ASSERT_EQ(second.shape, (std::vector<int64_t>{1, 2, 1, 2}));
    const std::vector<float> px{1, 2, 3, 4};
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(second.data[i], (px[i] * 0.1f - 1.0f) / 2.0f);

    // Float images are multiplied by scale too.
    const Dataset f = Dataset::from_f32(1, 1, 1, 3, {0.0f, 127.5f, 255.0f}, {0});
    Preprocess unit;  // defaults: scale 1/255, mean 0, std 1
    const dcs::Tensor ft = f.batch(0, 1, unit);
    EXPECT_FLOAT_EQ(ft.data[0], 0.0f);
    EXPECT_FLOAT_EQ(ft.data[1], 0.5f);
    EXPECT_FLOAT_EQ(ft.data[2], 1.0f);

    EXPECT_EQ(ds.batch(2, 0, pre).shape, (std::vector<int64_t>{0, 2, 1, 2}));
}

TEST(Dataset, PreprocessMustFitChannels) {
    const Dataset ds = Dataset::from_u8(1, 2, 1, 1, {1, 2}, {0});
    Preprocess pre;
    pre.mean = {0.1f, 0.2f, 0.3f};
    expect_input_error([&] { ds.batch(0, 1, pre); }, {"model.preprocess.mean", "2 channels", "[0.1, 0.2, 0.3]"});
    pre.mean = {0.0f};
    pre.std = {1.0f, 0.0f};
    expect_input_error([&] { ds.batch(0, 1, pre); }, {"model.preprocess.std", "> 0"});
    pre.std = {};
    expect_input_error([&] { ds.batch(0, 1, pre); }, {"model.preprocess.std", "at least one"});
    pre.std = {1.0f};
    pre.scale = 0.0f;
    expect_input_error([&] { ds.batch(0, 1, pre); }, {"model.preprocess.scale", "> 0"});
    pre.scale = 1.0f;
    expect_input_error([&] { ds.batch(1, 1, pre); }, {"outside the 1 samples"});
    expect_input_error([&] { ds.batch(-1, 1, pre); }, {"outside"});

    // Before the channel count is known only mean and std must agree with each other.
    Preprocess p3;
    p3.mean = {0.1f, 0.2f, 0.3f};
    p3.std = {1.0f, 1.0f};
    expect_input_error([&] { dcs::check_preprocess(p3, 0, "x"); }, {"x: mean has 3 entries but std has 2"});
    p3.std = {1.0f};
    EXPECT_NO_THROW(dcs::check_preprocess(p3, 0));
    EXPECT_NO_THROW(dcs::check_preprocess(p3, 3));
    EXPECT_THROW(dcs::check_preprocess(p3, 1), InputError);
    p3.mean = {NAN};
    EXPECT_THROW(dcs::check_preprocess(p3, 0), InputError);
}

TEST(Dataset, FromMemoryChecksSizes) {
    EXPECT_THROW(Dataset::from_u8(2, 1, 2, 2, Bytes(7), {0, 1}), std::invalid_argument);
    EXPECT_THROW(Dataset::from_u8(2, 1, 2, 2, Bytes(8), {0}), std::invalid_argument);
    EXPECT_THROW(Dataset::from_f32(0, 1, 2, 2, {}, {}), std::invalid_argument);
    EXPECT_NO_THROW(Dataset::from_f32(1, 1, 1, 1, {0.5f}, {0}));
}
