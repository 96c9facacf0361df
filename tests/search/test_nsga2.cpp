// Tests of search/nsga2.cpp: the ZDT benchmark problems, constraints, determinism, duplicates, resume.
//
// ZDT1-3 (Zitzler, Deb, Thiele 2000, "Comparison of multiobjective evolutionary algorithms") with
// decision variables discretised to L levels, x_i = gene_i / (L - 1). Their Pareto-optimal set is
// x_2..x_n = 0 (g = 1), so the best front reachable in the discretised space is the analytic front
// sampled at f1 = k / (L - 1): the golden hypervolume is computed from that formula, below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "search/nsga2.hpp"

using namespace dcs::search;

namespace {

constexpr int kLevels = 101;
constexpr int kVars = 10;
const std::vector<double> kRef{1.1, 1.1};

double zdt_f2(int which, double f1, double g) {
    double h;
    if (which == 1) h = 1 - std::sqrt(f1 / g);
    else if (which == 2) h = 1 - (f1 / g) * (f1 / g);
    else h = 1 - std::sqrt(f1 / g) - (f1 / g) * std::sin(10 * M_PI * f1);
    return g * h;
}

class Zdt : public Evaluator {
public:
    explicit Zdt(int which) : which_(which) {}
    std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) override {
        std::vector<Evaluation> out;
        for (const auto& g : batch) {
            ++calls;
            seen.insert(g);
            double f1 = g[0] / double(kLevels - 1), s = 0;
            for (size_t i = 1; i < g.size(); ++i) s += g[i] / double(kLevels - 1);
            double gg = 1 + 9 * s / (g.size() - 1);
            Evaluation e;
            e.objectives = {f1, zdt_f2(which_, f1, gg)};
            out.push_back(e);
        }
        return out;
    }
    int calls = 0;
    std::set<Genome> seen;

private:
    int which_;
};

double optimal_hv(int which) {
    std::vector<std::vector<double>> front;
    for (int k = 0; k < kLevels; ++k) {
        double f1 = k / double(kLevels - 1);
        front.push_back({f1, zdt_f2(which, f1, 1.0)});
    }
    return hypervolume_2d(front, kRef);
}

double run_hv(int which, uint64_t seed, int* evaluations = nullptr) {
    Nsga2Params p;
    p.population = 100;
    p.generations = 250;
    p.seed = seed;
    p.hv_reference = kRef;
    Nsga2 algo(std::vector<int>(kVars, kLevels), p);
    Zdt problem(which);
    algo.run(problem);
    if (evaluations) *evaluations = problem.calls;
    EXPECT_EQ(problem.seen.size(), static_cast<size_t>(problem.calls)) << "a genome was evaluated twice";
    return algo.history().back().hypervolume;
}

TEST(Nsga2, ReachesZdtFrontsWithinTwoPercent) {
    for (int which : {1, 2, 3}) {
        double best = optimal_hv(which);
        int evals = 0;
        double got = run_hv(which, 1, &evals);
        EXPECT_GT(got, 0.98 * best) << "ZDT" << which << ": " << got << " of " << best << " after " << evals;
        EXPECT_LE(got, best * (1 + 1e-9)) << "ZDT" << which;
    }
}

TEST(Nsga2, SameSeedSameRunDifferentSeedDifferentRun) {
    auto run = [](uint64_t seed) {
        Nsga2Params p;
        p.population = 20;
        p.generations = 15;
        p.seed = seed;
        p.hv_reference = kRef;
        Nsga2 a(std::vector<int>(6, 16), p);
        Zdt z(1);
        a.run(z);
        std::vector<Genome> g;
        for (const auto& e : a.archive()) g.push_back(e.genome);
        return g;
    };
    EXPECT_EQ(run(5), run(5));
    EXPECT_NE(run(5), run(6));
}

