// Tests app/config.cpp.
#include "app/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace fs = std::filesystem;
using dcs::Config;
using dcs::InputError;
using dcs::Objective;
using dcs::parse_config;

namespace {

/// The example config of DESIGN.md ("Config (YAML)"), verbatim.
const char* kDesignExample = R"(model:
  path: models/lenet5.onnx           # every relative path is relative to this config file
  preprocess: {scale: 0.00392156862745098, mean: [0.2860], std: [0.3530]}   # x = (pixel*scale - mean)/std
dataset:
  format: idx                        # idx (optionally .gz) | hdf5
  images: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
  # hdf5: file: data.h5, images: /images, labels: /labels
  calibration: {offset: 0, count: 512}
  validation: {offset: 512, count: 2000}     # may overlap calibration (a warning says so)
compression:
  weight_bits: [2, 3, 4, 5, 6, 8]    # per-layer choices
  prune_ratios: [0.0, 0.25, 0.5, 0.75, 0.9]
  granularity: per_channel           # per_channel | per_tensor
  scheme: symmetric                  # symmetric | asymmetric
  pruning: unstructured              # unstructured | filter
  activation_bits: 8
  calibration: minmax                # minmax | percentile | mse
  layers:                            # optional per-layer overrides, by name or glob
    - {match: "fc3*", weight_bits: [8], prune_ratios: [0.0]}
search:
  algorithm: nsga2
  population: 32
  generations: 20
  seed: 1
  max_accuracy_drop: 2.0             # percentage points; candidates beyond it are infeasible
  objectives: [accuracy, size]       # size = compressed bytes; optional: bops, latency
output:
  path: results.h5                   # `--output PATH` on the command line overrides it
)";

/// The smallest valid config: the model and the dataset files.
const std::string kMinimal =
    "model:\n"
    "  path: m.onnx\n"
    "dataset:\n"
    "  images: img.gz\n"
    "  labels: lab.gz\n";

const std::string kCfg = "/work/cfgs/config.yaml";  // parse_config never touches the file system

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "dcs_test_config_XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

/// Expects InputError whose one-line message contains every string of `parts`; returns the message.
std::string expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
    try {
        fn();
        ADD_FAILURE() << "expected InputError containing '" << parts.at(0) << "'";
    } catch (const InputError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
        return msg;
    }
    return "";
}

/// Parses kMinimal plus `extra` (appended as more YAML) and expects an error mentioning `parts`.
std::string expect_config_error(const std::string& text, const std::vector<std::string>& parts) {
    return expect_error([&] { parse_config(text, kCfg); }, parts);
}

}  // namespace

// ---------------------------------------------------------------- valid configs

TEST(Config, MinimalConfigTakesTheDocumentedDefaults) {
    const Config c = parse_config(kMinimal, kCfg);
    EXPECT_EQ(c.file, kCfg);
    EXPECT_EQ(c.text, kMinimal);
    EXPECT_EQ(c.model.path, "/work/cfgs/m.onnx");
    EXPECT_FLOAT_EQ(c.model.preprocess.scale, 1.0f / 255.0f);
    EXPECT_EQ(c.model.preprocess.mean, std::vector<float>{0.0f});
    EXPECT_EQ(c.model.preprocess.std, std::vector<float>{1.0f});
    EXPECT_EQ(c.dataset.format, dcs::DatasetFormat::Idx);
    EXPECT_EQ(c.dataset.images, "/work/cfgs/img.gz");
    EXPECT_EQ(c.dataset.labels, "/work/cfgs/lab.gz");
    EXPECT_EQ(c.dataset.calibration.offset, 0);
    EXPECT_EQ(c.dataset.calibration.count, 512);
    EXPECT_EQ(c.dataset.validation.offset, 512);
    EXPECT_EQ(c.dataset.validation.count, 2000);
    EXPECT_EQ(c.compression.weight_bits, (std::vector<int>{2, 3, 4, 5, 6, 8}));
    EXPECT_EQ(c.compression.prune_ratios, (std::vector<double>{0.0, 0.25, 0.5, 0.75, 0.9}));
    EXPECT_EQ(c.compression.weight.granularity, dcs::compress::Granularity::PerChannel);
    EXPECT_EQ(c.compression.weight.scheme, dcs::compress::Scheme::Symmetric);
    EXPECT_EQ(c.compression.weight.pruning, dcs::compress::Pruning::Unstructured);
    EXPECT_EQ(c.compression.weight.method, dcs::compress::Method::Quantize);
    EXPECT_EQ(c.compression.weight.clip, dcs::compress::WeightClip::Mse);
    EXPECT_EQ(c.compression.activation_bits, 8);
    EXPECT_EQ(c.compression.calibration, dcs::compress::Calibration::MinMax);
    EXPECT_FALSE(c.compression.bias_correction);
    EXPECT_TRUE(c.compression.layers.empty());
    EXPECT_EQ(c.search.algorithm, "nsga2");
    EXPECT_EQ(c.search.population, 32);
    EXPECT_EQ(c.search.generations, 20);
    EXPECT_EQ(c.search.seed, 1u);
    EXPECT_EQ(c.search.max_accuracy_drop, 2.0);
    EXPECT_EQ(c.search.objectives, (std::vector<Objective>{Objective::Accuracy, Objective::Size}));
    EXPECT_EQ(c.search.max_evaluations, 0);
    EXPECT_EQ(c.search.stagnation_generations, 0);
    EXPECT_EQ(c.search.offspring, 0);
    EXPECT_EQ(c.output.path, "/work/cfgs/results.h5");
    EXPECT_TRUE(c.warnings.empty());
}

