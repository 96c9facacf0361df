// `dcsearch report`, `export` and `apply` end to end: a short real search, then the exported files
// checked against the results file (accuracy by `eval --layers`, size by the file's length), the QDQ
// model by Debian's onnx checker and by an independent NumPy QDQ interpreter run on the validation
// images, and every bad input with exit status 2 and one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "search/export.hpp"
#include "search/queries.hpp"
#include "search/report.hpp"
#include "search/results_store.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using namespace dcs::test;

namespace {

const char* kData =
    "dataset:\n"
    "  format: idx\n"
    "  images: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
    "  labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
    "  calibration: {offset: 0, count: 64}\n"
    "  validation: {offset: 1000, count: 300}\n";

std::string config_text(const std::string& model, const std::string& out) {
    return "model:\n"
           "  path: " +
           std::string(DCS_SOURCE_DIR) + "/configs/" + model +
           "\n"
           "  preprocess: {scale: 0.00392156862745098, mean: [0.2860], std: [0.3530]}\n" +
           kData +
           "compression: {weight_bits: [2, 4, 8], prune_ratios: [0.0, 0.5, 0.75]}\n"
           "search: {population: 8, generations: 2, seed: 3, max_accuracy_drop: 1.0}\n"
           "output: {path: " +
           out + "}\n";
}

ProcResult dcsearch(const std::vector<std::string>& extra, double timeout = 300) {
    std::vector<std::string> args{DCS_BINARY};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_process(args, timeout);
}

double number(const std::string& json, const std::string& key) {
    std::smatch m;
    std::regex re("\"" + key + "\":(-?[0-9.eE+-]+)");
    if (!std::regex_search(json, m, re)) return -1.0;
    return std::stod(m[1]);
}

/// Checks an exported model with onnx.checker, then runs it with a small NumPy interpreter of the
/// operators the exporter writes (QuantizeLinear / DequantizeLinear per tensor and per axis, Conv,
/// Gemm, Relu, MaxPool, Flatten, ...) on the validation images; prints the accuracy.
const char* kQdqEval = R"PY(
import sys, gzip, numpy as np, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
g = m.graph
assert m.opset_import[0].version >= 13
ops = [n.op_type for n in g.node]
assert ops.count('QuantizeLinear') >= 1 and ops.count('DequantizeLinear') > ops.count('QuantizeLinear'), ops
v = {t.name: numpy_helper.to_array(t) for t in g.initializer}
# Weights: int8 initializers behind a per-axis DequantizeLinear; pruned weights are zero codes.
wdq = [n for n in g.node if n.op_type == 'DequantizeLinear' and n.input[0] in v]
assert wdq and all(v[n.input[0]].dtype == np.int8 and v[n.input[1]].ndim == 1 for n in wdq)
print('zero_fraction', float(np.mean(np.concatenate([(v[n.input[0]] == 0).ravel() for n in wdq]))))
def rd(p):
    b = gzip.open(p, 'rb').read(); nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
off, cnt = int(sys.argv[4]), int(sys.argv[5])
x = rd(sys.argv[2])[off:off + cnt].astype(np.float32)[:, None]
y = rd(sys.argv[3])[off:off + cnt]
x = (x * np.float32(0.00392156862745098) - np.float32(0.2860)) / np.float32(0.3530)
def attr(n, k, d):
    for a in n.attribute:
        if a.name == k: return onnx.helper.get_attribute_value(a)
    return d
def bshape(s, axis, rank):
    sh = [1] * rank; sh[axis] = -1; return s.reshape(sh)
def windows(x, k, s, p, d, fill):
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=fill)
    oh = (x.shape[2] - (k[0] - 1) * d[0] - 1) // s[0] + 1; ow = (x.shape[3] - (k[1] - 1) * d[1] - 1) // s[1] + 1
    for i in range(k[0]):
        for j in range(k[1]):
            yield i, j, x[:, :, i * d[0]:i * d[0] + s[0] * (oh - 1) + 1:s[0], j * d[1]:j * d[1] + s[1] * (ow - 1) + 1:s[1]]
