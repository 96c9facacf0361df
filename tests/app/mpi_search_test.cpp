// The search under mpirun, at the rank count given by DCS_MPI_NP (CTest runs it at 1, 2 and 4; the
// determinism test also compares 3 and 8 ranks). Every run has a time limit: a hang is a failure.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "support/process.hpp"
#include "support/search_config.hpp"

namespace fs = std::filesystem;
using namespace dcs::test;

namespace {

int np() {
    const char* v = std::getenv("DCS_MPI_NP");
    return v ? std::atoi(v) : 2;
}

const std::vector<std::string> kEnv{"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMP_NUM_THREADS=1",
                                    "OMPI_MCA_rmaps_base_oversubscribe=1"};

std::string config_text(const std::string& out, int generations, bool large = false) {
    return lenet300_search_config(out, generations, 5, large);
}

std::vector<std::string> mpirun(int n, std::vector<std::string> args) {
    std::vector<std::string> v{"mpirun", "--oversubscribe", "--allow-run-as-root", "-np", std::to_string(n), DCS_BINARY};
    v.insert(v.end(), args.begin(), args.end());
    return v;
}

/// The results file's evaluations, fronts and test record as text, without timings and ranks.
std::string dump(const std::string& h5) {
    auto r = run_process(
        {"/usr/bin/python3", "-c",
         "import h5py, sys\n"
         "f = h5py.File(sys.argv[1], 'r')\n"
         "e = f['evaluations']\n"
         "for i in range(e['id'].shape[0]):\n"
         "    print(e['generation'][i], list(e['genome'][i]), repr(e['accuracy'][i]), e['size_bytes'][i], e['ok'][i], "
         "e['error'][i].decode())\n"
         "g = f['generations']\n"
         "print(list(g['front_ids'][:]), list(g['front_offsets'][:]), [repr(x) for x in g['hypervolume'][:]])\n"
         "if 'test' in f:\n"
         "    t = f['test']\n"
         "    print('test', repr(t.attrs['baseline_accuracy']), list(t['ids'][:]), [repr(x) for x in "
         "t['accuracy'][:]])\n",
         h5},
        60);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
}

TEST(MpiSearch, SameResultsAtEveryRankCount) {
    TempDir dir;
    std::string cfg = dir.write("c.yaml", config_text("single.h5", 2));
    auto single = run_process({DCS_BINARY, "search", cfg}, 300, kEnv);
    ASSERT_EQ(single.status, 0) << single.err;
    const std::string want = dump(dir.file("single.h5"));
    ASSERT_GT(want.size(), 100u);
    std::vector<int> counts{np()};
    if (np() == 4) counts = {3, 4, 8};  // the widest CTest entry also covers 3 and 8 ranks
    for (int n : counts) {
        std::string out = "np" + std::to_string(n) + ".h5";
        auto r = run_process(mpirun(n, {"search", cfg, "--output", dir.file(out)}), 300, kEnv);
        ASSERT_EQ(r.status, 0) << n << " ranks: " << r.err;
        EXPECT_EQ(dump(dir.file(out)), want) << n << " ranks";
    }
}

/// `config_text` with `search.offspring` (and another population) set.
std::string with_offspring(const std::string& text, int population, int offspring) {
    const std::string key = "search: {population: ";
    const size_t at = text.find(key);
    EXPECT_NE(at, std::string::npos);
    const size_t end = text.find(',', at);
    return text.substr(0, at) + key + std::to_string(population) + ", offspring: " + std::to_string(offspring) +
           text.substr(end);
}

TEST(MpiSearch, OffspringGiveTheSameResultsAtEveryRankCount) {
    TempDir dir;
    std::string cfg = dir.write("c.yaml", with_offspring(config_text("single.h5", 2), 8, 12));
    auto single = run_process({DCS_BINARY, "search", cfg}, 300, kEnv);
    ASSERT_EQ(single.status, 0) << single.err;
    const std::string want = dump(dir.file("single.h5"));
    auto per_gen = run_process({"/usr/bin/python3", "-c",
                                "import h5py, sys, collections\n"
                                "g = h5py.File(sys.argv[1], 'r')['evaluations/generation'][:]\n"
                                "c = collections.Counter(int(x) for x in g)\n"
                                "print(c[0], c[1], c[2])\n",
                                dir.file("single.h5")},
                               60);
    ASSERT_EQ(per_gen.status, 0) << per_gen.err;
    // The initial batch is 12 (the greedy seeds among them, some already evaluated by the sensitivity
    // scan, which are not counted again), then 12 children per generation.
    int gen0 = 0, gen1 = 0, gen2 = 0;
    ASSERT_EQ(std::sscanf(per_gen.out.c_str(), "%d %d %d", &gen0, &gen1, &gen2), 3) << per_gen.out;
    EXPECT_GT(gen0, 8);
    EXPECT_LE(gen0, 12);
    EXPECT_EQ(gen1, 12);
    EXPECT_EQ(gen2, 12);
    std::vector<int> counts{np()};
    if (np() == 4) counts = {3, 4};
    for (int n : counts) {
        std::string out = "np" + std::to_string(n) + ".h5";
        auto r = run_process(mpirun(n, {"search", cfg, "--output", dir.file(out)}), 300, kEnv);
        ASSERT_EQ(r.status, 0) << n << " ranks: " << r.err;
        EXPECT_EQ(dump(dir.file(out)), want) << n << " ranks";
        EXPECT_EQ(r.err.find("sit idle"), std::string::npos) << r.err;
    }
}

TEST(MpiSearch, WarnsWhenWorkersWouldSitIdle) {
    if (np() < 4) GTEST_SKIP() << "runs 6 ranks once, in the widest entry";
    TempDir dir;
    std::string cfg = dir.write("c.yaml", with_offspring(config_text("r.h5", 1), 4, 0));
    auto r = run_process(mpirun(6, {"search", cfg}), 300, kEnv);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("warning: 1 of 5 workers will sit idle in every generation (4 candidates per generation): "
                         "set search.offspring to 5"),
              std::string::npos)
        << r.err;
}

