// dataset.format: folder and npy end to end, and the label-free metric: Fashion-MNIST written as PNG
// class folders and as .npy/.npz arrays gives exactly the accuracy of the IDX files on the same images
// (fp32 and int8), as JPEG within 1 point; unlabelled arrays are scored by agreement with the fp32
// model; search (one process and mpirun), report and export work on each; bad files exit 2 naming them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "runtime/idx_reader.hpp"
#include "runtime/image_codec.hpp"
#include "support/image_files.hpp"
#include "support/onnx_builder.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using namespace dcs::test;

namespace {

constexpr int kImages = 600;  // the first 600 Fashion-MNIST test images
const std::string kIdxImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const std::string kIdxLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
const std::vector<std::string> kEnv{"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMP_NUM_THREADS=1",
                                    "OMPI_MCA_rmaps_base_oversubscribe=1"};
// Under mpirun in the sanitized build: OpenMPI's components are unloaded at exit, so LeakSanitizer
// cannot attribute or suppress what they keep (scripts/test.sh runs the MPI tests the same way).
const std::vector<std::string> kMpiEnv{"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
                                       "OMP_NUM_THREADS=1", "OMPI_MCA_rmaps_base_oversubscribe=1",
                                       "ASAN_OPTIONS=detect_leaks=0"};

/// The data written once for every test: <root>/png/<label>/<index>.png, <root>/jpeg/..., x.npy, y.npy, d.npz.
struct Files {
    TempDir dir;
    std::vector<uint8_t> pixels;  // kImages x 28 x 28
    std::vector<int64_t> labels;
    Files() {
        const dcs::IdxArray img = dcs::read_idx(kIdxImages), lab = dcs::read_idx(kIdxLabels);
        pixels.assign(img.payload.begin(), img.payload.begin() + kImages * 784);
        for (int i = 0; i < kImages; ++i) labels.push_back(lab.payload[i]);
        for (const char* kind : {"png", "jpeg"}) {
            for (int i = 0; i < kImages; ++i) {
                const fs::path d = dir.path / kind / std::to_string(labels[i]);
                fs::create_directories(d);
                char name[32];
                std::snprintf(name, sizeof name, "%05d.%s", i, kind == std::string("png") ? "png" : "jpg");
                dcs::Image one;
                one.h = one.w = 28;
                one.c = 1;
                one.pixels.assign(pixels.begin() + i * 784, pixels.begin() + (i + 1) * 784);
                if (kind == std::string("png"))
                    dcs::write_png_file((d / name).string(), one);
                else
                    dcs::write_jpeg_file((d / name).string(), one, 95);
            }
        }
        const std::string raw = dir.write("x.raw", std::string(pixels.begin(), pixels.end()));
        auto r = run_process({"/usr/bin/python3", "-c",
                              "import numpy as np, sys, os\n"
                              "d, n = sys.argv[1], int(sys.argv[2])\n"
                              "x = np.fromfile(os.path.join(d, 'x.raw'), np.uint8).reshape(n, 28, 28)\n"
                              "y = np.array([int(v) for v in sys.argv[3].split(',')], np.int64)\n"
                              "np.save(os.path.join(d, 'x.npy'), x)\n"
                              "np.save(os.path.join(d, 'y.npy'), y)\n"
                              "np.savez(os.path.join(d, 'd.npz'), images=x[:, None], labels=y.astype(np.uint8))\n"
                              "np.save(os.path.join(d, 'x64.npy'), x.astype(np.float64))\n"
                              "np.save(os.path.join(d, 'nhwc.npy'), x[:, :, :, None])\n"
                              "np.save(os.path.join(d, 'y_short.npy'), y[:-1])\n",
                              dir.path.string(), std::to_string(kImages), join_labels()},
                             60);
        if (r.status != 0) throw std::runtime_error("numpy: " + r.err);
    }
    std::string join_labels() const {
        std::string s;
        for (int64_t l : labels) s += (s.empty() ? "" : ",") + std::to_string(l);
        return s;
    }
};

Files& files() {
    static Files f;
    return f;
}

/// LeNet-5 with `dataset` (YAML lines under dataset:) calibrating and validating on all kImages images.
std::string config(const std::string& dataset, const std::string& model = "lenet5",
                   const std::string& search = "{population: 8, generations: 2, seed: 3, max_accuracy_drop: 1.0}") {
    return "model:\n"
           "  path: " +
           std::string(DCS_SOURCE_DIR) + "/configs/" + model +
           ".onnx\n"
           "  preprocess: {scale: 0.00392156862745098, mean: [0.2860], std: [0.3530]}\n"
           "dataset:\n" +
           dataset + "  calibration: {offset: 0, count: " + std::to_string(kImages) +
           "}\n"
           "  validation: {offset: 0, count: " +
           std::to_string(kImages) +
           "}\n"
           "compression: {weight_bits: [2, 4, 8], prune_ratios: [0.0, 0.5]}\n"
           "search: " +
           search +
           "\n"
           "output: {path: r.h5}\n";
}

std::string idx_dataset() {
    return "  format: idx\n  images: " + kIdxImages + "\n  labels: " + kIdxLabels + "\n";
}
std::string folder_dataset(const std::string& kind) {
    return "  format: folder\n  root: " + (files().dir.path / kind).string() + "\n";
}

ProcResult eval(const std::string& cfg_text, const std::vector<std::string>& extra = {}) {
    static int n = 0;
    const std::string cfg = files().dir.write("eval" + std::to_string(n++) + ".yaml", cfg_text);
    std::vector<std::string> argv{DCS_BINARY, "eval", cfg, "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, 300);
}

/// The error message: from "dcsearch: error:" to the end (warnings may come before it); one line.
std::string error_of(const std::string& err) {
    const size_t at = err.find("dcsearch: error:");
    return at == std::string::npos ? "" : err.substr(at);
}

const std::string kLayers = std::string(DCS_SOURCE_DIR) + "/configs/lenet5.layers.yaml";

TEST(DatasetFormats, PngFolderAndNpyGiveExactlyTheIdxAccuracyInFp32AndInt8) {
    for (const std::vector<std::string>& extra : {std::vector<std::string>{}, {"--layers", kLayers}}) {
        const ProcResult idx = eval(config(idx_dataset()), extra);
        ASSERT_EQ(idx.status, 0) << idx.err;
        const double want = json_number(idx.out, "correct");
        ASSERT_GT(want, 0.8 * kImages) << idx.out;
        const std::string npz = "  format: npy\n  file: " + files().dir.file("d.npz") + "\n";
        const std::string npy =
            "  images: " + files().dir.file("x.npy") + "\n  labels: " + files().dir.file("y.npy") + "\n";
        for (const std::string& ds : {folder_dataset("png"), npy, npz}) {
            const ProcResult r = eval(config(ds), extra);
            ASSERT_EQ(r.status, 0) << ds << r.err;
            EXPECT_EQ(json_number(r.out, "correct"), want) << ds << r.out;
            EXPECT_EQ(json_number(r.out, "samples"), kImages);
            EXPECT_NE(r.out.find("\"metric\":\"top1\""), std::string::npos) << r.out;
        }
    }
}

TEST(DatasetFormats, JpegFolderIsWithinOnePointOfIdx) {
    for (const std::vector<std::string>& extra : {std::vector<std::string>{}, {"--layers", kLayers}}) {
        const ProcResult idx = eval(config(idx_dataset()), extra), jpg = eval(config(folder_dataset("jpeg")), extra);
        ASSERT_EQ(idx.status, 0) << idx.err;
        ASSERT_EQ(jpg.status, 0) << jpg.err;
        EXPECT_NEAR(json_number(jpg.out, "accuracy"), json_number(idx.out, "accuracy"), 0.01) << jpg.out;
    }
}

TEST(DatasetFormats, FlatInputModelsNeedTheCropAndThenMatchIdx) {
    // A linear classifier over the 784 pixels, input [N, 784].
    OnnxBuilder b;
    b.input("x", {-1, 784}).output("y");
    std::vector<float> w(7840);
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i)) * 0.05f;
    b.init("w", {10, 784}, w);
    b.init("b", {10}, std::vector<float>(10, 0.0f));
    OnnxBuilder::attr_i(b.node("Gemm", {"x", "w", "b"}, {"y"}, "fc"), "transB", 1);
    b.save(files().dir.file("flat.onnx"));
    const auto with_model = [](std::string text) {
        const std::string from = std::string(DCS_SOURCE_DIR) + "/configs/lenet5.onnx";
        return text.replace(text.find(from), from.size(), files().dir.file("flat.onnx"));
    };
    const ProcResult no_crop = eval(with_model(config(folder_dataset("png"))));
    EXPECT_EQ(no_crop.status, 2);
    EXPECT_NE(no_crop.err.find("dataset.crop: required"), std::string::npos) << no_crop.err;
    EXPECT_EQ(count_lines(error_of(no_crop.err)), 1) << no_crop.err;
    const ProcResult idx = eval(with_model(config(idx_dataset())));
    const ProcResult png = eval(with_model(config(folder_dataset("png") + "  crop: 28\n")));
    ASSERT_EQ(png.status, 0) << png.err;
    EXPECT_EQ(json_number(png.out, "correct"), json_number(idx.out, "correct"));
    const ProcResult rgb = eval(with_model(config(folder_dataset("png") + "  crop: 14\n")));
    EXPECT_EQ(rgb.status, 2);  // 784 values are 4 channels of 14x14
    EXPECT_NE(rgb.err.find("takes 4 channels at dataset.crop"), std::string::npos) << rgb.err;
}

