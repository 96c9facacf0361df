#include "app/cli.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/commands.hpp"
#include "common/error.hpp"
#include "common/memory.hpp"
#include "search/mpi_transport.hpp"

namespace dcs {
namespace {

const char* kVersion = "0.1.0";

const char* kUsage =
    "usage: dcsearch <command> [options]\n"
    "\n"
    "commands:\n"
    "  dcsearch config.yaml                 same as `dcsearch search config.yaml`\n"
    "  search config.yaml [--resume]        run the compression search\n"
    "  inspect model.onnx [--json]          list the compressible layers\n"
    "  eval config.yaml [--layers F] [--json] [--explain]\n"
    "                                       evaluate the fp32 baseline or a per-layer configuration\n"
    "  report results.h5 -o report.html [--csv F]\n"
    "                                       write the trade-off report\n"
    "  export results.h5 (--max-drop PCT | --id N) -o DIR\n"
    "                                       write layers.yaml, model.onnx and model.dcz of a candidate\n"
    "  apply config.yaml layers.yaml -o DIR  the same files for a given per-layer configuration\n"
    "\n"
    "`dcsearch <command> --help` describes one command.\n"
    "Exit status: 0 success, 1 runtime failure, 2 bad input (config, model, data, arguments).\n";

struct CommandSpec {
    const char* name;
    const char* help;
    int positionals;                   ///< exact number of positional arguments
    std::set<std::string> flags;       ///< options without a value
    std::set<std::string> valued;      ///< options taking a value
    int (*run)(const ParsedArgs&);
};

[[maybe_unused]] int not_yet(const ParsedArgs& a) {
    std::cerr << "dcsearch: error: '" << a.command << "' is not available in this version yet (see README, Status)\n";
    return 1;
}

const std::vector<CommandSpec>& commands() {
    static const std::vector<CommandSpec> specs = {
        {"inspect",
         "usage: dcsearch inspect model.onnx [--json]\n"
         "\n"
         "Lists the compressible layers (Conv, Gemm, MatMul with constant weights): name, operator,\n"
         "weight shape, parameters (weights + bias) and multiply-accumulates per sample.\n"
         "  --json   print one JSON object {\"model\", \"opset\", \"layers\": [...], \"total_params\", \"total_macs\"}\n",
         1, {"--json"}, {}, run_inspect},
        {"eval",
         "usage: dcsearch eval config.yaml [--layers layers.yaml] [--json] [--explain]\n"
         "\n"
         "Evaluates the model of config.yaml on its validation subset: the fp32 baseline, or with\n"
         "--layers a per-layer configuration (weight bits, prune ratio per layer).\n"
         "  --layers F   per-layer configuration (see DESIGN: layers.yaml)\n"
         "  --json       print one JSON object {\"accuracy\", \"size_bytes\", \"samples\", \"images_per_second\", ...}\n"
         "  --explain    evaluate nothing; print the CPU features and, after calibration, the int8 executor's\n"
         "               kernel for each step and why the host kernels tried before it declined\n",
         1, {"--json", "--explain"}, {"--layers"}, run_eval},
        {"search",
         "usage: dcsearch search config.yaml [--resume] [--json] [--output PATH] [--force]\n"
         "\n"
         "Runs the per-layer compression search: a sensitivity scan, then NSGA-II (or, with\n"
         "search.algorithm: random, random search) over per-layer weight bits and prune ratios, recording\n"
         "every evaluation and the front in the results file.\n"
         "  --resume       continue the interrupted search in the results file, re-using its evaluations\n"
         "  --output PATH  results file (overrides output.path)\n"
         "  --force        overwrite an existing results file\n"
         "  --json         print {\"evaluations\", \"baseline\", \"front\": [...]} at the end\n",
         1, {"--json", "--resume", "--force"}, {"--output"}, run_search},
        {"report",
         "usage: dcsearch report results.h5 -o report.html [--csv front.csv]\n"
         "\n"
         "Writes the trade-off report of a search: one self-contained HTML file (inline SVG, no network)\n"
         "with accuracy against size for every evaluation and the feasible front, the fp32 baseline and\n"
         "uniform 8-bit / 4-bit references, the front's progress and hypervolume per generation, the\n"
         "per-layer settings of the front, the sensitivity scan and a table of the front.\n"
         "  -o FILE     the HTML report\n"
         "  --csv FILE  also write the front as CSV (id, accuracy, drop, size, ratio, BOPs, per-layer settings)\n",
         1, {}, {"-o", "--csv"}, run_report},
        {"export",
         "usage: dcsearch export results.h5 (--max-drop PCT | --id N) -o DIR [--json]\n"
         "\n"
         "Writes DIR/layers.yaml (for `eval --layers`), DIR/model.onnx (QDQ: int8 weights with per-channel\n"
         "DequantizeLinear, Quantize/DequantizeLinear on activations with the calibrated scales) and\n"
         "DIR/model.dcz (packed; its length is the recorded size) for one evaluated candidate.\n"
         "  --id N          the evaluation with id N\n"
         "  --max-drop PCT  the smallest feasible candidate losing at most PCT accuracy points\n"
         "  -o DIR          output directory (created when missing)\n"
         "  --json          print {\"id\", \"accuracy\", \"size_bytes\", ...}\n",
         1, {"--json"}, {"--max-drop", "--id", "-o"}, run_export},
        {"apply",
         "usage: dcsearch apply config.yaml layers.yaml -o DIR [--json]\n"
         "\n"
         "Writes DIR/layers.yaml, DIR/model.onnx (QDQ) and DIR/model.dcz for a per-layer configuration\n"
         "(hand-written, or from an earlier search), calibrated on the config's calibration subset, and\n"
         "prints its accuracy on the validation subset.\n"
         "  -o DIR   output directory (created when missing)\n"
         "  --json   print {\"accuracy\", \"size_bytes\", ...}\n",
         2, {"--json"}, {"-o"}, run_apply},
    };
    return specs;
}

ParsedArgs parse(const CommandSpec& spec, const std::vector<std::string>& args, bool* want_help) {
    ParsedArgs p;
    p.command = spec.name;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") {
            *want_help = true;
            return p;
        }
        if (a.size() > 1 && a[0] == '-') {
            std::string name = a, value;
            bool inline_value = false;
            auto eq = a.find('=');
            if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
                name = a.substr(0, eq);
                value = a.substr(eq + 1);
                inline_value = true;
            }
            if (spec.flags.count(name)) {
                if (inline_value) throw InputError("option " + name + " takes no value");
                p.flags.insert(name);
            } else if (spec.valued.count(name)) {
                if (!inline_value) {
                    if (i + 1 >= args.size()) throw InputError("option " + name + " needs a value");
                    value = args[++i];
                }
                p.options[name] = value;
            } else {
                throw InputError("unknown option '" + a + "' for '" + spec.name + "' (see dcsearch " + spec.name +
                                 " --help)");
            }
        } else {
            p.positionals.push_back(a);
        }
    }
    if (static_cast<int>(p.positionals.size()) != spec.positionals)
        throw InputError(std::string("'") + spec.name + "' takes " + std::to_string(spec.positionals) +
                         " argument(s), got " + std::to_string(p.positionals.size()) + " (see dcsearch " + spec.name +
                         " --help)");
    return p;
}

