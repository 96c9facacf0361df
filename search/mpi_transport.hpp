#pragma once
/// MPI transport of the search: the only file of search/ that calls MPI. Roles: the coordinator
/// (rank 0) dispatches genomes to workers (ranks 1..N-1) dynamically, with a second one queued on each
/// worker while the batch has plenty left, so a worker starts its next genome as soon as it returns a
/// result. Messages: search/protocol.hpp. Every wait polls with
/// backoff (MPI_Iprobe / MPI_Test and short sleeps) instead of blocking in MPI, which in OpenMPI
/// busy-polls: a waiting rank uses close to no CPU.
#include <chrono>
#include <deque>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "search/evaluator.hpp"
#include "search/scoring.hpp"

namespace dcs::search {

/// True when this process was started by mpirun/srun as part of a job of more than one process.
bool launched_as_mpi_job();

/// True once this process has created an MpiSession (MPI_Init was called), even after it ended.
bool mpi_session_started();

/// MPI_Init / MPI_Finalize. Every MPI call is checked and throws MpiError naming the call.
class MpiSession {
public:
    MpiSession(int* argc, char*** argv);
    ~MpiSession();
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;
    int rank() const { return rank_; }
    int size() const { return size_; }
    /// Ends every rank of the job at once (MPI_Abort): for failures after workers started waiting.
    [[noreturn]] void abort(int status);

private:
    int rank_ = 0, size_ = 1;
};

struct MpiError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Rank 0 tells every rank whether start-up validation passed: status 0 = go on, else the exit status
/// every rank should leave with. Collective; the waiting ranks sleep rather than spin.
int broadcast_status(int status);

/// Coordinator side (rank 0).
class MpiEvaluator : public Evaluator {
public:
    explicit MpiEvaluator(int size, ProblemSettings settings);
    /// Waits for every worker to report. Returns "" when all are ready, else "rank N: message" of the
    /// first failure (the others are still waited for, so that stop_workers() reaches everyone).
    std::string wait_ready();
    std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) override;
    /// Runs `work` once the next batch's first genomes are sent (replacing work deferred before).
    void defer(std::function<void()> work) override { deferred_ = std::move(work); }
    /// Sends Stop to every worker; drops deferred work.
    void stop_workers();
    /// How results are scored (objectives, violation); set before evaluate().
    void set_settings(const ProblemSettings& settings) { settings_ = settings; }
    std::function<void(const Evaluation&)> on_result;
    /// Debug switch for fault-injection tests: throw after this many results (0 = never).
    int64_t fail_after_results = 0;

private:
    void note_evaluation_time(double seconds);
    /// The longest sleep between polls while workers evaluate: a share of the recent evaluation times.
    std::chrono::microseconds poll_cap() const;

    int size_;
    ProblemSettings settings_;
    int64_t results_ = 0;
    std::deque<double> recent_seconds_;  ///< the last evaluation times the workers reported
    std::function<void()> deferred_;
};

/// Worker side: reports Ready (or Failed with `load_error` when it is not empty), then evaluates
/// genomes until Stop. Returns the exit status the worker should leave with.
/// `evaluate` gets each job's genome and its ProblemSettings::early_stop_below.
int run_worker(const std::string& load_error, const std::function<Evaluation(const Genome&, double)>& evaluate);

}  // namespace dcs::search