TEST(DatasetFormats, AModelWithoutAFixedImageSizeNeedsTheCrop) {
    OnnxBuilder b;  // input [N, 1, H, W] with H and W free
    b.input("x", {-1, 1, -1, -1}).output("y");
    b.init("w", {10, 1}, std::vector<float>(10, 0.5f));
    b.init("b", {10}, std::vector<float>(10, 0.0f));
    b.node("GlobalAveragePool", {"x"}, {"g"}, "gap");
    b.node("Flatten", {"g"}, {"f"}, "flat");
    OnnxBuilder::attr_i(b.node("Gemm", {"f", "w", "b"}, {"y"}, "fc"), "transB", 1);
    b.save(files().dir.file("dyn.onnx"));
    std::string text = config(folder_dataset("png"));
    const std::string from = std::string(DCS_SOURCE_DIR) + "/configs/lenet5.onnx";
    text.replace(text.find(from), from.size(), files().dir.file("dyn.onnx"));
    const ProcResult r = eval(text);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("dataset.crop: required"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("has no fixed height and width"), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(error_of(r.err)), 1) << r.err;
}

TEST(DatasetFormats, Top5IsAtLeastTop1) {
    const ProcResult top1 = eval(config(idx_dataset())), top5 = eval(config(idx_dataset() + "  metric: top5\n"));
    ASSERT_EQ(top5.status, 0) << top5.err;
    EXPECT_NE(top5.out.find("\"metric\":\"top5\""), std::string::npos);
    EXPECT_GT(json_number(top5.out, "accuracy"), json_number(top1.out, "accuracy"));
    EXPECT_GT(json_number(top5.out, "accuracy"), 0.98);
}

