#pragma once
/// The `dcsearch` command line. Exit status: 0 success, 1 runtime failure, 2 bad input.
namespace dcs {

/// Parses the arguments, runs a command, and maps exceptions to exit statuses with a one-line message
/// on stderr ("dcsearch: error: ...").
int cli_main(int argc, char** argv);

}  // namespace dcs