v[g.input[0].name] = x
for n in g.node:
    i = [v[a] if a else None for a in n.input]; op = n.op_type
    if op == 'QuantizeLinear':
        lo, hi = (0, 255) if i[2].dtype == np.uint8 else (-128, 127)
        r = np.clip(np.round(i[0] / i[1]) + i[2].astype(np.float32), lo, hi).astype(i[2].dtype)
    elif op == 'DequantizeLinear':
        s, z = i[1], i[2].astype(np.float32)
        if s.ndim == 1: s, z = bshape(s, attr(n, 'axis', 1), i[0].ndim), bshape(z, attr(n, 'axis', 1), i[0].ndim)
        r = ((i[0].astype(np.float32) - z) * s).astype(np.float32)
    elif op == 'Gemm':
        a = i[0].T if attr(n, 'transA', 0) else i[0]; b = i[1].T if attr(n, 'transB', 0) else i[1]
        r = np.float32(attr(n, 'alpha', 1.0)) * (a @ b)
        if len(i) > 2 and i[2] is not None: r = r + np.float32(attr(n, 'beta', 1.0)) * i[2]
    elif op == 'MatMul': r = i[0] @ i[1]
    elif op == 'Conv':
        assert attr(n, 'group', 1) == 1
        w = i[1]; k = w.shape[2:]
        r = 0
        for a, b, win in windows(i[0], k, attr(n, 'strides', [1, 1]), attr(n, 'pads', [0] * 4), attr(n, 'dilations', [1, 1]), 0):
            r = r + np.einsum('nchw,oc->nohw', win, w[:, :, a, b])
        if len(i) > 2: r = r + i[2].reshape(1, -1, 1, 1)
    elif op == 'MaxPool':
        k = attr(n, 'kernel_shape', None)
        r = None
        for a, b, win in windows(i[0], k, attr(n, 'strides', k), attr(n, 'pads', [0] * 4), attr(n, 'dilations', [1, 1]), -np.inf):
            r = win if r is None else np.maximum(r, win)
    elif op == 'GlobalAveragePool': r = i[0].mean(axis=(2, 3), keepdims=True)
    elif op == 'Relu': r = np.maximum(i[0], 0)
    elif op == 'Add': r = i[0] + i[1]
    elif op == 'Flatten': ax = attr(n, 'axis', 1); r = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
    elif op == 'Reshape': r = i[0].reshape([i[0].shape[j] if d == 0 else d for j, d in enumerate(i[1])])
    else: raise SystemExit('operator not in the test interpreter: ' + op)
    v[n.output[0]] = r.astype(np.float32) if r.dtype == np.float64 else r
out = v[g.output[0].name]
print('accuracy', float(np.mean(out.argmax(axis=1) == y)))
)PY";

struct QdqCheck {
    double accuracy = -1, zero_fraction = -1;
    std::string err;
};

QdqCheck run_qdq_eval(const TempDir& dir, const std::string& onnx_path) {
    const std::string script = dir.write("qdq_eval.py", kQdqEval);
    auto py = run_process(
        {"/usr/bin/python3", script, onnx_path, "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
         "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "1000", "300"},
        120);
    QdqCheck c;
    c.err = py.err + py.out;
    std::smatch m;
    if (std::regex_search(py.out, m, std::regex("accuracy ([0-9.]+)"))) c.accuracy = std::stod(m[1]);
    if (std::regex_search(py.out, m, std::regex("zero_fraction ([0-9.]+)"))) c.zero_fraction = std::stod(m[1]);
    return c;
}

/// One short search for the whole file (about a second).
class ExportCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        cfg_ = dir_->write("c.yaml", config_text("lenet300.onnx", "r.h5"));
        auto s = dcsearch({"search", cfg_, "--json"});
        ASSERT_EQ(s.status, 0) << s.err;
        search_json_ = s.out;
        results_ = dir_->file("r.h5");
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }
    static TempDir* dir_;
    static std::string cfg_, results_, search_json_;
};
TempDir* ExportCli::dir_ = nullptr;
std::string ExportCli::cfg_, ExportCli::results_, ExportCli::search_json_;

}  // namespace