TEST(DatasetFormats, UnlabelledArraysAreScoredByAgreementWithFp32) {
    const std::string ds = "  format: npy\n  images: " + files().dir.file("x.npy") + "\n";
    const ProcResult base = eval(config(ds));
    ASSERT_EQ(base.status, 0) << base.err;
    EXPECT_EQ(json_number(base.out, "accuracy"), 1.0) << base.out;
    EXPECT_NE(base.out.find("\"metric\":\"agreement\""), std::string::npos);
    EXPECT_NE(base.err.find("has no labels: accuracy is top-1 agreement"), std::string::npos) << base.err;
    const ProcResult q = eval(config(ds), {"--layers", kLayers});
    ASSERT_EQ(q.status, 0) << q.err;
    EXPECT_LT(json_number(q.out, "accuracy"), 1.0);
    EXPECT_GT(json_number(q.out, "accuracy"), 0.8);
    // apply evaluates what it writes with the same metric.
    const ProcResult applied = run_process({DCS_BINARY, "apply", files().dir.write("apply.yaml", config(ds)), kLayers,
                                            "-o", files().dir.file("applied"), "--json"},
                                           300);
    ASSERT_EQ(applied.status, 0) << applied.err;
    EXPECT_EQ(json_number(applied.out, "accuracy"), json_number(q.out, "accuracy")) << applied.out;
    const ProcResult text = run_process({DCS_BINARY, "eval", files().dir.write("text.yaml", config(ds))}, 300);
    EXPECT_EQ(text.out.rfind("agreement with fp32 1.0000", 0), 0u) << text.out;
    // top1 needs labels.
    const ProcResult top1 = eval(config(ds + "  metric: top1\n"));
    EXPECT_EQ(top1.status, 2);
    EXPECT_NE(top1.err.find("dataset.metric: top1 needs labels"), std::string::npos) << top1.err;
}