TEST(Config, DesignExampleParses) {
    const Config c = parse_config(kDesignExample, kCfg);
    EXPECT_EQ(c.model.path, "/work/cfgs/models/lenet5.onnx");
    EXPECT_FLOAT_EQ(c.model.preprocess.scale, 0.00392156862745098f);
    EXPECT_EQ(c.model.preprocess.mean, std::vector<float>{0.2860f});
    EXPECT_EQ(c.model.preprocess.std, std::vector<float>{0.3530f});
    EXPECT_EQ(c.dataset.images, "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
    ASSERT_EQ(c.compression.layers.size(), 1u);
    EXPECT_EQ(c.compression.layers[0].match, "fc3*");
    EXPECT_EQ(c.compression.layers[0].weight_bits, std::vector<int>{8});
    EXPECT_EQ(c.compression.layers[0].prune_ratios, std::vector<double>{0.0});
    EXPECT_EQ(c.output.path, "/work/cfgs/results.h5");
    EXPECT_TRUE(c.warnings.empty());
}

TEST(Config, EveryKeySet) {
    const std::string text = R"(model:
  path: /abs/model.onnx
  preprocess:
    scale: 1
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
dataset:
  format: hdf5
  hdf5: {file: ../data/cifar.h5, images: /test/x, labels: /test/y}
  calibration: {offset: 100, count: 50}
  validation: {offset: 1000, count: 9000}
compression:
  weight_bits: [8, 1, 4]
  prune_ratios: [0, 0.5, 0.95]
  granularity: per_tensor
  scheme: asymmetric
  pruning: filter
  method: cluster
  weight_clip: maxabs
  activation_bits: 8
  calibration: percentile
  bias_correction: true
  layers:
    - match: "conv*"
      weight_bits: [6, 8]
    - {match: fc1, prune_ratios: [0.0, 0.9]}
search:
  algorithm: random
  population: 4
  generations: 1
  seed: 0
  max_accuracy_drop: 0
  objectives: [size, latency, accuracy, bops]
  max_evaluations: 500
  stagnation_generations: 3
  offspring: 64
output:
  path: out/run1.h5
)";
    const Config c = parse_config(text, "/home/u/exp/c.yaml");
    EXPECT_EQ(c.model.path, "/abs/model.onnx");
    EXPECT_EQ(c.model.preprocess.scale, 1.0f);
    EXPECT_EQ(c.model.preprocess.mean.size(), 3u);
    EXPECT_FLOAT_EQ(c.model.preprocess.std[2], 0.225f);
    EXPECT_EQ(c.dataset.format, dcs::DatasetFormat::Hdf5);
    EXPECT_EQ(c.dataset.file, "/home/u/data/cifar.h5");
    EXPECT_EQ(c.dataset.images, "/test/x");
    EXPECT_EQ(c.dataset.labels, "/test/y");
    EXPECT_EQ(c.dataset.calibration.offset, 100);
    EXPECT_EQ(c.dataset.calibration.count, 50);
    EXPECT_EQ(c.dataset.validation.count, 9000);
    EXPECT_EQ(c.compression.weight_bits, (std::vector<int>{8, 1, 4}));
    EXPECT_EQ(c.compression.prune_ratios, (std::vector<double>{0.0, 0.5, 0.95}));
    EXPECT_EQ(c.compression.weight.granularity, dcs::compress::Granularity::PerTensor);
    EXPECT_EQ(c.compression.weight.scheme, dcs::compress::Scheme::Asymmetric);
    EXPECT_EQ(c.compression.weight.pruning, dcs::compress::Pruning::Filter);
    EXPECT_EQ(c.compression.weight.method, dcs::compress::Method::Cluster);
    EXPECT_EQ(c.compression.weight.clip, dcs::compress::WeightClip::MaxAbs);
    EXPECT_EQ(c.compression.calibration, dcs::compress::Calibration::Percentile);
    EXPECT_TRUE(c.compression.bias_correction);
    ASSERT_EQ(c.compression.layers.size(), 2u);
    EXPECT_EQ(c.compression.layers[0].match, "conv*");
    EXPECT_EQ(c.compression.layers[0].weight_bits, (std::vector<int>{6, 8}));
    EXPECT_TRUE(c.compression.layers[0].prune_ratios.empty());
    EXPECT_EQ(c.compression.layers[1].match, "fc1");
    EXPECT_TRUE(c.compression.layers[1].weight_bits.empty());
    EXPECT_EQ(c.compression.layers[1].prune_ratios, (std::vector<double>{0.0, 0.9}));
    EXPECT_EQ(c.search.algorithm, "random");
    EXPECT_EQ(c.search.population, 4);
    EXPECT_EQ(c.search.generations, 1);
    EXPECT_EQ(c.search.seed, 0u);
    EXPECT_EQ(c.search.max_accuracy_drop, 0.0);
    EXPECT_EQ(c.search.objectives,
              (std::vector<Objective>{Objective::Size, Objective::Latency, Objective::Accuracy, Objective::Bops}));
    EXPECT_EQ(c.search.max_evaluations, 500);
    EXPECT_EQ(c.search.stagnation_generations, 3);
    EXPECT_EQ(c.search.offspring, 64);
    EXPECT_EQ(c.output.path, "/home/u/exp/out/run1.h5");
    EXPECT_TRUE(c.warnings.empty());
}

