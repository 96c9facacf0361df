#include "search/nsga2.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>

namespace dcs::search {

Nsga2::Nsga2(std::vector<int> choices, Nsga2Params params)
    : choices_(std::move(choices)), params_(std::move(params)), rng_(params_.seed) {
    if (choices_.empty()) throw std::invalid_argument("nsga2: the genome has no genes");
    for (size_t i = 0; i < choices_.size(); ++i)
        if (choices_[i] < 1) throw std::invalid_argument("nsga2: gene " + std::to_string(i) + " has no choices");
    if (params_.population < 4 || params_.population % 2 != 0)
        throw std::invalid_argument("nsga2: population must be an even number >= 4, got " +
                                    std::to_string(params_.population));
    if (params_.offspring < 0 || params_.offspring == 1)
        throw std::invalid_argument("nsga2: offspring must be 0 (as many as the population) or >= 2, got " +
                                    std::to_string(params_.offspring));
    if (params_.generations < 0)
        throw std::invalid_argument("nsga2: generations must be >= 0, got " + std::to_string(params_.generations));
    if (params_.crossover_rate < 0 || params_.crossover_rate > 1)
        throw std::invalid_argument("nsga2: crossover_rate must be in [0, 1]");
    if (params_.mutation_rate < 0) params_.mutation_rate = 1.0 / static_cast<double>(choices_.size());
}

int64_t Nsga2::space_size() const {
    int64_t n = 1;
    for (int c : choices_) {
        if (n > std::numeric_limits<int64_t>::max() / c) return std::numeric_limits<int64_t>::max();
        n *= c;
    }
    return n;
}

void Nsga2::preload(const std::vector<Evaluation>& done) {
    for (const auto& e : done) preloaded_[e.genome] = e;
}

Genome Nsga2::random_genome() {
    Genome g(choices_.size());
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::uniform_int_distribution<int>(0, choices_[i] - 1)(rng_);
    return g;
}

std::vector<Genome> Nsga2::evolve_children(const std::vector<size_t>& pop, size_t want, std::set<Genome>& seen,
                                           int64_t space) {
    std::vector<Genome> children;
    // Rank and crowding of the current population, for the tournaments.
    std::vector<Point> pts;
    for (size_t i : pop) pts.push_back(point_of(i));
    auto fronts = non_dominated_sort(pts);
    std::vector<int> rank(pop.size());
    std::vector<double> crowd(pop.size());
    for (size_t r = 0; r < fronts.size(); ++r) {
        auto cd = crowding_distance(pts, fronts[r]);
        for (size_t j = 0; j < fronts[r].size(); ++j) {
            rank[fronts[r][j]] = static_cast<int>(r);
            crowd[fronts[r][j]] = cd[j];
        }
    }
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int guard = 0; children.size() < want && guard < 100 * static_cast<int>(want); ++guard) {
        Genome a = archive_[pop[tournament(pop, rank, crowd)]].genome;
        Genome b = archive_[pop[tournament(pop, rank, crowd)]].genome;
        if (u(rng_) < params_.crossover_rate)
            for (size_t i = 0; i < a.size(); ++i)
                if (u(rng_) < 0.5) std::swap(a[i], b[i]);
        for (Genome* c : {&a, &b}) {
            for (size_t i = 0; i < c->size(); ++i)
                if (choices_[i] > 1 && u(rng_) < params_.mutation_rate) mutate_gene(*c, i);
            // Never evaluate a genome twice: nudge duplicates, then fall back to a random unseen one.
            for (int tries = 0; seen.count(*c) && tries < 32; ++tries) {
                size_t i = std::uniform_int_distribution<size_t>(0, c->size() - 1)(rng_);
                if (choices_[i] >= 2) mutate_gene(*c, i);
            }
            for (int tries = 0; seen.count(*c) && tries < 1000; ++tries) *c = random_genome();
            if (seen.count(*c) || children.size() >= want) continue;
            seen.insert(*c);
            children.push_back(*c);
        }
        if (static_cast<int64_t>(seen.size()) >= space) break;
    }
    return children;
}

std::vector<Genome> Nsga2::random_children(size_t want, std::set<Genome>& seen, int64_t space) {
    std::vector<Genome> out;
    for (size_t tries = 0; out.size() < want && static_cast<int64_t>(seen.size()) < space && tries < 1000 * want;
         ++tries) {
        Genome g = random_genome();
        if (seen.insert(g).second) out.push_back(std::move(g));
    }
    return out;
}

