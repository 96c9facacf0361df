// The command line as a user meets it: run the real binary on good and bad input.
// Every bad input must give exit status 2 within 10 s, one line on stderr naming the culprit.
#include <gtest/gtest.h>

#include <fstream>
#include <algorithm>
#include <functional>

#include "support/onnx_builder.hpp"
#include "support/process.hpp"

using namespace dcs::test;

namespace {

void write_idx(const std::string& path, uint8_t type, std::vector<uint32_t> dims, const std::vector<uint8_t>& payload) {
    std::ofstream out(path, std::ios::binary);
    uint8_t head[4] = {0, 0, type, static_cast<uint8_t>(dims.size())};
    out.write(reinterpret_cast<const char*>(head), 4);
    for (uint32_t d : dims) {
        uint8_t be[4] = {static_cast<uint8_t>(d >> 24), static_cast<uint8_t>(d >> 16), static_cast<uint8_t>(d >> 8),
                         static_cast<uint8_t>(d)};
        out.write(reinterpret_cast<const char*>(be), 4);
    }
    out.write(reinterpret_cast<const char*>(payload.data()), static_cast<std::streamsize>(payload.size()));
}

/// A complete, valid setup in a temp dir: the tiny MLP (4 inputs, 2 classes), 64 images of 2x2 pixels.
struct TinySetup {
    TempDir dir;
    std::string config;
    static constexpr int kImages = 64;

