#pragma once
/// The commands behind the command line. Each returns the process exit status and throws InputError
/// for bad input (mapped to status 2 by cli_main).
#include <map>
#include <set>
#include <string>
#include <vector>

namespace dcs {

struct ParsedArgs {
    std::string command;
    std::vector<std::string> positionals;
    std::set<std::string> flags;
    std::map<std::string, std::string> options;
    bool flag(const std::string& f) const { return flags.count(f) > 0; }
};

int run_inspect(const ParsedArgs& args);
int run_eval(const ParsedArgs& args);
int run_search(const ParsedArgs& args);
int run_report(const ParsedArgs& args);
int run_export(const ParsedArgs& args);
int run_apply(const ParsedArgs& args);

}  // namespace dcs
