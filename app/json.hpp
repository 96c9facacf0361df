#pragma once
/// A minimal JSON writer for `--json` output (one object on stdout).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace dcs {

std::string json_escape(const std::string& s);

/// Builds one JSON value as text. Keys are emitted in insertion order.
class Json {
public:
    static Json object() { return Json('{', '}'); }
    static Json array() { return Json('[', ']'); }

    Json& key(const std::string& k) {
        sep();
        text_ += json_escape(k) + ":";
        pending_key_ = true;
        return *this;
    }
    Json& value(const std::string& v) { return raw(json_escape(v)); }
    Json& value(const char* v) { return raw(json_escape(v)); }
    Json& value(bool v) { return raw(v ? "true" : "false"); }
    Json& value(int v) { return raw(std::to_string(v)); }
    Json& value(long v) { return raw(std::to_string(v)); }
    Json& value(long long v) { return raw(std::to_string(v)); }
    Json& value(unsigned long v) { return raw(std::to_string(v)); }
    Json& value(double v) {
        if (!std::isfinite(v)) return raw("null");
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.10g", v);
        return raw(buf);
    }
    Json& value(const Json& v) { return raw(v.str()); }
    template <class T>
    Json& field(const std::string& k, const T& v) {
        key(k);
        return value(v);
    }
    std::string str() const { return text_ + close_; }

private:
    Json(char open, char close) : text_(1, open), close_(1, close) {}
    void sep() {
        if (!first_) text_ += ",";
        first_ = false;
    }
    Json& raw(const std::string& s) {
        if (!pending_key_) sep();
        pending_key_ = false;
        text_ += s;
        return *this;
    }
    std::string text_, close_;
    bool first_ = true, pending_key_ = false;
};

}  // namespace dcs
