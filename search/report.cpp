// The HTML trade-off report and the front's CSV (see report.hpp). Charts are hand-written SVG so the
// report needs nothing but a browser: no scripts, no fonts, no network. Tooltips are SVG <title>s.
#include "search/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "common/metric.hpp"
#include "search/queries.hpp"
#include "search/run_stats.hpp"

namespace dcs::search {
namespace {

/// What the results' accuracy measures (dataset.metric).
Metric metric_of(const ResultsData& r) { return metric_from_name(r.metric).value_or(Metric::Top1); }

/// The y-axis title of the accuracy charts.
std::string metric_axis(const ResultsData& r) {
    const Metric m = metric_of(r);
    return std::string(m == Metric::Top1 ? "top-1 accuracy" : metric_label(m)) + " (%)";
}

std::string esc(const std::string& s) {
    std::string o;
    o.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':
                o += "&amp;";
                break;
            case '<':
                o += "&lt;";
                break;
            case '>':
                o += "&gt;";
                break;
            case '"':
                o += "&quot;";
                break;
            default:
                o += c;
        }
    }
    return o;
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string num(double v) {
    return fmt("%.2f", v);
}

/// "12.3 kB", "1.20 MB", "845 B" (powers of 1000, as file managers show).
std::string bytes_str(double b) {
    if (b >= 1e6) return fmt("%.2f MB", b / 1e6);
    if (b >= 1e3) return fmt("%.1f kB", b / 1e3);
    return fmt("%.0f B", b);
}

std::string bops_str(double b) {
    if (b >= 1e12) return fmt("%.2f T", b / 1e12);
    if (b >= 1e9) return fmt("%.2f G", b / 1e9);
    if (b >= 1e6) return fmt("%.2f M", b / 1e6);
    if (b >= 1e3) return fmt("%.2f k", b / 1e3);
    return fmt("%.0f", b);
}

std::string prune_str(double p) {
    return fmt("%.0f%%", p * 100.0);
}

double ratio_of(const ResultsData& r, double size) {
    return size > 0 ? r.baseline_size_bytes / size : 0.0;
}

/// Per-layer settings, one line per layer ("fc1: 4 bits, 50% pruned").
std::string settings_text(const ResultsData& r, size_t id) {
    std::string s;
    try {
        const auto ch = choices_of(r, id);
        for (size_t l = 0; l < ch.size(); ++l)
            s += "\n" + r.layers[l].name + ": " + std::to_string(ch[l].weight_bits) + " bits, " +
                 prune_str(ch[l].prune_ratio) + " pruned";
    } catch (const std::exception&) {
        s += "\n(settings unavailable)";
    }
    return s;
}

std::string tooltip(const ResultsData& r, size_t id, const std::string& what = "") {
    const Evaluation& e = r.evaluations[id];
    std::string t = "id " + std::to_string(id) + (what.empty() ? "" : " (" + what + ")") +
                    (e.generation < 0 ? ", sensitivity scan" : ", generation " + std::to_string(e.generation)) +
                    (is_feasible(e) ? "" : ", infeasible");
    t += "\naccuracy " + fmt("%.2f%%", e.accuracy * 100.0) + " (drop " + num(accuracy_drop_pt(r, e)) + " pt)";
    t += "\nsize " + bytes_str(e.size_bytes) + " (" + fmt("%.0f", e.size_bytes) + " bytes), " +
         num(ratio_of(r, e.size_bytes)) + "x smaller than fp32";
    t += "\nBOPs " + bops_str(e.bops);
    return t + settings_text(r, id);
}

/// Nice tick values covering [lo, hi].
std::vector<double> linear_ticks(double lo, double hi, int target = 6) {
    const double span = hi - lo;
    if (!(span > 0)) return {lo};
    const double raw = span / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (raw <= m * mag) {
            step = m * mag;
            break;
        }
    std::vector<double> t;
    for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) t.push_back(v + 0.0);
    return t;
}

std::vector<double> log_ticks(double lo, double hi) {
    std::vector<double> t;
    const int e0 = static_cast<int>(std::floor(std::log10(lo))), e1 = static_cast<int>(std::ceil(std::log10(hi)));
    const bool dense = e1 - e0 <= 2;
    for (int e = e0; e <= e1; ++e)
        for (double m : dense ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
            const double v = m * std::pow(10.0, e);
            if (v >= lo * 0.999 && v <= hi * 1.001) t.push_back(v);
        }
    if (t.size() < 3) {  // a narrow range: evenly spaced round values read better
        t.clear();
        for (double v : linear_ticks(lo, hi, 5))
            if (v > 0) t.push_back(v);
    }
    return t;
}

