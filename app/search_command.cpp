// `dcsearch search config.yaml [--resume] [--json] [--output PATH] [--force]`, in one process.
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "app/cli.hpp"
#include "app/commands.hpp"
#include "app/config.hpp"
#include "app/load_data.hpp"
#include "app/json.hpp"
#include "common/error.hpp"
#include "runtime/candidate.hpp"
#include "runtime/onnx_import.hpp"
#include "search/driver.hpp"
#include "search/local_evaluator.hpp"
#include "search/mpi_transport.hpp"
#include "search/queries.hpp"
#include "search/results_store.hpp"
#include "search/run_stats.hpp"

namespace fs = std::filesystem;

namespace dcs {
namespace {

std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    char buf[32];
    if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(s / 60), std::fmod(s, 60));
    else std::snprintf(buf, sizeof buf, "%.0fh%02.0fm", std::floor(s / 3600), std::fmod(s / 60, 60));
    return buf;
}

/// Progress on stderr: a live line on a terminal; otherwise (a job log) a line after the sensitivity
/// scan, after every generation and at least every 10 s.
class ProgressPrinter {
public:
    ProgressPrinter() : tty_(isatty(2) != 0), start_(std::chrono::steady_clock::now()) {}
    void operator()(const search::Progress& p) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const int64_t fresh = p.done - p.resumed;
        const double rate = el > 0 ? static_cast<double>(fresh) / el : 0.0;
        const double eta = rate > 0 ? static_cast<double>(p.planned - p.done) / rate : NAN;
        char line[256];
        std::snprintf(line, sizeof line, "%s: %lld/%lld evaluations, %.2f/s, ETA %s, front %zu, hypervolume %.4g",
                      p.generation < 0 ? "sensitivity scan" : ("generation " + std::to_string(p.generation) + "/" +
                                                               std::to_string(p.generations)).c_str(),
                      static_cast<long long>(p.done), static_cast<long long>(p.planned), rate,
                      format_duration(eta).c_str(), p.front_size, p.hypervolume);
        if (tty_) {
            std::fprintf(stderr, "\r\033[K%s", line);
            std::fflush(stderr);
            dirty_ = true;
        } else if (el - last_ >= 10.0 || p.done == p.planned || p.batch_end) {
            std::fprintf(stderr, "dcsearch: %s\n", line);
            last_ = el;
        }
    }
    void finish() {
        if (dirty_) std::fprintf(stderr, "\n");
        dirty_ = false;
    }

private:
    bool tty_;
    bool dirty_ = false;
    double last_ = -1e9;
    std::chrono::steady_clock::time_point start_;
};

void check_output_writable(const std::string& path) {
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw InputError("output.path: " + path + " is a directory, expected a file path");
    if (!fs::exists(dir, ec)) fs::create_directories(dir, ec);
    if (!fs::is_directory(dir, ec))
        throw InputError("output.path: directory " + dir.string() + " does not exist and cannot be created");
    std::string probe = (dir / (".dcsearch-write-test-" + std::to_string(getpid()))).string();
    {
        std::ofstream out(probe);
        if (!out) throw InputError("output.path: directory " + dir.string() + " is not writable");
    }
    fs::remove(probe, ec);
}

/// Everything a rank needs to evaluate candidates, loaded and checked once. Members that others
/// reference live behind pointers so the struct can move.
struct Prepared {
    Config cfg;
    std::unique_ptr<Graph> graph;
    std::unique_ptr<Dataset> data;
    ModelIo io;
    Metric metric = Metric::Top1;
    std::vector<LayerInfo> layers;
    std::unique_ptr<search::SearchSpace> space;
    std::vector<std::string> warnings;
    std::unique_ptr<CandidateEvaluator> evaluator;
};

