#pragma once
/// Error types shared by every layer. The command-line front end maps them to exit statuses:
/// InputError -> 2 (bad config, model, data or arguments), anything else -> 1.
#include <stdexcept>
#include <string>

namespace dcs {

/// `text` on one line: control characters (a newline inside a YAML key or an ONNX node name, say)
/// become C escapes (\n, \r, \t, \xNN); every other byte is kept.
inline std::string one_line(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c >= 0x20 && c != 0x7f) {
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else {
            static const char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

/// Bad user input: a config, model, dataset or argument that cannot be used.
/// The message names the file, key or node and what was expected; it is printed as one line (names
/// taken from the input may hold any bytes, so control characters are escaped).
class InputError : public std::runtime_error {
public:
    explicit InputError(const std::string& what) : std::runtime_error(one_line(what)) {}
};

/// A valid request the runtime cannot serve (e.g. an operator configuration a backend lacks).
class UnsupportedError : public InputError {
public:
    explicit UnsupportedError(const std::string& what) : InputError(what) {}
};

}  // namespace dcs