TEST(Nsga2, RandomSearchHasTheSameBudgetAndRecordsAndIsDeterministic) {
    struct Run {
        std::vector<Genome> genomes;
        std::vector<int> generation_of;
        size_t generations = 0;
        double hypervolume = 0.0;
        int calls = 0;
    };
    auto run = [](bool random, uint64_t seed) {
        Nsga2Params p;
        p.population = 20;
        p.offspring = 24;
        p.generations = 15;
        p.seed = seed;
        p.hv_reference = kRef;
        p.random_search = random;
        Nsga2 a(std::vector<int>(kVars, kLevels), p);
        Zdt z(1);
        a.run(z);
        Run r;
        for (const auto& e : a.archive()) {
            r.genomes.push_back(e.genome);
            r.generation_of.push_back(e.generation);
        }
        r.generations = a.history().size();
        r.hypervolume = a.history().back().hypervolume;
        r.calls = z.calls;
        EXPECT_EQ(z.seen.size(), static_cast<size_t>(z.calls)) << "a genome was evaluated twice";
        for (const auto& g : a.history()) EXPECT_LE(g.population.size(), 20u);
        return r;
    };
    const Run nsga = run(false, 5), rnd = run(true, 5);
    // The same budget in the same batches: the initial 24, then 24 per generation.
    EXPECT_EQ(rnd.calls, 24 + 24 * 15);
    EXPECT_EQ(rnd.calls, nsga.calls);
    EXPECT_EQ(rnd.generations, nsga.generations);
    EXPECT_EQ(rnd.generation_of, nsga.generation_of);
    // The same random initial population, then different candidates.
    EXPECT_TRUE(std::equal(rnd.genomes.begin(), rnd.genomes.begin() + 24, nsga.genomes.begin()));
    EXPECT_NE(rnd.genomes, nsga.genomes);
    // Deterministic for a seed.
    EXPECT_EQ(run(true, 5).genomes, rnd.genomes);
    EXPECT_NE(run(true, 6).genomes, rnd.genomes);
    // The baseline NSGA-II is compared against: on ZDT1 it is far behind.
    EXPECT_LT(rnd.hypervolume, nsga.hypervolume);
}

/// A problem with a constraint: feasible only when x0 >= 0.5; f = (x0, 1 - x0 + x1).
class Constrained : public Evaluator {
public:
    std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) override {
        std::vector<Evaluation> out;
        for (const auto& g : batch) {
            double x0 = g[0] / 20.0, x1 = g[1] / 20.0;
            Evaluation e;
            e.objectives = {x0, 1 - x0 + x1};
            e.violation = std::max(0.0, 0.5 - x0);
            if (g[1] == 20) {  // a failing evaluation, as a worker would report it
                e.ok = false;
                e.error = "injected";
            }
            out.push_back(e);
        }
        return out;
    }
};

TEST(Nsga2, InfeasibleAndFailedNeverReachTheFront) {
    Nsga2Params p;
    p.population = 16;
    p.generations = 20;
    p.hv_reference = {2, 2};
    Nsga2 a({21, 21}, p);
    Constrained c;
    a.run(c);
    auto front = a.feasible_front();
    ASSERT_FALSE(front.empty());
    for (size_t i : front) {
        EXPECT_TRUE(a.archive()[i].ok);
        EXPECT_GE(a.archive()[i].genome[0], 10);
    }
    // The final population holds no infeasible member once enough feasible ones exist.
    for (size_t i : a.history().back().population) EXPECT_GE(a.archive()[i].genome[0], 10);
}

TEST(Nsga2, ResumeFromPreloadReproducesTheRunWithoutReevaluating) {
    Nsga2Params p;
    p.population = 12;
    p.generations = 10;
    p.seed = 3;
    p.hv_reference = kRef;
    Nsga2 full(std::vector<int>(5, 8), p);
    Zdt z1(2);
    full.run(z1);
    // "Kill" after 40 evaluations, in a scrambled order (as MPI workers might finish them).
    std::vector<Evaluation> done(full.archive().begin(), full.archive().begin() + 40);
    std::reverse(done.begin(), done.end());
    Nsga2 resumed(std::vector<int>(5, 8), p);
    resumed.preload(done);
    Zdt z2(2);
    resumed.run(z2);
    EXPECT_EQ(z2.calls, static_cast<int>(full.archive().size()) - 40);
    ASSERT_EQ(resumed.archive().size(), full.archive().size());
    for (size_t i = 0; i < full.archive().size(); ++i) EXPECT_EQ(resumed.archive()[i].genome, full.archive()[i].genome);
    EXPECT_EQ(resumed.feasible_front(), full.feasible_front());
}