/// Search, report and export on `ds`; returns the results file's dump (evaluations and front).
std::string search_report_export(const TempDir& dir, const std::string& ds, const std::string& metric, int np = 1) {
    const std::string cfg = dir.write("s.yaml", config(ds));
    std::vector<std::string> argv{DCS_BINARY, "search", cfg, "--output", dir.file("r.h5")};
    if (np > 1)
        argv.insert(argv.begin(), {"mpirun", "--oversubscribe", "--allow-run-as-root", "-np", std::to_string(np)});
    const ProcResult s = run_process(argv, 600, np > 1 ? kMpiEnv : kEnv);
    EXPECT_EQ(s.status, 0) << s.err;
    const ProcResult rep = run_process({DCS_BINARY, "report", dir.file("r.h5"), "-o", dir.file("r.html")}, 120);
    EXPECT_EQ(rep.status, 0) << rep.err;
    if (metric == "agreement") EXPECT_NE(slurp(dir.file("r.html")).find("agreement with fp32"), std::string::npos);
    const ProcResult ex =
        run_process({DCS_BINARY, "export", dir.file("r.h5"), "--max-drop", "5", "-o", dir.file("x"), "--json"}, 300);
    EXPECT_EQ(ex.status, 0) << ex.err;
    EXPECT_TRUE(fs::exists(dir.file("x/model.onnx")));
    const ProcResult d = run_process({"/usr/bin/python3", "-c",
                                      "import h5py, sys\n"
                                      "f = h5py.File(sys.argv[1], 'r')\n"
                                      "b = f['baseline'].attrs\n"
                                      "print(b['metric'].decode() if isinstance(b['metric'], bytes) else b['metric'], "
                                      "repr(b['accuracy']))\n"
                                      "w = f['runs']\n"
                                      "print('workers record their peak memory:', all(m > 1e7 for m, n in "
                                      "zip(w['worker_peak_rss_bytes'][:], w['worker_evaluations'][:]) if n > 0))\n"
                                      "e = f['evaluations']\n"
                                      "for i in range(e['id'].shape[0]):\n"
                                      "    print(list(e['genome'][i]), repr(e['accuracy'][i]), e['size_bytes'][i])\n",
                                      dir.file("r.h5")},
                                     60);
    EXPECT_EQ(d.status, 0) << d.err;
    EXPECT_EQ(d.out.rfind(metric + " ", 0), 0u) << d.out.substr(0, 200);
    EXPECT_NE(d.out.find("workers record their peak memory: True"), std::string::npos) << d.out.substr(0, 200);
    return d.out;
}

TEST(DatasetFormats, SearchReportAndExportOnAFolderAndOnUnlabelledArrays) {
    TempDir a, b, c;
    const std::string folder = search_report_export(a, folder_dataset("png"), "top1");
    const std::string idx = search_report_export(b, idx_dataset(), "top1");
    EXPECT_EQ(folder, idx);  // the same images, in another order: the same accuracies
    const std::string unlabelled =
        search_report_export(c, "  format: npy\n  images: " + files().dir.file("x.npy") + "\n", "agreement");
    EXPECT_EQ(unlabelled.rfind("agreement 1.0\n", 0), 0u) << unlabelled.substr(0, 100);
}

TEST(DatasetFormats, SearchUnderMpirunEqualsOneProcess) {
    TempDir a, b;
    const std::string ds = folder_dataset("png");
    EXPECT_EQ(search_report_export(a, ds, "top1", 3), search_report_export(b, ds, "top1", 1));
    TempDir c, d;
    const std::string un = "  format: npy\n  file: " + files().dir.file("d.npz") + "\n  images: images\n";
    // d.npz has labels: name only the images and give metric: agreement.
    EXPECT_EQ(search_report_export(c, un + "  metric: agreement\n", "agreement", 3),
              search_report_export(d, un + "  metric: agreement\n", "agreement", 1));
}

