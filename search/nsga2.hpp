#pragma once
/// NSGA-II (Deb et al. 2002) over integer genomes with constraint domination, binary tournament,
/// uniform crossover, per-gene mutation and duplicate elimination (no genome is evaluated twice); or,
/// with Nsga2Params::random_search, random search with the same budget and records.
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "search/evaluator.hpp"
#include "search/pareto.hpp"

namespace dcs::search {

struct Nsga2Params {
    int population = 32;          ///< even, >= 4
    /// Children per generation (0: as many as the population), also the size of the initial batch when
    /// larger than the population. The best `population` of parents and children survive ((mu + lambda)
    /// selection), so more children than parents keep more workers busy without changing the algorithm.
    int offspring = 0;
    int generations = 20;         ///< offspring generations after the initial population, >= 0
    uint64_t seed = 1;
    double crossover_rate = 0.9;  ///< probability that two parents are crossed (uniform crossover)
    double mutation_rate = -1.0;  ///< per gene; < 0 means 1 / genome length
    int64_t max_evaluations = 0;  ///< 0: no budget
    int stagnation_generations = 0;  ///< 0: off; stop after this many generations without hypervolume gain
    /// Reference point of the hypervolume (objectives 0 and 1, minimised); empty: no tracking.
    std::vector<double> hv_reference;
    /// Random search (`search.algorithm: random`), a baseline for NSGA-II: each generation's candidates
    /// are uniformly random genomes not evaluated before instead of children of the population. The
    /// budget, the batches, the survivors' selection and what each generation records stay NSGA-II's,
    /// so the two runs compare generation by generation; selection never steers which genomes are drawn.
    bool random_search = false;
};

/// What one generation left behind.
struct GenerationRecord {
    int generation = 0;               ///< 0 = initial population
    std::vector<size_t> population;   ///< indices into the archive
    std::vector<size_t> front;        ///< feasible first front of the population (archive indices)
    double hypervolume = 0.0;         ///< of the feasible front of everything evaluated so far
};

class Nsga2 {
public:
    /// @param choices number of choices of each gene (each >= 1)
    /// @throws std::invalid_argument on bad parameters (naming the value)
    Nsga2(std::vector<int> choices, Nsga2Params params);

    /// Runs the search. `seeds` are evaluated first as part of the initial population (duplicates
    /// dropped; more than `population` are all evaluated, the best `population` kept), the rest of the
    /// population is random. `on_generation` is called after each generation.
    void run(Evaluator& evaluator, const std::vector<Genome>& seeds = {},
             const std::function<void(const GenerationRecord&)>& on_generation = {});

    /// Every evaluation, in order of evaluation.
    const std::vector<Evaluation>& archive() const { return archive_; }
    const std::vector<GenerationRecord>& history() const { return history_; }
    /// Indices (into archive) of the feasible, successful, non-dominated evaluations.
    std::vector<size_t> feasible_front() const;
    /// Number of distinct genomes in the space (saturating at INT64_MAX).
    int64_t space_size() const;

    /// Preloads finished evaluations (resume): they are never evaluated again.
    void preload(const std::vector<Evaluation>& done);

    /// Evaluates genomes outside the evolutionary loop (e.g. a sensitivity scan before run()); they join
    /// the archive with `generation`, and run() never evaluates them again.
    /// @return their archive indices, in order
    std::vector<size_t> evaluate_extra(Evaluator& ev, const std::vector<Genome>& genomes, int generation);

private:
    Genome random_genome();
    /// `want` children of `pop` by tournament, crossover and mutation; none in `seen`, each added to it.
    std::vector<Genome> evolve_children(const std::vector<size_t>& pop, size_t want, std::set<Genome>& seen,
                                        int64_t space);
    /// `want` uniformly random genomes (fewer when the space runs out); none in `seen`, each added to it.
    std::vector<Genome> random_children(size_t want, std::set<Genome>& seen, int64_t space);
    void mutate_gene(Genome& g, size_t i);
    void update_front(size_t i);
    size_t tournament(const std::vector<size_t>& pop, const std::vector<int>& rank, const std::vector<double>& crowd);
    std::vector<size_t> evaluate_new(Evaluator& ev, const std::vector<Genome>& genomes, int generation);
    void check_genomes(const std::vector<Genome>& genomes) const;
    std::vector<size_t> select(const std::vector<size_t>& candidates, size_t n) const;
    Point point_of(size_t i) const;
    double archive_hypervolume() const;
    bool budget_left(size_t more) const;

    std::vector<int> choices_;
    Nsga2Params params_;
    std::mt19937_64 rng_;
    std::vector<Evaluation> archive_;
    std::map<Genome, size_t> memo_;             ///< genome -> archive index
    std::map<Genome, Evaluation> preloaded_;    ///< finished in an earlier run (resume)
    std::vector<GenerationRecord> history_;
    std::vector<size_t> front_;  ///< feasible non-dominated archive indices, kept up to date
};

}  // namespace dcs::search