/// A chart area: data ranges mapped to an SVG of `w` x `h` pixels with margins for the axes.
struct Plot {
    double x0, x1, y0, y1;
    bool logx = false;
    int w = 960, h = 420;
    int ml = 70, mr = 20, mt = 20, mb = 55;
    double px(double x) const {
        const double f = logx ? (std::log(x) - std::log(x0)) / (std::log(x1) - std::log(x0)) : (x - x0) / (x1 - x0);
        return ml + f * (w - ml - mr);
    }
    double py(double y) const { return h - mb - (y - y0) / (y1 - y0) * (h - mt - mb); }
    std::string open(const std::string& cls, const std::string& label) const {
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"" + cls + "\" width=\"" + std::to_string(w) +
               "\" height=\"" + std::to_string(h) + "\" viewBox=\"0 0 " + std::to_string(w) + " " + std::to_string(h) +
               "\" role=\"img\" aria-label=\"" + esc(label) + "\">\n";
    }
    /// Grid, ticks and axis labels.
    std::string axes(const std::string& xlabel, const std::string& ylabel, const std::vector<double>& xt,
                     const std::vector<double>& yt, std::string (*xfmt)(double), std::string (*yfmt)(double)) const {
        std::ostringstream s;
        s << "<g class=\"axes\" font-size=\"12\" fill=\"#333\">\n";
        for (double v : yt) {
            const double y = py(v);
            s << "<line x1=\"" << ml << "\" x2=\"" << w - mr << "\" y1=\"" << num(y) << "\" y2=\"" << num(y)
              << "\" stroke=\"#e3e3e3\"/>\n<text x=\"" << ml - 6 << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\">"
              << esc(yfmt(v)) << "</text>\n";
        }
        for (double v : xt) {
            const double x = px(v);
            s << "<line x1=\"" << num(x) << "\" x2=\"" << num(x) << "\" y1=\"" << mt << "\" y2=\"" << h - mb
              << "\" stroke=\"#e3e3e3\"/>\n<text x=\"" << num(x) << "\" y=\"" << h - mb + 16
              << "\" text-anchor=\"middle\">" << esc(xfmt(v)) << "</text>\n";
        }
        s << "<rect x=\"" << ml << "\" y=\"" << mt << "\" width=\"" << w - ml - mr << "\" height=\"" << h - mt - mb
          << "\" fill=\"none\" stroke=\"#888\"/>\n";
        s << "<text x=\"" << (ml + w - mr) / 2 << "\" y=\"" << h - 12 << "\" text-anchor=\"middle\" font-size=\"13\">"
          << esc(xlabel) << "</text>\n";
        s << "<text transform=\"translate(16," << (mt + h - mb) / 2 << ") rotate(-90)\" text-anchor=\"middle\" "
          << "font-size=\"13\">" << esc(ylabel) << "</text>\n</g>\n";
        return s.str();
    }
};

std::string pct1(double v) {
    return fmt("%.1f%%", v);
}
std::string gen_label(double v) {
    return fmt("%.0f", v);
}
std::string hv_label(double v) {
    return fmt("%.3f", v);
}

/// Colour of generation g of G (light to dark blue); the sensitivity scan is grey.
std::string gen_colour(int g, int gmax) {
    if (g < 0) return "#9a9a9a";
    const double f = gmax > 0 ? static_cast<double>(g) / gmax : 1.0;
    const int r = static_cast<int>(160 - 140 * f), gg = static_cast<int>(200 - 130 * f),
              b = static_cast<int>(240 - 60 * f);
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, gg, b);
    return buf;
}

/// Sequential colour for f in [0, 1] (pale yellow to dark red) and a readable text colour on it.
std::string heat(double f) {
    f = std::min(std::max(f, 0.0), 1.0);
    const int r = static_cast<int>(255 - 75 * f), g = static_cast<int>(245 - 205 * f),
              b = static_cast<int>(200 - 170 * f);
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
    return buf;
}
std::string heat_text(double f) {
    return f > 0.6 ? "#fff" : "#222";
}

int max_generation(const ResultsData& r) {
    int g = 0;
    for (const auto& e : r.evaluations) g = std::max(g, e.generation);
    return g;
}

std::string legend_item(double x, double y, const std::string& shape, const std::string& text) {
    return "<g transform=\"translate(" + num(x) + "," + num(y) + ")\">" + shape + "<text x=\"14\" y=\"4\">" +
           esc(text) + "</text></g>\n";
}

