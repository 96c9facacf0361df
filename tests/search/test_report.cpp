// The trade-off report: front, summary figures, and the HTML's content checked by parsing it
// (Python's html.parser for the document, xml.etree for every inline SVG).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "search/queries.hpp"
#include "search/report.hpp"
#include "support/process.hpp"

using namespace dcs::search;
using dcs::test::run_process;
using dcs::test::TempDir;

namespace {

Evaluation eval_row(std::vector<int> genome, double acc, double size, int gen, bool ok = true, double violation = 0.0) {
    Evaluation e;
    e.genome = std::move(genome);
    e.accuracy = acc;
    e.size_bytes = size;
    e.bops = size * 10;
    e.generation = gen;
    e.ok = ok;
    e.violation = violation;
    if (!ok) e.error = "oneDNN refused the primitive";
    e.objectives = {1.0 - acc, size};
    return e;
}

/// Two layers, bits {2, 4, 8} and prune {0, 0.5}; baseline 0.90 at 4000 bytes, budget 1 pt.
/// Hand-computed feasible front (ok, no violation, not dominated): ids 7 (1000 B, 0.893),
/// 6 (1500 B, 0.897), 1 (2500 B, 0.902), 0 (3000 B, 0.905, the most accurate); 8 is dominated by 7.
ResultsData sample(bool with_uniform4) {
    ResultsData r;
    r.config_path = "/tmp/c.yaml";
    r.model_path = "/models/tiny & <small>.onnx";  // escaped in the HTML
    r.layers = {LayerRow{"conv<1>", "Conv", {4, 1, 3, 3}, 40, 1000, {2, 4, 8}, {0.0, 0.5}},
                LayerRow{"fc", "Gemm", {10, 16}, 170, 160, {2, 4, 8}, {0.0, 0.5}}};
    r.baseline_accuracy = 0.90;
    r.baseline_size_bytes = 4000;
    r.max_accuracy_drop = 1.0;
    r.objectives = {"accuracy", "size"};
    r.hv_reference = {0.11, 4000};
    r.validation_samples = 300;
    r.complete = true;
    auto& ev = r.evaluations;
    ev.push_back(eval_row({2, 0, 2, 0}, 0.905, 3000, -1));              // 0: all 8 bits (reference)
    ev.push_back(eval_row({1, 0, 2, 0}, 0.902, 2500, -1));              // 1: conv 4 bits
    ev.push_back(eval_row({0, 0, 2, 0}, 0.700, 2200, -1, true, 0.19));  // 2: conv 2 bits, infeasible
    ev.push_back(eval_row({2, 1, 2, 0}, 0.880, 2600, -1, true, 0.01));  // 3: conv pruned, infeasible
    ev.push_back(eval_row({2, 0, 1, 0}, 0.880, 2700, -1, true, 0.01));  // 4: fc 4 bits
    ev.push_back(eval_row({2, 0, 0, 0}, 0.0, 0, -1, false));            // 5: fc 2 bits, failed
    ev.push_back(
        eval_row(with_uniform4 ? std::vector<int>{1, 0, 1, 0} : std::vector<int>{0, 1, 1, 0}, 0.897, 1500, 0));  // 6
    ev.push_back(eval_row({0, 1, 1, 1}, 0.893, 1000, 0));                                                        // 7
    ev.push_back(eval_row({1, 1, 1, 1}, 0.891, 1200, 1));  // 8: dominated by 7
    r.generations = {GenerationRecord{0, {6, 7}, {7, 6}, 0.01}, GenerationRecord{1, {6, 7, 8}, {7, 6}, 0.012}};
    return r;
}

}  // namespace

TEST(Report, FeasibleFrontAndSummaryFigures) {
    const ResultsData r = sample(false);
    EXPECT_EQ(feasible_front(r), (std::vector<size_t>{7, 6, 1, 0}));
    EXPECT_EQ(smallest_within(r, 0.5), 6u);  // 0.3 pt
    EXPECT_EQ(smallest_within(r, 1.0), 7u);  // 0.7 pt
    EXPECT_EQ(smallest_within(r, 0.0), 1u);  // no loss: 0.902 at 2500 B
    EXPECT_EQ(smallest_within(r, -5.0), r.evaluations.size());
    EXPECT_EQ(uniform_evaluation(r, 8), 0u);
    EXPECT_EQ(uniform_evaluation(r, 4), r.evaluations.size());  // not evaluated
    EXPECT_EQ(uniform_evaluation(sample(true), 4), 6u);
}

TEST(Report, CsvHasOneRowPerFrontMember) {
    const std::string csv = front_csv(sample(false));
    std::istringstream in(csv);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    ASSERT_EQ(lines.size(), 5u) << csv;
    EXPECT_EQ(lines[0],
              "id,generation,accuracy,accuracy_drop_pt,size_bytes,compression_ratio,bops,conv<1>_bits,"
              "conv<1>_prune,fc_bits,fc_prune");
    EXPECT_EQ(lines[1], "7,0,0.893000,0.7000,1000,4.0000,10000,2,0.5,4,0.5");
}

