#pragma once
/// Pareto machinery for minimisation with constraints: fast non-dominated sorting, crowding distance,
/// exact 2-D hypervolume.
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

/// Exact hypervolume dominated by 2-D points (minimisation) up to the reference point `ref`. Points
/// not strictly better than ref in both coordinates contribute nothing.
double hypervolume_2d(std::vector<std::vector<double>> points, const std::vector<double>& ref);

}  // namespace dcs::search
