// Tests runtime/image_folder.cpp: ImageFolder scanning order, explicit classes, flat unlabelled folders, each
// scanning error, and parallel decoding (equal to serial, lowest failing index reported).
#include "runtime/image_folder.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "common/error.hpp"
#include "support/process.hpp"

namespace dcs {
namespace {

namespace fs = std::filesystem;

Image pattern(int64_t h, int64_t w, int64_t c, uint32_t seed) {
    Image img{h, w, c, std::vector<uint8_t>(static_cast<size_t>(h * w * c))};
    std::mt19937 rng(seed);
    for (auto& v : img.pixels) v = static_cast<uint8_t>(rng() & 0xff);
    return img;
}

class ImageFolder : public ::testing::Test {
protected:
    test::TempDir dir;

    std::string root() const { return dir.path.string(); }
    /// Writes a small PNG (or JPEG by extension) at `rel` under the root, creating folders.
    void image(const std::string& rel, uint32_t seed = 1, int64_t h = 6, int64_t w = 8, int64_t c = 3) {
        const fs::path p = dir.path / rel;
        fs::create_directories(p.parent_path());
        const std::string ext = p.extension().string();
        if (ext == ".png" || ext == ".PNG")
            write_png_file(p.string(), pattern(h, w, c, seed));
        else
            write_jpeg_file(p.string(), pattern(h, w, c, seed), 95);
    }
    void text(const std::string& rel, const std::string& content = "x") {
        fs::create_directories((dir.path / rel).parent_path());
        dir.write(rel, content);
    }
    std::vector<std::string> relative(const std::vector<std::string>& files) const {
        std::vector<std::string> out;
        for (const auto& f : files) out.push_back(fs::path(f).lexically_relative(dir.path).string());
        return out;
    }
    std::string scan_error(const std::vector<std::string>& classes = {}) const {
        try {
            scan_image_folder(root(), classes);
        } catch (const InputError& e) {
            return e.what();
        }
        return "";
    }
};

TEST_F(ImageFolder, ClassesAndFilesAreInImageFolderOrder) {
    // Class names in byte order: "B" < "a" < "a b" < "b".
    image("b/2.png");
    image("b/10.png");
    image("a/z.jpg");
    image("a/s/c.PNG");
    image("a/s/t/e.jpeg");
    image("a/s-x/d.png");
    image("a b/1.png");
    image("B/q.png");
    text("a/.DS_Store");
    image("a/.hidden/h.png");
    image(".trash/x.png");
    text("README.txt");  // not an image: ignored next to class folders
    const ImageFolderIndex idx = scan_image_folder(root());
    EXPECT_TRUE(idx.labelled);
    EXPECT_EQ(idx.classes, std::vector<std::string>({"B", "a", "a b", "b"}));
    // os.walk directories sorted by path ("a/s" < "a/s-x" < "a/s/t": '-' sorts before '/'), files by name.
    EXPECT_EQ(relative(idx.files), std::vector<std::string>({"B/q.png", "a/z.jpg", "a/s/c.PNG", "a/s-x/d.png",
                                                             "a/s/t/e.jpeg", "a b/1.png", "b/10.png", "b/2.png"}));
    EXPECT_EQ(idx.labels, std::vector<int64_t>({0, 1, 1, 1, 1, 2, 3, 3}));
}

TEST_F(ImageFolder, ExplicitClassesGiveTheLabelOrderAndSkipOtherFolders) {
    image("cat/1.png");
    image("dog/1.png");
    image("dog/2.png");
    image("eel/1.png");
    const ImageFolderIndex idx = scan_image_folder(root(), {"dog", "cat"});
    EXPECT_EQ(idx.classes, std::vector<std::string>({"dog", "cat"}));
    EXPECT_EQ(relative(idx.files), std::vector<std::string>({"dog/1.png", "dog/2.png", "cat/1.png"}));
    EXPECT_EQ(idx.labels, std::vector<int64_t>({0, 0, 1}));
    EXPECT_NE(scan_error({"dog", "fox"}).find("class folder 'fox' not found"), std::string::npos);
    EXPECT_NE(scan_error({"dog", "dog"}).find("named twice"), std::string::npos);
}

TEST_F(ImageFolder, AFlatFolderIsUnlabelled) {
    image("b.png");
    image("a.jpg");
    image("c.JPEG");
    text(".hidden");
    const ImageFolderIndex idx = scan_image_folder(root());
    EXPECT_FALSE(idx.labelled);
    EXPECT_TRUE(idx.labels.empty());
    EXPECT_TRUE(idx.classes.empty());
    EXPECT_EQ(relative(idx.files), std::vector<std::string>({"a.jpg", "b.png", "c.JPEG"}));
}

TEST_F(ImageFolder, ScanErrorsNameThePlace) {
    const std::string missing = root() + "/nope";
    EXPECT_THROW(
        {
            try {
                scan_image_folder(missing);
            } catch (const InputError& e) {
                EXPECT_NE(std::string(e.what()).find(missing + ": no such directory"), std::string::npos);
                throw;
            }
        },
        InputError);
    text("file.png");
    EXPECT_THROW(scan_image_folder(root() + "/file.png"), InputError);  // not a directory
    fs::remove(dir.path / "file.png");
    EXPECT_NE(scan_error().find("no class subfolders and no .jpg"), std::string::npos) << scan_error();  // empty

    fs::create_directories(dir.path / "cat");
    image("dog/1.png");
    EXPECT_NE(scan_error().find(root() + "/cat: class folder without any"), std::string::npos) << scan_error();
    image("cat/1.png");
    text("cat/notes.txt");
    EXPECT_NE(scan_error().find(root() + "/cat/notes.txt: not a .jpg, .jpeg or .png file"), std::string::npos)
        << scan_error();
    fs::remove(dir.path / "cat/notes.txt");
    image("stray.jpg");
    EXPECT_NE(scan_error().find(root() + "/stray.jpg: image file at the top level next to class folders"),
              std::string::npos)
        << scan_error();
    fs::remove(dir.path / "stray.jpg");
    EXPECT_EQ(scan_error(), "");
}

TEST_F(ImageFolder, AFlatFolderWithANonImageFileIsAnError) {
    image("a.png");
    text("labels.csv");
    EXPECT_NE(scan_error().find("labels.csv: not a .jpg, .jpeg or .png file"), std::string::npos) << scan_error();
}

TEST_F(ImageFolder, ParallelDecodingEqualsSerialDecoding) {
    // Mixed sizes, gray and colour, JPEG and PNG: all to 3 x 12 x 10.
    for (int i = 0; i < 23; ++i) {
        const std::string cls = i % 2 ? "odd" : "even";
        image(cls + "/" + std::to_string(100 + i) + (i % 3 ? ".png" : ".jpg"), i, 10 + i, 30 - i, i % 4 ? 3 : 1);
    }
    const ImageFolderIndex idx = scan_image_folder(root());
    ASSERT_EQ(idx.files.size(), 23u);
    const ImageTransform t{16, 12, 10, 3};
    std::vector<int64_t> indices;
    for (int64_t i = 22; i >= 0; i -= 2) indices.push_back(i);
    for (int64_t i = 1; i < 23; i += 2) indices.push_back(i);
    const size_t per = 3 * 12 * 10;
    std::vector<uint8_t> parallel(indices.size() * per, 1), serial(indices.size() * per, 2);
    decode_images(idx, indices, t, parallel.data());
    for (size_t i = 0; i < indices.size(); ++i)
        transform_image(decode_image_file(idx.files[indices[i]]), t, serial.data() + i * per);
    EXPECT_EQ(parallel, serial);

    int64_t calls = 0;
    decode_images(idx, {0, 1}, t, parallel.data(), [&](int64_t, int64_t) { ++calls; });
    EXPECT_EQ(calls, 0);  // fast: no progress line needed
    EXPECT_THROW(decode_images(idx, {23}, t, parallel.data()), std::invalid_argument);
    EXPECT_THROW(decode_images(idx, {0}, {0, 0, 10, 3}, parallel.data()), std::invalid_argument);
}

TEST_F(ImageFolder, TheLowestFailingIndexIsReported) {
    for (int i = 0; i < 40; ++i) image("c/" + std::to_string(1000 + i) + ".png", i);
    const ImageFolderIndex idx = scan_image_folder(root());
    // Corrupt files 1013 (truncated), 1031 (text) and 1007 (empty).
    const std::string trunc = idx.files[13];
    fs::resize_file(trunc, fs::file_size(trunc) / 2);
    std::ofstream(idx.files[31]) << "not an image";
    std::ofstream(idx.files[7], std::ios::trunc).close();
    std::vector<uint8_t> out(40 * 3 * 6 * 8);
    std::vector<int64_t> all(40);
    for (int64_t i = 0; i < 40; ++i) all[i] = 39 - i;  // 31 comes first, then 13, then 7
    for (int rep = 0; rep < 5; ++rep) {
        try {
            decode_images(idx, all, {0, 6, 8, 3}, out.data());
            FAIL() << "expected an InputError";
        } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find(idx.files[31] + ": not a JPEG or PNG image"), std::string::npos)
                << e.what();
        }
    }
    try {
        decode_images(idx, {20, 13, 7}, {0, 6, 8, 3}, out.data());
        FAIL() << "expected an InputError";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(trunc + ": truncated PNG data"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace dcs
