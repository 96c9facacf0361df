#include "search/driver.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <functional>
#include <set>

#include "search/queries.hpp"

namespace dcs::search {
namespace {

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

SearchDriver::SearchDriver(const SearchSpace& space, SearchSettings settings, ResultsData data)
    : space_(space),
      settings_(std::move(settings)),
      data_(std::move(data)),
      nsga_(space.gene_choices(), [&] {
          Nsga2Params p = settings_.nsga;
          // Hypervolume in (error, size): the reference point is the feasibility boundary and the fp32 size.
          p.hv_reference = {1.0 - (settings_.problem.baseline_accuracy - settings_.problem.max_accuracy_drop / 100.0),
                            data_.baseline_size_bytes};
          return p;
      }()) {
    data_.hv_reference = {1.0 - (settings_.problem.baseline_accuracy - settings_.problem.max_accuracy_drop / 100.0),
                          data_.baseline_size_bytes};
}

void SearchDriver::resume_from(const std::vector<Evaluation>& done) {
    // The file keeps what was measured; objectives and violation are derived again.
    std::vector<Evaluation> scored = done;
    for (auto& e : scored) score(e, settings_.problem);
    nsga_.preload(scored);
    resumed_ = static_cast<int64_t>(done.size());
}

std::vector<Genome> SearchDriver::scan_genomes() const {
    std::vector<Genome> out;
    const Genome ref = space_.reference_genome();
    out.push_back(ref);
    const auto& layers = space_.layers();
    for (size_t l = 0; l < layers.size(); ++l)
        for (size_t b = 0; b < layers[l].bits.size(); ++b)
            for (size_t p = 0; p < layers[l].prunes.size(); ++p) {
                Genome g = ref;
                g[2 * l] = static_cast<int>(b);
                g[2 * l + 1] = static_cast<int>(p);
                if (g != ref) out.push_back(g);
            }
    return out;
}

std::vector<Genome> SearchDriver::greedy_seeds(const std::vector<size_t>& scan) const {
    const auto& archive = nsga_.archive();
    const Genome ref = space_.reference_genome();
    std::map<Genome, const Evaluation*> by_genome;
    for (size_t i : scan) by_genome[archive[i].genome] = &archive[i];
    auto base_it = by_genome.find(ref);
    std::vector<Genome> seeds{ref};
    if (base_it == by_genome.end() || !base_it->second->ok) return seeds;
    const double acc0 = base_it->second->accuracy, size0 = base_it->second->size_bytes;
    const auto& layers = space_.layers();
    // Per layer and choice: size change and accuracy drop when only that layer changes.
    struct Option {
        int bits_idx, prune_idx;
        double dsize, drop;
    };
    std::vector<std::vector<Option>> options(layers.size());
    for (size_t l = 0; l < layers.size(); ++l)
        for (const auto& [g, e] : by_genome) {
            bool only_l = true;
            for (size_t k = 0; k < layers.size() && only_l; ++k)
                if (k != l && (g[2 * k] != ref[2 * k] || g[2 * k + 1] != ref[2 * k + 1])) only_l = false;
            if (!only_l || !e->ok) continue;
            options[l].push_back({g[2 * l], g[2 * l + 1], e->size_bytes - size0, std::max(0.0, acc0 - e->accuracy)});
        }
    auto reference_choice = [&](size_t l) {
        for (size_t k = 0; k < options[l].size(); ++k)
            if (options[l][k].bits_idx == ref[2 * l] && options[l][k].prune_idx == ref[2 * l + 1]) return k;
        return size_t(0);
    };
    // Greedy allocation: repeatedly take the move that saves the most bytes per point of accuracy lost
    // (drops add up across layers, an estimate), while `allowed(size, drop)` says go on.
    auto allocate = [&](const std::function<bool(double est_size)>& want_more, double max_drop) {
        std::vector<size_t> cur(layers.size());
        double est = size0, drop = 0.0;
        for (size_t l = 0; l < layers.size(); ++l) cur[l] = reference_choice(l);
        while (want_more(est)) {
            double best_score = -1.0;
            size_t best_l = 0, best_k = 0;
            for (size_t l = 0; l < layers.size(); ++l) {
                if (options[l].empty()) continue;
                const Option& c = options[l][cur[l]];
                for (size_t k = 0; k < options[l].size(); ++k) {
                    const Option& o = options[l][k];
                    const double gain = c.dsize - o.dsize;
                    if (gain <= 0 || drop + o.drop - c.drop > max_drop) continue;
                    const double score = gain / std::max(o.drop - c.drop, 1e-6);
                    if (score > best_score) {
                        best_score = score;
                        best_l = l;
                        best_k = k;
                    }
                }
            }
            if (best_score < 0) break;
            est += options[best_l][best_k].dsize - options[best_l][cur[best_l]].dsize;
            drop += options[best_l][best_k].drop - options[best_l][cur[best_l]].drop;
            cur[best_l] = best_k;
        }
        Genome g = ref;
        for (size_t l = 0; l < layers.size(); ++l)
            if (!options[l].empty()) {
                g[2 * l] = options[l][cur[l]].bits_idx;
                g[2 * l + 1] = options[l][cur[l]].prune_idx;
            }
        if (std::find(seeds.begin(), seeds.end(), g) == seeds.end()) seeds.push_back(g);
    };
    // Seeds for size budgets (whatever the accuracy), and for accuracy budgets (as small as the
    // estimated drop allows): the second kind lands near the feasibility boundary, where the front is.
    for (double fraction : settings_.seed_budgets)
        allocate([&](double est) { return est > fraction * data_.baseline_size_bytes; }, 1e300);
    for (double share : settings_.seed_drop_shares)
        allocate([](double) { return true; }, share * settings_.problem.max_accuracy_drop / 100.0);
    return seeds;
}

void SearchDriver::sync(bool complete) {
    data_.evaluations = nsga_.archive();
    std::set<Genome> in_archive;
    for (const auto& e : data_.evaluations) in_archive.insert(e.genome);
    for (const auto& e : pending_)
        if (!in_archive.count(e.genome)) data_.evaluations.push_back(e);
    data_.generations = nsga_.history();
    data_.complete = complete;
}

void SearchDriver::report(bool batch_end) {
    if (!progress_) return;
    Progress p;
    p.batch_end = batch_end;
    // Pending results are new genomes (the algorithm never sends one from its archive), so the two add
    // up; a set of every genome here cost the coordinator more than the MPI transport per result.
    p.done = static_cast<int64_t>(nsga_.archive().size() + pending_.size());
    p.planned = std::max(planned_, p.done);
    p.generation = generation_;
    p.generations = settings_.nsga.generations;
    p.front_size = nsga_.feasible_front().size();
    // Reported as a fraction of the box between the origin and the reference point.
    const double box = data_.hv_reference.size() == 2 ? data_.hv_reference[0] * data_.hv_reference[1] : 0.0;
    p.hypervolume = nsga_.history().empty() || box <= 0 ? 0.0 : nsga_.history().back().hypervolume / box;
    p.resumed = resumed_;
    progress_(p);
}

void SearchDriver::note_result(const Evaluation& e) {
    pending_.push_back(e);
    pending_.back().generation = generation_;
    report();
    if (checkpoint_ && now_seconds() - last_checkpoint_ >= checkpoint_seconds) {
        sync(false);
        checkpoint_(data_);
        last_checkpoint_ = now_seconds();
    }
}

void SearchDriver::run(Evaluator& evaluator, const std::function<void(const ResultsData&)>& checkpoint,
                       const std::function<void(const Progress&)>& progress) {
    checkpoint_ = checkpoint;
    progress_ = progress;
    last_checkpoint_ = now_seconds();
    Evaluator& ev = evaluator;
    const int64_t pop = settings_.nsga.population, gens = settings_.nsga.generations;
    std::vector<Genome> scan;
    if (settings_.sensitivity_scan) scan = scan_genomes();
    const int64_t kids = settings_.nsga.offspring > 0 ? settings_.nsga.offspring : pop;
    planned_ = static_cast<int64_t>(scan.size()) + std::max(pop, kids) + kids * gens;
    if (settings_.nsga.max_evaluations > 0) planned_ = std::min<int64_t>(planned_, settings_.nsga.max_evaluations);
    bool first_batch = true;
    auto batch_done = [&] {
        pending_.clear();
        const bool due = first_batch || now_seconds() - last_checkpoint_ >= checkpoint_min_seconds;
        first_batch = false;
        if (!due) {
            report(true);
            return;
        }
        // Copying the archive and writing the file can wait until the next batch is handed out (an MPI
        // evaluator runs deferred work then, before it waits for results): nothing the checkpoint
        // reads (the archive, the history, pending results) changes before the next batch's first result.
        last_checkpoint_ = now_seconds();
        if (checkpoint_) ev.defer([this] {
                sync(false);
                checkpoint_(data_);
            });
        report(true);
    };
    std::vector<Genome> seeds{space_.reference_genome()};
    if (!scan.empty()) {
        generation_ = -1;
        auto idx = nsga_.evaluate_extra(ev, scan, -1);
        batch_done();
        seeds = greedy_seeds(idx);
    }
    // Random search draws its whole initial population: no seeds from the scan, not even the reference.
    if (settings_.nsga.random_search) seeds.clear();
    generation_ = 0;
    nsga_.run(ev, seeds, [&](const GenerationRecord& r) {
        generation_ = r.generation;  // progress names the generation just finished
        batch_done();
        generation_ = r.generation + 1;
    });
    pending_.clear();
    sync(true);
    if (checkpoint_) checkpoint_(data_);
}

std::vector<size_t> SearchDriver::front() const {
    return sorted_by_size(nsga_.feasible_front(), nsga_.archive());
}

}  // namespace dcs::search
