// MPI scaling benchmark (not a test; docs/performance.md, "MPI scaling"). Workers do not evaluate: each
// "evaluation" sleeps, so what is measured is the coordinator, the transport and how busy the search's
// batches keep the workers. The search is the real one: NSGA-II over a 16-gene genome through the MPI
// evaluator, generation by generation.
//
//   mpirun -np N build/bench/bench_mpi SLEEP_MS POPULATION OFFSPRING GENERATIONS [SPREAD]
//
// Each evaluation sleeps SLEEP_MS x (1 - SPREAD + 2 SPREAD u), u in [0, 1) drawn from the genome's hash
// (SPREAD 0 to 1, default 0.5: evaluation times vary as pruned and dense candidates do). OFFSPRING 0 means
// as many as the population. Prints one JSON line: the wall time, the workers' busy time (sum of the
// sleeps), the efficiency busy / (workers x wall), and rank 0's CPU time per candidate and as a share of
// the wall time.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "search/mpi_transport.hpp"
#include "search/nsga2.hpp"
#include "search/run_stats.hpp"

using namespace dcs::search;

namespace {

double unit_hash(const Genome& g) {
    uint64_t h = 14695981039346656037ull;  // FNV-1a 64 over the genes
    for (int v : g) h = (h ^ static_cast<uint64_t>(v + 1)) * 1099511628211ull;
    return static_cast<double>(h % 1000003) / 1000003.0;
}

}  // namespace

int main(int argc, char** argv) {
    MpiSession mpi(&argc, &argv);
    if (argc < 5) {
        if (mpi.rank() == 0)
            std::fprintf(stderr, "usage: mpirun -np N bench_mpi SLEEP_MS POPULATION OFFSPRING GENERATIONS [SPREAD]\n");
        return 2;
    }
    const double sleep_ms = std::atof(argv[1]), spread = argc > 5 ? std::atof(argv[5]) : 0.5;
    Nsga2Params params;
    params.population = std::atoi(argv[2]);
    params.offspring = std::atoi(argv[3]);
    params.generations = std::atoi(argv[4]);
    params.seed = 7;
    if (mpi.size() < 2) {
        std::fprintf(stderr, "bench_mpi: needs at least 2 ranks\n");
        return 2;
    }
    if (mpi.rank() != 0) {
        return run_worker("", [&](const Genome& g, double) {
            const double ms = sleep_ms * (1.0 - spread + 2.0 * spread * unit_hash(g));
            const auto t0 = std::chrono::steady_clock::now();
            if (ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
            Evaluation e;
            e.genome = g;
            int sum = 0;
            for (int v : g) sum += v;
            e.accuracy = 0.9 - 0.002 * (16 * 7 - sum);  // a trade-off: larger genes, more accurate, bigger
            e.size_bytes = 1000.0 + 10.0 * sum + g[0];
            e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            return e;
        });
    }
    ProblemSettings settings;
    settings.baseline_accuracy = 0.9;
    settings.max_accuracy_drop = 10.0;
    MpiEvaluator ev(mpi.size(), settings);
    ev.wait_ready();
    double busy = 0.0;
    int64_t candidates = 0;
    ev.on_result = [&](const Evaluation& e) {
        busy += e.seconds;
        ++candidates;
    };
    const int workers = mpi.size() - 1;
    const double cpu0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    Nsga2 algo(std::vector<int>(16, 8), params);
    algo.run(ev);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = process_cpu_seconds() - cpu0;
    ev.stop_workers();
    std::printf("{\"ranks\":%d,\"workers\":%d,\"sleep_ms\":%.1f,\"spread\":%.2f,\"population\":%d,\"offspring\":%d,"
                "\"generations\":%d,\"candidates\":%lld,\"wall_s\":%.3f,\"busy_s\":%.3f,\"efficiency\":%.3f,"
                "\"coordinator_cpu_us_per_candidate\":%.1f,\"coordinator_cpu_share\":%.4f}\n",
                mpi.size(), workers, sleep_ms, spread, params.population, params.offspring, params.generations,
                static_cast<long long>(candidates), wall, busy, busy / (workers * wall),
                candidates ? 1e6 * cpu / static_cast<double>(candidates) : 0.0, cpu / wall);
    return 0;
}
