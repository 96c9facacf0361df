#pragma once
/// The seam between the search and whatever evaluates candidates (in process, over MPI, or a test
/// problem). The search never sees MPI.
#include <functional>
#include <string>
#include <vector>

namespace dcs::search {

/// One gene per layer: an index into that layer's list of choices.
using Genome = std::vector<int>;

/// The outcome of evaluating one genome. Failed evaluations are results too.
struct Evaluation {
    Genome genome;
    std::vector<double> objectives;  ///< to minimise, in the problem's order
    double violation = 0.0;          ///< 0 = feasible; ignored when !ok
    bool ok = true;
    std::string error;               ///< why it failed, when !ok
    double seconds = 0.0;
    int rank = 0;                    ///< which process evaluated it
    int generation = 0;              ///< set by the search: -1 sensitivity scan, 0 initial, then 1, 2, ...
    // What was measured (the objectives derive from these): accuracy as a fraction, size of the packed
    // model in bytes, bit operations, latency per batch in seconds (0 when not measured).
    double accuracy = 0.0;
    double size_bytes = 0.0;
    double bops = 0.0;
    double latency = 0.0;
    /// The evaluating process's peak resident memory in bytes once this evaluation ended (0: unknown,
    /// e.g. read from a results file written before it was recorded).
    double peak_rss_bytes = 0.0;
    /// Validation samples the accuracy was measured on: fewer than the subset when the evaluation
    /// stopped early (search.early_stop), 0 when unknown (failed, or from an older results file).
    int64_t samples = 0;
};

class Evaluator {
public:
    virtual ~Evaluator() = default;
    /// One result per genome, same order. Failed evaluations are results too (ok = false).
    virtual std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) = 0;
    /// Bookkeeping between batches (a checkpoint): an evaluator whose work runs elsewhere (MPI) keeps
    /// it until the next batch is handed out, so that workers do not wait for it, and drops it if no
    /// batch follows (a newer one replaces it); one that evaluates in this process runs it now.
    virtual void defer(std::function<void()> work) { work(); }
};

}  // namespace dcs::search
