#include "search/local_evaluator.hpp"

#include <chrono>
#include <exception>
#include <new>

#include "common/memory.hpp"

namespace dcs::search {

Evaluation evaluate_genome(const CandidateEvaluator& evaluator, const SearchSpace& space,
                           const ProblemSettings& settings, const Genome& genome) {
    Evaluation e;
    e.genome = genome;
    auto t0 = std::chrono::steady_clock::now();
    try {
        CandidateMetrics m = evaluator.evaluate(space.decode(genome), settings.early_stop_below);
        e.accuracy = m.accuracy;
        e.samples = m.samples;
        e.size_bytes = static_cast<double>(m.size_bytes);
        e.bops = m.bops;
        e.latency = m.latency;
        score(e, settings);
    } catch (const std::bad_alloc&) {
        e.ok = false;
        e.error = "out of memory while evaluating";
    } catch (const std::exception& ex) {
        e.ok = false;
        e.error = ex.what();
    }
    if (!e.ok) score(e, settings);
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    e.peak_rss_bytes = static_cast<double>(peak_rss_bytes());
    return e;
}

std::vector<Evaluation> LocalEvaluator::evaluate(const std::vector<Genome>& batch) {
    std::vector<Evaluation> out;
    out.reserve(batch.size());
    for (const auto& g : batch) {
        out.push_back(evaluate_genome(evaluator_, space_, settings_, g));
        if (on_result) on_result(out.back());
    }
    return out;
}

}  // namespace dcs::search