    TinySetup() {
        tiny_mlp().save(dir.file("model.onnx"));
        std::vector<uint8_t> px(kImages * 4), labels(kImages);
        for (int i = 0; i < kImages; ++i) {
            for (int j = 0; j < 4; ++j) px[i * 4 + j] = static_cast<uint8_t>((i * 37 + j * 91) % 256);
            labels[i] = static_cast<uint8_t>(i % 2);
        }
        write_idx(dir.file("images.idx"), 0x08, {kImages, 2, 2}, px);
        write_idx(dir.file("labels.idx"), 0x08, {kImages}, labels);
        config = write_config("");
    }
    /// The valid config with `extra` YAML appended (later keys of the same section override nothing:
    /// cases that need a different value write their own text through `write_config_text`).
    std::string write_config(const std::string& extra) const {
        return write_config_text(base_yaml() + extra);
    }
    static std::string base_yaml() {
        return "model:\n"
               "  path: model.onnx\n"
               "dataset:\n"
               "  format: idx\n"
               "  images: images.idx\n"
               "  labels: labels.idx\n"
               "  calibration: {offset: 0, count: 16}\n"
               "  validation: {offset: 16, count: 48}\n";
    }
    std::string write_config_text(const std::string& text) const { return dir.write("config.yaml", text); }
};

ProcResult dcsearch(std::vector<std::string> args) {
    args.insert(args.begin(), DCS_BINARY);
    return run_process(args, 30.0);
}

TEST(Cli, HelpAndVersion) {
    auto r = dcsearch({"--help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("usage: dcsearch"), std::string::npos);
    for (const char* cmd : {"search", "inspect", "eval", "report", "export"}) {
        auto h = dcsearch({cmd, "--help"});
        EXPECT_EQ(h.status, 0) << cmd;
        EXPECT_NE(h.out.find(std::string("usage: dcsearch ") + cmd), std::string::npos) << cmd;
    }
    EXPECT_EQ(dcsearch({}).status, 2);
}

TEST(Cli, InspectListsLayers) {
    TinySetup s;
    auto r = dcsearch({"inspect", s.dir.file("model.onnx")});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("fc1"), std::string::npos);
    EXPECT_NE(r.out.find("[3, 4]"), std::string::npos);
    auto j = dcsearch({"inspect", s.dir.file("model.onnx"), "--json"});
    ASSERT_EQ(j.status, 0);
    EXPECT_NE(j.out.find("\"name\":\"fc2\""), std::string::npos) << j.out;
    EXPECT_NE(j.out.find("\"total_params\":23"), std::string::npos) << j.out;
}

TEST(Cli, EvalJsonOnTinySetup) {
    TinySetup s;
    auto r = dcsearch({"eval", s.config, "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"samples\":48"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"size_bytes\":92"), std::string::npos) << r.out;  // 23 params * 4 bytes
    EXPECT_EQ(count_lines(r.out), 1);
}

struct BadCase {
    const char* name;
    std::function<std::vector<std::string>(TinySetup&)> make;  ///< returns the dcsearch arguments
    const char* culprit;                                    ///< must appear in stderr
};

std::vector<BadCase> bad_cases() {
    auto eval = [](const std::string& cfg) { return std::vector<std::string>{"eval", cfg}; };
    auto cfg_with = [eval](std::string yaml) {
        return [eval, yaml](TinySetup& s) { return eval(s.write_config_text(yaml)); };
    };
    const std::string base = TinySetup::base_yaml();
    return {
        {"unknown option", [](TinySetup& s) { return std::vector<std::string>{"eval", s.config, "--bogus"}; }, "--bogus"},
        {"missing argument", [](TinySetup&) { return std::vector<std::string>{"eval"}; }, "eval"},
        {"too many arguments", [](TinySetup& s) { return std::vector<std::string>{"inspect", s.config, s.config}; }, "inspect"},
        {"config missing", [eval](TinySetup& s) { return eval(s.dir.file("nope.yaml")); }, "nope.yaml"},
        {"config is a directory", [eval](TinySetup& s) { return eval(s.dir.path.string()); }, "directory"},
        {"config empty", cfg_with(""), "config.yaml"},
        {"yaml syntax", cfg_with("model: [unclosed\n"), "config.yaml"},
        {"unknown key", cfg_with(base + "search:\n  populaton: 8\n"), "population"},
        {"wrong type", cfg_with(base + "search:\n  population: many\n"), "search.population"},
        {"odd population", cfg_with(base + "search:\n  population: 7\n"), "search.population"},
        {"bits out of range", cfg_with(base + "compression:\n  weight_bits: [4, 9]\n"), "weight_bits"},
        {"prune ratio 1", cfg_with(base + "compression:\n  prune_ratios: [0.5, 1.0]\n"), "prune_ratios"},
        {"empty choices", cfg_with(base + "compression:\n  weight_bits: []\n"), "weight_bits"},
        {"model missing", cfg_with("model: {path: missing.onnx}\n" + base.substr(base.find("dataset:"))), "missing.onnx"},
        {"model is random bytes",
         [eval](TinySetup& s) {
             s.dir.write("model.onnx", std::string("\x08\x07\x12\x04junk\xff\xff\xff\x01 not a model at all", 32));
             return eval(s.config);
         },
         "model.onnx"},
        {"model truncated",
         [eval](TinySetup& s) {
             std::string b = tiny_mlp().bytes();
             s.dir.write("model.onnx", b.substr(0, b.size() / 2));
             return eval(s.config);
         },
         "model.onnx"},
        {"unsupported operator",
         [eval](TinySetup& s) {
             auto b = tiny_mlp();
             b.node("NoSuchOp", {"y"}, {"z"}, "squash");
             b.g().mutable_output(0)->set_name("z");
             b.save(s.dir.file("model.onnx"));
             return eval(s.config);
         },
         "squash"},
        {"inspect directory", [](TinySetup& s) { return std::vector<std::string>{"inspect", s.dir.path.string()}; }, "directory"},
        {"idx truncated",
         [eval](TinySetup& s) {
             write_idx(s.dir.file("images.idx"), 0x08, {TinySetup::kImages, 2, 2}, std::vector<uint8_t>(100, 1));
             return eval(s.config);
         },
         "images.idx"},
        {"idx unknown type",
         [eval](TinySetup& s) {
             write_idx(s.dir.file("images.idx"), 0x05, {TinySetup::kImages, 2, 2}, std::vector<uint8_t>(256, 1));
             return eval(s.config);
         },
         "images.idx"},
        {"label count differs",
         [eval](TinySetup& s) {
             write_idx(s.dir.file("labels.idx"), 0x08, {10}, std::vector<uint8_t>(10, 1));
             return eval(s.config);
         },
         "labels.idx"},
        {"label beyond classes",
         [eval](TinySetup& s) {
             std::vector<uint8_t> l(TinySetup::kImages, 1);
             l[20] = 7;
             write_idx(s.dir.file("labels.idx"), 0x08, {TinySetup::kImages}, l);
             return eval(s.config);
         },
         "labels.idx"},
        {"subset beyond data",
         cfg_with("model:\n  path: model.onnx\ndataset:\n  format: idx\n  images: images.idx\n  labels: labels.idx\n"
                  "  calibration: {offset: 0, count: 16}\n  validation: {offset: 40, count: 48}\n"),
         "dataset.validation"},
        {"empty model file",
         [eval](TinySetup& s) {
             s.dir.write("model.onnx", "");
             return eval(s.config);
         },
         "model.onnx"},
        {"model path is a directory",
         cfg_with("model: {path: .}\n" + base.substr(base.find("dataset:"))),
         "directory"},
        {"initializer dims disagree with data",
         [eval](TinySetup& s) {
             auto b = tiny_mlp();
             b.g().mutable_initializer(0)->set_dims(0, 5);
             b.save(s.dir.file("model.onnx"));
             return eval(s.config);
         },
         "initializer 'w1'"},
        {"external data escapes the model directory",
         [eval](TinySetup& s) {
             auto b = tiny_mlp();
             auto* t = b.g().mutable_initializer(0);
             t->clear_float_data();
             t->set_data_location(onnx::TensorProto::EXTERNAL);
             auto* kv = t->add_external_data();
             kv->set_key("location");
             kv->set_value("../../etc/passwd");
             b.save(s.dir.file("model.onnx"));
             return eval(s.config);
         },
         "escapes"},
        {"unknown top-level key", cfg_with(base + "modle: {}\n"), "modle"},
        {"section of the wrong type", cfg_with("model: {path: model.onnx}\ndataset: [1, 2]\n"), "dataset"},
        {"fractional bit-width", cfg_with(base + "compression:\n  weight_bits: [2.5]\n"), "weight_bits"},
        {"negative population", cfg_with(base + "search:\n  population: -4\n"), "search.population"},
        {"empty label file",
         [eval](TinySetup& s) {
             s.dir.write("labels.idx", "");
             return eval(s.config);
         },
         "labels.idx"},
        {"hdf5 file missing",
         cfg_with("model: {path: model.onnx}\ndataset:\n  format: hdf5\n  hdf5: {file: missing.h5}\n"),
         "missing.h5"},
        {"calibration subset beyond data",
         cfg_with("model:\n  path: model.onnx\ndataset:\n  format: idx\n  images: images.idx\n  labels: labels.idx\n"
                  "  calibration: {offset: 60, count: 16}\n  validation: {offset: 0, count: 48}\n"),
         "dataset.calibration"},
        {"unwritable output path",
         [](TinySetup& s) {
             return std::vector<std::string>{"search", s.write_config("output: {path: /proc/nope/r.h5}\n")};
         },
         "output.path"},
        {"resume without a results file",
         [](TinySetup& s) { return std::vector<std::string>{"search", s.config, "--resume"}; },
         "--resume"},
        {"images do not fit the model",
         [eval](TinySetup& s) {
             write_idx(s.dir.file("images.idx"), 0x08, {TinySetup::kImages, 3, 3}, std::vector<uint8_t>(TinySetup::kImages * 9, 1));
             return eval(s.config);
         },
         "model.onnx"},
    };
}

TEST(Cli, BadInputExitsTwoWithOneLineNamingTheCulprit) {
    ASSERT_GE(bad_cases().size(), 30u);
    for (const auto& c : bad_cases()) {
        TinySetup s;
        auto args = c.make(s);
        auto r = dcsearch(args);
        EXPECT_EQ(r.status, 2) << c.name << ": " << r.err;
        EXPECT_FALSE(r.timed_out) << c.name;
        EXPECT_LT(r.seconds, 10.0) << c.name;
        EXPECT_EQ(count_lines(r.err), 1) << c.name << ": " << r.err;
        EXPECT_NE(r.err.find(c.culprit), std::string::npos) << c.name << ": " << r.err;
        EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << c.name;
    }
}

}  // namespace

namespace {

// The same matrix through `mpirun -np 3 dcsearch search ... --force` (eval cases become searches):
// every rank ends within 10 s with a non-zero status, one error line naming the culprit, and an
// existing results file is left as it was.
TEST(Cli, BadInputUnderMpirunEndsEveryRank) {
    const std::vector<std::string> env{"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
                                       "OMP_NUM_THREADS=1"};
    int ran = 0;
    for (const auto& c : bad_cases()) {
        TinySetup s;
        auto args = c.make(s);
        if (args.empty() || (args[0] != "eval" && args[0] != "search") || args.size() < 2) continue;
        const bool resume = std::find(args.begin(), args.end(), "--resume") != args.end();
        args[0] = "search";
        if (!resume) args.push_back("--force");
        std::string results = s.dir.file("results.h5");
        if (!resume) s.dir.write("results.h5", "precious results");
        std::vector<std::string> cmd{"mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "3", DCS_BINARY};
        cmd.insert(cmd.end(), args.begin(), args.end());
        auto r = run_process(cmd, 30.0, env);
        ++ran;
        EXPECT_NE(r.status, 0) << c.name << ": " << r.err;
        EXPECT_FALSE(r.timed_out) << c.name;
        EXPECT_LT(r.seconds, 10.0) << c.name;
        size_t first = r.err.find("dcsearch: error:");
        EXPECT_NE(first, std::string::npos) << c.name << ": " << r.err;
        if (first != std::string::npos) {
            EXPECT_EQ(r.err.find("dcsearch: error:", first + 1), std::string::npos) << c.name << ": " << r.err;
            std::string line = r.err.substr(first, r.err.find('\n', first) - first);
            EXPECT_NE(line.find(c.culprit), std::string::npos) << c.name << ": " << line;
        }
        if (!resume) {
            EXPECT_EQ(slurp(results), "precious results") << c.name;
        }
    }
    EXPECT_GE(ran, 25);
}

}  // namespace