Prepared prepare(const std::string& config_path) {
    Prepared p;
    p.cfg = load_config(config_path);
    p.warnings = p.cfg.warnings;
    p.graph = std::make_unique<Graph>(import_onnx(p.cfg.model.path));
    LoadedData loaded = load_data(p.cfg, *p.graph, &p.warnings);
    p.data = std::make_unique<Dataset>(std::move(loaded.data));
    p.io = loaded.io;
    p.metric = loaded.metric;
    if (p.cfg.search.early_stop && p.cfg.dataset.format == DatasetFormat::Folder)
        p.warnings.push_back(p.cfg.file + ": search.early_stop judges a candidate on the first validation batches, "
                             "but an image folder's samples come class by class: a candidate may be stopped before "
                             "the classes it does well on (shuffle the data into arrays, or leave early_stop off)");
    p.layers = list_layers(*p.graph);
    if (p.layers.empty())
        throw InputError(p.cfg.model.path + ": the model has no compressible layer (Conv, Gemm or MatMul with a constant weight)");
    std::vector<std::string> layer_names;
    for (const auto& l : p.layers) layer_names.push_back(l.name);
    p.space = std::make_unique<search::SearchSpace>(search::SearchSpace::build(
        layer_names, p.cfg.compression.weight_bits, p.cfg.compression.prune_ratios, p.cfg.compression.layers, &p.warnings));
    // int8 evaluation calibrated as `eval --layers` and `export` calibrate
    const EvaluatorOptions eo = evaluator_options(p.cfg, p.metric);
    p.evaluator = std::make_unique<CandidateEvaluator>(*p.graph, *p.data, p.cfg.dataset.validation,
                                                       p.cfg.model.preprocess, p.io, p.cfg.compression.weight,
                                                       p.cfg.compression.activation_bits, eo);
    return p;
}

/// Fault injection for tests (never set in normal use): DCS_FAULT_RATE=f makes a fraction f of
/// evaluations fail, chosen by a hash of the genome so that runs stay deterministic.
double fault_rate() {
    const char* v = std::getenv("DCS_FAULT_RATE");
    return v ? std::atof(v) : 0.0;
}

search::Evaluation evaluate_with_faults(const Prepared& p, const search::ProblemSettings& settings,
                                        const search::Genome& genome, double rate) {
    if (rate > 0) {
        uint64_t h = 14695981039346656037ull;  // FNV-1a 64 over the genes
        for (int v : genome) h = (h ^ static_cast<uint64_t>(v + 1)) * 1099511628211ull;
        if (static_cast<double>(h % 10000) < rate * 10000.0) {
            search::Evaluation e;
            e.genome = genome;
            e.ok = false;
            e.error = "injected evaluation failure (DCS_FAULT_RATE)";
            search::score(e, settings);
            return e;
        }
    }
    return search::evaluate_genome(*p.evaluator, *p.space, settings, genome);
}

