#pragma once
/// The coordinator/worker message protocol, as plain encode/decode functions (unit-tested without MPI).
/// Transport: search/mpi_transport.cpp.
///
///   worker -> coordinator   Ready                    after loading model and data
///                           Failed  {message}        could not load: the job ends
///                           Result  {evaluation}     one finished evaluation
///   coordinator -> worker   Work    {job id, genome}
///                           Stop                     leave the loop
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "search/evaluator.hpp"

namespace dcs::search {

enum class Tag : int { Ready = 1, Failed = 2, Result = 3, Work = 4, Stop = 5 };

struct WorkMessage {
    int64_t job = 0;  ///< position in the coordinator's batch
    Genome genome;
    double early_stop_below = -1.0;  ///< ProblemSettings::early_stop_below
};

struct ResultMessage {
    int64_t job = 0;
    Evaluation evaluation;  ///< genome, metrics, ok, error, seconds, rank
};

std::vector<char> encode_work(const WorkMessage& m);
WorkMessage decode_work(const std::vector<char>& bytes);

std::vector<char> encode_result(const ResultMessage& m);
ResultMessage decode_result(const std::vector<char>& bytes);

std::vector<char> encode_text(const std::string& s);
std::string decode_text(const std::vector<char>& bytes);

/// Thrown by the decoders on a malformed message.
struct ProtocolError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace dcs::search
