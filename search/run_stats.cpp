#include "search/run_stats.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <map>

namespace dcs::search {

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

RunAccounting::RunAccounting(const ResultsData& earlier, std::vector<int> worker_ranks)
    : runs_(earlier.runs),
      workers_(earlier.workers),
      ranks_(std::move(worker_ranks)),
      t0_(std::chrono::steady_clock::now()),
      cpu0_(process_cpu_seconds()) {
    for (const auto& e : earlier.evaluations) earlier_.insert(e.genome);
    runs_.push_back({0.0, 0.0, static_cast<int>(ranks_.size())});
}

ResultsData RunAccounting::with_runs(const ResultsData& d) const {
    ResultsData out = d;
    out.runs = runs_;
    out.workers = workers_;
    const int run = static_cast<int>(runs_.size()) - 1;
    RunRow& r = out.runs.back();
    r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    r.coordinator_cpu_seconds = process_cpu_seconds() - cpu0_;
    std::map<int, WorkerRow> rows;
    for (int rank : ranks_) rows[rank] = {run, rank, 0, 0.0, 0.0};
    for (const auto& e : d.evaluations) {
        if (earlier_.count(e.genome)) continue;
        WorkerRow& w = rows.try_emplace(e.rank, WorkerRow{run, e.rank, 0, 0.0, 0.0}).first->second;
        ++w.evaluations;
        w.busy_seconds += e.seconds;
        w.peak_rss_bytes = std::max(w.peak_rss_bytes, e.peak_rss_bytes);
    }
    for (const auto& [rank, w] : rows) out.workers.push_back(w);
    return out;
}

std::vector<std::string> run_summary(const ResultsData& d) {
    std::vector<std::string> lines;
    for (size_t run = 0; run < d.runs.size(); ++run) {
        const RunRow& r = d.runs[run];
        double busy = 0.0, lo = 1e300, hi = 0.0, rss = 0.0;
        int lo_rank = -1, hi_rank = -1, rss_rank = -1;
        int64_t evals = 0;
        for (const auto& w : d.workers) {
            if (w.run != static_cast<int>(run)) continue;
            busy += w.busy_seconds;
            evals += w.evaluations;
            if (w.busy_seconds < lo) lo = w.busy_seconds, lo_rank = w.rank;
            if (w.busy_seconds > hi) hi = w.busy_seconds, hi_rank = w.rank;
            if (w.peak_rss_bytes > rss) rss = w.peak_rss_bytes, rss_rank = w.rank;
        }
        // Under MPI the workers are ranks 1..N-1 and rank 0 only coordinates; in one process rank 0 does both.
        bool mpi = false;
        for (const auto& w : d.workers) mpi = mpi || (w.run == static_cast<int>(run) && w.rank > 0);
        const double capacity = r.wall_seconds * std::max(1, r.workers);
        char line[512];
        int n = std::snprintf(line, sizeof line, "%s %zu: %lld evaluations %s %d %s in %.1f s, busy %.0f%% of the time",
                              run == 0 ? "run" : "resumed run", run + 1, static_cast<long long>(evals),
                              mpi ? "by" : "in", r.workers, mpi ? (r.workers == 1 ? "worker" : "workers") : "process",
                              r.wall_seconds, capacity > 0 ? 100.0 * busy / capacity : 0.0);
        auto append = [&](auto... args) {
            if (n > 0 && static_cast<size_t>(n) < sizeof line)
                n += std::snprintf(line + n, sizeof line - static_cast<size_t>(n), args...);
        };
        if (r.workers > 1 && lo_rank >= 0)
            append(" (least busy rank %d: %.1f s, busiest rank %d: %.1f s)", lo_rank, lo, hi_rank, hi);
        if (mpi)
            append("; coordinator CPU %.2f s (%.1f%%)", r.coordinator_cpu_seconds,
                   r.wall_seconds > 0 ? 100.0 * r.coordinator_cpu_seconds / r.wall_seconds : 0.0);
        if (rss_rank >= 0) append("; peak memory %.0f MB (rank %d)", rss / 1e6, rss_rank);
        lines.push_back(line);
    }
    return lines;
}

}  // namespace dcs::search
