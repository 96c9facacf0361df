// Tests of search/pareto.cpp against hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "search/pareto.hpp"

using namespace dcs::search;

namespace {

std::vector<Point> pts(std::vector<std::vector<double>> f, std::vector<double> v = {}) {
    std::vector<Point> p;
    for (size_t i = 0; i < f.size(); ++i) p.push_back({f[i], i < v.size() ? v[i] : 0.0});
    return p;
}

TEST(Pareto, SortGoldenCase) {
    // By hand: (1,5),(2,3),(4,1) are mutually non-dominated; (3,4) is dominated by (2,3);
    // (5,5) by everything in front 2 as well; (2,3) duplicate (index 5) ties with index 1.
    auto p = pts({{1, 5}, {2, 3}, {4, 1}, {3, 4}, {5, 5}, {2, 3}});
    auto fronts = non_dominated_sort(p);
    ASSERT_EQ(fronts.size(), 3u);
    EXPECT_EQ(fronts[0], (std::vector<size_t>{0, 1, 2, 5}));
    EXPECT_EQ(fronts[1], (std::vector<size_t>{3}));
    EXPECT_EQ(fronts[2], (std::vector<size_t>{4}));
}

TEST(Pareto, ConstraintDomination) {
    // Feasible (10,10) beats infeasible (0,0); of infeasible points the smaller violation wins.
    auto p = pts({{0, 0}, {10, 10}, {1, 1}, {5, 5}}, {2.0, 0.0, 0.5, 0.0});
    EXPECT_TRUE(constrained_dominates(p[1], p[0]));
    EXPECT_FALSE(constrained_dominates(p[0], p[1]));
    EXPECT_TRUE(constrained_dominates(p[2], p[0]));
    auto fronts = non_dominated_sort(p);
    ASSERT_EQ(fronts.size(), 4u);
    EXPECT_EQ(fronts[0], (std::vector<size_t>{3}));  // (5,5) dominates (10,10)
    EXPECT_EQ(fronts[1], (std::vector<size_t>{1}));
    EXPECT_EQ(fronts[2], (std::vector<size_t>{2}));
    EXPECT_EQ(fronts[3], (std::vector<size_t>{0}));
}

TEST(Pareto, CrowdingGoldenCase) {
    // Front sorted by f0: (0,4),(1,2),(3,1),(4,0). Ranges: 4 and 4.
    // (1,2): (3-0)/4 + (4-1)/4 = 1.5 ; (3,1): (4-1)/4 + (2-0)/4 = 1.25 ; ends infinite.
    auto p = pts({{3, 1}, {0, 4}, {4, 0}, {1, 2}});
    auto d = crowding_distance(p, {0, 1, 2, 3});
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_DOUBLE_EQ(d[0], 1.25);
    EXPECT_EQ(d[1], inf);
    EXPECT_EQ(d[2], inf);
    EXPECT_DOUBLE_EQ(d[3], 1.5);
}

TEST(Pareto, Hypervolume2dGoldenCases) {
    // One point (1,1) with ref (3,3): 2*2 = 4.
    EXPECT_DOUBLE_EQ(hypervolume_2d({{1, 1}}, {3, 3}), 4.0);
    // Staircase (1,3),(2,2),(3,1), ref (4,4): 3*1 + 2*1 + 1*1 ... by union: 3 + 2 + 1 = 6.
    EXPECT_DOUBLE_EQ(hypervolume_2d({{3, 1}, {1, 3}, {2, 2}}, {4, 4}), 6.0);
    // Dominated and out-of-box points add nothing.
    EXPECT_DOUBLE_EQ(hypervolume_2d({{3, 1}, {1, 3}, {2, 2}, {2.5, 2.5}, {5, 0}, {0, 4}}, {4, 4}), 6.0);
    EXPECT_DOUBLE_EQ(hypervolume_2d({}, {1, 1}), 0.0);
    EXPECT_THROW(hypervolume_2d({{1, 2, 3}}, {4, 4}), std::invalid_argument);
}

}  // namespace