// Parses the document and each SVG, and checks what a reader relies on.
const char* kCheck = R"PY(
import sys, re, json
from html.parser import HTMLParser
import xml.etree.ElementTree as ET
html = open(sys.argv[1], encoding='utf-8').read()
exp = json.loads(sys.argv[2])
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.rows, self.in_front, self.in_tbody = [], [], 0, False, False
        self.summary, self.in_summary, self.th = '', False, []
        self.in_th = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for k, v in attrs:
            if v and k in ('href', 'src', 'xlink:href', 'action') or (v and 'url(' in v):
                self.urls.append(v)
        if tag == 'table' and 'front' in a.get('class', ''): self.in_front = True
        if tag == 'tbody' and self.in_front: self.in_tbody = True
        if tag == 'tr' and self.in_tbody: self.rows += 1
        if tag == 'p' and a.get('id') == 'summary': self.in_summary = True
        if tag == 'th' and self.in_front: self.in_th = True
    def handle_endtag(self, tag):
        if tag == 'table': self.in_front = self.in_tbody = False
        if tag == 'p': self.in_summary = False
        if tag == 'th': self.in_th = False
    def handle_data(self, d):
        if self.in_summary: self.summary += d
        if self.in_th: self.th.append(d)
p = P(); p.feed(html)
assert 'script' not in p.tags and 'link' not in p.tags and 'img' not in p.tags and 'iframe' not in p.tags, p.tags
assert not p.urls, p.urls
assert not re.search(r'(https?:)?//(?!www\.w3\.org/2000/svg)', html.replace('xmlns="http://www.w3.org/2000/svg"', '')), 'external URL'
assert '@import' not in html and '@font-face' not in html
assert p.rows == exp['front'], (p.rows, exp['front'])
for h in ('id', 'accuracy', 'drop (pt)', 'size (bytes)', 'ratio vs fp32', 'BOPs / sample'): assert h in p.th, (h, p.th)
for k in ('within 0.5 pt', 'within 1 pt', 'within 2 pt'): assert k in p.summary, p.summary
assert ('uniform 4 bits: not evaluated' in p.summary.lower()) == (not exp['u4']), p.summary
svgs = re.findall(r'<svg\b.*?</svg>', html, re.S)
ns = '{http://www.w3.org/2000/svg}'
roots = [ET.fromstring(s) for s in svgs]
cls = lambda e: e.get('class', '').split()
trade = [r for r in roots if 'tradeoff' in cls(r)]
assert len(trade) == 1
pts = [e for e in trade[0].iter() if 'pt' in cls(e)]
assert len(pts) == exp['ok'], (len(pts), exp['ok'])
ids = sorted(int(e.get('data-id')) for e in pts)
assert ids == exp['ok_ids'], ids
for e in pts:
    t = e.find(ns + 'title').text
    i = int(e.get('data-id'))
    assert t.startswith('id %d' % i), t
    assert 'accuracy' in t and 'size' in t and 'smaller than fp32' in t, t
    for layer in exp['layers']: assert layer + ':' in t, (layer, t)
front = [e for e in trade[0].iter() if 'front-pt' in cls(e)]
assert len(front) == exp['front']
assert len([e for e in trade[0].iter() if 'front-line' in cls(e)]) == 1
assert len([e for e in trade[0].iter() if 'ref-baseline' in cls(e)]) == 1
assert len([e for e in trade[0].iter() if 'ref-uniform8' in cls(e)]) == 1
assert len([e for e in trade[0].iter() if 'ref-uniform4' in cls(e)]) == (1 if exp['u4'] else 0)
texts = ' '.join(t.text or '' for t in trade[0].iter(ns + 'text'))
assert 'log scale' in texts and 'accuracy (%)' in texts and 'fp32 baseline' in texts, texts
hv = [r for r in roots if 'hypervolume' in cls(r)]
assert len(hv) == 1 and len([e for e in hv[0].iter() if 'hv-pt' in cls(e)]) == exp['generations']
prog = [r for r in roots if 'progress' in cls(r)]
assert len(prog) == 1 and len([e for e in prog[0].iter() if 'gen-front' in cls(e)]) == exp['generations']
for name in ('heatmap-bits', 'heatmap-prune'):
    g = [r for r in roots if name in cls(r)]
    assert len(g) == 1
    assert len([e for e in g[0].iter() if 'cell' in cls(e)]) == exp['front'] * len(exp['layers'])
sens = [r for r in roots if 'sensitivity' in cls(r)]
assert len(sens) == 1
cells = [e for e in sens[0].iter() if 'cell' in cls(e)]
assert len(cells) == len(exp['layers']) * exp['sens_cols'], len(cells)
print('ok')
)PY";