TEST(Config, Hdf5DefaultsAndFormatInferredFromTheHdf5Key) {
    const Config c = parse_config("model: {path: m.onnx}\ndataset:\n  hdf5: {file: d.h5}\n", kCfg);
    EXPECT_EQ(c.dataset.format, dcs::DatasetFormat::Hdf5);
    EXPECT_EQ(c.dataset.file, "/work/cfgs/d.h5");
    EXPECT_EQ(c.dataset.images, "/images");
    EXPECT_EQ(c.dataset.labels, "/labels");
}

TEST(Config, OptionalSectionsMayBeEmpty) {
    const Config c = parse_config(kMinimal + "compression:\nsearch: {}\noutput:\n", kCfg);
    EXPECT_EQ(c.search.population, 32);
    EXPECT_EQ(c.output.path, "/work/cfgs/results.h5");
}

TEST(Config, BooleansAndSeedsAcceptCommonSpellings) {
    EXPECT_TRUE(parse_config(kMinimal + "compression: {bias_correction: yes}\n", kCfg).compression.bias_correction);
    EXPECT_FALSE(parse_config(kMinimal + "compression: {bias_correction: False}\n", kCfg).compression.bias_correction);
    EXPECT_EQ(parse_config(kMinimal + "search: {seed: 9223372036854775807}\n", kCfg).search.seed,
              9223372036854775807ull);
    EXPECT_EQ(parse_config(kMinimal + "search: {max_accuracy_drop: 1}\n", kCfg).search.max_accuracy_drop, 1.0);
    EXPECT_EQ(parse_config(kMinimal + "search: {max_accuracy_drop: .5}\n", kCfg).search.max_accuracy_drop, 0.5);
}

TEST(Config, RelativePathsResolveAgainstTheConfigDirectory) {
    const Config rel = parse_config(kMinimal, "sub/dir/c.yaml");
    const fs::path expected = (fs::current_path() / "sub/dir/m.onnx").lexically_normal();
    EXPECT_EQ(rel.model.path, expected.string());
    EXPECT_TRUE(fs::path(rel.output.path).is_absolute());
    const Config bare = parse_config(kMinimal, "c.yaml");
    EXPECT_EQ(bare.dataset.images, (fs::current_path() / "img.gz").lexically_normal().string());
    const Config dotdot = parse_config("model: {path: ../../m.onnx}\ndataset: {images: ./a, labels: b/../c}\n",
                                       "/x/y/z/c.yaml");
    EXPECT_EQ(dotdot.model.path, "/x/m.onnx");
    EXPECT_EQ(dotdot.dataset.images, "/x/y/z/a");
    EXPECT_EQ(dotdot.dataset.labels, "/x/y/z/c");
}

TEST(Config, OverlappingSubsetsGiveAWarning) {
    const Config c = parse_config(kMinimal + "  calibration: {offset: 0, count: 600}\n", kCfg);
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_NE(c.warnings[0].find("overlap in 88 samples"), std::string::npos) << c.warnings[0];
    EXPECT_NE(c.warnings[0].find("dataset.calibration"), std::string::npos);
    const Config same = parse_config(kMinimal + "  calibration: {offset: 512, count: 2000}\n", kCfg);
    EXPECT_EQ(same.warnings.size(), 1u);
    const Config adjacent = parse_config(kMinimal + "  calibration: {offset: 2512, count: 10}\n", kCfg);
    EXPECT_TRUE(adjacent.warnings.empty());
}