/// An exclusive lock on "<results>.lock" for as long as a search writes the results file, so that a
/// second search (a `--resume` while the first still runs, or an orphaned rank of a killed mpirun)
/// cannot interleave checkpoints with it.
class ResultsLock {
public:
    explicit ResultsLock(const std::string& results_path) : path_(results_path + ".lock") {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw InputError("output.path: cannot create " + path_);
        // A process that was just killed may take a moment to go: wait a little before refusing.
        for (int i = 0; i < 100; ++i) {
            if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        ::close(fd_);
        fd_ = -1;
        throw InputError(results_path + ": another dcsearch process is writing this results file (lock " + path_ + ")");
    }
    ~ResultsLock() {
        if (fd_ >= 0) {
            ::unlink(path_.c_str());
            ::close(fd_);
        }
    }
    ResultsLock(const ResultsLock&) = delete;
    ResultsLock& operator=(const ResultsLock&) = delete;

private:
    std::string path_;
    int fd_ = -1;
};

/// Under mpirun: if mpirun itself is gone (killed), this rank is an orphan and must stop rather than
/// go on writing a results file that a resumed job may be using.
void exit_if_orphaned(pid_t launcher) {
    if (launcher > 1 && ::getppid() != launcher) {
        const std::string line = "dcsearch: error: mpirun is gone (killed?); this rank stops\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::_Exit(1);
    }
}

/// mpirun binds each rank to one core by default when there are no more ranks than cores (OpenMPI 4:
/// `--bind-to core` for 2 ranks or fewer); a rank then runs all its OMP_NUM_THREADS threads on that
/// core. Returns a warning saying what to pass to mpirun, or "" when the rank may use enough CPUs.
std::string binding_warning() {
    const char* v = std::getenv("OMP_NUM_THREADS");
    const int threads = v ? std::atoi(v) : 0;
    cpu_set_t set;
    if (threads <= 1 || sched_getaffinity(0, sizeof set, &set) != 0) return "";
    const int cpus = CPU_COUNT(&set);
    if (cpus >= threads) return "";
    return "mpirun bound rank 0 (and the other ranks alike) to " + std::to_string(cpus) + " CPU" +
           (cpus == 1 ? "" : "s") + " but OMP_NUM_THREADS=" + std::to_string(threads) +
           ", so each rank's threads share them: pass --bind-to none, or --map-by slot:PE=" + std::to_string(threads) +
           ", to mpirun (docs/mpi.md)";
}

/// Checks the output path; when resuming, returns the interrupted run's results (else empty results).
/// Throws InputError.
search::ResultsData check_output(const ParsedArgs& args, const Prepared& p, const std::string& out_path,
                                             const std::string& model_hash) {
    const bool resume = args.flag("--resume");
    std::error_code ec;
    if (resume && !fs::exists(out_path, ec))
        throw InputError("--resume: results file " + out_path + " not found (nothing to resume)");
    if (!resume && fs::exists(out_path, ec) && !args.flag("--force"))
        throw InputError(out_path + ": results file exists; use --resume to continue that search or --force to overwrite it");
    check_output_writable(out_path);
    if (!resume) return search::ResultsData{};
    search::ResultsData old = search::read_results(out_path);
    if (old.config_text != p.cfg.text)
        throw InputError("--resume: " + out_path + " was written by a different config (" + old.config_path +
                         "); resume with that config or start a new search with another output path");
    if (old.model_hash != model_hash)
        throw InputError("--resume: " + out_path + " was written for a different model file than " + p.cfg.model.path);
    return old;
}

/// The held-out test subset (dataset.test): the fp32 baseline and every member of `front` evaluated on
/// it by an evaluator made as the validation one (the path `eval --layers` takes, so the figures are
/// what a user re-checking a member gets). Under MPI rank 0 does this alone; the workers wait.
search::TestRecord evaluate_test_subset(const Prepared& p, const search::ResultsData& res,
                                        const std::vector<size_t>& front, pid_t launcher) {
    const Subset& t = *p.cfg.test;
    std::cerr << "dcsearch: evaluating the fp32 baseline and " << front.size() << " front members on the test subset ("
              << t.count << " samples)\n";
    CandidateEvaluator ev(*p.graph, *p.data, t, p.cfg.model.preprocess, p.io, p.cfg.compression.weight,
                          p.cfg.compression.activation_bits, p.evaluator->options());
    search::TestRecord rec;
    rec.offset = t.offset;
    rec.count = t.count;
    rec.baseline_accuracy = ev.baseline().accuracy;
    for (size_t id : front) {
        exit_if_orphaned(launcher);
        // Fault injection for tests (never set in normal use): the state a kill at this point leaves.
        if (std::getenv("DCS_FAULT_TEST_SUBSET"))
            throw std::runtime_error("injected failure of the test-subset evaluation (DCS_FAULT_TEST_SUBSET)");
        rec.ids.push_back(id);
        rec.accuracy.push_back(ev.evaluate(p.space->decode(res.evaluations[id].genome)).accuracy);
    }
    return rec;
}

/// The search on rank 0 (or in the only process) over `evaluator`; prints the summary.
int coordinate(const ParsedArgs& args, Prepared& p, const std::string& out_path, const std::string& model_hash,
               const search::ResultsData& previous, const std::vector<int>& worker_ranks, search::Evaluator& evaluator,
               std::function<void(const search::Evaluation&)>* on_result, search::ProblemSettings* settings_out,
               pid_t launcher = 0) {
    const Config& cfg = p.cfg;
    if (!previous.evaluations.empty())
        std::cerr << "dcsearch: resuming from " << out_path << " with " << previous.evaluations.size()
                  << " finished evaluations\n";
    search::ResultsData base;
    base.config_text = cfg.text;
    base.config_path = fs::absolute(cfg.file).string();
    base.model_path = cfg.model.path;
    base.model_hash = model_hash;
    std::cerr << "dcsearch: fp32 baseline on " << cfg.dataset.validation.count << " samples\n";
    CandidateMetrics baseline = p.evaluator->baseline();
    std::cerr << "dcsearch: baseline " << metric_label(p.metric) << " " << baseline.accuracy << ", "
              << baseline.size_bytes << " bytes; "
              << p.layers.size() << " layers, " << p.space->size() << " configurations\n";
    base.baseline_accuracy = baseline.accuracy;
    base.metric = metric_name(p.metric);
    base.baseline_size_bytes = static_cast<double>(baseline.size_bytes);
    base.baseline_bops = baseline.bops;
    base.validation_samples = baseline.samples;
    for (size_t i = 0; i < p.layers.size(); ++i) {
        const auto& l = p.layers[i];
        base.layers.push_back({l.name, op_name(l.op), l.weight_shape, l.params, l.macs, p.space->layers()[i].bits,
                               p.space->layers()[i].prunes});
    }
    search::SearchSettings settings;
    settings.nsga.population = cfg.search.population;
    settings.nsga.offspring = cfg.search.offspring;
    settings.nsga.generations = cfg.search.generations;
    settings.nsga.seed = cfg.search.seed;
    settings.nsga.max_evaluations = cfg.search.max_evaluations;
    settings.nsga.stagnation_generations = cfg.search.stagnation_generations;
    settings.nsga.random_search = cfg.search.algorithm == "random";
    settings.problem.baseline_accuracy = baseline.accuracy;
    settings.problem.max_accuracy_drop = cfg.search.max_accuracy_drop;
    if (cfg.search.early_stop)
        settings.problem.early_stop_below = baseline.accuracy - cfg.search.max_accuracy_drop / 100.0;
    // Accuracy and size first: the hypervolume is taken over these two.
    settings.problem.objectives = {Objective::Accuracy, Objective::Size};
    for (Objective o : cfg.search.objectives)
        if (o != Objective::Accuracy && o != Objective::Size) settings.problem.objectives.push_back(o);
    for (Objective o : settings.problem.objectives) base.objectives.push_back(objective_name(o));
    base.max_accuracy_drop = cfg.search.max_accuracy_drop;
    base.seed = cfg.search.seed;
    if (settings_out) *settings_out = settings.problem;

    search::SearchDriver driver(*p.space, settings, base);
    driver.resume_from(previous.evaluations);
    if (on_result)
        *on_result = [&driver, launcher](const search::Evaluation& e) {
            exit_if_orphaned(launcher);
            driver.note_result(e);
        };
    ProgressPrinter printer;
    const search::RunAccounting accounting(previous, worker_ranks);
    driver.run(
        evaluator,
        [&](const search::ResultsData& d) {
            exit_if_orphaned(launcher);
            search::write_results(out_path, accounting.with_runs(d));
        },
        [&](const search::Progress& pr) { printer(pr); });
    printer.finish();

    // The final results: the search's last checkpoint, then (with a test subset) the same with /test,
    // written only once every front member is evaluated on it.
    search::ResultsData res = accounting.with_runs(driver.results());
    const auto front = driver.front();
    if (cfg.test) {
        res.test = evaluate_test_subset(p, res, front, launcher);
        search::write_results(out_path, res);
    }
    int64_t failed = 0;
    for (const auto& e : res.evaluations) failed += !e.ok;
    std::cerr << "dcsearch: " << res.evaluations.size() << " evaluations (" << failed << " failed"
              << (cfg.search.early_stop ? ", " + std::to_string(res.stopped_early()) + " stopped early" : "")
              << "), front of "
              << front.size() << " written to " << out_path << "\n";
    const auto runs = search::run_summary(res);
    if (!runs.empty()) std::cerr << "dcsearch: " << runs.back() << "\n";
    if (args.flag("--json")) {
        Json fr = Json::array();
        for (size_t i : front) {
            const auto& e = res.evaluations[i];
            auto choices = p.space->decode(e.genome);
            Json lj = Json::object();
            for (size_t l = 0; l < p.layers.size(); ++l)
                lj.field(p.layers[l].name, Json::object()
                                               .field("weight_bits", choices[l].weight_bits)
                                               .field("prune_ratio", choices[l].prune_ratio));
            Json m = Json::object();
            m.field("id", static_cast<long long>(i)).field("accuracy", e.accuracy);
            if (res.test) m.field("test_accuracy", res.test->accuracy_of(i));
            fr.value(m.field("size_bytes", static_cast<long long>(e.size_bytes))
                         .field("bops", e.bops)
                         .field("compression_ratio", res.baseline_size_bytes / e.size_bytes)
                         .field("layers", lj));
        }
        Json b = Json::object();
        b.field("accuracy", res.baseline_accuracy);
        if (res.test) b.field("test_accuracy", res.test->baseline_accuracy);
        b.field("size_bytes", static_cast<long long>(res.baseline_size_bytes));
        std::cout << Json::object()
                         .field("evaluations", static_cast<long long>(res.evaluations.size()))
                         .field("failed", static_cast<long long>(failed))
                         .field("metric", res.metric)
                         .field("baseline", b)
                         .field("front", fr)
                         .field("results", out_path)
                         .str()
                  << "\n";
    } else {
        // The accuracy column is named after the metric (dataset.metric).
        const char* acc = p.metric == Metric::Top1 ? "accuracy" : metric_name(p.metric);
        if (res.test)
            std::printf("%-6s %-9s %-8s %-12s %-8s %-9s %s\n", "id", acc, "drop", "size", "ratio", "test",
                        "test drop");
        else
            std::printf("%-6s %-9s %-8s %-12s %s\n", "id", acc, "drop", "size", "ratio");
        for (size_t i : front) {
            const auto& e = res.evaluations[i];
            const double drop = (res.baseline_accuracy - e.accuracy) * 100.0,
                         ratio = res.baseline_size_bytes / e.size_bytes;
            if (res.test) {  // "!": loses more on test than on validation (search::kTestGapPt)
                const double t = res.test->accuracy_of(i);
                char r[32];
                std::snprintf(r, sizeof r, "%.1fx", ratio);
                std::printf("%-6zu %-9.4f %-8.2f %-12.0f %-8s %-9.4f %.2f%s\n", i, e.accuracy, drop, e.size_bytes, r, t,
                            search::test_drop_pt(res, i), search::loses_more_on_test(res, i) ? " !" : "");
            } else {
                std::printf("%-6zu %-9.4f %-8.2f %-12.0f %.1fx\n", i, e.accuracy, drop, e.size_bytes, ratio);
            }
        }
    }
    return 0;
}

std::string output_path(const ParsedArgs& args, const Config& cfg) {
    return args.options.count("--output") ? fs::absolute(args.options.at("--output")).string() : cfg.output.path;
}

int run_single(const ParsedArgs& args) {
    Prepared p = prepare(args.positionals.at(0));
    for (const auto& w : p.warnings) std::cerr << "dcsearch: warning: " << w << "\n";
    const std::string out_path = output_path(args, p.cfg);
    const std::string model_hash = search::file_hash(p.cfg.model.path);
    auto previous = check_output(args, p, out_path, model_hash);
    ResultsLock lock(out_path);
    const double rate = fault_rate();
    search::ProblemSettings settings;  // filled by coordinate() before the first evaluation
    struct FaultyLocal : search::Evaluator {
        const Prepared& p;
        const search::ProblemSettings& settings;
        double rate;
        std::function<void(const search::Evaluation&)> on_result;
        FaultyLocal(const Prepared& p_, const search::ProblemSettings& s, double r) : p(p_), settings(s), rate(r) {}
        std::vector<search::Evaluation> evaluate(const std::vector<search::Genome>& batch) override {
            std::vector<search::Evaluation> out;
            for (const auto& g : batch) {
                out.push_back(evaluate_with_faults(p, settings, g, rate));
                if (on_result) on_result(out.back());
            }
            return out;
        }
    } local(p, settings, rate);
    return coordinate(args, p, out_path, model_hash, previous, {0}, local, &local.on_result, &settings);
}

int run_mpi(const ParsedArgs& args) {
    const pid_t launcher = ::getppid();  // mpirun (or its daemon)
    search::MpiSession mpi(nullptr, nullptr);
    if (mpi.size() < 2) return run_single(args);
    if (mpi.rank() != 0) {
        // Worker: wait for rank 0's validation (rank 0 reports any problem), then load and serve.
        if (search::broadcast_status(0) != 0) return 0;
        std::unique_ptr<Prepared> p;
        std::string load_error;
        try {
            const char* fail_rank = std::getenv("DCS_FAULT_WORKER_LOAD");
            if (fail_rank && std::atoi(fail_rank) == mpi.rank())
                throw std::runtime_error("injected load failure (DCS_FAULT_WORKER_LOAD)");
            p = std::make_unique<Prepared>(prepare(args.positionals.at(0)));
        } catch (const std::exception& e) {
            load_error = e.what();
        }
        const double rate = fault_rate();
        search::ProblemSettings unscored;  // rank 0 scores the results
        try {
            return search::run_worker(load_error, [&](const search::Genome& g, double early_stop_below) {
                exit_if_orphaned(launcher);
                unscored.early_stop_below = early_stop_below;
                return evaluate_with_faults(*p, unscored, g, rate);
            });
        } catch (const std::exception& e) {
            const std::string line = "dcsearch: error: rank " + std::to_string(mpi.rank()) + ": " + e.what() + "\n";
            std::fwrite(line.data(), 1, line.size(), stderr);
            mpi.abort(1);
        }
    }
    // Coordinator: validate everything before the workers start loading.
    std::unique_ptr<Prepared> p;
    std::unique_ptr<ResultsLock> lock;
    std::string out_path, model_hash;
    search::ResultsData previous;
    try {
        p = std::make_unique<Prepared>(prepare(args.positionals.at(0)));
        for (const auto& w : p->warnings) std::cerr << "dcsearch: warning: " << w << "\n";
        out_path = output_path(args, p->cfg);
        model_hash = search::file_hash(p->cfg.model.path);
        previous = check_output(args, *p, out_path, model_hash);
        lock = std::make_unique<ResultsLock>(out_path);
    } catch (const InputError& e) {
        // Report before releasing the workers, so that the message is out before any rank exits.
        report_error(e.what());
        search::broadcast_status(2);
        return 2;
    } catch (const std::exception& e) {
        report_error(e.what());
        search::broadcast_status(1);
        return 1;
    }
    search::broadcast_status(0);
    const int workers = mpi.size() - 1;
    std::cerr << "dcsearch: coordinating " << workers << " worker ranks\n";
    // Ranks are bound alike, so rank 0's binding tells about the workers'.
    if (const std::string w = binding_warning(); !w.empty()) std::cerr << "dcsearch: warning: " << w << "\n";
    const int batch = p->cfg.search.offspring > 0 ? p->cfg.search.offspring : p->cfg.search.population;
    if (workers > batch)
        std::cerr << "dcsearch: warning: " << workers - batch << " of " << workers
                  << " workers will sit idle in every generation (" << batch
                  << " candidates per generation): set search.offspring to " << workers
                  << " (or a multiple of it) to keep every worker busy\n";
    try {
        search::ProblemSettings settings;
        search::MpiEvaluator evaluator(mpi.size(), settings);
        const std::string failure = evaluator.wait_ready();
        if (!failure.empty()) {
            report_error(failure);
            evaluator.stop_workers();
            return 1;
        }
        if (const char* after = std::getenv("DCS_FAULT_COORDINATOR_AFTER")) evaluator.fail_after_results = std::atoll(after);
        // The evaluator scores with the settings coordinate() fills in before the first batch.
        struct Scoring : search::Evaluator {
            search::MpiEvaluator& inner;
            search::ProblemSettings& settings;
            Scoring(search::MpiEvaluator& i, search::ProblemSettings& s) : inner(i), settings(s) {}
            std::vector<search::Evaluation> evaluate(const std::vector<search::Genome>& batch) override {
                inner.set_settings(settings);
                return inner.evaluate(batch);
            }
            void defer(std::function<void()> work) override { inner.defer(std::move(work)); }
        } scoring(evaluator, settings);
        std::vector<int> ranks;
        for (int r = 1; r < mpi.size(); ++r) ranks.push_back(r);
        const int rc = coordinate(args, *p, out_path, model_hash, previous, ranks, scoring, &evaluator.on_result,
                                  &settings, launcher);
        evaluator.stop_workers();
        return rc;
    } catch (const std::exception& e) {
        // Workers may be waiting for work: end the whole job now rather than leave them blocked.
        report_error(e.what());
        mpi.abort(dynamic_cast<const InputError*>(&e) ? 2 : 1);
    }
}

}  // namespace

int run_search(const ParsedArgs& args) {
    if (search::launched_as_mpi_job()) return run_mpi(args);
    return run_single(args);
}

}  // namespace dcs