/// Chart 1: accuracy against size for every evaluation.
std::string tradeoff_chart(const ResultsData& r, const std::vector<size_t>& front, size_t u8, size_t u4) {
    double smin = r.baseline_size_bytes, smax = r.baseline_size_bytes, amax = r.baseline_accuracy,
           amin = r.baseline_accuracy;
    for (const auto& e : r.evaluations) {
        if (!e.ok || !(e.size_bytes > 0)) continue;
        smin = std::min(smin, e.size_bytes);
        smax = std::max(smax, e.size_bytes);
        amin = std::min(amin, e.accuracy);
        amax = std::max(amax, e.accuracy);
    }
    if (!(smin > 0)) smin = 1;
    // The interesting region is near the baseline: below max(4 x budget, 5 pt) points are clamped.
    const double floor_acc = r.baseline_accuracy - std::max(4.0 * r.max_accuracy_drop, 5.0) / 100.0;
    Plot p{smin / 1.25, smax * 1.25, std::max(amin, floor_acc) * 100.0 - 0.5, amax * 100.0 + 0.5};
    p.logx = true;
    p.h = 460;
    p.mr = 210;  // legend column
    std::ostringstream s;
    s << p.open("chart tradeoff", "accuracy against compressed size");
    s << p.axes("compressed size (bytes of model.dcz, log scale)", metric_axis(r), log_ticks(p.x0, p.x1),
                linear_ticks(p.y0, p.y1), bytes_str, pct1);
    // Budget and baseline lines.
    const double yb = p.py(r.baseline_accuracy * 100.0), yf = p.py((r.baseline_accuracy * 100.0 - r.max_accuracy_drop));
    s << "<line class=\"baseline-line\" x1=\"" << p.ml << "\" x2=\"" << p.w - p.mr << "\" y1=\"" << num(yb)
      << "\" y2=\"" << num(yb) << "\" stroke=\"#2a9d2a\" stroke-dasharray=\"6 4\"/>\n";
    if (r.max_accuracy_drop > 0 && yf < p.h - p.mb)
        s << "<line class=\"budget-line\" x1=\"" << p.ml << "\" x2=\"" << p.w - p.mr << "\" y1=\"" << num(yf)
          << "\" y2=\"" << num(yf) << "\" stroke=\"#d62728\" stroke-dasharray=\"2 3\"/>\n";
    const int gmax = max_generation(r);
    const double ybottom = p.h - p.mb - 4;
    s << "<g class=\"points\">\n";
    for (size_t i = 0; i < r.evaluations.size(); ++i) {
        const Evaluation& e = r.evaluations[i];
        if (!e.ok || !(e.size_bytes > 0)) continue;
        const double x = p.px(e.size_bytes), acc = e.accuracy * 100.0;
        const std::string col = gen_colour(e.generation, gmax);
        const std::string fill = is_feasible(e) ? col : "white";
        if (acc < p.y0) {  // below the plotted range: a triangle on the bottom edge
            s << "<path class=\"pt clamped\" data-id=\"" << i << "\" d=\"M" << num(x - 4) << "," << num(ybottom - 6)
              << " L" << num(x + 4) << "," << num(ybottom - 6) << " L" << num(x) << "," << num(ybottom)
              << " Z\" fill=\"" << fill << "\" stroke=\"" << col << "\"><title>" << esc(tooltip(r, i))
              << "</title></path>\n";
        } else {
            s << "<circle class=\"pt\" data-id=\"" << i << "\" cx=\"" << num(x) << "\" cy=\"" << num(p.py(acc))
              << "\" r=\"3.5\" fill=\"" << fill << "\" fill-opacity=\"0.8\" stroke=\"" << col << "\"><title>"
              << esc(tooltip(r, i)) << "</title></circle>\n";
        }
    }
    s << "</g>\n";
    // The front as a line through its members.
    s << "<polyline class=\"front-line\" fill=\"none\" stroke=\"#e07b00\" stroke-width=\"2\" points=\"";
    for (size_t i : front)
        s << num(p.px(r.evaluations[i].size_bytes)) << ","
          << num(p.py(std::max(r.evaluations[i].accuracy * 100.0, p.y0))) << " ";
    s << "\"/>\n<g class=\"front-points\">\n";
    for (size_t i : front)
        s << "<circle class=\"front-pt\" data-id=\"" << i << "\" cx=\"" << num(p.px(r.evaluations[i].size_bytes))
          << "\" cy=\"" << num(p.py(std::max(r.evaluations[i].accuracy * 100.0, p.y0)))
          << "\" r=\"5\" fill=\"#e07b00\" stroke=\"#7a4300\"><title>" << esc(tooltip(r, i, "front"))
          << "</title></circle>\n";
    s << "</g>\n";
    // References.
    auto star = [&](double x, double y, const std::string& col, const std::string& cls, const std::string& title) {
        s << "<rect class=\"ref " << cls << "\" x=\"" << num(x - 6) << "\" y=\"" << num(y - 6)
          << "\" width=\"12\" height=\"12\" transform=\"rotate(45 " << num(x) << " " << num(y) << ")\" fill=\"" << col
          << "\" stroke=\"#000\"><title>" << esc(title) << "</title></rect>\n";
    };
    star(p.px(r.baseline_size_bytes), yb, "#2a9d2a", "ref-baseline",
         "fp32 baseline\naccuracy " + fmt("%.2f%%", r.baseline_accuracy * 100.0) + "\nsize " +
             bytes_str(r.baseline_size_bytes) + " (4 bytes per parameter)");
    if (u8 < r.evaluations.size())
        star(p.px(r.evaluations[u8].size_bytes), p.py(std::max(r.evaluations[u8].accuracy * 100.0, p.y0)), "#6a3d9a",
             "ref-uniform8", tooltip(r, u8, "uniform 8 bits"));
    if (u4 < r.evaluations.size())
        star(p.px(r.evaluations[u4].size_bytes), p.py(std::max(r.evaluations[u4].accuracy * 100.0, p.y0)), "#1f78b4",
             "ref-uniform4", tooltip(r, u4, "uniform 4 bits"));
    // Legend.
    const double lx = p.w - p.mr + 14;
    double ly = p.mt + 10;
    s << "<g class=\"legend\" font-size=\"12\" fill=\"#222\">\n";
    auto dot = [](const std::string& fill, const std::string& stroke) {
        return "<circle r=\"4\" fill=\"" + fill + "\" stroke=\"" + stroke + "\"/>";
    };
    auto diamond = [](const std::string& fill) {
        return "<rect x=\"-5\" y=\"-5\" width=\"10\" height=\"10\" transform=\"rotate(45)\" fill=\"" + fill +
               "\" stroke=\"#000\"/>";
    };
    s << legend_item(lx, ly, dot("#9a9a9a", "#9a9a9a"), "sensitivity scan");
    s << legend_item(lx, ly += 18, dot(gen_colour(0, gmax), gen_colour(0, gmax)), "generation 0 (light)");
    s << legend_item(lx, ly += 18, dot(gen_colour(gmax, gmax), gen_colour(gmax, gmax)),
                     "generation " + std::to_string(gmax) + " (dark)");
    s << legend_item(lx, ly += 18, dot("white", "#555"), "infeasible (hollow)");
    s << legend_item(lx, ly += 18, "<path d=\"M-4,-3 L4,-3 L0,3 Z\" fill=\"#777\"/>", "below the plot (clamped)");
    s << legend_item(lx, ly += 18,
                     "<line x1=\"-8\" x2=\"8\" stroke=\"#e07b00\" stroke-width=\"2\"/>" + dot("#e07b00", "#7a4300"),
                     "feasible front");
    s << legend_item(lx, ly += 18, diamond("#2a9d2a"), "fp32 baseline");
    s << legend_item(lx, ly += 18, "<line x1=\"-8\" x2=\"8\" stroke=\"#2a9d2a\" stroke-dasharray=\"6 4\"/>",
                     "baseline accuracy");
    s << legend_item(lx, ly += 18, "<line x1=\"-8\" x2=\"8\" stroke=\"#d62728\" stroke-dasharray=\"2 3\"/>",
                     "budget: -" + num(r.max_accuracy_drop) + " pt");
    s << legend_item(lx, ly += 18, diamond(u8 < r.evaluations.size() ? "#6a3d9a" : "none"),
                     u8 < r.evaluations.size() ? "uniform 8 bits" : "uniform 8 bits: not evaluated");
    s << legend_item(lx, ly += 18, diamond(u4 < r.evaluations.size() ? "#1f78b4" : "none"),
                     u4 < r.evaluations.size() ? "uniform 4 bits" : "uniform 4 bits: not evaluated");
    s << "</g>\n</svg>\n";
    return s.str();
}