TEST(Config, TestSubsetIsOptionalAndHeldOut) {
    EXPECT_FALSE(parse_config(kMinimal, kCfg).test.has_value());
    const Config c = parse_config(kMinimal + "  test: {offset: 2512, count: 7488}\n", kCfg);
    ASSERT_TRUE(c.test.has_value());
    EXPECT_EQ(c.test->offset, 2512);
    EXPECT_EQ(c.test->count, 7488);
    EXPECT_TRUE(c.warnings.empty());
    // Any shared sample is an error naming the key and both ranges.
    expect_config_error(kMinimal + "  test: {offset: 2000, count: 1000}\n",
                        {"line 6", "dataset.test", "samples 2000..2999", "dataset.validation (samples 512..2511)"});
    expect_config_error(kMinimal + "  test: {offset: 0, count: 1}\n",
                        {"dataset.test", "samples 0..0", "dataset.calibration (samples 0..511)"});
    expect_config_error(kMinimal + "  calibration: {offset: 3000, count: 10}\n  test: {offset: 2600, count: 401}\n",
                        {"dataset.test", "samples 2600..3000", "dataset.calibration (samples 3000..3009)"});
    expect_config_error(kMinimal + "  test: {count: 100}\n", {"dataset.test.offset", "required"});
    expect_config_error(kMinimal + "  test: {offset: 3000}\n", {"dataset.test.count", "required"});
    expect_config_error(kMinimal + "  test: {offset: 3000, count: 0}\n", {"dataset.test.count", ">= 1"});
    expect_config_error(kMinimal + "  test: {offset: 3000, size: 10}\n", {"dataset.test", "size"});
}

TEST(Config, UselessLayerOverrideGivesAWarning) {
    const Config c = parse_config(kMinimal + "compression:\n  layers:\n    - match: fc1\n", kCfg);
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_NE(c.warnings[0].find("compression.layers[0]"), std::string::npos) << c.warnings[0];
}

// ---------------------------------------------------------------- files

TEST(Config, LoadConfigReadsTheFile) {
    TempDir dir;
    const std::string path = dir.file("c.yaml");
    write_text(path, kMinimal);
    const Config c = dcs::load_config(path);
    EXPECT_EQ(c.text, kMinimal);
    EXPECT_EQ(c.model.path, (dir.path() / "m.onnx").string());
}

TEST(Config, MissingFileDirectoryAndUnreadable) {
    TempDir dir;
    const std::string missing = dir.file("nope.yaml");
    expect_error([&] { dcs::load_config(missing); }, {missing, "no such config file"});
    expect_error([&] { dcs::load_config(dir.path().string()); }, {dir.path().string(), "directory"});
    if (geteuid() != 0) {
        const std::string locked = dir.file("locked.yaml");
        write_text(locked, kMinimal);
        fs::permissions(locked, fs::perms::none);
        expect_error([&] { dcs::load_config(locked); }, {locked, "cannot open"});
    }
}

TEST(Config, EmptyAndNonMapFiles) {
    TempDir dir;
    const std::string empty = dir.file("empty.yaml");
    write_text(empty, "");
    expect_error([&] { dcs::load_config(empty); }, {empty, "empty"});
    expect_config_error("# only a comment\n\n", {kCfg, "empty"});
    expect_config_error("- model\n- dataset\n", {kCfg + " line 1", "must be a map of sections", "got a list"});
    expect_config_error("just a string\n", {kCfg + " line 1: the top level must be a map", "got just a string"});
    expect_config_error(kMinimal + "---\nmodel: {path: x}\n", {kCfg + " line 6", "one YAML document, found more"});
}

TEST(Config, FuzzFoundInputsAreInputErrors) {
    // yaml-cpp's LoadAll never returned on these (fuzz/regressions/config); now one error each.
    for (const char* text : {",#", ",333", ",\n- a\n"}) {
        try {
            dcs::parse_config(text, kCfg);
            ADD_FAILURE() << "no error for " << text;
        } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find(kCfg), std::string::npos) << e.what();
        }
    }
    // A key holding a newline: the message names it escaped, on one line.
    expect_config_error(kMinimal + "\"\\ncomp-ression\": {}\n", {kCfg + " line 6", "\\ncomp-ression: unknown key"});
}

TEST(Config, YamlSyntaxErrorsGiveTheLine) {
    expect_config_error("model:\n  path: m.onnx\ndataset: {images: a, labels: [b\n", {kCfg + " line ", "YAML syntax error"});
    expect_config_error("model:\n  path: m.onnx\n\tdataset: x\n", {kCfg + " line 3", "YAML syntax error", "tab"});
    expect_config_error("model:\n  path: m.onnx\n  bad: [1, 2]]\n", {kCfg + " line 3", "YAML syntax error"});
}

// ---------------------------------------------------------------- keys

