#include "search/pareto.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace dcs::search {

bool dominates(const std::vector<double>& a, const std::vector<double>& b) {
    bool better = false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] > b[i]) return false;
        if (a[i] < b[i]) better = true;
    }
    return better;
}

bool constrained_dominates(const Point& a, const Point& b) {
    const bool fa = a.violation <= 0.0, fb = b.violation <= 0.0;
    if (fa && !fb) return true;
    if (!fa && fb) return false;
    if (!fa && !fb) return a.violation < b.violation;
    return dominates(a.f, b.f);
}

std::vector<std::vector<size_t>> non_dominated_sort(const std::vector<Point>& points) {
    const size_t n = points.size();
    std::vector<std::vector<size_t>> dominated(n);
    std::vector<size_t> count(n, 0);
    std::vector<std::vector<size_t>> fronts(1);
    for (size_t p = 0; p < n; ++p) {
        for (size_t q = 0; q < n; ++q) {
            if (p == q) continue;
            if (constrained_dominates(points[p], points[q])) dominated[p].push_back(q);
            else if (constrained_dominates(points[q], points[p])) ++count[p];
        }
        if (count[p] == 0) fronts[0].push_back(p);
    }
    for (size_t i = 0; !fronts[i].empty(); ++i) {
        std::vector<size_t> next;
        for (size_t p : fronts[i])
            for (size_t q : dominated[p])
                if (--count[q] == 0) next.push_back(q);
        std::sort(next.begin(), next.end());
        fronts.push_back(std::move(next));
    }
    fronts.pop_back();
    return fronts;
}

std::vector<double> crowding_distance(const std::vector<Point>& points, const std::vector<size_t>& front) {
    const size_t n = front.size();
    std::vector<double> d(n, 0.0);
    if (n == 0) return d;
    const double inf = std::numeric_limits<double>::infinity();
    if (n <= 2) return std::vector<double>(n, inf);
    const size_t m = points[front[0]].f.size();
    std::vector<size_t> order(n);
    for (size_t k = 0; k < m; ++k) {
        std::iota(order.begin(), order.end(), 0);
        // Stable order on ties (by position in the front) keeps the result deterministic.
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return points[front[a]].f[k] < points[front[b]].f[k]; });
        const double lo = points[front[order.front()]].f[k], hi = points[front[order.back()]].f[k];
        d[order.front()] = inf;
        d[order.back()] = inf;
        if (!(hi > lo)) continue;
        for (size_t i = 1; i + 1 < n; ++i)
            d[order[i]] += (points[front[order[i + 1]]].f[k] - points[front[order[i - 1]]].f[k]) / (hi - lo);
    }
    return d;
}

double hypervolume_2d(std::vector<std::vector<double>> points, const std::vector<double>& ref) {
    if (ref.size() != 2) throw std::invalid_argument("hypervolume_2d: the reference point must have 2 coordinates");
    std::vector<std::pair<double, double>> p;
    for (const auto& q : points) {
        if (q.size() != 2) throw std::invalid_argument("hypervolume_2d: points must have 2 coordinates");
        if (q[0] < ref[0] && q[1] < ref[1]) p.emplace_back(q[0], q[1]);
    }
    std::sort(p.begin(), p.end());
    double hv = 0.0, best_y = ref[1];
    for (const auto& [x, y] : p) {
        if (y >= best_y) continue;  // dominated by a point with smaller x
        // Sweep in x: this point adds the strip between its y and the best y so far, up to ref x.
        hv += (ref[0] - x) * (best_y - y);
        best_y = y;
    }
    return hv;
}

}  // namespace dcs::search