/// Chart 2: the front of every generation, light (early) to dark (late).
std::string progress_chart(const ResultsData& r) {
    std::vector<const GenerationRecord*> gens;
    double smin = INFINITY, smax = 0, amin = INFINITY, amax = 0;
    for (const auto& g : r.generations) {
        gens.push_back(&g);
        for (size_t i : g.front) {
            if (i >= r.evaluations.size()) continue;
            const auto& e = r.evaluations[i];
            smin = std::min(smin, e.size_bytes);
            smax = std::max(smax, e.size_bytes);
            amin = std::min(amin, e.accuracy);
            amax = std::max(amax, e.accuracy);
        }
    }
    if (!(smax > 0)) return "<p class=\"empty\">No generation has a feasible front yet.</p>\n";
    Plot p{smin / 1.15, smax * 1.15, amin * 100.0 - 0.3, std::max(amax, r.baseline_accuracy) * 100.0 + 0.3};
    p.logx = true;
    p.w = 620;
    p.h = 360;
    p.mr = 110;
    std::ostringstream s;
    s << p.open("chart progress", "front per generation");
    s << p.axes("compressed size (bytes, log scale)", metric_axis(r), log_ticks(p.x0, p.x1),
                linear_ticks(p.y0, p.y1, 5), bytes_str, pct1);
    const int gmax = gens.empty() ? 0 : gens.back()->generation;
    for (const auto* g : gens) {
        std::vector<size_t> f;
        for (size_t i : g->front)
            if (i < r.evaluations.size()) f.push_back(i);
        std::sort(f.begin(), f.end(),
                  [&](size_t a, size_t b) { return r.evaluations[a].size_bytes < r.evaluations[b].size_bytes; });
        const std::string col = gen_colour(g->generation, gmax);
        s << "<g class=\"gen-front\" data-generation=\"" << g->generation << "\"><title>generation " << g->generation
          << ": front of " << f.size() << "</title><polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\""
          << (g == gens.back() ? 2.5 : 1.5) << "\" points=\"";
        for (size_t i : f)
            s << num(p.px(r.evaluations[i].size_bytes)) << "," << num(p.py(r.evaluations[i].accuracy * 100.0)) << " ";
        s << "\"/>";
        for (size_t i : f)
            s << "<circle cx=\"" << num(p.px(r.evaluations[i].size_bytes)) << "\" cy=\""
              << num(p.py(r.evaluations[i].accuracy * 100.0)) << "\" r=\"2.5\" fill=\"" << col << "\"/>";
        s << "</g>\n";
    }
    s << "<g class=\"legend\" font-size=\"12\" fill=\"#222\">\n";
    double ly = p.mt + 10;
    for (const auto* g : gens) {
        if (gens.size() > 8 && g != gens.front() && g != gens.back() && g->generation % std::max(1, gmax / 6) != 0)
            continue;
        s << legend_item(
            p.w - p.mr + 12, ly,
            "<line x1=\"-8\" x2=\"8\" stroke=\"" + gen_colour(g->generation, gmax) + "\" stroke-width=\"2\"/>",
            "generation " + std::to_string(g->generation));
        ly += 17;
    }
    s << "</g>\n</svg>\n";
    return s.str();
}