TEST(Config, UnknownKeysSuggestTheNearest) {
    expect_config_error(kMinimal + "search:\n  popluation: 8\n", {kCfg + " line 7: search.popluation: unknown key",
                                                                 "did you mean 'population'?"});
    expect_config_error(kMinimal + "serach: {}\n", {"line 6: serach: unknown key", "did you mean 'search'?"});
    expect_config_error(kMinimal + "compression: {weight_bit: [8]}\n", {"compression.weight_bit", "'weight_bits'"});
    expect_config_error(kMinimal + "compression:\n  layers:\n    - {match: a, weight_bit: [8]}\n",
                        {"line 8: compression.layers[0].weight_bit: unknown key", "'weight_bits'"});
    // A key in the wrong section points to the right one.
    expect_config_error(kMinimal + "population: 8\n", {"line 6: population: unknown key", "'search.population'"});
    // Nothing close: list what is allowed.
    expect_config_error(kMinimal + "output: {zzzzzz: 1}\n", {"output.zzzzzz: unknown key", "expected one of path"});
    expect_config_error("model: {path: m, preprocess: {scael: 1}}\ndataset: {images: a, labels: b}\n",
                        {"model.preprocess.scael", "'scale'"});
    expect_config_error(kMinimal + "  hdf5_file: x\n", {"dataset.hdf5_file: unknown key", "did you mean 'hdf5'?"});
}

TEST(Config, DuplicateKeys) {
    expect_config_error(kMinimal + "search:\n  population: 8\n  population: 10\n",
                        {"line 8: search.population: duplicate key (first given on line 7)"});
    expect_config_error(kMinimal + "model:\n  path: other.onnx\n", {"line 6: model: duplicate key (first given on line 1)"});
}

TEST(Config, RequiredKeys) {
    expect_config_error("dataset: {images: a, labels: b}\n", {kCfg + ": model: required section is missing"});
    expect_config_error("model: {}\ndataset: {images: a, labels: b}\n", {"line 1: model.path: required key is missing"});
    expect_config_error("model:\ndataset: {images: a, labels: b}\n", {"model.path: required key is missing"});
    expect_config_error("model: {path: m}\n", {"dataset: required section is missing"});
    expect_config_error("model: {path: m}\ndataset: {labels: b}\n", {"line 2: dataset.images: required key is missing"});
    expect_config_error("model: {path: m}\ndataset: {images: a}\n", {"dataset.labels: required key is missing"});
    expect_config_error("model: {path: m}\ndataset: {format: hdf5}\n", {"dataset.hdf5.file: required key is missing"});
    expect_config_error("model: {path: m}\ndataset: {hdf5: {images: /x}}\n", {"dataset.hdf5.file: required key is missing"});
    expect_config_error(kMinimal + "compression:\n  layers:\n    - {weight_bits: [8]}\n",
                        {"line 8: compression.layers[0].match: required key is missing"});
}

TEST(Config, DatasetFormatMismatches) {
    expect_config_error(kMinimal + "  format: idx\n  hdf5: {file: d.h5}\n",
                        {"line 7: dataset.hdf5: only used with dataset.format: hdf5, but dataset.format is idx"});
    expect_config_error(kMinimal + "  hdf5: {file: d.h5}\n",
                        {"line 6: dataset.hdf5: given together with dataset.images/labels", "format: idx"});
    expect_config_error("model: {path: m}\ndataset: {format: hdf5, images: a, hdf5: {file: d.h5}}\n",
                        {"dataset.images: not used with dataset.format: hdf5", "dataset.hdf5.images"});
    expect_config_error(kMinimal + "  format: hdf55\n", {"line 6: dataset.format: must be one of idx, hdf5, npy, folder, got hdf55",
                                                         "did you mean 'hdf5'?"});
    expect_config_error("model: {path: m}\ndataset: {hdf5: {file: ''}}\n", {"dataset.hdf5.file: must be a non-empty file path, got \"\""});
}

TEST(Config, FolderAndNpyDatasets) {
    const Config f = parse_config(
        "model: {path: m.onnx}\ndataset:\n  root: val\n  classes: [cat, dog]\n  resize: 256\n  crop: [224, 200]\n"
        "  metric: top5\n",
        kCfg);
    EXPECT_EQ(f.dataset.format, dcs::DatasetFormat::Folder);  // implied by root
    EXPECT_EQ(f.dataset.root, (fs::path(kCfg).parent_path() / "val").lexically_normal().string());
    EXPECT_EQ(f.dataset.classes, (std::vector<std::string>{"cat", "dog"}));
    EXPECT_EQ(f.dataset.image.resize, 256);
    EXPECT_EQ(f.dataset.image.crop_h, 224);
    EXPECT_EQ(f.dataset.image.crop_w, 200);
    EXPECT_EQ(f.metric, dcs::Metric::Top5);
    const Config sq = parse_config("model: {path: m.onnx}\ndataset: {format: folder, root: /v, crop: 32}\n", kCfg);
    EXPECT_EQ(sq.dataset.image.crop_h, 32);
    EXPECT_EQ(sq.dataset.image.crop_w, 32);
    EXPECT_EQ(sq.dataset.image.resize, 0);  // from the model (load_data)
    EXPECT_FALSE(sq.metric.has_value());

    const Config n = parse_config("model: {path: m.onnx}\ndataset: {images: /d/x.npy}\n", kCfg);
    EXPECT_EQ(n.dataset.format, dcs::DatasetFormat::Npy);  // implied by .npy
    EXPECT_EQ(n.dataset.images, "/d/x.npy");
    EXPECT_EQ(n.dataset.labels, "");  // no labels: agreement
    const Config z = parse_config("model: {path: m.onnx}\ndataset: {file: /d/a.npz, images: x, labels: y}\n", kCfg);
    EXPECT_EQ(z.dataset.format, dcs::DatasetFormat::Npy);
    EXPECT_EQ(z.dataset.file, "/d/a.npz");
    EXPECT_EQ(z.dataset.images, "x");
    EXPECT_EQ(z.dataset.labels, "y");
}

