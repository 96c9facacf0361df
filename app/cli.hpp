#pragma once
/// The `dcsearch` command line. Exit status: 0 success, 1 runtime failure, 2 bad input.
#include <string>

namespace dcs {

/// Parses the arguments, runs a command, and maps exceptions to exit statuses with a one-line message
/// on stderr ("dcsearch: error: ...").
int cli_main(int argc, char** argv);

/// Prints "dcsearch: error: <message>" as one line on stderr, in one write (nothing on MPI ranks other
/// than 0, so that a job prints one message).
void report_error(const std::string& message);

}  // namespace dcs