/// Chart 3: hypervolume per generation, as a fraction of the reference box.
std::string hypervolume_chart(const ResultsData& r) {
    if (r.generations.empty()) return "<p class=\"empty\">No generation recorded.</p>\n";
    const double box = r.hv_reference.size() == 2 ? r.hv_reference[0] * r.hv_reference[1] : 0.0;
    std::vector<std::pair<double, double>> pts;
    double hmin = INFINITY, hmax = -INFINITY;
    for (const auto& g : r.generations) {
        const double h = box > 0 ? g.hypervolume / box : g.hypervolume;
        pts.emplace_back(g.generation, h);
        hmin = std::min(hmin, h);
        hmax = std::max(hmax, h);
    }
    const double pad = std::max((hmax - hmin) * 0.1, 1e-3);
    const double gmax = std::max(pts.back().first, 1.0);
    Plot p{-0.3, gmax + 0.3, std::max(0.0, hmin - pad), hmax + pad};
    p.w = 320;
    p.h = 360;
    p.mr = 15;
    std::ostringstream s;
    s << p.open("chart hypervolume", "hypervolume per generation");
    std::vector<double> xt;
    for (double t : linear_ticks(0, gmax, 6))
        if (t == std::floor(t)) xt.push_back(t);
    s << p.axes("generation", "hypervolume (fraction of the reference box)", xt, linear_ticks(p.y0, p.y1, 5), gen_label,
                hv_label);
    s << "<polyline fill=\"none\" stroke=\"#1f78b4\" stroke-width=\"2\" points=\"";
    for (const auto& [g, h] : pts) s << num(p.px(g)) << "," << num(p.py(h)) << " ";
    s << "\"/>\n";
    for (const auto& [g, h] : pts)
        s << "<circle class=\"hv-pt\" cx=\"" << num(p.px(g)) << "\" cy=\"" << num(p.py(h))
          << "\" r=\"3.5\" fill=\"#1f78b4\"><title>generation " << fmt("%.0f", g) << ": hypervolume " << fmt("%.4f", h)
          << "</title></circle>\n";
    s << "</svg>\n";
    return s.str();
}

/// A table-like SVG grid: rows x columns of coloured cells with text.
struct Cell {
    std::string text, title;
    double f = 0;  ///< colour position in [0, 1]; negative: no data
};

std::string grid_svg(const std::string& cls, const std::string& label, const std::vector<std::string>& rows,
                     const std::vector<std::string>& cols, const std::vector<std::vector<Cell>>& cells,
                     const std::string& xlabel) {
    size_t name_len = 4;
    for (const auto& r : rows) name_len = std::max(name_len, r.size());
    const int left = static_cast<int>(std::min<size_t>(name_len, 28) * 7 + 16), top = 28;
    const int cw = std::max(34, std::min(70, static_cast<int>(820 / std::max<size_t>(cols.size(), 1)))), ch = 22;
    const int w = left + cw * static_cast<int>(cols.size()) + 10, h = top + ch * static_cast<int>(rows.size()) + 6;
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"grid " << cls << "\" width=\"" << w << "\" height=\"" << h
      << "\" viewBox=\"0 0 " << w << " " << h << "\" role=\"img\" aria-label=\"" << esc(label)
      << "\" font-size=\"11\">\n";
    for (size_t c = 0; c < cols.size(); ++c)
        s << "<text x=\"" << left + cw * c + cw / 2 << "\" y=\"" << top - 8
          << "\" text-anchor=\"middle\" fill=\"#333\">" << esc(cols[c]) << "</text>\n";
    for (size_t rr = 0; rr < rows.size(); ++rr) {
        const int y = top + ch * static_cast<int>(rr);
        s << "<text x=\"" << left - 6 << "\" y=\"" << y + ch / 2 + 4 << "\" text-anchor=\"end\" fill=\"#222\">"
          << esc(rows[rr]) << "</text>\n";
        for (size_t c = 0; c < cols.size(); ++c) {
            const Cell& cell = cells[rr][c];
            const int x = left + cw * static_cast<int>(c);
            const std::string fill = cell.f < 0 ? "#f4f4f4" : heat(cell.f);
            s << "<g class=\"cell\"><title>" << esc(cell.title) << "</title><rect x=\"" << x << "\" y=\"" << y
              << "\" width=\"" << cw - 1 << "\" height=\"" << ch - 1 << "\" fill=\"" << fill << "\"/><text x=\""
              << x + cw / 2 << "\" y=\"" << y + ch / 2 + 4 << "\" text-anchor=\"middle\" fill=\""
              << (cell.f < 0 ? "#999" : heat_text(cell.f)) << "\">" << esc(cell.text) << "</text></g>\n";
        }
    }
    s << "</svg>\n<p class=\"note caption\">" << esc(xlabel) << "</p>\n";
    return s.str();
}

/// Chart 4: bits and prune ratio of each layer across the front's members (smallest first).
std::string front_heatmaps(const ResultsData& r, const std::vector<size_t>& front) {
    if (front.empty()) return "<p class=\"empty\">The front is empty.</p>\n";
    std::vector<std::string> rows, cols;
    for (const auto& l : r.layers) rows.push_back(l.name);
    for (size_t i : front) cols.push_back("#" + std::to_string(i));
    std::vector<std::vector<Cell>> bits(rows.size(), std::vector<Cell>(cols.size())), prune = bits;
    for (size_t c = 0; c < front.size(); ++c) {
        std::vector<compress::LayerChoice> ch;
        try {
            ch = choices_of(r, front[c]);
        } catch (const std::exception&) {
            continue;
        }
        const Evaluation& e = r.evaluations[front[c]];
        for (size_t l = 0; l < ch.size(); ++l) {
            const std::string t = r.layers[l].name + " in id " + std::to_string(front[c]) + " (" +
                                  fmt("%.2f%%", e.accuracy * 100.0) + ", " + bytes_str(e.size_bytes) +
                                  "): " + std::to_string(ch[l].weight_bits) + " bits, " + prune_str(ch[l].prune_ratio) +
                                  " pruned";
            bits[l][c] = Cell{std::to_string(ch[l].weight_bits), t, (8.0 - ch[l].weight_bits) / 7.0};
            prune[l][c] = Cell{fmt("%.0f", ch[l].prune_ratio * 100.0), t, ch[l].prune_ratio};
        }
    }
    return "<h3>Weight bits (darker = fewer bits)</h3>\n" +
           grid_svg("heatmap-bits", "weight bits per layer across the front", rows, cols, bits,
                    "front members by id, smallest model first") +
           "<h3>Prune ratio, % of weights set to zero (darker = more pruned)</h3>\n" +
           grid_svg("heatmap-prune", "prune ratio per layer across the front", rows, cols, prune,
                    "front members by id, smallest model first");
}