void Nsga2::mutate_gene(Genome& g, size_t i) {
    // Genes are ordinal (bit-widths, prune ratios in ascending order): half the mutations step to a
    // neighbour, the others reset to any other value.
    const int c = choices_[i];
    if (c > 2 && std::uniform_int_distribution<int>(0, 1)(rng_) == 0) {
        int step = std::uniform_int_distribution<int>(0, 1)(rng_) ? 1 : -1;
        if (g[i] + step < 0 || g[i] + step >= c) step = -step;
        g[i] += step;
        return;
    }
    int v = std::uniform_int_distribution<int>(0, c - 2)(rng_);
    g[i] = v >= g[i] ? v + 1 : v;
}

Point Nsga2::point_of(size_t i) const {
    const Evaluation& e = archive_[i];
    Point p;
    p.f = e.objectives;
    p.violation = e.ok ? std::max(0.0, e.violation) : std::numeric_limits<double>::infinity();
    if (!e.ok) p.f.assign(params_.hv_reference.size() ? params_.hv_reference.size() : 2, 0.0);
    return p;
}

bool Nsga2::budget_left(size_t more) const {
    return params_.max_evaluations <= 0 || static_cast<int64_t>(archive_.size() + more) <= params_.max_evaluations;
}

std::vector<size_t> Nsga2::evaluate_new(Evaluator& ev, const std::vector<Genome>& genomes, int generation) {
    // Genomes already in the archive are reused. Genomes finished in an earlier (interrupted) run come
    // from the preload, in the order an uninterrupted run would have produced them, so archive indices
    // match that run's.
    std::vector<Genome> todo;
    std::set<Genome> queued;
    for (const auto& g : genomes)
        if (!memo_.count(g) && !preloaded_.count(g) && queued.insert(g).second) todo.push_back(g);
    std::vector<Evaluation> fresh = todo.empty() ? std::vector<Evaluation>{} : ev.evaluate(todo);
    if (fresh.size() != todo.size()) throw std::runtime_error("nsga2: the evaluator returned a wrong number of results");
    std::map<Genome, size_t> fresh_index;
    for (size_t k = 0; k < todo.size(); ++k) fresh_index[todo[k]] = k;
    std::vector<size_t> idx;
    for (const auto& g : genomes) {
        auto m = memo_.find(g);
        if (m != memo_.end()) {
            idx.push_back(m->second);
            continue;
        }
        Evaluation e = preloaded_.count(g) ? preloaded_.at(g) : fresh[fresh_index.at(g)];
        e.genome = g;
        e.generation = generation;
        memo_[g] = archive_.size();
        idx.push_back(archive_.size());
        archive_.push_back(std::move(e));
        update_front(archive_.size() - 1);
    }
    return idx;
}

std::vector<size_t> Nsga2::evaluate_extra(Evaluator& ev, const std::vector<Genome>& genomes, int generation) {
    check_genomes(genomes);
    return evaluate_new(ev, genomes, generation);
}

void Nsga2::check_genomes(const std::vector<Genome>& genomes) const {
    for (const auto& s : genomes) {
        if (s.size() != choices_.size()) throw std::invalid_argument("nsga2: a genome has the wrong length");
        for (size_t i = 0; i < s.size(); ++i)
            if (s[i] < 0 || s[i] >= choices_[i]) throw std::invalid_argument("nsga2: a gene is out of range");
    }
}

std::vector<size_t> Nsga2::select(const std::vector<size_t>& candidates, size_t n) const {
    std::vector<Point> pts;
    for (size_t i : candidates) pts.push_back(point_of(i));
    auto fronts = non_dominated_sort(pts);
    std::vector<size_t> out;
    for (const auto& f : fronts) {
        if (out.size() + f.size() <= n) {
            for (size_t j : f) out.push_back(candidates[j]);
            continue;
        }
        auto cd = crowding_distance(pts, f);
        std::vector<size_t> order(f.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cd[a] > cd[b]; });
        for (size_t j = 0; out.size() < n && j < order.size(); ++j) out.push_back(candidates[f[order[j]]]);
        break;
    }
    return out;
}