TEST(Nsga2, BudgetAndSmallSpaces) {
    Nsga2Params p;
    p.population = 8;
    p.generations = 100;
    p.max_evaluations = 30;
    Nsga2 a({4, 4, 4}, p);
    Zdt z(1);
    a.run(z);
    EXPECT_LE(z.calls, 30);
    // A space smaller than the population: every genome once, then stop.
    Nsga2Params q;
    q.population = 8;
    q.generations = 5;
    Nsga2 b({2, 2}, q);
    Zdt z2(1);
    b.run(z2);
    EXPECT_EQ(z2.calls, 4);
}

/// Counts the genomes of each evaluate() call: one call per generation.
class BatchSizes : public Zdt {
public:
    BatchSizes() : Zdt(1) {}
    std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) override {
        sizes.push_back(batch.size());
        return Zdt::evaluate(batch);
    }
    std::vector<size_t> sizes;
};

TEST(Nsga2, OffspringSetsTheBatchAndThePopulationStays) {
    Nsga2Params p;
    p.population = 8;
    p.generations = 6;
    p.offspring = 14;  // neither a multiple of the population nor even
    p.hv_reference = kRef;
    Nsga2 a(std::vector<int>(6, 16), p);
    BatchSizes b;
    a.run(b);
    ASSERT_EQ(b.sizes.size(), 7u);
    for (size_t s : b.sizes) EXPECT_EQ(s, 14u) << "the initial batch and every generation take `offspring` genomes";
    ASSERT_EQ(a.history().size(), 7u);
    for (const auto& g : a.history()) EXPECT_EQ(g.population.size(), 8u);
    EXPECT_EQ(b.seen.size(), static_cast<size_t>(b.calls)) << "a genome was evaluated twice";
    // More offspring per generation reach at least as good a front as the default on ZDT1 after as
    // many generations (more of the space is seen): a check that the children are used.
    Nsga2Params q = p;
    q.offspring = 0;
    Nsga2 c(std::vector<int>(6, 16), q);
    BatchSizes d;
    c.run(d);
    for (size_t s : d.sizes) EXPECT_EQ(s, 8u);
    EXPECT_GE(a.history().back().hypervolume, c.history().back().hypervolume);
}

TEST(Nsga2, BadParametersThrow) {
    Nsga2Params p;
    p.offspring = 1;
    EXPECT_THROW(Nsga2({3}, p), std::invalid_argument);
    p.offspring = -2;
    EXPECT_THROW(Nsga2({3}, p), std::invalid_argument);
    p.offspring = 0;
    p.population = 7;
    EXPECT_THROW(Nsga2({3}, p), std::invalid_argument);
    p.population = 2;
    EXPECT_THROW(Nsga2({3}, p), std::invalid_argument);
    EXPECT_THROW(Nsga2({}, Nsga2Params{}), std::invalid_argument);
    EXPECT_THROW(Nsga2({3, 0}, Nsga2Params{}), std::invalid_argument);
}

}  // namespace

#include "search/scoring.hpp"

TEST(Problem, DropOfExactlyTheBudgetIsFeasible) {
    dcs::search::ProblemSettings s;
    s.baseline_accuracy = 0.90;
    s.max_accuracy_drop = 1.0;
    dcs::search::Evaluation e;
    e.accuracy = 0.89;  // 0.90 - 0.89 = 0.010000000000000009 in binary floating point
    dcs::search::score(e, s);
    EXPECT_EQ(e.violation, 0.0);
    e.accuracy = 0.8895;
    dcs::search::score(e, s);
    EXPECT_NEAR(e.violation, 0.0005, 1e-12);
    EXPECT_EQ(e.objectives.size(), 2u);
    EXPECT_DOUBLE_EQ(e.objectives[0], 1 - 0.8895);
}