/// Chart 5: the sensitivity scan. Each cell is one layer alone at one setting, the others at the
/// reference (8 bits, unpruned): its accuracy drop from the reference row.
std::string sensitivity_grid(const ResultsData& r) {
    std::vector<size_t> scan;
    for (size_t i = 0; i < r.evaluations.size(); ++i)
        if (r.evaluations[i].generation == -1) scan.push_back(i);
    if (scan.size() < 2) return "<p class=\"empty\">The results file has no sensitivity scan.</p>\n";
    const Evaluation& ref = r.evaluations[scan[0]];
    const auto& rg = ref.genome;
    // Columns: bit-widths (prune at the reference), then prune ratios (bits at the reference).
    std::set<int> bit_set;
    std::set<double> prune_set;
    struct Hit {
        size_t layer;
        bool is_bits;
        double value;
        size_t id;
    };
    std::vector<Hit> hits;
    for (size_t k = 1; k < scan.size(); ++k) {
        const Evaluation& e = r.evaluations[scan[k]];
        if (e.genome.size() != rg.size() || rg.size() != 2 * r.layers.size()) continue;
        int diffs = 0;
        size_t gene = 0;
        for (size_t g = 0; g < rg.size(); ++g)
            if (e.genome[g] != rg[g]) {
                ++diffs;
                gene = g;
            }
        if (diffs != 1) continue;
        const size_t l = gene / 2;
        const bool is_bits = gene % 2 == 0;
        const auto& row = r.layers[l];
        const double v = is_bits ? row.bits.at(e.genome[gene]) : row.prunes.at(e.genome[gene]);
        if (is_bits)
            bit_set.insert(static_cast<int>(v));
        else
            prune_set.insert(v);
        hits.push_back({l, is_bits, v, scan[k]});
    }
    std::vector<std::string> cols;
    std::map<std::pair<bool, double>, size_t> col_of;
    for (int b : bit_set) {
        col_of[{true, static_cast<double>(b)}] = cols.size();
        cols.push_back(std::to_string(b) + " bits");
    }
    for (double p : prune_set) {
        col_of[{false, p}] = cols.size();
        cols.push_back(prune_str(p) + " pr.");
    }
    std::vector<std::string> rows;
    for (const auto& l : r.layers) rows.push_back(l.name);
    std::vector<std::vector<Cell>> cells(rows.size(), std::vector<Cell>(cols.size(), Cell{"–", "not scanned", -1}));
    double worst = 0.5;
    for (const auto& h : hits)
        if (r.evaluations[h.id].ok) worst = std::max(worst, (ref.accuracy - r.evaluations[h.id].accuracy) * 100.0);
    for (const auto& h : hits) {
        const Evaluation& e = r.evaluations[h.id];
        Cell c;
        if (!e.ok) {
            c = Cell{"fail", "id " + std::to_string(h.id) + ": failed: " + e.error, -1};
        } else {
            const double d = (ref.accuracy - e.accuracy) * 100.0;
            c.text = fmt("%.1f", d);
            c.title =
                r.layers[h.layer].name + " alone at " +
                (h.is_bits ? std::to_string(static_cast<int>(h.value)) + " bits" : prune_str(h.value) + " pruned") +
                " (id " + std::to_string(h.id) + "): accuracy " + fmt("%.2f%%", e.accuracy * 100.0) + ", drop " +
                fmt("%.2f", d) + " pt from the all-8-bit reference, size " + bytes_str(e.size_bytes);
            c.f = std::sqrt(std::max(d, 0.0) / worst);
        }
        cells[h.layer][col_of.at({h.is_bits, h.value})] = c;
    }
    return grid_svg("sensitivity", "per-layer sensitivity scan", rows, cols, cells,
                    "accuracy drop (points) of one layer alone at a setting; reference: all layers 8 bits, unpruned (" +
                        fmt("%.2f%%", ref.accuracy * 100.0) + ")");
}

