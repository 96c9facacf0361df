#include "app/cli.hpp"

int main(int argc, char** argv) { return dcs::cli_main(argc, argv); }
