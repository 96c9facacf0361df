// MPI scaling benchmark (not a test; docs/performance.md). Workers do not evaluate: each "evaluation"
// sleeps a fixed time, so what is measured is the coordinator and the transport.
//
//   mpirun -np N build/bench/bench_mpi SLEEP_MS CANDIDATES [BATCH]
//
// Prints one JSON line: wall time of dispatching CANDIDATES genomes in batches of 2*(N-1), the ideal
// time CANDIDATES*SLEEP/(N-1), the parallel efficiency (ideal / wall), and the coordinator's own CPU
// time per candidate (rank 0's process CPU time, which excludes time blocked in MPI_Probe's sleep only
// when the MPI library blocks; OpenMPI busy-polls, so with SLEEP_MS=0 the wall time per candidate is
// the round-trip bound instead).
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include "search/mpi_transport.hpp"

using namespace dcs::search;

int main(int argc, char** argv) {
    MpiSession mpi(&argc, &argv);
    const double sleep_ms = argc > 1 ? std::atof(argv[1]) : 10.0;
    const int candidates = argc > 2 ? std::atoi(argv[2]) : 1000;
    if (mpi.size() < 2) {
        std::fprintf(stderr, "bench_mpi: needs at least 2 ranks\n");
        return 2;
    }
    if (mpi.rank() != 0) {
        return run_worker("", [&](const Genome& g) {
            if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(sleep_ms));
            Evaluation e;
            e.genome = g;
            e.accuracy = 0.5;
            e.size_bytes = 1000.0 + g[0];
            return e;
        });
    }
    MpiEvaluator ev(mpi.size(), ProblemSettings{});
    ev.wait_ready();
    const int workers = mpi.size() - 1;
    const int batch = argc > 3 ? std::atoi(argv[3]) : 2 * workers;
    std::clock_t c0 = std::clock();
    auto t0 = std::chrono::steady_clock::now();
    int done = 0;
    while (done < candidates) {
        std::vector<Genome> b;
        for (int i = 0; i < batch && done + i < candidates; ++i) b.push_back({done + i, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        ev.evaluate(b);
        done += static_cast<int>(b.size());
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    ev.stop_workers();
    const double ideal = candidates * sleep_ms / 1000.0 / workers;
    std::printf("{\"ranks\":%d,\"workers\":%d,\"sleep_ms\":%.1f,\"candidates\":%d,\"wall_s\":%.3f,\"ideal_s\":%.3f,"
                "\"efficiency\":%.3f,\"wall_us_per_candidate\":%.1f,\"coordinator_cpu_us_per_candidate\":%.1f}\n",
                mpi.size(), workers, sleep_ms, candidates, wall, ideal, ideal > 0 ? ideal / wall : 0.0,
                1e6 * wall / candidates, 1e6 * cpu / candidates);
    return 0;
}