/// A copy of the PNG tree with `break_it` applied; eval must exit 2 with one line naming `expect`.
void expect_bad_folder(const std::function<void(const fs::path&)>& break_it, const std::string& expect) {
    TempDir dir;
    fs::copy(files().dir.path / "png", dir.path / "png", fs::copy_options::recursive);
    break_it(dir.path / "png");
    const std::string cfg =
        dir.write("c.yaml", config("  format: folder\n  root: " + (dir.path / "png").string() + "\n"));
    const ProcResult r = run_process({DCS_BINARY, "eval", cfg}, 120);
    EXPECT_EQ(r.status, 2) << expect << ": " << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(error_of(r.err)), 1) << r.err;
}

TEST(DatasetFormats, BadImageFilesExit2NamingTheFile) {
    const std::string cls = std::to_string(files().labels[1]), png = cls + "/00001.png";  // an existing image
    const auto overwrite = [](const fs::path& p, const std::string& bytes) {
        std::ofstream(p, std::ios::binary) << bytes;
    };
    expect_bad_folder([&](const fs::path& r) { overwrite(r / png, ""); }, png);  // empty file
    expect_bad_folder(
        [&](const fs::path& r) {
            const std::string s = slurp((r / png).string());
            overwrite(r / png, s.substr(0, s.size() / 2));  // truncated
        },
        png);
    expect_bad_folder(
        [&](const fs::path& r) {
            std::string s = slurp((r / png).string());
            ASSERT_GT(s.size(), 100u);
            for (size_t i = 40; i + 20 < s.size(); i += 7) s[i] = static_cast<char>(s[i] ^ 0x5a);  // corrupt
            overwrite(r / png, s);
        },
        png);
    expect_bad_folder([&](const fs::path& r) { overwrite(r / cls / "notes.txt", "not an image"); }, cls + "/notes.txt");
    expect_bad_folder([&](const fs::path& r) { overwrite(r / png, "plain text, not a PNG"); }, png);
    expect_bad_folder(
        [&](const fs::path& r) {
            fs::remove(r / png);
            write_cmyk_jpeg((r / cls / "00001.jpg").string(), 28, 28);
        },
        cls + "/00001.jpg");
    expect_bad_folder([&](const fs::path& r) { fs::remove_all(r / "7"), fs::create_directories(r / "7"); }, "7");
    expect_bad_folder(
        [&](const fs::path& r) {
            fs::remove_all(r);
            fs::create_directories(r);
        },
        "png");
}

TEST(DatasetFormats, BadArraysExit2NamingTheFile) {
    const auto expect_bad = [](const std::string& ds, const std::string& expect) {
        const ProcResult r = eval(config(ds));
        EXPECT_EQ(r.status, 2) << ds << r.err;
        EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
        EXPECT_EQ(count_lines(error_of(r.err)), 1) << r.err;
    };
    const Files& f = files();
    expect_bad("  format: npy\n  images: " + f.dir.file("x64.npy") + "\n", "x64.npy: images of type float64");
    expect_bad("  format: npy\n  images: " + f.dir.file("nhwc.npy") + "\n", "look channels-last");
    expect_bad("  format: npy\n  images: " + f.dir.file("x.npy") + "\n  labels: " + f.dir.file("y_short.npy") + "\n",
               "y_short.npy: holds 599 labels");
    expect_bad("  format: npy\n  images: " + f.dir.file("x.npy") + "\n  labels: " + f.dir.file("x.npy") + "\n",
               "labels must be 1-D");
    expect_bad("  format: npy\n  file: " + f.dir.file("d.npz") + "\n  labels: targets\n", "targets");
    expect_bad("  format: npy\n  images: " + f.dir.file("d.npz") + "\n", "an .npz archive goes in dataset.file");
    expect_bad("  format: npy\n  images: " + f.dir.file("x.raw") + "\n", "x.raw");
}

TEST(DatasetFormats, ABadImageUnderMpirunEndsEveryRank) {
    TempDir dir;
    fs::copy(files().dir.path / "png", dir.path / "png", fs::copy_options::recursive);
    std::ofstream(dir.path / "png/2/00001.png", std::ios::binary) << "broken";
    const std::string cfg =
        dir.write("c.yaml", config("  format: folder\n  root: " + (dir.path / "png").string() + "\n"));
    const ProcResult r = run_process({"mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "3", DCS_BINARY,
                                      "search", cfg, "--output", dir.file("r.h5")},
                                     120, kMpiEnv);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("2/00001.png"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir.file("r.h5")));
}

}  // namespace