TEST(MpiSearch, WarnsWhenMpirunBindsRanksToFewerCpusThanThreads) {
    // OpenMPI 4 binds each of 2 ranks to a core by default; bound to one hardware thread (one CPU, with
    // or without SMT), OMP_NUM_THREADS=2 shares it.
    if (np() != 2) GTEST_SKIP() << "runs in the 2-rank entry";
    TempDir dir;
    std::string cfg = dir.write("c.yaml", config_text("r.h5", 1));
    std::vector<std::string> env{"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMP_NUM_THREADS=2"};
    const std::string warning = "to 1 CPU but OMP_NUM_THREADS=2, so each rank's threads share them: pass --bind-to none";
    std::vector<std::string> bound{"mpirun", "--allow-run-as-root", "--bind-to", "hwthread", "-np", "2", DCS_BINARY,
                                   "search", cfg, "--force"};
    auto r = run_process(bound, 300, env);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find(warning), std::string::npos) << r.err;
    bound[3] = "none";
    r = run_process(bound, 300, env);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err.find("OMP_NUM_THREADS"), std::string::npos) << r.err;
}

TEST(MpiSearch, CoordinatorSleepsWhileWorkersEvaluate) {
    // 2 ranks, so that a busy-polling coordinator would have a core of its own to burn (with more ranks
    // than cores it gets only its share, which a threshold cannot tell from polling with backoff).
    if (np() != 2) GTEST_SKIP() << "runs in the 2-rank entry";
    TempDir dir;
    // Evaluations of 5,000 images, so that rank 0's own work per result (instrumented and several times
    // slower under the sanitizers) stays small beside them: with 300 images it was a third of the wall
    // time under ASan, 19-20% with 1,000.
    std::string text = config_text("r.h5", 10, true);
    const std::string count = "count: 1000}";
    ASSERT_NE(text.find(count), std::string::npos);
    text.replace(text.find(count), count.size(), "count: 5000}");
    std::string cfg = dir.write("c.yaml", text);
    auto r = run_process(mpirun(np(), {"search", cfg}), 300, kEnv);
    ASSERT_EQ(r.status, 0) << r.err;
    // The run table: wall time, rank 0's CPU time, and one row per worker rank.
    auto t = run_process({"/usr/bin/python3", "-c",
                          "import h5py, sys\n"
                          "f = h5py.File(sys.argv[1], 'r')\n"
                          "g = f['runs']\n"
                          "print(len(g['wall_seconds']), g['wall_seconds'][0], g['coordinator_cpu_seconds'][0], g['workers'][0])\n"
                          "print(sorted(int(x) for x in g['worker_rank'][:]), int(sum(g['worker_evaluations'][:])),"
                          " len(f['evaluations/id']))\n",
                          dir.file("r.h5")},
                         60);
    ASSERT_EQ(t.status, 0) << t.err;
    int runs = 0, workers = 0;
    double wall = 0, cpu = 0;
    ASSERT_EQ(std::sscanf(t.out.c_str(), "%d %lf %lf %d", &runs, &wall, &cpu, &workers), 4) << t.out;
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(workers, np() - 1);
    std::string ranks = "[";
    for (int k = 1; k < np(); ++k) ranks += (k > 1 ? ", " : "") + std::to_string(k);
    const std::string second = t.out.substr(t.out.find('\n') + 1);
    EXPECT_EQ(second.substr(0, second.find(']') + 1), ranks + "]") << t.out;
    int evals = 0, rows = 0;
    ASSERT_EQ(std::sscanf(second.substr(second.find(']') + 1).c_str(), "%d %d", &evals, &rows), 2) << t.out;
    EXPECT_EQ(evals, rows) << "every evaluation counted once";
    // A coordinator blocked in MPI busy-polls: on 2 cores with one worker it takes about a whole core
    // (48-100% measured with the sleeps removed). Polling with backoff takes a few percent.
    EXPECT_GT(wall, 0.0);
    EXPECT_LT(cpu, 0.3 * wall) << "rank 0 used " << cpu << " s of CPU in " << wall << " s";
    EXPECT_NE(r.err.find("coordinator CPU"), std::string::npos) << r.err;
}

