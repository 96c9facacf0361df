#include "search/mpi_transport.hpp"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <thread>

#include "search/protocol.hpp"

namespace dcs::search {
namespace {

void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        throw MpiError(std::string(call) + " failed: " + std::string(msg, static_cast<size_t>(len)));
    }
}

void send(const std::vector<char>& bytes, int dest, Tag tag) {
    check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_CHAR, dest, static_cast<int>(tag), MPI_COMM_WORLD),
          "MPI_Send");
}

using Micros = std::chrono::microseconds;

/// Sleeps between polls that start short (10 us by default) and double up to a cap: a wait costs a few
/// wake-ups per millisecond instead of a core. OpenMPI's blocking calls (MPI_Probe, MPI_Recv, MPI_Bcast) busy-poll,
/// so a rank waiting in one takes a core from the ranks that compute (docs/mpi.md, "Waiting").
class Backoff {
public:
    explicit Backoff(Micros cap, Micros first = Micros(10)) : cap_(std::max(cap, Micros(10))), next_(std::min(first, cap_)) {}
    void wait() {
        std::this_thread::sleep_for(next_);
        next_ = std::min(cap_, next_ * 2);
    }

private:
    Micros cap_, next_;
};

/// The longest sleep of a worker waiting for work or of any rank at start-up.
constexpr Micros kIdleCap{2000};

/// Waits until a message from `source` (or MPI_ANY_SOURCE) is there, without busy-polling.
void wait_message(int source, MPI_Status* status, Micros cap, Micros first) {
    Backoff backoff(cap, first);
    for (;;) {
        int flag = 0;
        check(MPI_Iprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, status), "MPI_Iprobe");
        if (flag) return;
        backoff.wait();
    }
}

/// Receives one message from `source` (or any) and returns its bytes; status tells who and which tag.
std::vector<char> receive(int source, MPI_Status* status, Micros cap = kIdleCap, Micros first = Micros(10)) {
    wait_message(source, status, cap, first);
    int count = 0;
    check(MPI_Get_count(status, MPI_CHAR, &count), "MPI_Get_count");
    std::vector<char> buf(static_cast<size_t>(count));
    check(MPI_Recv(buf.data(), count, MPI_CHAR, status->MPI_SOURCE, status->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Recv");
    return buf;
}

}  // namespace

bool launched_as_mpi_job() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
        const char* v = std::getenv(var);
        if (v && std::atoi(v) > 1) return true;
    }
    return false;
}

namespace {
std::atomic<bool> session_started{false};
}  // namespace

bool mpi_session_started() { return session_started.load(); }

MpiSession::MpiSession(int* argc, char*** argv) {
    session_started.store(true);
    check(MPI_Init(argc, argv), "MPI_Init");
    // Errors come back as return codes, which check() turns into exceptions.
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::abort(int status) {
    MPI_Abort(MPI_COMM_WORLD, status);
    std::_Exit(status);
}

int broadcast_status(int status) {
    // Workers wait here while rank 0 loads and checks everything: a non-blocking broadcast polled with
    // backoff leaves rank 0 the cores (MPI_Bcast would busy-poll on every worker).
    MPI_Request req;
    check(MPI_Ibcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD, &req), "MPI_Ibcast");
    Backoff backoff(kIdleCap);
    for (;;) {
        int done = 0;
        check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (done) return status;
        backoff.wait();
    }
}

MpiEvaluator::MpiEvaluator(int size, ProblemSettings settings) : size_(size), settings_(std::move(settings)) {}

std::string MpiEvaluator::wait_ready() {
    std::string first_error;
    for (int i = 1; i < size_; ++i) {
        MPI_Status st;
        auto bytes = receive(MPI_ANY_SOURCE, &st);
        if (st.MPI_TAG == static_cast<int>(Tag::Failed) && first_error.empty())
            first_error = "rank " + std::to_string(st.MPI_SOURCE) + ": " + decode_text(bytes);
        else if (st.MPI_TAG != static_cast<int>(Tag::Ready) && st.MPI_TAG != static_cast<int>(Tag::Failed))
            throw MpiError("unexpected message tag " + std::to_string(st.MPI_TAG) + " from rank " +
                           std::to_string(st.MPI_SOURCE) + " at start-up");
    }
    return first_error;
}