void check_html(const ResultsData& r, bool u4) {
    TempDir dir;
    const std::string html = dir.write("r.html", report_html(r));
    const std::string script = dir.write("check.py", kCheck);
    std::ostringstream exp;
    size_t ok = 0;
    std::string ids;
    for (size_t i = 0; i < r.evaluations.size(); ++i)
        if (r.evaluations[i].ok) {
            ids += (ok++ ? "," : "") + std::to_string(i);
        }
    exp << "{\"front\":" << feasible_front(r).size() << ",\"ok\":" << ok << ",\"ok_ids\":[" << ids
        << "],\"u4\":" << (u4 ? "true" : "false") << ",\"generations\":" << r.generations.size()
        << ",\"layers\":[\"conv<1>\",\"fc\"],\"sens_cols\":3}";
    auto py = run_process({"/usr/bin/python3", script, html, exp.str()}, 60);
    EXPECT_EQ(py.out, "ok\n") << py.err;
}

TEST(Report, HtmlIsSelfContainedAndComplete) {
    check_html(sample(false), false);
    check_html(sample(true), true);
}

TEST(Report, EscapesNamesAndIsDeterministic) {
    const ResultsData r = sample(false);
    const std::string a = report_html(r);
    EXPECT_EQ(a, report_html(r));
    EXPECT_NE(a.find("tiny &amp; &lt;small&gt;.onnx"), std::string::npos);
    EXPECT_EQ(a.find("<small>"), std::string::npos);
    EXPECT_NE(a.find("conv&lt;1&gt;"), std::string::npos);
}

TEST(Report, FooterShowsHowBusyTheRunKeptItsWorkers) {
    ResultsData r = sample(false);
    EXPECT_EQ(report_html(r).find("busy"), std::string::npos) << "no run table, no line";
    r.runs = {{10.0, 0.2, 2}};
    r.workers = {{0, 1, 5, 9.0}, {0, 2, 4, 7.0}};
    const std::string html = report_html(r);
    EXPECT_NE(html.find("<p class=\"meta\">run 1: 9 evaluations by 2 workers in 10.0 s, busy 80% of the time (least busy "
                        "rank 2: 7.0 s, busiest rank 1: 9.0 s); coordinator CPU 0.20 s (2.0%).</p>"),
              std::string::npos);
}

TEST(Report, EmptyResultsStillRender) {
    ResultsData r;
    r.baseline_accuracy = 0.5;
    r.baseline_size_bytes = 100;
    const std::string html = report_html(r);
    EXPECT_NE(html.find("within 0.5 pt: none"), std::string::npos);
    EXPECT_NE(html.find("The front is empty"), std::string::npos);
    EXPECT_EQ(front_csv(r).find('\n'), front_csv(r).size() - 1);  // header only
}

TEST(Report, TestSubsetColumnsAndMembersThatLoseMoreOnTest) {
    ResultsData r = sample(false);
    // Test drops 1.5, 0.5, 0.1, 0.0 pt against validation drops 0.7, 0.3, -0.2, -0.5: only id 7 loses
    // more than kTestGapPt (0.5) points more on test.
    r.test = TestRecord{2000, 500, 0.91, {7, 6, 1, 0}, {0.895, 0.905, 0.909, 0.91}};
    EXPECT_NEAR(test_drop_pt(r, 7), 1.5, 1e-9);
    EXPECT_TRUE(loses_more_on_test(r, 7));
    EXPECT_FALSE(loses_more_on_test(r, 6));
    EXPECT_FALSE(loses_more_on_test(r, 0));
    EXPECT_FALSE(loses_more_on_test(r, 8));  // not evaluated on the test subset
    EXPECT_TRUE(std::isnan(test_drop_pt(r, 8)));
    const std::string html = report_html(r);
    EXPECT_NE(html.find("<th>test accuracy</th><th>test drop (pt)</th>"), std::string::npos);
    EXPECT_NE(html.find("<td>89.50%</td><td class=\"worse\" title=\"loses more on the test subset\">1.50 !</td>"),
              std::string::npos)
        << html;
    EXPECT_EQ(html.find("class=\"worse\""), html.rfind("class=\"worse\"")) << "one member marked";
    EXPECT_NE(html.find("samples 2000..2499, 500 images"), std::string::npos);
    EXPECT_NE(html.find("more than 0.5 pt"), std::string::npos);
    EXPECT_NE(html.find("(1 of 4)"), std::string::npos);
    // Within 0.5 pt on test: id 6 (1500 B, 2.7x); within 2 pt: id 7.
    EXPECT_NE(html.find("within 0.5 pt: <b>2.7x</b> (id 6, 90.50% on test"), std::string::npos) << html;
    EXPECT_NE(html.find("within 2 pt: <b>4.0x</b> (id 7, 89.50% on test"), std::string::npos);
    const std::string csv = front_csv(r);
    EXPECT_EQ(csv.substr(0, csv.find('\n')),
              "id,generation,accuracy,accuracy_drop_pt,test_accuracy,test_drop_pt,size_bytes,compression_ratio,bops,"
              "conv<1>_bits,conv<1>_prune,fc_bits,fc_prune");
    EXPECT_NE(csv.find("\n7,0,0.893000,0.7000,0.895000,1.5000,1000,"), std::string::npos) << csv;
    EXPECT_EQ(report_html(sample(false)).find("test"), std::string::npos) << "nothing without a test subset";
}