TEST(Config, EarlyStop) {
    EXPECT_FALSE(parse_config(kMinimal, kCfg).search.early_stop);
    EXPECT_TRUE(parse_config(kMinimal + "search: {early_stop: true}\n", kCfg).search.early_stop);
    expect_config_error(kMinimal + "search: {early_stop: 3}\n", {"search.early_stop: must be true or false, got 3"});
}

TEST(Config, RuntimeMemoryLimit) {
    EXPECT_EQ(parse_config(kMinimal, kCfg).runtime.memory_limit_mb, 2048);
    EXPECT_EQ(parse_config(kMinimal + "runtime: {memory_limit: 4096}\n", kCfg).runtime.memory_limit_mb, 4096);
    expect_config_error(kMinimal + "runtime: {memory_limit: 100}\n",
                        {"runtime.memory_limit: must be an integer >= 256 (MiB of memory per process for evaluation), got 100"});
    expect_config_error(kMinimal + "runtime: {memory: 100}\n", {"runtime.memory: unknown key", "memory_limit"});
}

TEST(Config, FolderAndNpyErrors) {
    const std::string m = "model: {path: m}\ndataset:\n";
    expect_config_error(m + "  format: folder\n", {"line 3: dataset.root: required key is missing"});
    expect_config_error(m + "  root: v\n  images: x\n",
                        {"line 4: dataset.images: only used with dataset.format: idx or npy, but dataset.format is folder"});
    expect_config_error(m + "  format: npy\n  images: x.npy\n  root: v\n",
                        {"line 5: dataset.root: only used with dataset.format: folder, but dataset.format is npy"});
    expect_config_error(m + "  images: a\n  labels: b\n  crop: 3\n", {"dataset.crop: only used with dataset.format: folder"});
    expect_config_error(m + "  format: npy\n  images: d.npz\n", {"dataset.images: an .npz archive goes in dataset.file"});
    expect_config_error(m + "  format: npy\n", {"dataset.images: required key is missing"});
    expect_config_error(m + "  root: v\n  crop: [1, 2, 3]\n", {"line 4: dataset.crop: must be an integer or [height, width]"});
    expect_config_error(m + "  root: v\n  crop: 0\n", {"dataset.crop: must be an integer or [height, width] in 1..65536"});
    expect_config_error(m + "  root: v\n  resize: -1\n", {"dataset.resize: must be an integer in 1..65536"});
    expect_config_error(m + "  root: v\n  classes: []\n", {"dataset.classes: must be a non-empty list"});
    expect_config_error(m + "  root: v\n  classes: [a, a]\n", {"dataset.classes[1]: duplicate class 'a'"});
    expect_config_error(m + "  root: v\n  metric: top3\n",
                        {"dataset.metric: must be one of top1, top5, agreement, got top3"});
}

// ---------------------------------------------------------------- types and ranges

TEST(Config, WrongTypes) {
    expect_config_error(kMinimal + "search: {population: many}\n",
                        {"line 6: search.population: must be an even number >= 4, got many"});
    expect_config_error(kMinimal + "search: {population: 8.0}\n", {"search.population", "got 8.0"});
    expect_config_error(kMinimal + "search: {population: [8]}\n", {"search.population", "got a list [8]"});
    expect_config_error(kMinimal + "search: {population:}\n", {"search.population", "got an empty value"});
    expect_config_error(kMinimal + "compression: {weight_bits: {a: 1}}\n",
                        {"compression.weight_bits: must be a non-empty list", "got a map {a: 1}"});
    expect_config_error(kMinimal + "compression: {weight_bits: 8}\n", {"compression.weight_bits: must be", "got 8"});
    expect_config_error(kMinimal + "search: [1, 2]\n", {"line 6: search: must be a map, got a list"});
    expect_config_error("model: m.onnx\ndataset: {images: a, labels: b}\n", {"line 1: model: must be a map, got m.onnx"});
    expect_config_error("model: {path: [a, b]}\ndataset: {images: a, labels: b}\n",
                        {"model.path: must be a non-empty file path, got a list"});
    expect_config_error(kMinimal + "compression: {bias_correction: maybe}\n",
                        {"compression.bias_correction: must be true or false, got maybe"});
    expect_config_error(kMinimal + "search: {max_accuracy_drop: two}\n", {"search.max_accuracy_drop", "got two"});
    expect_config_error(kMinimal + "search: {max_accuracy_drop: .nan}\n", {"search.max_accuracy_drop", "got .nan"});
    expect_config_error(kMinimal + "search: {seed: 0x10}\n", {"search.seed", "got 0x10"});
    expect_config_error(kMinimal + "search: {generations: 99999999999999999999}\n",
                        {"search.generations", "out of range"});
    expect_config_error(kMinimal + "compression:\n  layers: {match: a}\n", {"compression.layers: must be a list"});
    expect_config_error(kMinimal + "compression:\n  layers:\n    - fc1\n",
                        {"line 8: compression.layers[0]: must be a map", "got fc1"});
    expect_config_error(kMinimal + "compression:\n  layers:\n    - {match: [a]}\n",
                        {"compression.layers[0].match: must be a layer name or glob"});
    expect_config_error(kMinimal + "  calibration: [0, 512]\n", {"dataset.calibration: must be a map"});
    expect_config_error(kMinimal + "search: {objectives: accuracy}\n", {"search.objectives: must be a list"});
}