std::vector<Evaluation> MpiEvaluator::evaluate(const std::vector<Genome>& batch) {
    std::vector<Evaluation> out(batch.size());
    std::deque<int64_t> todo;
    for (int64_t j = 0; j < static_cast<int64_t>(batch.size()); ++j) todo.push_back(j);
    const size_t workers = static_cast<size_t>(size_ - 1);
    std::vector<int> outstanding(static_cast<size_t>(size_), 0);
    int busy = 0;
    auto dispatch = [&](int worker) {
        const int64_t j = todo.front();
        todo.pop_front();
        send(encode_work({j, batch[static_cast<size_t>(j)], settings_.early_stop_below}), worker, Tag::Work);
        ++outstanding[static_cast<size_t>(worker)];
        ++busy;
    };
    // Each worker holds a second job in its queue while at least one job per worker remains: it starts
    // that one the moment it sends a result, so the coordinator may poll slowly without idling anyone.
    // The last jobs of a batch go one at a time to whoever is free, as without the queue.
    auto queue_more = [&](int worker) {
        return !todo.empty() && todo.size() >= workers && outstanding[static_cast<size_t>(worker)] < 2;
    };
    for (int w = 1; w < size_ && !todo.empty(); ++w) dispatch(w);
    for (int w = 1; w < size_; ++w)
        if (queue_more(w)) dispatch(w);
    if (deferred_) {  // e.g. the previous batch's checkpoint, while the workers start on this one
        auto work = std::move(deferred_);
        deferred_ = nullptr;
        work();
    }
    while (busy > 0) {
        MPI_Status st;
        // Once every job is out, each result that waits for a poll may idle its worker until the next
        // batch: poll eight times as often.
        const Micros cap = todo.empty() ? poll_cap() / 8 : poll_cap();
        auto bytes = receive(MPI_ANY_SOURCE, &st, cap, cap / 4);
        if (st.MPI_TAG != static_cast<int>(Tag::Result))
            throw MpiError("unexpected message tag " + std::to_string(st.MPI_TAG) + " from rank " +
                           std::to_string(st.MPI_SOURCE));
        --busy;
        --outstanding[static_cast<size_t>(st.MPI_SOURCE)];
        ResultMessage r = decode_result(bytes);
        if (r.job < 0 || r.job >= static_cast<int64_t>(batch.size()) || r.evaluation.genome != batch[static_cast<size_t>(r.job)])
            throw MpiError("rank " + std::to_string(st.MPI_SOURCE) + " answered a job it was not given");
        // Keep the worker busy before doing our own bookkeeping.
        if (outstanding[static_cast<size_t>(st.MPI_SOURCE)] == 0 && !todo.empty()) dispatch(st.MPI_SOURCE);
        if (queue_more(st.MPI_SOURCE)) dispatch(st.MPI_SOURCE);
        note_evaluation_time(r.evaluation.seconds);
        Evaluation& e = out[static_cast<size_t>(r.job)];
        e = std::move(r.evaluation);
        score(e, settings_);
        if (on_result) on_result(e);
        if (fail_after_results > 0 && ++results_ >= fail_after_results)
            throw std::runtime_error("injected coordinator failure (DCS_FAULT_COORDINATOR_AFTER)");
    }
    return out;
}

void MpiEvaluator::note_evaluation_time(double seconds) {
    if (!(seconds > 0)) return;
    recent_seconds_.push_back(seconds);
    if (recent_seconds_.size() > 16) recent_seconds_.pop_front();
}

std::chrono::microseconds MpiEvaluator::poll_cap() const {
    // A worker holds one job in its queue while it evaluates another, so it waits for the coordinator
    // only if a poll comes later than one evaluation: half the shortest of the last 16 evaluations keeps
    // every queue filled in time (a running mean would not: the first, cold evaluations take several
    // times longer) at a few wake-ups per result. Each wake-up costs 10-20 us of CPU here
    // (docs/performance.md, "MPI scaling").
    if (recent_seconds_.empty()) return Micros(200);
    const double shortest = *std::min_element(recent_seconds_.begin(), recent_seconds_.end());
    return Micros(std::clamp(static_cast<int64_t>(shortest * 1e6 / 2.0), int64_t{20}, int64_t{10000}));
}

void MpiEvaluator::stop_workers() {
    deferred_ = nullptr;
    for (int w = 1; w < size_; ++w) send({}, w, Tag::Stop);
}

int run_worker(const std::string& load_error, const std::function<Evaluation(const Genome&, double)>& evaluate) {
    int rank = 0;
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
    if (!load_error.empty()) send(encode_text(load_error), 0, Tag::Failed);
    else send({}, 0, Tag::Ready);
    double mean_seconds = 0.0;
    for (;;) {
        MPI_Status st;
        // Between generations a worker waits for the others and for the coordinator's bookkeeping: a
        // 64th of its own evaluation time between polls (at most 1 ms) keeps the start of the next batch
        // prompt without spinning.
        const Micros cap = mean_seconds > 0
                               ? Micros(std::clamp(static_cast<int64_t>(mean_seconds * 1e6 / 64.0), int64_t{10}, int64_t{1000}))
                               : kIdleCap;
        auto bytes = receive(0, &st, cap);
        if (st.MPI_TAG == static_cast<int>(Tag::Stop)) return load_error.empty() ? 0 : 1;
        if (st.MPI_TAG != static_cast<int>(Tag::Work)) throw MpiError("unexpected message tag " + std::to_string(st.MPI_TAG));
        WorkMessage w = decode_work(bytes);
        Evaluation e = evaluate(w.genome, w.early_stop_below);
        e.genome = w.genome;
        e.rank = rank;
        if (e.seconds > 0) mean_seconds = mean_seconds <= 0 ? e.seconds : mean_seconds + (e.seconds - mean_seconds) / 32.0;
        send(encode_result({w.job, e}), 0, Tag::Result);
    }
}

}  // namespace dcs::search