TEST(MpiSearch, FailedEvaluationsAreRecordedAndTheSearchGoesOn) {
    TempDir dir;
    std::string cfg = dir.write("c.yaml", config_text("r.h5", 2));
    auto env = kEnv;
    env.push_back("DCS_FAULT_RATE=0.3");
    auto r = run_process(mpirun(np(), {"search", cfg, "--json"}), 300, env);
    ASSERT_EQ(r.status, 0) << r.err;
    auto count = run_process({"/usr/bin/python3", "-c",
                              "import h5py,sys; e=h5py.File(sys.argv[1],'r')['evaluations']; "
                              "bad=[i for i in range(len(e['ok'])) if e['ok'][i]==0]; "
                              "assert all(e['error'][i].decode()=='injected evaluation failure (DCS_FAULT_RATE)' for i in bad); "
                              "print(len(bad), len(e['ok']))",
                              dir.file("r.h5")},
                             60);
    ASSERT_EQ(count.status, 0) << count.err;
    int bad = 0, total = 0;
    ASSERT_EQ(std::sscanf(count.out.c_str(), "%d %d", &bad, &total), 2);
    EXPECT_GT(bad, total / 10);
    EXPECT_LT(bad, total / 2);
}

/// Runs the search under mpirun with the fault injection `fault` (VAR=value) and expects every rank to
/// end, within a time limit, with a failure status and `message` on stderr.
void expect_fault_ends_every_rank(const std::string& config, const std::string& fault, const std::string& message) {
    TempDir dir;
    std::string cfg = dir.write("c.yaml", config);
    auto env = kEnv;
    env.push_back(fault);
    auto r = run_process(mpirun(np(), {"search", cfg}), 60, env);
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
}

