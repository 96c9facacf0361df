// `dcsearch search` end to end in one process: summary, results file, determinism, kill and resume.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "support/process.hpp"
#include "support/search_config.hpp"

namespace fs = std::filesystem;
using namespace dcs::test;

namespace {

std::string config_text(const std::string& out, int generations, bool large = false) {
    return lenet300_search_config(out, generations, 3, large);
}

std::string front_of(const std::string& json) {
    auto a = json.find("\"front\":");
    auto b = json.find(",\"results\":");
    return a == std::string::npos || b == std::string::npos ? "" : json.substr(a, b - a);
}

int evaluations_of(const std::string& json) {
    std::smatch m;
    std::regex re("\"evaluations\":([0-9]+)");
    return std::regex_search(json, m, re) ? std::stoi(m[1]) : -1;
}

ProcResult search(const std::vector<std::string>& extra, double timeout = 300) {
    std::vector<std::string> args{DCS_BINARY, "search"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_process(args, timeout);
}

TEST(SearchCli, SummaryResultsFileAndDeterminism) {
    TempDir dir;
    std::string cfg = dir.write("c.yaml", config_text("r1.h5", 3));
    auto a = search({cfg, "--json"});
    ASSERT_EQ(a.status, 0) << a.err;
    EXPECT_GT(evaluations_of(a.out), 20);
    EXPECT_NE(front_of(a.out).find("\"layers\""), std::string::npos) << a.out;
    // Progress names the generation just finished: the last is "generation 3/3", never beyond.
    EXPECT_NE(a.err.find("generation 3/3:"), std::string::npos) << a.err;
    EXPECT_EQ(a.err.find("generation 4/3"), std::string::npos) << a.err;
    // The results file holds one row per evaluation and the summary's front, readable by h5py.
    std::string script = dir.write("check.py",
                                   "import h5py, json, sys\n"
                                   "f = h5py.File(sys.argv[1], 'r')\n"
                                   "s = json.loads(sys.argv[2])\n"
                                   "assert f['evaluations/id'].shape[0] == s['evaluations'], f['evaluations/id'].shape\n"
                                   "assert f.attrs['complete'] == 1\n"
                                   "base = f['baseline'].attrs['accuracy']\n"
                                   "for m in s['front']:\n"
                                   "    i = m['id']\n"
                                   "    assert f['evaluations/feasible'][i] == 1\n"
                                   "    assert abs(f['evaluations/accuracy'][i] - m['accuracy']) < 1e-9\n"
                                   "    assert (base - m['accuracy']) * 100 <= 1.0 + 1e-9\n"
                                   "sizes = [m['size_bytes'] for m in s['front']]\n"
                                   "assert sizes == sorted(sizes)\n"
                                   "assert (f['evaluations/generation'][:] == -1).sum() > 0  # the sensitivity scan\n"
                                   "assert len(f['generations/hypervolume']) >= 2\n"
                                   "print('ok')\n");
    auto py = run_process({"/usr/bin/python3", script, dir.file("r1.h5"), a.out}, 60);
    EXPECT_EQ(py.out, "ok\n") << py.err;
    // Same config and seed, another output: the same evaluations and front.
    std::string cfg2 = dir.write("c2.yaml", config_text("r2.h5", 3));
    auto b = search({cfg2, "--json"});
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(front_of(a.out), front_of(b.out));
    EXPECT_EQ(evaluations_of(a.out), evaluations_of(b.out));
}

TEST(SearchCli, KilledRunResumesToTheSameFront) {
    TempDir dir;
    std::string full_cfg = dir.write("full.yaml", config_text("full.h5", 60, true));
    auto full = search({full_cfg, "--json"});
    ASSERT_EQ(full.status, 0) << full.err;

    std::string cfg = dir.write("k.yaml", config_text("k.h5", 60, true));
    // SIGKILL part-way: once the first checkpoint is on disk, and a little later.
    Child child = spawn_process({DCS_BINARY, "search", cfg, "--json"});
    for (int i = 0; i < 6000 && !fs::exists(dir.file("k.h5")) && process_running(child); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    ASSERT_TRUE(process_running(child)) << "the run finished before it could be killed; make it longer";
    auto killed = wait_process(child, 0, true);
    EXPECT_EQ(killed.status, 128 + SIGKILL);
    ASSERT_TRUE(fs::exists(dir.file("k.h5"))) << killed.err;
    auto rows = run_process({"/usr/bin/python3", "-c",
                             "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(f['evaluations/id'].shape[0], f.attrs['complete'])",
                             dir.file("k.h5")},
                            60);
    ASSERT_EQ(rows.status, 0) << rows.err;
    EXPECT_NE(rows.out.find(" 0"), std::string::npos) << rows.out;  // not complete
    // Without --resume an existing results file is refused, and left alone.
    auto refused = search({cfg});
    EXPECT_EQ(refused.status, 2);
    EXPECT_NE(refused.err.find("--resume"), std::string::npos);
    auto resumed = search({cfg, "--resume", "--json"});
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    EXPECT_NE(resumed.err.find("resuming"), std::string::npos);
    EXPECT_EQ(front_of(resumed.out), front_of(full.out));
    EXPECT_EQ(evaluations_of(resumed.out), evaluations_of(full.out));
    // The run table: the killed run as of its last checkpoint, then the resumed one; every evaluation
    // counted once, by the run that made it.
    auto runs = run_process({"/usr/bin/python3", "-c",
                             "import h5py,sys; f=h5py.File(sys.argv[1],'r'); g=f['runs']; "
                             "print(len(g['wall_seconds']), list(g['worker_run'][:]), list(g['worker_rank'][:]), "
                             "int(sum(g['worker_evaluations'][:])) == len(f['evaluations/id']), "
                             "int(g['worker_evaluations'][1]) > 0)",
                             dir.file("k.h5")},
                            60);
    ASSERT_EQ(runs.status, 0) << runs.err;
    EXPECT_EQ(runs.out, "2 [0, 1] [0, 0] True True\n");
}

TEST(SearchCli, ASecondSearchOnTheSameResultsFileIsRefused) {
    TempDir dir;
    // Long enough (tens of seconds) to outlast the second one's 10 s wait for the lock.
    std::string cfg = dir.write("c.yaml", config_text("r.h5", 3000, true));
    Child first = spawn_process({DCS_BINARY, "search", cfg});
    for (int i = 0; i < 6000 && !fs::exists(dir.file("r.h5")) && process_running(first); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(process_running(first)) << "finished too early";
    auto second = search({cfg, "--resume"}, 60);
    EXPECT_EQ(second.status, 2) << second.err;
    EXPECT_NE(second.err.find("another dcsearch process"), std::string::npos) << second.err;
    wait_process(first, 0, true);
}

TEST(SearchCli, ResumeRefusesAnotherConfigOrAMissingFile) {
    TempDir dir;
    std::string cfg = dir.write("a.yaml", config_text("a.h5", 1));
    ASSERT_EQ(search({cfg}).status, 0);
    std::string other = dir.write("b.yaml", config_text("a.h5", 2));
    auto r = search({other, "--resume"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("different config"), std::string::npos) << r.err;
    std::string missing = dir.write("m.yaml", config_text("nothing.h5", 1));
    auto m = search({missing, "--resume"});
    EXPECT_EQ(m.status, 2);
    EXPECT_NE(m.err.find("not found"), std::string::npos) << m.err;
    auto bad_out = search({cfg, "--force", "--output", "/proc/nope/r.h5"});
    EXPECT_EQ(bad_out.status, 2) << bad_out.err;
}

}  // namespace