TEST_F(ExportCli, ExportByIdReproducesAccuracyAndSize) {
    const auto r = dcs::search::read_results(results_);
    const auto front = dcs::search::feasible_front(r);
    ASSERT_FALSE(front.empty());
    const size_t id = front.front();  // the smallest: the most compressed, pruned layers included
    const std::string out = dir_->file("ex");
    auto e = dcsearch({"export", results_, "--id", std::to_string(id), "-o", out, "--json"});
    ASSERT_EQ(e.status, 0) << e.err;
    EXPECT_EQ(number(e.out, "id"), static_cast<double>(id));
    EXPECT_NEAR(number(e.out, "accuracy"), r.evaluations[id].accuracy, 1e-9);
    EXPECT_EQ(number(e.out, "size_bytes"), r.evaluations[id].size_bytes);
    // model.dcz is exactly the recorded size.
    EXPECT_EQ(static_cast<double>(fs::file_size(out + "/model.dcz")), r.evaluations[id].size_bytes);
    // layers.yaml re-evaluates to exactly the recorded accuracy (and size).
    auto ev = dcsearch({"eval", cfg_, "--layers", out + "/layers.yaml", "--json"});
    ASSERT_EQ(ev.status, 0) << ev.err;
    EXPECT_EQ(number(ev.out, "accuracy"), number(e.out, "accuracy")) << ev.out;
    EXPECT_EQ(number(ev.out, "size_bytes"), r.evaluations[id].size_bytes);
    // The QDQ model: accepted by onnx.checker, and an independent interpreter reproduces the int8
    // accuracy within one image of 300.
    QdqCheck q = run_qdq_eval(*dir_, out + "/model.onnx");
    ASSERT_GE(q.accuracy, 0.0) << q.err;
    EXPECT_NEAR(q.accuracy, r.evaluations[id].accuracy, 1.0 / 300 + 1e-9) << q.err;
    const auto ch = dcs::search::choices_of(r, id);
    double pruned = 0;
    for (const auto& c : ch) pruned = std::max(pruned, c.prune_ratio);
    if (pruned > 0) {
        EXPECT_GT(q.zero_fraction, 0.2) << "pruned weights must be zero codes";
    }
}

TEST_F(ExportCli, ExportByMaxDropPicksTheSmallestFeasible) {
    const auto r = dcs::search::read_results(results_);
    // The smallest feasible (as the search flagged it) within 1 pt, computed here from the rows.
    double want = -1;
    for (const auto& e : r.evaluations)
        if (e.ok && e.violation <= 0.0 && (r.baseline_accuracy - e.accuracy) * 100.0 <= 1.0 + 1e-9 &&
            (want < 0 || e.size_bytes < want))
            want = e.size_bytes;
    const std::string out = dir_->file("ex_drop");
    auto e = dcsearch({"export", results_, "--max-drop", "1", "-o", out, "--json"});
    ASSERT_EQ(e.status, 0) << e.err;
    const size_t id = static_cast<size_t>(number(e.out, "id"));
    EXPECT_LE((r.baseline_accuracy - r.evaluations[id].accuracy) * 100.0, 1.0 + 1e-9);
    EXPECT_EQ(r.evaluations[id].size_bytes, want);
    EXPECT_EQ(r.evaluations[id].violation, 0.0);
    for (const char* f : {"layers.yaml", "model.onnx", "model.dcz"}) EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
    // Without --json: a human summary, still exit 0.
    auto h = dcsearch({"export", results_, "--max-drop", "1", "-o", out});
    EXPECT_EQ(h.status, 0) << h.err;
    EXPECT_NE(h.out.find("exported evaluation " + std::to_string(id)), std::string::npos) << h.out;
}

TEST_F(ExportCli, ReportAndCsv) {
    const auto r = dcs::search::read_results(results_);
    auto rep = dcsearch({"report", results_, "-o", dir_->file("report.html"), "--csv", dir_->file("front.csv")});
    ASSERT_EQ(rep.status, 0) << rep.err;
    const std::string html = slurp(dir_->file("report.html"));
    EXPECT_EQ(html.find("<script"), std::string::npos);
    size_t points = 0;
    for (size_t p = html.find("class=\"pt"); p != std::string::npos; p = html.find("class=\"pt", p + 1)) ++points;
    size_t ok = 0;
    for (const auto& e : r.evaluations) ok += e.ok;
    EXPECT_EQ(points, ok);
    EXPECT_EQ(count_lines(slurp(dir_->file("front.csv"))), static_cast<int>(dcs::search::feasible_front(r).size()) + 1);
    // The search's own front (its --json summary) has the same members.
    for (size_t id : dcs::search::feasible_front(r))
        EXPECT_NE(search_json_.find("{\"id\":" + std::to_string(id) + ","), std::string::npos) << id;
}

