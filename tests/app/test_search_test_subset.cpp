// dataset.test end to end in one process: the search evaluates the baseline and its final front on the
// held-out subset; the results file, `search --json`, the report's CSV and `export` carry the figures,
// which equal an independent `eval` of the same candidate; `--resume` keeps them.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/process.hpp"
#include "support/search_config.hpp"

using namespace dcs::test;

namespace {

/// The short LeNet-300 search (calibration 0..127, validation 1000..1299) with a test subset.
std::string config_text(const std::string& out, const std::string& test = "{offset: 2000, count: 500}") {
    std::string text = lenet300_search_config(out, 2);
    const size_t at = text.find("compression:");
    return text.insert(at, "  test: " + test + "\n");
}

ProcResult dcsearch(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv{DCS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, 300, env);
}

/// Checks, for the results file `h5` and the `search --json` output `json`: /test holds the baseline and
/// every front member, equal to the JSON figures, to the report's CSV and to `eval` (and `eval --layers`
/// of each member's exported layers.yaml) run independently on the config. Prints "ok".
const char* kCheck =
    "import h5py, json, subprocess, sys, csv, os\n"
    "binary, cfg, h5, out, tmp = sys.argv[1:6]\n"
    "s = json.loads(out)\n"
    "f = h5py.File(h5, 'r')\n"
    "t = f['test']\n"
    "assert t.attrs['offset'] == 2000 and t.attrs['count'] == 500, dict(t.attrs)\n"
    "ids = [int(i) for i in t['ids'][:]]\n"
    "assert ids, 'empty front'\n"
    "acc = dict(zip(ids, [float(a) for a in t['accuracy'][:]]))\n"
    "assert ids == [m['id'] for m in s['front']], (ids, s['front'])\n"
    "assert s['baseline']['test_accuracy'] == t.attrs['baseline_accuracy']\n"
    "for m in s['front']:\n"
    "    assert m['test_accuracy'] == acc[m['id']], (m, acc)\n"
    "def run(*a):\n"
    "    r = subprocess.run([binary] + list(a), capture_output=True, text=True)\n"
    "    assert r.returncode == 0, r.stderr\n"
    "    return r.stdout\n"
    "e = json.loads(run('eval', cfg, '--json'))\n"
    "assert e['test_accuracy'] == s['baseline']['test_accuracy'] and e['test_samples'] == 500, e\n"
    "run('report', h5, '-o', os.path.join(tmp, 'r.html'), '--csv', os.path.join(tmp, 'r.csv'))\n"
    "rows = {int(r['id']): r for r in csv.DictReader(open(os.path.join(tmp, 'r.csv')))}\n"
    "html = open(os.path.join(tmp, 'r.html')).read()\n"
    "assert 'test accuracy</th>' in html and 'test-summary' in html\n"
    "for m in s['front']:\n"
    "    i = m['id']\n"
    "    assert abs(float(rows[i]['test_accuracy']) - m['test_accuracy']) < 1e-6, rows[i]\n"
    "    d = os.path.join(tmp, 'e%d' % i)\n"
    "    x = json.loads(run('export', h5, '--id', str(i), '-o', d, '--json'))\n"
    "    assert x['test_accuracy'] == m['test_accuracy'], x\n"
    "    v = json.loads(run('eval', cfg, '--layers', os.path.join(d, 'layers.yaml'), '--json'))\n"
    "    assert v['accuracy'] == m['accuracy'] and v['test_accuracy'] == m['test_accuracy'], (v, m)\n"
    "print('ok')\n";

std::string check(const TempDir& dir, const std::string& cfg, const std::string& h5, const std::string& json) {
    const std::string script = dir.write("check.py", kCheck);
    auto r = run_process({"/usr/bin/python3", script, DCS_BINARY, cfg, h5, json, dir.path.string()}, 300);
    return r.out + r.err;
}

std::string front_of(const std::string& json) {
    auto a = json.find("\"front\":");
    auto b = json.find(",\"results\":");
    return a == std::string::npos || b == std::string::npos ? "" : json.substr(a, b - a);
}

TEST(SearchTestSubset, FrontEvaluatedOnTheTestSubsetEqualsAnIndependentEval) {
    TempDir dir;
    const std::string cfg = dir.write("c.yaml", config_text("r.h5"));
    auto a = dcsearch({"search", cfg, "--json"});
    ASSERT_EQ(a.status, 0) << a.err;
    EXPECT_NE(a.err.find("on the test subset (500 samples)"), std::string::npos) << a.err;
    EXPECT_EQ(check(dir, cfg, dir.file("r.h5"), a.out), "ok\n");
    // A resume of the finished search gives the same front and test figures.
    auto b = dcsearch({"search", cfg, "--resume", "--json"});
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(front_of(b.out), front_of(a.out));
    EXPECT_NE(front_of(b.out).find("\"test_accuracy\""), std::string::npos);
}

TEST(SearchTestSubset, FailureDuringTheTestEvaluationLeavesNoRecordAndResumeCompletesIt) {
    TempDir dir;
    const std::string cfg = dir.write("c.yaml", config_text("r.h5"));
    auto a = dcsearch({"search", cfg, "--json"}, {"DCS_FAULT_TEST_SUBSET=1"});
    EXPECT_EQ(a.status, 1) << a.err;
    EXPECT_NE(a.err.find("DCS_FAULT_TEST_SUBSET"), std::string::npos) << a.err;
    // The search itself is complete on disk; no half-written test record.
    auto h = run_process(
        {"/usr/bin/python3", "-c",
         "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(f.attrs['complete'], 'test' in f)", dir.file("r.h5")},
        60);
    EXPECT_EQ(h.out, "1 False\n") << h.err;
    auto b = dcsearch({"search", cfg, "--resume", "--json"});
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(check(dir, cfg, dir.file("r.h5"), b.out), "ok\n");
}

TEST(SearchTestSubset, WithoutATestSubsetNothingIsAdded) {
    TempDir dir;
    const std::string cfg = dir.write("c.yaml", lenet300_search_config("r.h5", 1));
    auto a = dcsearch({"search", cfg, "--json"});
    ASSERT_EQ(a.status, 0) << a.err;
    EXPECT_EQ(a.out.find("test_accuracy"), std::string::npos) << a.out;
    auto h = run_process(
        {"/usr/bin/python3", "-c", "import h5py,sys; print('test' in h5py.File(sys.argv[1],'r'))", dir.file("r.h5")},
        60);
    EXPECT_EQ(h.out, "False\n") << h.err;
    auto e = dcsearch({"eval", cfg, "--json"});
    ASSERT_EQ(e.status, 0) << e.err;
    EXPECT_EQ(e.out.find("test_accuracy"), std::string::npos) << e.out;
}

TEST(SearchTestSubset, ATestSubsetOutsideTheDataOrOverlappingIsAnError) {
    TempDir dir;
    for (const auto& [test, parts] : std::vector<std::pair<std::string, std::vector<std::string>>>{
             {"{offset: 9000, count: 2000}", {"dataset.test", "offset 9000 + count 2000", "10000 samples"}},
             {"{offset: 1200, count: 500}",
              {"dataset.test", "samples 1200..1699", "dataset.validation (samples 1000..1299)"}}}) {
        const std::string cfg = dir.write("bad.yaml", config_text("r.h5", test));
        for (const char* command : {"search", "eval"}) {
            auto r = dcsearch({command, cfg});
            EXPECT_EQ(r.status, 2) << command << ": " << r.err;
            EXPECT_EQ(count_lines(r.err), 1) << r.err;
            for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << p << " not in " << r.err;
        }
    }
}

}  // namespace