TEST(MpiSearch, FailingWorkerEndsEveryRankWithOneMessage) {
    if (np() < 2) GTEST_SKIP() << "needs a worker rank";
    expect_fault_ends_every_rank(config_text("r.h5", 2), "DCS_FAULT_WORKER_LOAD=1", "rank 1: injected load failure");
}

TEST(MpiSearch, FailingCoordinatorEndsEveryRank) {
    if (np() < 2) GTEST_SKIP() << "needs a worker rank";
    expect_fault_ends_every_rank(config_text("r.h5", 2), "DCS_FAULT_COORDINATOR_AFTER=5",
                                 "injected coordinator failure");
}

TEST(MpiSearch, BadConfigEndsEveryRankWithOneMessage) {
    TempDir dir;
    std::string cfg = dir.write("c.yaml", config_text("r.h5", 2) + "search2: {}\n");
    auto r = run_process(mpirun(np(), {"search", cfg}), 60, kEnv);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 2) << r.err;
    size_t first = r.err.find("dcsearch: error:");
    ASSERT_NE(first, std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("dcsearch: error:", first + 1), std::string::npos) << "one message only: " << r.err;
    EXPECT_NE(r.err.find("search2"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir.file("r.h5")));
}

/// `config_text` with a held-out test subset (dataset.test).
std::string with_test_subset(const std::string& text) {
    const size_t at = text.find("compression:");
    EXPECT_NE(at, std::string::npos);
    return text.substr(0, at) + "  test: {offset: 2000, count: 500}\n" + text.substr(at);
}

TEST(MpiSearch, TestSubsetFiguresMatchOneProcess) {
    TempDir dir;
    std::string cfg = dir.write("c.yaml", with_test_subset(config_text("single.h5", 2)));
    auto single = run_process({DCS_BINARY, "search", cfg, "--json"}, 300, kEnv);
    ASSERT_EQ(single.status, 0) << single.err;
    const std::string want = dump(dir.file("single.h5"));
    ASSERT_NE(want.find("\ntest 0."), std::string::npos) << want;
    auto r = run_process(mpirun(np(), {"search", cfg, "--json", "--output", dir.file("mpi.h5")}), 300, kEnv);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(dump(dir.file("mpi.h5")), want);
    // The --json output is the same but for the results path.
    const auto cut = [](const std::string& s) { return s.substr(0, s.find(",\"results\":")); };
    EXPECT_EQ(cut(r.out), cut(single.out));
    EXPECT_NE(r.out.find("\"test_accuracy\""), std::string::npos) << r.out;
}

TEST(MpiSearch, FailingTestEvaluationEndsEveryRank) {
    if (np() < 2) GTEST_SKIP() << "needs a worker rank";
    expect_fault_ends_every_rank(with_test_subset(config_text("r.h5", 1)), "DCS_FAULT_TEST_SUBSET=1",
                                 "injected failure of the test-subset evaluation");
}

TEST(MpiSearch, KilledMpirunResumesToTheSameFront) {
    TempDir dir;
    std::string full_cfg = dir.write("full.yaml", config_text("full.h5", 60, true));
    auto full = run_process(mpirun(np(), {"search", full_cfg}), 300, kEnv);
    ASSERT_EQ(full.status, 0) << full.err;
    std::string cfg = dir.write("k.yaml", config_text("k.h5", 60, true));
    Child child = spawn_process(mpirun(np(), {"search", cfg}), kEnv);
    for (int i = 0; i < 6000 && !fs::exists(dir.file("k.h5")) && process_running(child); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(process_running(child)) << "finished before the kill; make the run longer";
    wait_process(child, 0, true);  // SIGKILL to mpirun's process group
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto resumed = run_process(mpirun(np(), {"search", cfg, "--resume"}), 300, kEnv);
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    // Same evaluations and fronts as the uninterrupted run, whatever the kill interrupted.
    std::string a = dump(dir.file("full.h5")), b = dump(dir.file("k.h5"));
    EXPECT_EQ(a, b);
}

}  // namespace