TEST(Config, SearchRanges) {
    expect_config_error(kMinimal + "search:\n  population: 7\n",
                        {kCfg + " line 7: search.population: must be an even number >= 4, got 7"});
    expect_config_error(kMinimal + "search: {population: 2}\n", {"search.population", "got 2"});
    expect_config_error(kMinimal + "search: {population: -4}\n", {"search.population", "got -4"});
    expect_config_error(kMinimal + "search: {generations: 0}\n", {"search.generations: must be an integer >= 1, got 0"});
    expect_config_error(kMinimal + "search: {seed: -1}\n", {"search.seed: must be an integer >= 0, got -1"});
    expect_config_error(kMinimal + "search: {max_accuracy_drop: -0.5}\n",
                        {"search.max_accuracy_drop: must be a number of percentage points in [0, 100], got -0.5"});
    expect_config_error(kMinimal + "search: {max_accuracy_drop: 150}\n", {"search.max_accuracy_drop", "got 150"});
    expect_config_error(kMinimal + "search: {max_evaluations: -1}\n", {"search.max_evaluations", ">= 0", "got -1"});
    expect_config_error(kMinimal + "search: {offspring: 1}\n", {"search.offspring", ">= 2", "got 1"});
    expect_config_error(kMinimal + "search: {offspring: -4}\n", {"search.offspring", ">= 0", "got -4"});
    expect_config_error(kMinimal + "search: {ofspring: 8}\n", {"search.ofspring", "did you mean 'offspring'"});
    expect_config_error(kMinimal + "search: {stagnation_generations: -2}\n",
                        {"search.stagnation_generations", ">= 0", "got -2"});
    expect_config_error(kMinimal + "search: {algorithm: nsga3}\n",
                        {"search.algorithm: must be one of nsga2, random, got nsga3", "did you mean 'nsga2'?"});
}

TEST(Config, Objectives) {
    expect_config_error(kMinimal + "search: {objectives: [accuracy, bops]}\n",
                        {"search.objectives: must contain accuracy and size, got a list [accuracy, bops]"});
    expect_config_error(kMinimal + "search: {objectives: [size]}\n", {"must contain accuracy and size"});
    expect_config_error(kMinimal + "search: {objectives: []}\n", {"must contain accuracy and size"});
    expect_config_error(kMinimal + "search: {objectives: [accuracy, size, energy]}\n",
                        {"search.objectives[2]: must be one of accuracy, size, bops, latency, got energy"});
    expect_config_error(kMinimal + "search: {objectives: [accuracy, size, size]}\n",
                        {"search.objectives[2]: duplicate objective size"});
}

TEST(Config, CompressionChoiceLists) {
    expect_config_error(kMinimal + "compression:\n  weight_bits: [2, 9]\n",
                        {"line 7: compression.weight_bits[1]: must be an integer bit-width in 1..8, got 9"});
    expect_config_error(kMinimal + "compression: {weight_bits: [0]}\n", {"compression.weight_bits[0]", "got 0"});
    expect_config_error(kMinimal + "compression: {weight_bits: []}\n", {"compression.weight_bits: must be a non-empty list"});
    expect_config_error(kMinimal + "compression: {weight_bits: [4, 8, 4]}\n",
                        {"compression.weight_bits[2]: duplicate value 4"});
    expect_config_error(kMinimal + "compression: {weight_bits: [4.5]}\n", {"compression.weight_bits[0]", "got 4.5"});
    expect_config_error(kMinimal + "compression: {prune_ratios: [0.5, 1.0]}\n",
                        {"compression.prune_ratios[1]: must be a number in [0, 1)", "got 1.0"});
    expect_config_error(kMinimal + "compression: {prune_ratios: [-0.1]}\n", {"compression.prune_ratios[0]", "got -0.1"});
    expect_config_error(kMinimal + "compression: {prune_ratios: []}\n", {"compression.prune_ratios: must be a non-empty list"});
    expect_config_error(kMinimal + "compression: {prune_ratios: [0.5, 0.50]}\n",
                        {"compression.prune_ratios[1]: duplicate value 0.50"});
    expect_config_error(kMinimal + "compression:\n  layers:\n    - {match: fc3, weight_bits: [16]}\n",
                        {"line 8: compression.layers[0].weight_bits[0]", "got 16"});
    expect_config_error(kMinimal + "compression:\n  layers:\n    - {match: fc3, prune_ratios: [2]}\n",
                        {"compression.layers[0].prune_ratios[0]", "got 2"});
    // Block lists report the element's own line.
    expect_config_error(kMinimal + "compression:\n  weight_bits:\n    - 4\n    - 8\n    - 12\n",
                        {"line 10: compression.weight_bits[2]"});
}

