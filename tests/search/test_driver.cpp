// Tests of search/driver.cpp over a synthetic problem (no runtime): the sensitivity scan, the seeds,
// and random search (search.algorithm: random) with NSGA-II's budget and records.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "search/driver.hpp"

using namespace dcs::search;

namespace {

/// Accuracy falls and size shrinks with fewer bits and more pruning; measured metrics only, as the
/// evaluator of a real search reports them (the driver scores them).
class Synthetic : public Evaluator {
public:
    explicit Synthetic(const SearchSpace& space, ProblemSettings s) : space_(space), settings_(std::move(s)) {}
    std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) override {
        std::vector<Evaluation> out;
        for (const auto& g : batch) {
            Evaluation e;
            e.genome = g;
            double size = 0, loss = 0;
            for (const auto& c : space_.decode(g)) {
                size += 1000.0 * c.weight_bits / 32.0 * (1.0 - c.prune_ratio);
                loss += (8 - c.weight_bits) * 0.004 + c.prune_ratio * c.prune_ratio * 0.05;
            }
            e.accuracy = 0.9 - loss;
            e.size_bytes = size;
            score(e, settings_);
            out.push_back(e);
        }
        batches.push_back(batch.size());
        return out;
    }
    std::vector<size_t> batches;

private:
    const SearchSpace& space_;
    ProblemSettings settings_;
};

struct Outcome {
    ResultsData data;
    std::vector<size_t> batches;
};

Outcome run(const SearchSpace& space, bool random, uint64_t seed) {
    SearchSettings s;
    s.nsga.population = 12;  // room for every greedy seed: NSGA-II evaluates all of them
    s.nsga.generations = 3;
    s.nsga.seed = seed;
    s.nsga.random_search = random;
    s.problem.baseline_accuracy = 0.9;
    s.problem.max_accuracy_drop = 2.0;
    ResultsData data;
    data.baseline_size_bytes = 3 * 1000.0;
    SearchDriver d(space, s, data);
    Synthetic ev(space, s.problem);
    d.run(ev, {});
    return {d.results(), ev.batches};
}

std::vector<Genome> genomes_of(const ResultsData& r, int generation) {
    std::vector<Genome> out;
    for (const auto& e : r.evaluations)
        if (e.generation == generation) out.push_back(e.genome);
    return out;
}

}  // namespace

TEST(Driver, RandomSearchKeepsTheScanAndTheBudgetButTakesNoSeeds) {
    const SearchSpace space =
        SearchSpace::build({"a", "b", "c"}, {2, 3, 4, 5, 6, 8}, {0.0, 0.25, 0.5, 0.75}, {});
    const Outcome nsga = run(space, false, 3), rnd = run(space, true, 3);
    // The same batches: the scan (1 + 3 x 23 single-layer changes), the initial population, then 12 per
    // generation. NSGA-II's initial batch is smaller by the seeds the scan already evaluated (the
    // reference, here 2 of them); random search draws 12 genomes the scan has not.
    EXPECT_EQ(rnd.batches, (std::vector<size_t>{70, 12, 12, 12, 12}));
    EXPECT_EQ(nsga.batches, (std::vector<size_t>{70, 10, 12, 12, 12}));
    EXPECT_EQ(rnd.data.generations.size(), 4u);
    EXPECT_EQ(genomes_of(rnd.data, -1), genomes_of(nsga.data, -1));
    EXPECT_TRUE(rnd.data.complete);
    // NSGA-II's initial population starts with the greedy seeds from the scan, then draws at random;
    // random search draws all of it, from the same generator: its first genome is NSGA-II's first draw.
    const auto initial = genomes_of(nsga.data, 0), random_initial = genomes_of(rnd.data, 0);
    ASSERT_EQ(random_initial.size(), 12u);
    EXPECT_NE(initial, random_initial);
    EXPECT_NE(std::find(initial.begin(), initial.end(), random_initial[0]), initial.end());
    // Deterministic for a seed; another seed draws other genomes.
    EXPECT_EQ(genomes_of(run(space, true, 3).data, 2), genomes_of(rnd.data, 2));
    EXPECT_NE(genomes_of(run(space, true, 4).data, 0), random_initial);
    std::set<Genome> distinct;
    for (const auto& e : rnd.data.evaluations) distinct.insert(e.genome);
    EXPECT_EQ(distinct.size(), rnd.data.evaluations.size());
}
