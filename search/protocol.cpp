#include "search/protocol.hpp"

#include <cstring>
#include <stdexcept>

namespace dcs::search {
namespace {

class Writer {
public:
    template <class T>
    void put(const T& v) {
        const char* p = reinterpret_cast<const char*>(&v);
        buf_.insert(buf_.end(), p, p + sizeof(T));
    }
    void put_string(const std::string& s) {
        put<uint32_t>(static_cast<uint32_t>(s.size()));
        buf_.insert(buf_.end(), s.begin(), s.end());
    }
    void put_genome(const Genome& g) {
        put<uint32_t>(static_cast<uint32_t>(g.size()));
        for (int v : g) put<int32_t>(v);
    }
    std::vector<char> take() { return std::move(buf_); }

private:
    std::vector<char> buf_;
};

class Reader {
public:
    explicit Reader(const std::vector<char>& b) : b_(b) {}
    template <class T>
    T get() {
        if (pos_ + sizeof(T) > b_.size()) throw ProtocolError("truncated message");
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string get_string() {
        uint32_t n = get<uint32_t>();
        if (pos_ + n > b_.size()) throw ProtocolError("truncated string");
        std::string s(b_.data() + pos_, n);
        pos_ += n;
        return s;
    }
    Genome get_genome() {
        uint32_t n = get<uint32_t>();
        if (static_cast<size_t>(n) * 4 > b_.size() - pos_) throw ProtocolError("truncated genome");
        Genome g(n);
        for (auto& v : g) v = get<int32_t>();
        return g;
    }
    void done() const {
        if (pos_ != b_.size()) throw ProtocolError("trailing bytes in message");
    }

private:
    const std::vector<char>& b_;
    size_t pos_ = 0;
};

constexpr uint8_t kVersion = 2;

}  // namespace

std::vector<char> encode_work(const WorkMessage& m) {
    Writer w;
    w.put<uint8_t>(kVersion);
    w.put<int64_t>(m.job);
    w.put_genome(m.genome);
    w.put<double>(m.early_stop_below);
    return w.take();
}

WorkMessage decode_work(const std::vector<char>& bytes) {
    Reader r(bytes);
    if (r.get<uint8_t>() != kVersion) throw ProtocolError("protocol version mismatch");
    WorkMessage m;
    m.job = r.get<int64_t>();
    m.genome = r.get_genome();
    m.early_stop_below = r.get<double>();
    r.done();
    return m;
}

std::vector<char> encode_result(const ResultMessage& m) {
    const Evaluation& e = m.evaluation;
    Writer w;
    w.put<uint8_t>(kVersion);
    w.put<int64_t>(m.job);
    w.put_genome(e.genome);
    w.put<uint8_t>(e.ok ? 1 : 0);
    w.put_string(e.error);
    w.put<double>(e.accuracy);
    w.put<double>(e.size_bytes);
    w.put<double>(e.bops);
    w.put<double>(e.latency);
    w.put<double>(e.seconds);
    w.put<int32_t>(e.rank);
    w.put<double>(e.peak_rss_bytes);
    w.put<int64_t>(e.samples);
    return w.take();
}

ResultMessage decode_result(const std::vector<char>& bytes) {
    Reader r(bytes);
    if (r.get<uint8_t>() != kVersion) throw ProtocolError("protocol version mismatch");
    ResultMessage m;
    m.job = r.get<int64_t>();
    Evaluation& e = m.evaluation;
    e.genome = r.get_genome();
    e.ok = r.get<uint8_t>() != 0;
    e.error = r.get_string();
    e.accuracy = r.get<double>();
    e.size_bytes = r.get<double>();
    e.bops = r.get<double>();
    e.latency = r.get<double>();
    e.seconds = r.get<double>();
    e.rank = r.get<int32_t>();
    e.peak_rss_bytes = r.get<double>();
    e.samples = r.get<int64_t>();
    r.done();
    return m;
}

std::vector<char> encode_text(const std::string& s) {
    Writer w;
    w.put<uint8_t>(kVersion);
    w.put_string(s);
    return w.take();
}

std::string decode_text(const std::vector<char>& bytes) {
    Reader r(bytes);
    if (r.get<uint8_t>() != kVersion) throw ProtocolError("protocol version mismatch");
    std::string s = r.get_string();
    r.done();
    return s;
}

}  // namespace dcs::search
