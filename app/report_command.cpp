// `dcsearch report`: the HTML trade-off report and, optionally, the front as CSV.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "app/commands.hpp"
#include "common/error.hpp"
#include "search/queries.hpp"
#include "search/report.hpp"
#include "search/results_store.hpp"

namespace dcs {
namespace {

void write_text(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw InputError("cannot write " + path);
        f << text;
        f.flush();
        if (!f) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

}  // namespace

int run_report(const ParsedArgs& args) {
    auto out = args.options.find("-o");
    if (out == args.options.end() || out->second.empty()) throw InputError("-o report.html is required");
    const search::ResultsData r = search::read_results(args.positionals.at(0));
    write_text(out->second, search::report_html(r));
    const auto front = search::feasible_front(r);
    std::cerr << "dcsearch: report of " << r.evaluations.size() << " evaluations (front of " << front.size()
              << ") written to " << out->second << "\n";
    auto csv = args.options.find("--csv");
    if (csv != args.options.end()) {
        write_text(csv->second, search::front_csv(r));
        std::cerr << "dcsearch: front written to " << csv->second << "\n";
    }
    return 0;
}

}  // namespace dcs