TEST_F(ExportCli, ApplyWritesTheSameFilesForAGivenConfiguration) {
    // LeNet-5 (convolutions, pooling) with a hand-written configuration, no search needed.
    const std::string cfg = dir_->write("l5.yaml", config_text("lenet5.onnx", "unused.h5"));
    const std::string layers = dir_->write("l5_layers.yaml",
                                           "default: {weight_bits: 4, prune_ratio: 0.5}\n"
                                           "layers:\n  conv1: {weight_bits: 8, prune_ratio: 0.0}\n");
    const std::string out = dir_->file("applied");
    auto a = dcsearch({"apply", cfg, layers, "-o", out, "--json"});
    ASSERT_EQ(a.status, 0) << a.err;
    auto ev = dcsearch({"eval", cfg, "--layers", out + "/layers.yaml", "--json"});
    ASSERT_EQ(ev.status, 0) << ev.err;
    EXPECT_EQ(number(a.out, "accuracy"), number(ev.out, "accuracy"));
    EXPECT_EQ(number(a.out, "size_bytes"), number(ev.out, "size_bytes"));
    EXPECT_EQ(static_cast<double>(fs::file_size(out + "/model.dcz")), number(ev.out, "size_bytes"));
    QdqCheck q = run_qdq_eval(*dir_, out + "/model.onnx");
    ASSERT_GE(q.accuracy, 0.0) << q.err;
    EXPECT_NEAR(q.accuracy, number(ev.out, "accuracy"), 1.0 / 300 + 1e-9) << q.err;
}

TEST_F(ExportCli, BadInputIsExitTwoWithOneLine) {
    const std::string out = dir_->file("bad");
    auto r = dcs::search::read_results(results_);
    // A failed evaluation, and a results file where no candidate is within the drop.
    r.evaluations[3].ok = false;
    r.evaluations[3].error = "oneDNN refused the primitive";
    const std::string failed = dir_->file("failed.h5");
    dcs::search::write_results(failed, r);
    auto worse = dcs::search::read_results(results_);
    worse.baseline_accuracy = 1.0;
    const std::string far = dir_->file("far.h5");
    dcs::search::write_results(far, worse);
    const std::string corrupt = dir_->write("corrupt.h5", "not an HDF5 file");
    const std::string n = std::to_string(r.evaluations.size());
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"export", dir_->file("missing.h5"), "--id", "0", "-o", out}, "missing.h5"},
        {{"export", corrupt, "--id", "0", "-o", out}, "corrupt.h5"},
        {{"export", results_, "--id", n, "-o", out}, "no such evaluation"},
        {{"export", results_, "--id", "x", "-o", out}, "expected a number"},
        {{"export", failed, "--id", "3", "-o", out}, "oneDNN refused"},
        {{"export", far, "--max-drop", "1", "-o", out}, "no feasible candidate"},
        {{"export", results_, "--max-drop", "-1", "-o", out}, ">= 0"},
        {{"export", results_, "-o", out}, "exactly one of"},
        {{"export", results_, "--id", "0", "--max-drop", "1", "-o", out}, "exactly one of"},
        {{"export", results_, "--id", "0"}, "-o DIR"},
        {{"export", results_, "--id", "0", "-o", cfg_}, "not a directory"},
        {{"report", dir_->file("missing.h5"), "-o", dir_->file("x.html")}, "missing.h5"},
        {{"report", results_}, "-o report.html"},
        {{"apply", cfg_, dir_->file("nope.yaml"), "-o", out}, "nope.yaml"},
    };
    for (const auto& [args, text] : cases) {
        auto p = dcsearch(args);
        std::string joined;
        for (const auto& a : args) joined += a + " ";
        EXPECT_EQ(p.status, 2) << joined << "\n" << p.err;
        EXPECT_EQ(count_lines(p.err), 1) << joined << "\n" << p.err;
        EXPECT_NE(p.err.find(text), std::string::npos) << joined << "\n" << p.err;
    }
    EXPECT_FALSE(fs::exists(out + "/model.onnx"));
}

TEST_F(ExportCli, HelpDescribesTheCommands) {
    for (const char* c : {"report", "export", "apply"}) {
        auto h = dcsearch({c, "--help"});
        EXPECT_EQ(h.status, 0);
        EXPECT_NE(h.out.find(std::string("usage: dcsearch ") + c), std::string::npos) << h.out;
    }
}
