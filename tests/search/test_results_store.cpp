// Tests of search/results_store.cpp: round trip, atomic replacement, bad files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/error.hpp"
#include "search/results_store.hpp"
#include "support/process.hpp"

using namespace dcs;
using namespace dcs::search;

namespace {

ResultsData sample() {
    ResultsData d;
    d.config_text = "model: {path: m.onnx}\n";
    d.config_path = "/x/config.yaml";
    d.model_path = "/x/m.onnx";
    d.model_hash = "0123456789abcdef";
    d.layers = {{"conv1", "Conv", {6, 1, 5, 5}, 156, 117600, {2, 4, 8}, {0.0, 0.5}},
                {"fc1", "Gemm", {10, 84}, 850, 840, {4, 8}, {0.0, 0.25, 0.75}}};
    d.baseline_accuracy = 0.91;
    d.baseline_size_bytes = 4024;
    d.baseline_bops = 1e9;
    d.validation_samples = 2000;
    d.objectives = {"accuracy", "size"};
    d.hv_reference = {0.11, 4024};
    d.max_accuracy_drop = 2.0;
    d.seed = 9;
    for (int i = 0; i < 5; ++i) {
        Evaluation e;
        e.genome = {i % 3, i % 2, i % 2, i % 3};
        e.accuracy = 0.8 + 0.01 * i;
        e.size_bytes = 1000 + i;
        e.bops = 5e8;
        e.violation = i == 4 ? 0.03 : 0.0;
        e.ok = i != 2;
        e.error = i == 2 ? "injected failure \"quoted\"" : "";
        e.seconds = 0.5;
        e.peak_rss_bytes = 1e8 * (i + 1);
        e.rank = i % 2;
        e.generation = i - 1;
        e.objectives = {1 - e.accuracy, e.size_bytes};
        d.evaluations.push_back(e);
    }
    d.generations = {{0, {0, 1, 3}, {0, 1}, 0.5}, {1, {1, 3, 4}, {3}, 0.75}};
    d.runs = {{12.5, 0.25, 2}, {3.0, 0.125, 1}};
    d.workers = {{0, 1, 3, 1.5, 2.5e8}, {0, 2, 1, 0.5, 0.0}, {1, 1, 1, 0.5, 3e8}};
    return d;
}

TEST(ResultsStore, RoundTrip) {
    dcs::test::TempDir dir;
    std::string path = dir.file("r.h5");
    ResultsData d = sample();
    write_results(path, d);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    ResultsData r = read_results(path);
    EXPECT_EQ(r.config_text, d.config_text);
    EXPECT_EQ(r.model_hash, d.model_hash);
    ASSERT_EQ(r.layers.size(), 2u);
    EXPECT_EQ(r.layers[1].prunes, d.layers[1].prunes);
    EXPECT_EQ(r.layers[0].bits, d.layers[0].bits);
    ASSERT_EQ(r.evaluations.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(r.evaluations[i].genome, d.evaluations[i].genome);
        EXPECT_EQ(r.evaluations[i].ok, d.evaluations[i].ok);
        EXPECT_EQ(r.evaluations[i].error, d.evaluations[i].error);
        EXPECT_DOUBLE_EQ(r.evaluations[i].accuracy, d.evaluations[i].accuracy);
        EXPECT_EQ(r.evaluations[i].generation, d.evaluations[i].generation);
        EXPECT_DOUBLE_EQ(r.evaluations[i].peak_rss_bytes, d.evaluations[i].peak_rss_bytes);
    }
    ASSERT_EQ(r.generations.size(), 2u);
    EXPECT_EQ(r.generations[1].front, d.generations[1].front);
    EXPECT_EQ(r.generations[0].population, d.generations[0].population);
    EXPECT_DOUBLE_EQ(r.generations[1].hypervolume, 0.75);
    EXPECT_EQ(r.hv_reference, d.hv_reference);
    ASSERT_EQ(r.runs.size(), 2u);
    EXPECT_DOUBLE_EQ(r.runs[0].wall_seconds, 12.5);
    EXPECT_DOUBLE_EQ(r.runs[1].coordinator_cpu_seconds, 0.125);
    EXPECT_EQ(r.runs[0].workers, 2);
    ASSERT_EQ(r.workers.size(), 3u);
    EXPECT_EQ(r.workers[1].rank, 2);
    EXPECT_EQ(r.workers[2].run, 1);
    EXPECT_EQ(r.workers[0].evaluations, 3);
    EXPECT_DOUBLE_EQ(r.workers[0].busy_seconds, 1.5);
    EXPECT_DOUBLE_EQ(r.workers[0].peak_rss_bytes, 2.5e8);
    EXPECT_DOUBLE_EQ(r.workers[2].peak_rss_bytes, 3e8);
}

TEST(ResultsStore, TestRecordRoundTripAndAbsence) {
    dcs::test::TempDir dir;
    ResultsData d = sample();
    write_results(dir.file("none.h5"), d);
    EXPECT_FALSE(read_results(dir.file("none.h5")).test.has_value());
    d.test = TestRecord{2512, 7488, 0.905, {3, 1}, {0.875, 0.8125}};
    write_results(dir.file("t.h5"), d);
    const ResultsData r = read_results(dir.file("t.h5"));
    ASSERT_TRUE(r.test.has_value());
    EXPECT_EQ(r.test->offset, 2512);
    EXPECT_EQ(r.test->count, 7488);
    EXPECT_EQ(r.test->baseline_accuracy, 0.905);
    EXPECT_EQ(r.test->ids, (std::vector<size_t>{3, 1}));
    EXPECT_EQ(r.test->accuracy_of(1), 0.8125);
    EXPECT_EQ(r.test->accuracy_of(3), 0.875);
    EXPECT_TRUE(std::isnan(r.test->accuracy_of(0)));
    // A record naming an evaluation that does not exist is refused; the previous file stays.
    d.test->ids = {5, 1};
    EXPECT_THROW(write_results(dir.file("t.h5"), d), std::runtime_error);
    EXPECT_EQ(read_results(dir.file("t.h5")).test->ids, (std::vector<size_t>{3, 1}));
    // h5py sees the group.
    std::string script = dir.write("check.py",
                                   "import h5py, sys\n"
                                   "t = h5py.File(sys.argv[1], 'r')['test']\n"
                                   "assert list(t['ids'][:]) == [3, 1] and list(t['accuracy'][:]) == [0.875, 0.8125]\n"
                                   "assert t.attrs['offset'] == 2512 and t.attrs['count'] == 7488\n"
                                   "assert t.attrs['baseline_accuracy'] == 0.905\n");
    auto p = dcs::test::run_process({"/usr/bin/python3", script, dir.file("t.h5")}, 60);
    EXPECT_EQ(p.status, 0) << p.err;
}

TEST(ResultsStore, FilesWithoutARunTableStillRead) {
    // Written by dcsearch before the run table existed (the fuzz corpus keeps such files).
    ResultsData r = read_results(std::string(DCS_SOURCE_DIR) + "/fuzz/corpus/results/size.h5");
    EXPECT_FALSE(r.evaluations.empty());
    EXPECT_TRUE(r.runs.empty());
    EXPECT_TRUE(r.workers.empty());
}

TEST(ResultsStore, ReadableByH5pyAndH5dump) {
    dcs::test::TempDir dir;
    std::string path = dir.file("r.h5");
    write_results(path, sample());
    std::string script = dir.write("check.py",
                                   "import h5py, sys\n"
                                   "f = h5py.File(sys.argv[1], 'r')\n"
                                   "assert f['evaluations/weight_bits'].shape == (5, 2), f['evaluations/weight_bits'].shape\n"
                                   "assert list(f['evaluations/weight_bits'][1]) == [4, 8]\n"
                                   "assert abs(f['evaluations/prune_ratio'][1][1] - 0.25) < 1e-12\n"
                                   "assert f['evaluations/error'][2].decode() == 'injected failure \"quoted\"'\n"
                                   "assert f['layers/name'][1].decode() == 'fc1'\n"
                                   "assert abs(f['baseline'].attrs['accuracy'] - 0.91) < 1e-12\n"
                                   "assert list(f['runs/worker_busy_seconds'][:]) == [1.5, 0.5, 0.5]\n"
                                   "assert list(f['runs/worker_peak_rss_bytes'][:]) == [2.5e8, 0.0, 3e8]\n"
                                   "assert f['evaluations/peak_rss_bytes'][4] == 5e8\n"
                                   "print('ok')\n");
    auto r = dcs::test::run_process({"/usr/bin/python3", script, path}, 60);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "ok\n");
    auto h = dcs::test::run_process({"h5dump", "-H", path}, 60);
    EXPECT_EQ(h.status, 0) << h.err;
    EXPECT_NE(h.out.find("weight_bits"), std::string::npos);
}

