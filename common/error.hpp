#pragma once
/// Error types shared by every layer. The command-line front end maps them to exit statuses:
/// InputError -> 2 (bad config, model, data or arguments), anything else -> 1.
#include <stdexcept>
#include <string>

namespace dcs {

/// Bad user input: a config, model, dataset or argument that cannot be used.
/// The message names the file, key or node and what was expected; it is printed as one line.
class InputError : public std::runtime_error {
public:
    explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

/// A valid request the runtime cannot serve (e.g. an operator configuration a backend lacks).
class UnsupportedError : public InputError {
public:
    explicit UnsupportedError(const std::string& what) : InputError(what) {}
};

}  // namespace dcs