std::string front_table(const ResultsData& r, const std::vector<size_t>& front) {
    std::ostringstream s;
    const std::string acc = metric_of(r) == Metric::Top1 ? "accuracy" : metric_label(metric_of(r));
    s << "<table class=\"front\">\n<thead><tr><th>id</th><th>gen.</th><th>" << acc << "</th><th>drop (pt)</th>";
    if (r.test) s << "<th>test " << acc << "</th><th>test drop (pt)</th>";
    s << "<th>size (bytes)</th><th>ratio vs fp32</th><th>BOPs / sample</th><th>per-layer bits / "
         "pruned</th></tr></thead>\n<tbody>\n";
    for (size_t i : front) {
        const Evaluation& e = r.evaluations[i];
        std::string layers;
        try {
            const auto ch = choices_of(r, i);
            for (size_t l = 0; l < ch.size(); ++l)
                layers += (l ? ", " : "") + r.layers[l].name + " " + std::to_string(ch[l].weight_bits) + "b/" +
                          prune_str(ch[l].prune_ratio);
        } catch (const std::exception&) {
        }
        s << "<tr><td>" << i << "</td><td>" << e.generation << "</td><td>" << fmt("%.2f%%", e.accuracy * 100.0)
          << "</td><td>" << num(accuracy_drop_pt(r, e));
        if (r.test) {
            const double t = r.test->accuracy_of(i);
            if (std::isnan(t))
                s << "</td><td>-</td><td>-";
            else
                s << "</td><td>" << fmt("%.2f%%", t * 100.0) << "</td><td"
                  << (loses_more_on_test(r, i) ? " class=\"worse\" title=\"loses more on the test subset\">" : ">")
                  << num(test_drop_pt(r, i)) << (loses_more_on_test(r, i) ? " !" : "");
        }
        s << "</td><td>" << fmt("%.0f", e.size_bytes) << "</td><td>" << fmt("%.2fx", ratio_of(r, e.size_bytes))
          << "</td><td>" << esc(bops_str(e.bops)) << "</td><td class=\"layers\">" << esc(layers) << "</td></tr>\n";
    }
    s << "</tbody>\n</table>\n";
    return s.str();
}

/// The front table's legend for the test columns ("" without a test subset).
std::string test_note(const ResultsData& r) {
    if (!r.test) return "";
    const TestRecord& t = *r.test;
    size_t worse = 0;
    for (size_t id : t.ids) worse += loses_more_on_test(r, id);
    return " Test: the held-out subset (samples " + std::to_string(t.offset) + ".." +
           std::to_string(t.offset + t.count - 1) + ", " + std::to_string(t.count) + " images; fp32 baseline " +
           fmt("%.2f%%", t.baseline_accuracy * 100.0) +
           "), which neither calibration nor the search's selection saw; test drop is from the baseline's test "
           "accuracy. Marked <b>!</b> (red): the test drop exceeds the validation drop by more than " +
           fmt("%g", kTestGapPt) + " pt, i.e. the search's figure for that member is optimistic (" +
           std::to_string(worse) + " of " + std::to_string(t.ids.size()) + ").";
}

const char* kStyle =
    "body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;margin:24px auto;max-width:1240px;color:#222;"
    "background:#fff;padding:0 16px}"
    "h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:26px 0 6px;border-bottom:1px solid "
    "#ddd;padding-bottom:3px}"
    "h3{font-size:13px;margin:12px 0 4px;font-weight:normal;color:#444}"
    "p{margin:4px 0}.summary{font-size:15px;background:#f3f7fb;border:1px solid #cfdceb;padding:8px 12px;margin:10px 0}"
    ".meta{color:#555;font-size:12px}.note{color:#555;font-size:12px;max-width:1000px}"
    ".row{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}"
    "table.front{border-collapse:collapse;font-size:12px}"
    "table.front th,table.front td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
    "table.front td.layers{text-align:left;font-family:'DejaVu Sans Mono',monospace;font-size:11px}"
    "table.front tbody tr:nth-child(even){background:#f7f7f7}table.front td.worse{background:#fbe3e3;color:#a11}"
    "svg{display:block}";

}  // namespace