size_t Nsga2::tournament(const std::vector<size_t>& pop, const std::vector<int>& rank, const std::vector<double>& crowd) {
    std::uniform_int_distribution<size_t> pick(0, pop.size() - 1);
    size_t a = pick(rng_), b = pick(rng_);
    if (rank[a] != rank[b]) return rank[a] < rank[b] ? a : b;
    if (crowd[a] != crowd[b]) return crowd[a] > crowd[b] ? a : b;
    return std::min(a, b);
}

std::vector<size_t> Nsga2::feasible_front() const {
    std::vector<size_t> f = front_;
    std::sort(f.begin(), f.end());
    return f;
}

void Nsga2::update_front(size_t i) {
    const Evaluation& e = archive_[i];
    if (!e.ok || e.violation > 0.0) return;
    add_to_front(front_, i, [&](size_t j) -> const std::vector<double>& { return archive_[j].objectives; });
}

double Nsga2::archive_hypervolume() const {
    if (params_.hv_reference.size() != 2) return 0.0;
    std::vector<std::vector<double>> pts;
    for (size_t i : feasible_front()) pts.push_back({archive_[i].objectives[0], archive_[i].objectives[1]});
    return hypervolume_2d(pts, params_.hv_reference);
}

void Nsga2::run(Evaluator& evaluator, const std::vector<Genome>& seeds,
                const std::function<void(const GenerationRecord&)>& on_generation) {
    const size_t n = static_cast<size_t>(params_.population);
    const size_t lambda = params_.offspring > 0 ? static_cast<size_t>(params_.offspring) : n;
    check_genomes(seeds);
    std::set<Genome> seen;
    for (const auto& kv : memo_) seen.insert(kv.first);  // e.g. the sensitivity scan's genomes
    std::vector<Genome> initial;
    std::set<Genome> in_initial;
    for (const auto& s : seeds)
        if (in_initial.insert(s).second) initial.push_back(s);
    for (const auto& s : seeds) seen.insert(s);
    const int64_t space = space_size();
    for (int tries = 0; initial.size() < std::max(n, lambda) && static_cast<int64_t>(seen.size()) < space && tries < 100000;
         ++tries) {
        Genome g = random_genome();
        if (seen.insert(g).second) initial.push_back(g);
    }
    if (params_.max_evaluations > 0) {
        const int64_t left = std::max<int64_t>(0, params_.max_evaluations - static_cast<int64_t>(archive_.size()));
        if (static_cast<int64_t>(initial.size()) > left) initial.resize(static_cast<size_t>(left));
    }
    std::vector<size_t> pop = evaluate_new(evaluator, initial, 0);
    if (pop.size() > n) pop = select(pop, n);

    double best_hv = archive_hypervolume();
    int stale = 0;
    auto record = [&](int gen) {
        GenerationRecord r;
        r.generation = gen;
        r.population = pop;
        std::vector<Point> pts;
        for (size_t i : pop) pts.push_back(point_of(i));
        auto fronts = non_dominated_sort(pts);
        if (!fronts.empty())
            for (size_t j : fronts[0])
                if (pts[j].violation <= 0.0) r.front.push_back(pop[j]);
        r.hypervolume = archive_hypervolume();
        history_.push_back(r);
        if (on_generation) on_generation(r);
        return r.hypervolume;
    };
    record(0);

    for (int gen = 1; gen <= params_.generations; ++gen) {
        if (pop.size() < 2 || !budget_left(1) || static_cast<int64_t>(seen.size()) >= space) break;
        size_t want = lambda;
        if (params_.max_evaluations > 0)
            want = std::min<size_t>(want, static_cast<size_t>(params_.max_evaluations) - archive_.size());
        std::vector<Genome> children;
        if (params_.random_search)
            children = random_children(want, seen, space);
        else
            children = evolve_children(pop, want, seen, space);
        if (children.empty()) break;
        std::vector<size_t> kids = evaluate_new(evaluator, children, gen);
        std::vector<size_t> merged = pop;
        merged.insert(merged.end(), kids.begin(), kids.end());
        pop = select(merged, n);
        double hv = record(gen);
        if (hv > best_hv * (1.0 + 1e-12) + 1e-300) {
            best_hv = hv;
            stale = 0;
        } else if (params_.stagnation_generations > 0 && ++stale >= params_.stagnation_generations) {
            break;
        }
    }
}

}  // namespace dcs::search
