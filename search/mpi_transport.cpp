#include "search/mpi_transport.hpp"

#include <mpi.h>

#include <cstdlib>
#include <deque>
#include <map>

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

/// Receives one message from `source` (or any) and returns its bytes; status tells who and which tag.
std::vector<char> receive(int source, MPI_Status* status) {
    check(MPI_Probe(source, MPI_ANY_TAG, MPI_COMM_WORLD, status), "MPI_Probe");
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

MpiSession::MpiSession(int* argc, char*** argv) {
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
    check(MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
    return status;
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
    int busy = 0;
    auto dispatch = [&](int worker) {
        const int64_t j = todo.front();
        todo.pop_front();
        send(encode_work({j, batch[static_cast<size_t>(j)]}), worker, Tag::Work);
        ++busy;
    };
    for (int w = 1; w < size_ && !todo.empty(); ++w) dispatch(w);
    while (busy > 0) {
        MPI_Status st;
        auto bytes = receive(MPI_ANY_SOURCE, &st);
        if (st.MPI_TAG != static_cast<int>(Tag::Result))
            throw MpiError("unexpected message tag " + std::to_string(st.MPI_TAG) + " from rank " +
                           std::to_string(st.MPI_SOURCE));
        --busy;
        ResultMessage r = decode_result(bytes);
        if (r.job < 0 || r.job >= static_cast<int64_t>(batch.size()) || r.evaluation.genome != batch[static_cast<size_t>(r.job)])
            throw MpiError("rank " + std::to_string(st.MPI_SOURCE) + " answered a job it was not given");
        if (!todo.empty()) dispatch(st.MPI_SOURCE);  // keep the worker busy before doing our own bookkeeping
        Evaluation& e = out[static_cast<size_t>(r.job)];
        e = std::move(r.evaluation);
        score(e, settings_);
        if (on_result) on_result(e);
        if (fail_after_results > 0 && ++results_ >= fail_after_results)
            throw std::runtime_error("injected coordinator failure (DCS_FAULT_COORDINATOR_AFTER)");
    }
    return out;
}

void MpiEvaluator::stop_workers() {
    for (int w = 1; w < size_; ++w) send({}, w, Tag::Stop);
}

int run_worker(const std::string& load_error, const std::function<Evaluation(const Genome&)>& evaluate) {
    int rank = 0;
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
    if (!load_error.empty()) send(encode_text(load_error), 0, Tag::Failed);
    else send({}, 0, Tag::Ready);
    for (;;) {
        MPI_Status st;
        auto bytes = receive(0, &st);
        if (st.MPI_TAG == static_cast<int>(Tag::Stop)) return load_error.empty() ? 0 : 1;
        if (st.MPI_TAG != static_cast<int>(Tag::Work)) throw MpiError("unexpected message tag " + std::to_string(st.MPI_TAG));
        WorkMessage w = decode_work(bytes);
        Evaluation e = evaluate(w.genome);
        e.genome = w.genome;
        e.rank = rank;
        send(encode_result({w.job, e}), 0, Tag::Result);
    }
}

}  // namespace dcs::search