TEST(ResultsStore, FailedWriteLeavesThePreviousFileIntact) {
    dcs::test::TempDir dir;
    std::string path = dir.file("r.h5");
    write_results(path, sample());
    auto before = std::filesystem::file_size(path);
    ResultsData bad = sample();
    bad.evaluations[0].genome = {9, 9, 9, 9};  // out of the layers' choices
    EXPECT_ANY_THROW(write_results(path, bad));
    EXPECT_EQ(std::filesystem::file_size(path), before);
    EXPECT_EQ(read_results(path).evaluations.size(), 5u);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(ResultsStore, BadFilesAreInputErrors) {
    dcs::test::TempDir dir;
    EXPECT_THROW(read_results(dir.file("none.h5")), InputError);
    EXPECT_THROW(read_results(dir.path.string()), InputError);
    EXPECT_THROW(read_results(dir.write("text.h5", "not hdf5 at all")), InputError);
    EXPECT_THROW(read_results(dir.write("empty.h5", "")), InputError);
    // A valid HDF5 file that is not ours.
    auto r = dcs::test::run_process({"/usr/bin/python3", "-c",
                                     "import h5py,sys; f=h5py.File(sys.argv[1],'w'); f['x']=[1,2]", dir.file("other.h5")},
                                    60);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_THROW(read_results(dir.file("other.h5")), InputError);
    // Truncations of a real file.
    std::string path = dir.file("r.h5");
    write_results(path, sample());
    std::string bytes = dcs::test::slurp(path);
    for (size_t len : {bytes.size() / 4, bytes.size() / 2, bytes.size() - 100}) {
        std::string t = dir.write("t.h5", bytes.substr(0, len));
        EXPECT_THROW(read_results(t), InputError) << len;
    }
}

/// The message read_results throws for `path` ("no error" if none).
std::string read_error(const std::string& path) {
    try {
        read_results(path);
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

TEST(ResultsStore, DamagedFilesNeverReachHdf5) {
    // HDF5 1.10 loops forever on some damaged files (fuzz/regressions/results); the dcsearch header's
    // length and checksum stop every changed byte before HDF5 reads the file.
    dcs::test::TempDir dir;
    const std::string path = dir.file("r.h5");
    write_results(path, sample());
    const std::string good = dcs::test::slurp(path);
    EXPECT_EQ(good.compare(0, 16, "dcsearch-results"), 0);
    for (size_t at : {size_t(600), good.size() / 2, good.size() - 1}) {
        std::string bad = good;
        bad[at] ^= 0x10;
        const std::string msg = read_error(dir.write("flip.h5", bad));
        EXPECT_NE(msg.find("flip.h5: checksum mismatch"), std::string::npos) << at << ": " << msg;
    }
    std::string msg = read_error(dir.write("long.h5", good + "x"));
    EXPECT_NE(msg.find("holds " + std::to_string(good.size() + 1) + " bytes, its header says " +
                       std::to_string(good.size())), std::string::npos) << msg;
    msg = read_error(dir.write("short.h5", good.substr(0, 100)));
    EXPECT_NE(msg.find("short.h5: the results file holds only 100 bytes (truncated"), std::string::npos) << msg;
    msg = read_error(dir.write("header.h5", "dcsearch-results" + std::string(600, '\0')));
    EXPECT_NE(msg.find("header version 0"), std::string::npos) << msg;
    auto r = dcs::test::run_process({"/usr/bin/python3", "-c",
                                     "import h5py,sys; f=h5py.File(sys.argv[1],'w'); f['x']=[1,2]", dir.file("other.h5")},
                                    60);
    ASSERT_EQ(r.status, 0) << r.err;
    msg = read_error(dir.file("other.h5"));
    EXPECT_NE(msg.find("other.h5: an HDF5 file, but not a dcsearch results file"), std::string::npos) << msg;
    const std::string found = std::string(DCS_SOURCE_DIR) + "/fuzz/regressions/results/hdf5-global-heap-loop.h5";
    EXPECT_NE(read_error(found).find("not a dcsearch results file"), std::string::npos) << read_error(found);
}

TEST(ResultsStore, FileHashChangesWithContent) {
    dcs::test::TempDir dir;
    auto a = file_hash(dir.write("a", "hello")), b = file_hash(dir.write("b", "hellp"));
    EXPECT_EQ(a.size(), 16u);
    EXPECT_NE(a, b);
    EXPECT_EQ(a, file_hash(dir.write("c", "hello")));
    EXPECT_EQ(file_hash(dir.write("e", "")), "cbf29ce484222325");  // FNV-1a 64 offset basis
}

}  // namespace