TEST(Config, CompressionEnums) {
    expect_config_error(kMinimal + "compression: {granularity: per_chanel}\n",
                        {"compression.granularity: must be one of per_channel, per_tensor, got per_chanel",
                         "did you mean 'per_channel'?"});
    expect_config_error(kMinimal + "compression: {scheme: affine}\n", {"compression.scheme: must be one of symmetric, asymmetric"});
    expect_config_error(kMinimal + "compression: {pruning: channel}\n", {"compression.pruning: must be one of unstructured, filter"});
    expect_config_error(kMinimal + "compression: {method: kmeans}\n", {"compression.method: must be one of quantize, cluster"});
    expect_config_error(kMinimal + "compression: {weight_clip: max}\n", {"compression.weight_clip: must be one of maxabs, mse"});
    expect_config_error(kMinimal + "compression: {calibration: entropy}\n",
                        {"compression.calibration: must be one of minmax, percentile, mse, got entropy"});
    expect_config_error(kMinimal + "compression: {activation_bits: 4}\n",
                        {"compression.activation_bits: must be 8 (the only activation bit-width supported for now), got 4"});
    expect_config_error(kMinimal + "compression: {granularity: [per_tensor]}\n",
                        {"compression.granularity: must be one of", "got a list"});
}

TEST(Config, Preprocess) {
    const std::string head = "dataset: {images: a, labels: b}\nmodel:\n  path: m\n  preprocess:\n";
    expect_config_error(head + "    scale: 0\n", {"line 5: model.preprocess.scale: must be a number > 0, got 0"});
    expect_config_error(head + "    scale: abc\n", {"model.preprocess.scale", "got abc"});
    expect_config_error(head + "    std: [0.5, 0]\n", {"line 5: model.preprocess.std[1]: must be a number > 0, got 0"});
    expect_config_error(head + "    std: []\n", {"model.preprocess.std: must be a non-empty list"});
    expect_config_error(head + "    mean: 0.5\n", {"model.preprocess.mean: must be a non-empty list", "got 0.5"});
    expect_config_error(head + "    mean: [a]\n", {"model.preprocess.mean[0]: must be a number, got a"});
    expect_config_error(head + "    mean: [0.1, 0.2, 0.3]\n    std: [1, 2]\n",
                        {"line 5: model.preprocess: mean has 3 entries but std has 2"});
    const Config ok = parse_config(head + "    mean: [0.1, 0.2, 0.3]\n    std: [1]\n", kCfg);
    EXPECT_EQ(ok.model.preprocess.mean.size(), 3u);
}

TEST(Config, Subsets) {
    expect_config_error(kMinimal + "  validation: {offset: -1, count: 10}\n",
                        {"line 6: dataset.validation.offset: must be an integer >= 0", "got -1"});
    expect_config_error(kMinimal + "  validation: {offset: 0, count: 0}\n",
                        {"dataset.validation.count: must be an integer >= 1", "got 0"});
    expect_config_error(kMinimal + "  calibration: {offset: 0, size: 10}\n",
                        {"dataset.calibration.size: unknown key", "expected one of offset, count"});
    // Only the given field changes; the other keeps its default.
    const Config c = parse_config(kMinimal + "  validation: {count: 100}\n", kCfg);
    EXPECT_EQ(c.dataset.validation.offset, 512);
    EXPECT_EQ(c.dataset.validation.count, 100);
}

TEST(Config, NearestWord) {
    const std::vector<std::string> keys{"population", "generations", "seed"};
    EXPECT_EQ(dcs::nearest_word("popluation", keys), "population");
    EXPECT_EQ(dcs::nearest_word("Population", keys), "population");
    EXPECT_EQ(dcs::nearest_word("sed", keys), "seed");
    EXPECT_EQ(dcs::nearest_word("xyz", keys), "");
    EXPECT_EQ(dcs::nearest_word("generations_max", keys), "generations");
    EXPECT_EQ(dcs::nearest_word("gen", keys), "");
    EXPECT_EQ(dcs::nearest_word("anything", {}), "");
    EXPECT_STREQ(dcs::objective_name(Objective::Bops), "bops");
}
