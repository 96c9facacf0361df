#pragma once
/// Pareto machinery for minimisation with constraints: fast non-dominated sorting, crowding distance,
/// the incremental non-dominated set, exact 2-D hypervolume.
#include <cstddef>
#include <vector>

namespace dcs::search {

/// One point: objectives to minimise and its constraint violation (0 = feasible, larger = worse,
/// +inf for a failed evaluation).
struct Point {
    std::vector<double> f;
    double violation = 0.0;
};

/// Constraint domination (Deb 2000): a feasible point beats an infeasible one; of two infeasible points
/// the smaller violation wins; of two feasible points, Pareto domination decides.
bool constrained_dominates(const Point& a, const Point& b);

/// Plain Pareto domination on the objectives: a is no worse everywhere and better somewhere.
bool dominates(const std::vector<double>& a, const std::vector<double>& b);

/// Fast non-dominated sort (Deb et al. 2002) under constraint domination.
/// @return fronts of indices into `points`, best front first; each front in ascending index order
std::vector<std::vector<size_t>> non_dominated_sort(const std::vector<Point>& points);

/// Crowding distance of each member of `front` (same order). Boundary points get +inf; objectives
/// with zero range contribute nothing.
std::vector<double> crowding_distance(const std::vector<Point>& points, const std::vector<size_t>& front);

/// Adds candidate `i` to `front`, a set of mutually non-dominated indices kept as candidates arrive
/// (in arrival order): `i` joins unless a member dominates it, and the members it dominates leave.
/// `objectives(j)` gives candidate j's objectives (to minimise). The search's archive front
/// (Nsga2) and the results file's front (search/queries.hpp) are kept this way.
template <class Objectives>
void add_to_front(std::vector<size_t>& front, size_t i, const Objectives& objectives) {
    for (size_t j : front)
        if (dominates(objectives(j), objectives(i))) return;
    size_t kept = 0;
    for (size_t j : front)
        if (!dominates(objectives(i), objectives(j))) front[kept++] = j;
    front.resize(kept);
    front.push_back(i);
}

/// Exact hypervolume dominated by 2-D points (minimisation) up to the reference point `ref`. Points
/// not strictly better than ref in both coordinates contribute nothing.
double hypervolume_2d(std::vector<std::vector<double>> points, const std::vector<double>& ref);

}  // namespace dcs::search
