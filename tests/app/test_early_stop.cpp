// search.early_stop end to end: evaluations clearly below the accuracy budget stop after part of the
// validation subset, are recorded with the samples they saw and as infeasible, and the search gives the
// same results in one process and under mpirun.
#include <gtest/gtest.h>

#include <string>

#include "support/process.hpp"
#include "support/search_config.hpp"

using namespace dcs::test;

namespace {

std::string config(bool early_stop) {
    return lenet5_model_and_data(256, 512, 1000) +
           "compression: {weight_bits: [2, 4, 8], prune_ratios: [0.0, 0.5, 0.9]}\n"
           "search: {population: 8, generations: 2, seed: 2, max_accuracy_drop: 1.0, early_stop: " +
           (early_stop ? "true" : "false") + "}\n";
}

/// Evaluations as text (genome, accuracy, samples, feasible), then "stopped N", without timings.
std::string dump(const std::string& h5) {
    auto r = run_process({"/usr/bin/python3", "-c",
                          "import h5py, sys\n"
                          "f = h5py.File(sys.argv[1], 'r')\n"
                          "e = f['evaluations']\n"
                          "full = f['baseline'].attrs['samples']\n"
                          "stopped = 0\n"
                          "for i in range(e['id'].shape[0]):\n"
                          "    s = int(e['samples'][i])\n"
                          "    print(list(e['genome'][i]), repr(e['accuracy'][i]), s, e['feasible'][i])\n"
                          "    if 0 < s < full:\n"
                          "        stopped += 1\n"
                          "        assert e['feasible'][i] == 0 and e['violation'][i] > 0, i\n"
                          "        assert s % 256 == 0, s\n"
                          "    else:\n"
                          "        assert s == full, (i, s)\n"
                          "print('stopped', stopped)\n",
                          h5},
                         60);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
}

TEST(EarlyStop, StopsClearlyInfeasibleEvaluationsTheSameWayInOneProcessAndUnderMpirun) {
    TempDir dir;
    const std::string cfg = dir.write("c.yaml", config(true));
    const std::vector<std::string> env{"OMP_NUM_THREADS=1"};
    const ProcResult one = run_process({DCS_BINARY, "search", cfg, "--output", dir.file("one.h5")}, 300, env);
    ASSERT_EQ(one.status, 0) << one.err;
    EXPECT_NE(one.err.find("stopped early)"), std::string::npos) << one.err;
    const std::string a = dump(dir.file("one.h5"));
    const size_t at = a.find("stopped ");
    ASSERT_NE(at, std::string::npos);
    EXPECT_GT(std::stoi(a.substr(at + 8)), 0) << "no evaluation stopped early";
    const ProcResult mpi = run_process({"mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "3", DCS_BINARY,
                                        "search", cfg, "--output", dir.file("mpi.h5")},
                                       300,
                                       {"OMP_NUM_THREADS=1", "OMPI_ALLOW_RUN_AS_ROOT=1",
                                        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "ASAN_OPTIONS=detect_leaks=0"});
    ASSERT_EQ(mpi.status, 0) << mpi.err;
    EXPECT_EQ(dump(dir.file("mpi.h5")), a);
    // Without early_stop every evaluation sees the whole subset.
    const std::string off = dir.write("off.yaml", config(false));
    ASSERT_EQ(run_process({DCS_BINARY, "search", off, "--output", dir.file("off.h5")}, 300, env).status, 0);
    EXPECT_NE(dump(dir.file("off.h5")).find("stopped 0\n"), std::string::npos);
}

}  // namespace
