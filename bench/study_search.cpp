// Search-efficiency study (not a test; see docs/search-efficiency.md):
//   1. evaluates EVERY configuration of a small search space (cached in a CSV beside the output),
//   2. computes the exhaustive front's hypervolume,
//   3. runs the real search procedure (sensitivity scan, greedy seeds, NSGA-II) and random sampling
//      over 10+ seeds against a lookup of those evaluations, and reports the hypervolume reached at
//      several evaluation budgets, as a fraction of the exhaustive one (median, min, max).
//
//   build/bench/study_search configs/study-lenet5.yaml study.csv [seeds]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "app/config.hpp"
#include "app/load_data.hpp"
#include "runtime/candidate.hpp"
#include "runtime/onnx_import.hpp"
#include "search/driver.hpp"
#include "search/pareto.hpp"

using namespace dcs;
using namespace dcs::search;

namespace {

struct Table {
    std::map<Genome, Evaluation> rows;
};

class LookupEvaluator : public Evaluator {
public:
    explicit LookupEvaluator(const Table& t) : t_(t) {}
    std::vector<Evaluation> evaluate(const std::vector<Genome>& batch) override {
        std::vector<Evaluation> out;
        for (const auto& g : batch) out.push_back(t_.rows.at(g));
        return out;
    }

private:
    const Table& t_;
};

std::vector<Genome> all_genomes(const std::vector<int>& choices) {
    std::vector<Genome> out;
    Genome g(choices.size(), 0);
    for (;;) {
        out.push_back(g);
        size_t i = 0;
        while (i < g.size() && ++g[i] == choices[i]) g[i++] = 0;
        if (i == g.size()) break;
    }
    return out;
}

double hv_of(const std::vector<Evaluation>& evals, size_t first_n, const std::vector<double>& ref) {
    std::vector<std::vector<double>> pts;
    for (size_t i = 0; i < std::min(first_n, evals.size()); ++i)
        if (evals[i].ok && evals[i].violation <= 0) pts.push_back({evals[i].objectives[0], evals[i].objectives[1]});
    return hypervolume_2d(pts, ref);
}

std::string key(const Genome& g) {
    std::string s;
    for (int v : g) s += std::to_string(v) + ";";
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: study_search config.yaml cache.csv [seeds]\n";
        return 2;
    }
    const int seeds = argc > 3 ? std::atoi(argv[3]) : 10;
    Config cfg = load_config(argv[1]);
    Graph g = import_onnx(cfg.model.path);
    LoadedData loaded = load_data(cfg, g);  // any dataset format, checked as the commands check it
    const Dataset& data = loaded.data;
    const ModelIo& io = loaded.io;
    CandidateEvaluator ce(g, data, cfg.dataset.validation, cfg.model.preprocess, io, cfg.compression.weight);
    std::vector<std::string> layer_names;
    for (const auto& l : ce.layers()) layer_names.push_back(l.name);
    SearchSpace space = SearchSpace::build(layer_names, cfg.compression.weight_bits, cfg.compression.prune_ratios,
                                           cfg.compression.layers);
    CandidateMetrics base = ce.baseline();
    ProblemSettings ps;
    ps.baseline_accuracy = base.accuracy;
    ps.max_accuracy_drop = cfg.search.max_accuracy_drop;
    const std::vector<double> ref{1.0 - (base.accuracy - ps.max_accuracy_drop / 100.0),
                                  static_cast<double>(base.size_bytes)};

    // 1. Exhaustive evaluation, cached.
    Table table;
    std::map<std::string, std::pair<double, double>> cache;
    {
        std::ifstream in(argv[2]);
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream ss(line);
            std::string k;
            double a, s;
            if (std::getline(ss, k, ',') && ss >> a && ss.ignore(1) && ss >> s) cache[k] = {a, s};
        }
    }
    auto genomes = all_genomes(space.gene_choices());
    std::ofstream out(argv[2], std::ios::app);
    auto t0 = std::chrono::steady_clock::now();
    size_t fresh = 0;
    for (size_t i = 0; i < genomes.size(); ++i) {
        Evaluation e;
        e.genome = genomes[i];
        auto it = cache.find(key(genomes[i]));
        if (it != cache.end()) {
            e.accuracy = it->second.first;
            e.size_bytes = it->second.second;
        } else {
            auto m = ce.evaluate(space.decode(genomes[i]));
            e.accuracy = m.accuracy;
            e.size_bytes = static_cast<double>(m.size_bytes);
            out << key(genomes[i]) << "," << e.accuracy << "," << e.size_bytes << "\n";
            out.flush();
            ++fresh;
            if (fresh % 200 == 0)
                std::cerr << "exhaustive: " << i + 1 << "/" << genomes.size() << " ("
                          << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s)\n";
        }
        score(e, ps);
        table.rows[e.genome] = e;
    }
    std::vector<Evaluation> all;
    for (const auto& kv : table.rows) all.push_back(kv.second);
    const double hv_max = hv_of(all, all.size(), ref);
    size_t feasible = 0;
    for (const auto& e : all) feasible += e.violation <= 0;
    std::printf("space: %zu configurations (%zu feasible), baseline accuracy %.4f, exhaustive hypervolume %.6g\n",
                all.size(), feasible, base.accuracy, hv_max);

    // 2. Search and random sampling at budgets.
    const std::vector<double> fractions{0.01, 0.02, 0.03, 0.05, 0.075, 0.10};
    std::vector<size_t> budgets;
    for (double f : fractions) budgets.push_back(static_cast<size_t>(f * static_cast<double>(all.size())));
    std::vector<std::vector<double>> nsga(budgets.size()), rnd(budgets.size());
    for (int seed = 1; seed <= seeds; ++seed) {
        SearchSettings st;
        st.problem = ps;
        st.nsga.population = cfg.search.population;
        st.nsga.generations = 1000;
        st.nsga.seed = static_cast<uint64_t>(seed);
        st.nsga.max_evaluations = static_cast<int64_t>(budgets.back());
        ResultsData rd;
        rd.baseline_size_bytes = static_cast<double>(base.size_bytes);
        SearchDriver driver(space, st, rd);
        LookupEvaluator lookup(table);
        driver.run(lookup, {});
        const auto& arch = driver.algorithm().archive();
        for (size_t b = 0; b < budgets.size(); ++b) nsga[b].push_back(hv_of(arch, budgets[b], ref) / hv_max);
        std::mt19937_64 rng(static_cast<uint64_t>(seed));
        std::vector<Evaluation> shuffled = all;
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        for (size_t b = 0; b < budgets.size(); ++b) rnd[b].push_back(hv_of(shuffled, budgets[b], ref) / hv_max);
    }
    auto stats = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        double med = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%6.2f%% [%6.2f, %6.2f]", 100 * med, 100 * v.front(), 100 * v.back());
        return std::string(buf);
    };
    std::printf("%-22s %-28s %-28s\n", "evaluations", "search: median [min, max]", "random: median [min, max]");
    for (size_t b = 0; b < budgets.size(); ++b) {
        char label[64];
        std::snprintf(label, sizeof label, "%zu (%.1f%%)", budgets[b], 100 * fractions[b]);
        std::printf("%-22s %-28s %-28s\n", label, stats(nsga[b]).c_str(), stats(rnd[b]).c_str());
    }
    return 0;
}