/// Under mpirun every rank parses the arguments; only rank 0 reports, so a job shows one message.
bool is_secondary_mpi_rank() {
    for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"}) {
        const char* v = std::getenv(var);
        if (v) return std::atoi(v) != 0;
    }
    return false;
}

}  // namespace

void report_error(const std::string& message) {
    if (is_secondary_mpi_rank()) {
        // A rank other than 0 that fails before MPI starts (every rank parses the same arguments and
        // config) stays a moment instead of exiting: rank 0 fails the same way and writes the job's one
        // message; had this rank exited first, mpirun would end the job before rank 0 wrote it. When
        // rank 0 exits, mpirun ends this rank; the cap only matters when rank 0 does not fail.
        if (!search::mpi_session_started()) std::this_thread::sleep_for(std::chrono::seconds(5));
        return;
    }
    // One write, so that the line is not interleaved with other output (mpirun forwards in chunks).
    const std::string line = "dcsearch: error: " + one_line(message) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

int cli_main(int argc, char** argv) {
    keep_freed_memory();
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.empty()) {
            std::cerr << kUsage;
            return 2;
        }
        if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
            std::cout << kUsage;
            return 0;
        }
        if (args[0] == "--version") {
            std::cout << "dcsearch " << kVersion << "\n";
            return 0;
        }
        std::string cmd = args[0];
        std::vector<std::string> rest(args.begin() + 1, args.end());
        const CommandSpec* spec = nullptr;
        for (const auto& c : commands())
            if (cmd == c.name) spec = &c;
        if (!spec) {
            if (cmd.size() > 1 && cmd[0] == '-') throw InputError("unknown option '" + cmd + "' (see dcsearch --help)");
            // `dcsearch config.yaml` is `dcsearch search config.yaml`.
            for (const auto& c : commands())
                if (std::string(c.name) == "search") spec = &c;
            rest = args;
        }
        bool help = false;
        ParsedArgs parsed = parse(*spec, rest, &help);
        if (help) {
            std::cout << spec->help;
            return 0;
        }
        return spec->run(parsed);
    } catch (const InputError& e) {
        report_error(e.what());
        return 2;
    } catch (const std::bad_alloc&) {
        report_error("out of memory");
        return 1;
    } catch (const std::exception& e) {
        report_error(e.what());
        return 1;
    }
}

}  // namespace dcs