std::string report_html(const ResultsData& r) {
    const auto front = feasible_front(r);
    const size_t n = r.evaluations.size();
    const size_t u8 = uniform_evaluation(r, 8), u4 = uniform_evaluation(r, 4);
    size_t failed = 0, feasible_count = 0, scan = 0;
    for (const auto& e : r.evaluations) {
        failed += !e.ok;
        feasible_count += is_feasible(e);
        scan += e.generation == -1;
    }
    std::string model = r.model_path;
    if (auto k = model.find_last_of('/'); k != std::string::npos) model = model.substr(k + 1);
    std::ostringstream s;
    s << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dcsearch report: " << esc(model)
      << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
    s << "<h1>Compression trade-off: " << esc(model) << "</h1>\n";
    s << "<p class=\"meta\">" << n << " evaluations (" << scan << " in the sensitivity scan, " << failed << " failed, "
      << (r.stopped_early() > 0 ? std::to_string(r.stopped_early()) + " stopped early as clearly infeasible, " : "")
      << feasible_count << " within the " << num(r.max_accuracy_drop) << " pt budget), " << r.generations.size()
      << " generations" << (r.complete ? "" : " (search not finished)") << ", " << r.layers.size()
      << " compressible layers, " << r.validation_samples << " validation images, seed " << r.seed
      << ". Metric: " << metric_label(metric_of(r))
      << (metric_of(r) == Metric::Agreement ? " (top-1 agreement with the fp32 model's predictions; the data has no labels)"
                                             : "")
      << ". fp32 baseline: " << fmt("%.2f%%", r.baseline_accuracy * 100.0) << ", " << bytes_str(r.baseline_size_bytes)
      << ". Config: " << esc(r.config_path) << "</p>\n";
    // Summary line: best compression within 0.5, 1 and 2 points.
    s << "<p class=\"summary\" id=\"summary\"><b>Best compression</b>";
    const char* sep = ": ";
    for (double d : {0.5, 1.0, 2.0}) {
        const size_t b = smallest_within(r, d);
        s << sep << "within " << fmt("%g", d) << " pt: ";
        if (b == n)
            s << "none";
        else
            s << "<b>" << fmt("%.1fx", ratio_of(r, r.evaluations[b].size_bytes)) << "</b> (id " << b << ", "
              << bytes_str(r.evaluations[b].size_bytes) << ", " << fmt("%.2f%%", r.evaluations[b].accuracy * 100.0)
              << (is_feasible(r.evaluations[b]) ? "" : ", outside the search's budget") << ")";
        sep = "; ";
    }
    s << ". Uniform 8 bits: ";
    if (u8 < n)
        s << fmt("%.2f%%", r.evaluations[u8].accuracy * 100.0) << ", "
          << fmt("%.1fx", ratio_of(r, r.evaluations[u8].size_bytes));
    else
        s << "not evaluated";
    s << "; uniform 4 bits: ";
    if (u4 < n)
        s << fmt("%.2f%%", r.evaluations[u4].accuracy * 100.0) << ", "
          << fmt("%.1fx", ratio_of(r, r.evaluations[u4].size_bytes));
    else
        s << "not evaluated";
    s << ".</p>\n";
    if (r.test) {
        // The same question on held-out data, over the members evaluated on it (the final front).
        s << "<p class=\"summary\" id=\"test-summary\"><b>On the held-out test subset</b> (front members)";
        sep = ": ";
        for (double d : {0.5, 1.0, 2.0}) {
            size_t b = n;
            for (size_t id : r.test->ids)
                if (test_drop_pt(r, id) <= d + 1e-9 &&
                    (b == n || r.evaluations[id].size_bytes < r.evaluations[b].size_bytes))
                    b = id;
            s << sep << "within " << fmt("%g", d) << " pt: ";
            if (b == n)
                s << "none";
            else
                s << "<b>" << fmt("%.1fx", ratio_of(r, r.evaluations[b].size_bytes)) << "</b> (id " << b << ", "
                  << fmt("%.2f%%", r.test->accuracy_of(b) * 100.0) << " on test, "
                  << fmt("%.2f%%", r.evaluations[b].accuracy * 100.0) << " on validation)";
            sep = "; ";
        }
        s << ".</p>\n";
    }

    s << "<h2>Accuracy against size</h2>\n<p class=\"note\">Every evaluation, coloured by generation; the orange line "
         "is "
         "the feasible Pareto front (no other feasible candidate is both smaller and more accurate). Hover a point for "
         "its "
         "id, accuracy, size, compression ratio and per-layer settings; export one with <code>dcsearch export "
         "results.h5 "
         "--id N -o DIR</code>.</p>\n";
    s << tradeoff_chart(r, front, u8, u4);
    s << "<h2>Search progress</h2>\n<p class=\"note\">Left: the feasible front of each generation's population. Right: "
         "hypervolume of the front of everything evaluated so far (error × size, against the reference point "
         "(budget error, fp32 size); larger is better).</p>\n<div class=\"row\">\n"
      << progress_chart(r) << hypervolume_chart(r) << "</div>\n";
    s << "<h2>Per-layer settings of the front</h2>\n" << front_heatmaps(r, front);
    s << "<h2>Sensitivity scan</h2>\n<p class=\"note\">Accuracy drop in points when a single layer is compressed and "
         "every other layer stays at 8 bits, unpruned. Sensitive layers have dark rows.</p>\n"
      << sensitivity_grid(r);
    s << "<h2>Front</h2>\n<p class=\"note\">" << front.size()
      << " candidates, smallest first. Drop is in accuracy points "
      << "from the fp32 baseline; ratio is fp32 size / packed size; BOPs = MACs × weight bits × activation bits."
      << test_note(r) << "</p>\n"
      << front_table(r, front);
    // How busy the run kept its processes (files written before the run table have none).
    for (const std::string& line : run_summary(r)) s << "<p class=\"meta\">" << esc(line) << ".</p>\n";
    s << "<p class=\"meta\">Generated by dcsearch report.</p>\n</body>\n</html>\n";
    return s.str();
}

std::string front_csv(const ResultsData& r) {
    std::ostringstream s;
    s << "id,generation,accuracy,accuracy_drop_pt" << (r.test ? ",test_accuracy,test_drop_pt" : "")
      << ",size_bytes,compression_ratio,bops";
    for (const auto& l : r.layers) s << "," << l.name << "_bits," << l.name << "_prune";
    s << "\n";
    for (size_t i : feasible_front(r)) {
        const Evaluation& e = r.evaluations[i];
        s << i << "," << e.generation << "," << fmt("%.6f", e.accuracy) << "," << fmt("%.4f", accuracy_drop_pt(r, e))
          << ",";
        if (r.test) s << fmt("%.6f", r.test->accuracy_of(i)) << "," << fmt("%.4f", test_drop_pt(r, i)) << ",";
        s << fmt("%.0f", e.size_bytes) << "," << fmt("%.4f", ratio_of(r, e.size_bytes)) << "," << fmt("%.6g", e.bops);
        const auto ch = choices_of(r, i);
        for (const auto& c : ch) s << "," << c.weight_bits << "," << fmt("%g", c.prune_ratio);
        s << "\n";
    }
    return s.str();
}

}  // namespace dcs::search
