#pragma once
// Runs the dcsearch binary as a user would, with a time limit, capturing status and output.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace dcs::test {

struct ProcResult {
    int status = -1;       ///< exit status, or 128+signal when killed by a signal
    bool timed_out = false;
    std::string out, err;
    double seconds = 0.0;
};

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// A started child process (own process group, stdin /dev/null, output to temporary files).
struct Child {
    pid_t pid = -1;
    std::string out_path, err_path;
    std::chrono::steady_clock::time_point start;
};

inline Child spawn_process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    static int counter = 0;
    std::string base = (std::filesystem::temp_directory_path() /
                        ("dcs_proc_" + std::to_string(getpid()) + "_" + std::to_string(counter++)))
                           .string();
    Child c;
    c.out_path = base + ".out";
    c.err_path = base + ".err";
    c.start = std::chrono::steady_clock::now();
    c.pid = fork();
    if (c.pid == 0) {
        setpgid(0, 0);
        int in = open("/dev/null", O_RDONLY);
        int out = open(c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    return c;
}

/// Waits for the child; past `timeout` seconds (or at once with kill_now) its process group gets SIGKILL.
inline ProcResult wait_process(Child& c, double timeout, bool kill_now = false) {
    ProcResult r;
    int wstatus = 0;
    if (kill_now) kill(-c.pid, SIGKILL);
    for (;;) {
        pid_t w = waitpid(c.pid, &wstatus, WNOHANG);
        if (w == c.pid) break;
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - c.start).count();
        if (el > timeout) {
            kill(-c.pid, SIGKILL);
            waitpid(c.pid, &wstatus, 0);
            r.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (kill_now) r.timed_out = true;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c.start).count();
    r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    r.out = slurp(c.out_path);
    r.err = slurp(c.err_path);
    std::remove(c.out_path.c_str());
    std::remove(c.err_path.c_str());
    return r;
}

/// True while the child runs.
inline bool process_running(const Child& c) { return waitpid(c.pid, nullptr, WNOHANG) == 0; }

/// Runs argv (argv[0] is the program) with a timeout in seconds; the child's stdin is /dev/null.
inline ProcResult run_process(const std::vector<std::string>& argv, double timeout = 60.0,
                              const std::vector<std::string>& env = {}) {
    Child c = spawn_process(argv, env);
    return wait_process(c, timeout);
}

/// A fresh temporary directory, removed with the object.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() / ("dcs_test_" + std::to_string(getpid()) + "_" + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    std::string write(const std::string& name, const std::string& content) const {
        std::ofstream(file(name), std::ios::binary) << content;
        return file(name);
    }
};

/// The number after "key": in a JSON text (the first occurrence; NaN when absent).
inline double json_number(const std::string& json, const std::string& key) {
    const size_t at = json.find("\"" + key + "\":");
    return at == std::string::npos ? std::nan("") : std::stod(json.substr(at + key.size() + 3));
}

/// Counts the lines of a message (a trailing newline does not count).
inline int count_lines(const std::string& s) {
    int n = 0;
    for (size_t i = 0; i < s.size(); ++i)
        if (s[i] == '\n' && i + 1 < s.size()) ++n;
    return s.empty() ? 0 : n + 1;
}

}  // namespace dcs::test
