#include "compress/dcz.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <stdexcept>

#include "common/error.hpp"
#include "compress/bitpack.hpp"
#include "compress/crc32.hpp"
#include "compress/huffman.hpp"
#include "common/cpu_features.hpp"
#include "compress/method.hpp"

namespace dcs::compress {

namespace {

constexpr std::array<uint8_t, 8> kMagic = {0x89, 'D', 'C', 'Z', '\r', '\n', 0x1A, '\n'};
constexpr size_t kHeaderBytes = 16;  // magic, version, flags
constexpr uint32_t kFlagHuffman = 1;
constexpr size_t kMaxRank = 8;

// ---------------------------------------------------------------------------------------------------
// Sinks. The serializer below is one template run over either sink, so the size and the bytes come
// from the same code. put_section(n, fill) declares n bytes and lets a storing sink fill them.

class CountingSink {
public:
    void put(const uint8_t*, size_t n) { count_ += n; }
    template <class Fill>
    void put_section(uint64_t n, const Fill&) {
        count_ += n;
    }
    void put_checksum() { count_ += 4; }
    uint64_t count() const { return count_; }

private:
    uint64_t count_ = 0;
};

class BufferSink {
public:
    explicit BufferSink(std::vector<uint8_t>& out) : out_(out) {}
    void put(const uint8_t* p, size_t n) { out_.insert(out_.end(), p, p + n); }
    template <class Fill>
    void put_section(uint64_t n, const Fill& fill) {
        const size_t at = out_.size();
        out_.resize(at + static_cast<size_t>(n), 0);
        const size_t written = fill(out_.data() + at, static_cast<size_t>(n));
        if (written != n)
            throw std::logic_error("dcz: a section declared " + std::to_string(n) + " bytes but produced " +
                                   std::to_string(written));
    }
    void put_checksum() {
        const uint32_t crc = crc32(out_.data(), out_.size());
        for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(crc >> (8 * i)));
    }

private:
    std::vector<uint8_t>& out_;
};

int varint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

size_t encode_varint(uint64_t v, uint8_t* p) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = static_cast<uint8_t>(v | 0x80);
        v >>= 7;
    }
    p[n++] = static_cast<uint8_t>(v);
    return n;
}

template <class Sink>
void put_u8(Sink& s, uint8_t v) {
    s.put(&v, 1);
}

template <class Sink>
void put_u32(Sink& s, uint32_t v) {
    const uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
                          static_cast<uint8_t>(v >> 24)};
    s.put(b, 4);
}

template <class Sink>
void put_varint(Sink& s, uint64_t v) {
    uint8_t b[10];
    s.put(b, encode_varint(v, b));
}

template <class Sink>
void put_string(Sink& s, const std::string& str) {
    put_varint(s, str.size());
    s.put(reinterpret_cast<const uint8_t*>(str.data()), str.size());
}

template <class Sink>
void put_floats(Sink& s, const float* v, size_t n) {
    s.put_section(4 * static_cast<uint64_t>(n), [&](uint8_t* p, size_t) {
        for (size_t i = 0; i < n; ++i) {
            uint32_t u;
            std::memcpy(&u, &v[i], 4);
            for (int b = 0; b < 4; ++b) *p++ = static_cast<uint8_t>(u >> (8 * b));
        }
        return 4 * n;
    });
}

// ---------------------------------------------------------------------------------------------------
// Layer planning: the storage decisions and sizes, made once per layer and shared by both sinks.

struct LayerPlan {
    Layout layout;
    int64_t n = 0;
    int64_t kept = 0;
    CodeMap map;
    DczLayerStats stats;
    std::vector<uint8_t> lengths;  // Huffman code lengths (2^bits entries) when coding == Huffman
};

uint64_t huffman_table_bytes(int bits) { return ((uint64_t{1} << bits) + 1) / 2; }

/// Kept elements (mask bytes 0 or 1) and kept/pruned transitions between neighbours, in blocks of 64K
/// with 32-bit sums (a loop that vectorizes).
DCS_VECTOR_CLONES void mask_counts(const uint8_t* __restrict m, size_t n, uint64_t* kept, uint64_t* transitions) {
    uint64_t k = n > 0 ? m[0] : 0, t = 0;
    for (size_t b = 1; b < n; b += 65536) {
        const size_t e = std::min(n, b + 65536);
        uint32_t kb = 0, tb = 0;
        for (size_t i = b; i < e; ++i) {
            kb += m[i];
            tb += static_cast<uint32_t>(m[i] ^ m[i - 1]);
        }
        k += kb;
        t += tb;
    }
    *kept = k;
    *transitions = t;
}

LayerPlan plan_layer(const std::string& name, const CompressedWeight& cw, bool huffman, bool check = true) {
    const std::string problem = check ? check_compressed_weight(cw) : std::string();
    if (!problem.empty()) throw std::invalid_argument("dcz layer '" + name + "': " + problem);
    if (cw.shape.size() > kMaxRank)
        throw std::invalid_argument("dcz layer '" + name + "': rank " + std::to_string(cw.shape.size()) + " above 8");
    LayerPlan p;
    p.layout = cw.layout();
    p.n = p.layout.numel();
    p.map = cw.method().code_map(cw.bits, cw.scheme);
    DczLayerStats& st = p.stats;

    // Sparse index. Each run costs at least one byte, so run lengths are only measured exactly when
    // there are fewer runs than bitmap bytes (then the loop's branches are rare and cheap).
    p.kept = p.n;
    if (!cw.mask.empty()) {
        const uint8_t* m = cw.mask.data();
        const auto n = static_cast<size_t>(p.n);
        uint64_t kept = 0, transitions = 0;
        mask_counts(m, n, &kept, &transitions);
        p.kept = static_cast<int64_t>(kept);
        if (p.kept < p.n) {
            const Layout& l = p.layout;
            st.index = SparseIndex::Bitmap;
            st.index_bytes = packed_bytes(n, 1);
            const uint64_t runs = transitions + 1 + (m[0] == 0 ? 1 : 0);  // the first (kept) run may be empty
            if (runs < st.index_bytes) {
                uint64_t run_bytes = 0, run = 0;
                uint8_t state = 1;
                for (size_t i = 0; i < n; ++i) {
                    if (m[i] != state) {
                        run_bytes += static_cast<uint64_t>(varint_size(run));
                        state = m[i];
                        run = 0;
                    }
                    ++run;
                }
                run_bytes += static_cast<uint64_t>(varint_size(run));
                if (run_bytes < st.index_bytes) {
                    st.index = SparseIndex::Runs;
                    st.index_bytes = run_bytes;
                }
            }
            const uint64_t channel_bytes = packed_bytes(static_cast<uint64_t>(l.channels), 1);
            if (channel_bytes <= st.index_bytes) {
                bool by_channel = true;  // is every channel entirely kept or entirely pruned?
                if (l.inner == 1) {      // every row must equal the first
                    const auto row_bytes = static_cast<size_t>(l.channels);
                    for (int64_t o = 1; o < l.outer && by_channel; ++o)
                        by_channel = std::memcmp(m + o * l.channels, m, row_bytes) == 0;
                } else {
                    const uint8_t* row = m;
                    for (int64_t o = 0; o < l.outer && by_channel; ++o)
                        for (int64_t c = 0; c < l.channels && by_channel; ++c) {
                            const uint8_t first = m[c * l.inner];
                            uint8_t differ = 0;
                            for (int64_t i = 0; i < l.inner; ++i) differ |= row[i] ^ first;
                            by_channel = differ == 0;
                            row += l.inner;
                        }
                }
                if (by_channel) {
                    st.index = SparseIndex::Channels;
                    st.index_bytes = channel_bytes;
                }
            }
        }
    }

    // Codes: fixed width, or Huffman when asked for and smaller.
    st.coding = CodeCoding::Fixed;
    st.code_bytes = packed_bytes(static_cast<uint64_t>(p.kept), cw.bits);
    if (huffman && p.kept > 0) {
        std::vector<uint64_t> freq(size_t{1} << cw.bits, 0);
        // Count container codes over all elements, then take the pruned ones back out. Four interleaved
        // tables avoid store-to-load stalls on runs of equal codes.
        std::array<std::array<uint64_t, 256>, 4> part{};
        const auto* codes = reinterpret_cast<const uint8_t*>(cw.codes.data());
        const size_t n = cw.codes.size();
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            ++part[0][codes[i]];
            ++part[1][codes[i + 1]];
            ++part[2][codes[i + 2]];
            ++part[3][codes[i + 3]];
        }
        for (; i < n; ++i) ++part[0][codes[i]];
        std::array<uint64_t, 256> by_code{};
        for (size_t v = 0; v < 256; ++v) by_code[v] = part[0][v] + part[1][v] + part[2][v] + part[3][v];
        if (!cw.mask.empty()) {
            const Layout& l = p.layout;
            if (cw.zero_points.empty() || cw.granularity == Granularity::PerTensor) {
                by_code[static_cast<uint8_t>(cw.pruned_code(0))] -= static_cast<uint64_t>(p.n - p.kept);
            } else {
                std::vector<int64_t> kept(static_cast<size_t>(l.channels), 0);  // kept per channel
                int64_t* kc = kept.data();
                const uint8_t* m = cw.mask.data();
                for (int64_t o = 0; o < l.outer; ++o) {
                    if (l.inner == 1) {  // a row of channels
                        for (int64_t c = 0; c < l.channels; ++c) kc[c] += m[c];
                        m += l.channels;
                        continue;
                    }
                    for (int64_t c = 0; c < l.channels; ++c) {
                        int64_t k = 0;
                        for (int64_t e = 0; e < l.inner; ++e) k += m[e];
                        kc[c] += k;
                        m += l.inner;
                    }
                }
                for (int64_t c = 0; c < l.channels; ++c)
                    by_code[static_cast<uint8_t>(cw.pruned_code(c))] -=
                        static_cast<uint64_t>(l.outer * l.inner - kept[static_cast<size_t>(c)]);
            }
        }
        for (int code = -128; code < 128; ++code)
            if (p.map.valid(code)) freq[p.map.pack(code)] = by_code[static_cast<uint8_t>(code)];
        std::vector<uint8_t> lengths = huffman_code_lengths(freq, kHuffmanMaxLength);
        const uint64_t bytes = huffman_table_bytes(cw.bits) + (huffman_coded_bits(freq, lengths) + 7) / 8;
        if (bytes < st.code_bytes) {
            st.coding = CodeCoding::Huffman;
            st.code_bytes = bytes;
            p.lengths = std::move(lengths);
        }
    }
    return p;
}

template <class Sink>
void put_layer(Sink& s, const std::string& name, const CompressedWeight& cw, const LayerPlan& p) {
    put_string(s, name);
    put_u8(s, static_cast<uint8_t>(cw.shape.size()));
    for (int64_t d : cw.shape) put_varint(s, static_cast<uint64_t>(d));
    put_varint(s, static_cast<uint64_t>(cw.out_axis));
    put_u8(s, cw.method_id);
    put_u8(s, static_cast<uint8_t>(cw.bits));
    put_u8(s, cw.scheme == Scheme::Asymmetric ? 1 : 0);
    put_u8(s, cw.granularity == Granularity::PerTensor ? 1 : 0);
    put_varint(s, cw.scales.size());
    put_floats(s, cw.scales.data(), cw.scales.size());
    put_varint(s, cw.zero_points.size());
    s.put(reinterpret_cast<const uint8_t*>(cw.zero_points.data()), cw.zero_points.size());
    put_varint(s, cw.codebook.size());
    put_floats(s, cw.codebook.data(), cw.codebook.size());

    const DczLayerStats& st = p.stats;
    put_u8(s, static_cast<uint8_t>(st.index));
    put_varint(s, st.index_bytes);
    s.put_section(st.index_bytes, [&](uint8_t* dst, size_t size) -> size_t {
        const Layout& l = p.layout;
        switch (st.index) {
            case SparseIndex::None:
                return 0;
            case SparseIndex::Channels: {
                BitWriter bw(dst, size);
                for (int64_t c = 0; c < l.channels; ++c) bw.put(cw.mask[static_cast<size_t>(c * l.inner)], 1);
                return bw.finish();
            }
            case SparseIndex::Bitmap: {
                BitWriter bw(dst, size);
                for (uint8_t m : cw.mask) bw.put(m, 1);
                return bw.finish();
            }
            case SparseIndex::Runs: {
                size_t at = 0;
                uint8_t state = 1;
                uint64_t run = 0;
                auto emit = [&] {
                    uint8_t b[10];
                    const size_t k = encode_varint(run, b);
                    if (at + k > size) throw std::logic_error("dcz: run-length index overflows its section");
                    std::memcpy(dst + at, b, k);
                    at += k;
                };
                for (uint8_t m : cw.mask) {
                    if (m != state) {
                        emit();
                        state = m;
                        run = 0;
                    }
                    ++run;
                }
                emit();
                return at;
            }
        }
        return 0;
    });

    put_u8(s, static_cast<uint8_t>(st.coding));
    put_varint(s, st.code_bytes);
    s.put_section(st.code_bytes, [&](uint8_t* dst, size_t size) -> size_t {
        const bool masked = !cw.mask.empty();
        if (st.coding == CodeCoding::Fixed) {
            BitWriter bw(dst, size);
            for (size_t i = 0; i < cw.codes.size(); ++i)
                if (!masked || cw.mask[i]) bw.put(p.map.pack(cw.codes[i]), cw.bits);
            return bw.finish();
        }
        const size_t table = static_cast<size_t>(huffman_table_bytes(cw.bits));
        for (size_t j = 0; j < p.lengths.size(); ++j)
            dst[j / 2] |= static_cast<uint8_t>(p.lengths[j] << (4 * (j % 2)));
        const std::vector<uint32_t> codes = huffman_canonical_codes(p.lengths);
        BitWriter bw(dst + table, size - table);
        for (size_t i = 0; i < cw.codes.size(); ++i)
            if (!masked || cw.mask[i]) {
                const uint32_t u = p.map.pack(cw.codes[i]);
                bw.put_msb_first(codes[u], p.lengths[u]);
            }
        return table + bw.finish();
    });
}

void check_other(const std::string& name, const FloatTensor& t) {
    if (t.shape.size() > kMaxRank)
        throw std::invalid_argument("dcz tensor '" + name + "': rank " + std::to_string(t.shape.size()) + " above 8");
    int64_t n = 1;
    for (int64_t d : t.shape) {
        if (d < 0 || (d > 0 && n > kMaxWeightElements / d))
            throw std::invalid_argument("dcz tensor '" + name + "': bad shape " + shape_string(t.shape));
        n *= d;
    }
    if (static_cast<size_t>(n) != t.data.size())
        throw std::invalid_argument("dcz tensor '" + name + "': shape " + shape_string(t.shape) + " needs " +
                                    std::to_string(n) + " values, got " + std::to_string(t.data.size()));
}

// The file is: head (magic, version, flags, structure, layer count), layer records, tail (other
// tensors, checksum).
template <class Sink>
void put_head(Sink& s, const std::vector<uint8_t>& graph, bool huffman, size_t layer_count) {
    s.put(kMagic.data(), kMagic.size());
    put_u32(s, kDczVersion);
    put_u32(s, huffman ? kFlagHuffman : 0);
    put_varint(s, graph.size());
    s.put(graph.data(), graph.size());
    put_varint(s, layer_count);
}

template <class Sink>
void put_tail(Sink& s, const std::vector<std::pair<std::string, FloatTensor>>& others) {
    put_varint(s, others.size());
    for (const auto& [name, t] : others) {
        check_other(name, t);
        put_string(s, name);
        put_u8(s, static_cast<uint8_t>(t.shape.size()));
        for (int64_t d : t.shape) put_varint(s, static_cast<uint64_t>(d));
        put_floats(s, t.data.data(), t.data.size());
    }
    s.put_checksum();
}

template <class Sink>
void serialize(const DczContents& c, Sink& s) {
    put_head(s, c.graph, c.huffman, c.layers.size());
    for (const auto& [name, cw] : c.layers) put_layer(s, name, cw, plan_layer(name, cw, c.huffman));
    put_tail(s, c.others);
}

// ---------------------------------------------------------------------------------------------------
// Reading. Every read is bounds-checked; any problem is an InputError naming the source.

class Cursor {
public:
    Cursor(const uint8_t* data, size_t begin, size_t end, const std::string& source)
        : data_(data), pos_(begin), end_(end), source_(source) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw InputError(source_ + ": corrupt .dcz file: " + what + " (at byte " + std::to_string(pos_) + ")");
    }
    size_t remaining() const { return end_ - pos_; }
    size_t pos() const { return pos_; }
    const uint8_t* take(uint64_t n, const char* what) {
        if (n > remaining()) fail(std::string(what) + " runs past the end");
        const uint8_t* p = data_ + pos_;
        pos_ += static_cast<size_t>(n);
        return p;
    }
    uint8_t u8(const char* what) { return *take(1, what); }
    uint64_t varint(const char* what) {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            const uint8_t b = u8(what);
            if (shift == 63 && b > 1) fail(std::string(what) + ": varint overflows 64 bits");
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        fail(std::string(what) + ": varint longer than 10 bytes");
    }
    /// A count of items of `item_bytes` each that must still fit in the data.
    uint64_t count(uint64_t item_bytes, const char* what) {
        const uint64_t n = varint(what);
        if (item_bytes > 0 && n > remaining() / item_bytes) fail(std::string(what) + " " + std::to_string(n) + " too large");
        return n;
    }
    std::string string(const char* what) {
        const uint64_t n = count(1, what);
        const uint8_t* p = take(n, what);
        return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    }
    std::vector<float> floats(uint64_t n, const char* what) {
        const uint8_t* p = take(4 * n, what);
        std::vector<float> v(static_cast<size_t>(n));
        for (size_t i = 0; i < v.size(); ++i) {
            const uint32_t u = uint32_t{p[4 * i]} | uint32_t{p[4 * i + 1]} << 8 | uint32_t{p[4 * i + 2]} << 16 |
                               uint32_t{p[4 * i + 3]} << 24;
            std::memcpy(&v[i], &u, 4);
        }
        return v;
    }

private:
    const uint8_t* data_;
    size_t pos_, end_;
    const std::string& source_;
};

CompressedWeight parse_layer(Cursor& in, std::string* name, uint64_t max_elements) {
    *name = in.string("layer name");
    CompressedWeight cw;
    const uint8_t rank = in.u8("layer rank");
    if (rank < 1 || rank > kMaxRank) in.fail("layer '" + *name + "' has rank " + std::to_string(rank));
    uint64_t n = 1;
    for (uint8_t a = 0; a < rank; ++a) {
        const uint64_t d = in.varint("layer dimension");
        if (d < 1 || d > max_elements / n)
            in.fail("layer '" + *name + "' has an implausible shape (dimension " + std::to_string(d) + ")");
        n *= d;
        cw.shape.push_back(static_cast<int64_t>(d));
    }
    const uint64_t out_axis = in.varint("out_axis");
    if (out_axis >= rank) in.fail("layer '" + *name + "' out_axis " + std::to_string(out_axis) + " >= rank");
    cw.out_axis = static_cast<int64_t>(out_axis);
    cw.method_id = in.u8("method id");
    const WeightMethod* method = find_method(cw.method_id);
    if (!method) in.fail("layer '" + *name + "' uses unknown method id " + std::to_string(cw.method_id));
    cw.bits = in.u8("bits");
    if (cw.bits < method->min_bits || cw.bits > method->max_bits)
        in.fail("layer '" + *name + "': method " + method->name + " with " + std::to_string(cw.bits) + " bits");
    const uint8_t scheme = in.u8("scheme"), granularity = in.u8("granularity");
    if (scheme > 1 || granularity > 1) in.fail("layer '" + *name + "': bad scheme or granularity byte");
    cw.scheme = scheme ? Scheme::Asymmetric : Scheme::Symmetric;
    cw.granularity = granularity ? Granularity::PerTensor : Granularity::PerChannel;
    cw.scales = in.floats(in.count(4, "scale count"), "scales");
    const uint64_t zps = in.count(1, "zero point count");
    const uint8_t* zp = in.take(zps, "zero points");
    cw.zero_points.assign(reinterpret_cast<const int8_t*>(zp), reinterpret_cast<const int8_t*>(zp) + zps);
    cw.codebook = in.floats(in.count(4, "codebook size"), "codebook");
    const std::string side = method->check(cw);
    if (!side.empty()) in.fail("layer '" + *name + "': " + side);

    // Sparse index -> mask.
    const Layout l = cw.layout();
    const uint8_t index = in.u8("index kind");
    const uint64_t index_bytes = in.count(1, "index size");
    const uint8_t* ip = in.take(index_bytes, "sparse index");
    auto expect_bytes = [&](uint64_t want) {
        if (index_bytes != want)
            in.fail("layer '" + *name + "': sparse index of " + std::to_string(index_bytes) + " bytes, expected " +
                    std::to_string(want));
    };
    switch (index) {
        case static_cast<uint8_t>(SparseIndex::None):
            expect_bytes(0);
            break;
        case static_cast<uint8_t>(SparseIndex::Channels): {
            expect_bytes(packed_bytes(static_cast<uint64_t>(l.channels), 1));
            cw.mask.resize(static_cast<size_t>(n));
            uint8_t* m = cw.mask.data();
            for (int64_t o = 0; o < l.outer; ++o)
                for (int64_t c = 0; c < l.channels; ++c) {
                    std::memset(m, (ip[c / 8] >> (c % 8)) & 1, static_cast<size_t>(l.inner));
                    m += l.inner;
                }
            break;
        }
        case static_cast<uint8_t>(SparseIndex::Bitmap):
            expect_bytes(packed_bytes(n, 1));
            cw.mask.resize(static_cast<size_t>(n));
            for (uint64_t i = 0; i < n; ++i) cw.mask[i] = (ip[i / 8] >> (i % 8)) & 1;
            break;
        case static_cast<uint8_t>(SparseIndex::Runs): {
            Cursor runs(ip, 0, static_cast<size_t>(index_bytes), *name);
            cw.mask.resize(static_cast<size_t>(n));
            uint64_t filled = 0;
            uint8_t state = 1;
            while (filled < n) {
                if (runs.remaining() == 0) in.fail("layer '" + *name + "': run-length index ends early");
                uint64_t run = 0;
                try {
                    run = runs.varint("run length");
                } catch (const InputError&) {
                    in.fail("layer '" + *name + "': bad run length");
                }
                if (run > n - filled) in.fail("layer '" + *name + "': runs cover more than the layer");
                std::memset(cw.mask.data() + filled, state, static_cast<size_t>(run));
                filled += run;
                state ^= 1;
            }
            if (runs.remaining() != 0) in.fail("layer '" + *name + "': bytes after the run-length index");
            break;
        }
        default:
            in.fail("layer '" + *name + "': unknown sparse index kind " + std::to_string(index));
    }
    uint64_t kept = n;
    if (!cw.mask.empty()) {
        kept = 0;
        for (uint8_t m : cw.mask) kept += m;
        if (kept == n) cw.mask.clear();
    }

    // Codes.
    const CodeMap map = method->code_map(cw.bits, cw.scheme);
    const auto symbols = static_cast<uint32_t>(map.symbols());
    const uint8_t coding = in.u8("code coding");
    const uint64_t code_bytes = in.count(1, "code size");
    const uint8_t* cp = in.take(code_bytes, "codes");
    cw.codes.resize(static_cast<size_t>(n));
    auto fill_codes = [&](auto next_symbol) {
        size_t i = 0;
        for (int64_t o = 0; o < l.outer; ++o)
            for (int64_t c = 0; c < l.channels; ++c) {
                const int8_t zero = cw.pruned_code(c);
                for (int64_t e = 0; e < l.inner; ++e, ++i) {
                    if (cw.is_pruned(static_cast<int64_t>(i))) {
                        cw.codes[i] = zero;
                        continue;
                    }
                    const uint32_t u = next_symbol();
                    if (u >= symbols) in.fail("layer '" + *name + "': code value " + std::to_string(u) + " out of range");
                    cw.codes[i] = static_cast<int8_t>(map.unpack(u));
                }
            }
    };
    if (coding == static_cast<uint8_t>(CodeCoding::Fixed)) {
        if (code_bytes != packed_bytes(kept, cw.bits))
            in.fail("layer '" + *name + "': " + std::to_string(code_bytes) + " code bytes for " + std::to_string(kept) +
                    " codes of " + std::to_string(cw.bits) + " bits");
        BitReader br(cp, static_cast<size_t>(code_bytes));
        fill_codes([&] {
            uint32_t u = 0;
            br.get(cw.bits, &u);  // sizes checked above
            return u;
        });
    } else if (coding == static_cast<uint8_t>(CodeCoding::Huffman)) {
        const uint64_t table = huffman_table_bytes(cw.bits);
        if (code_bytes < table) in.fail("layer '" + *name + "': Huffman table cut short");
        std::vector<uint8_t> lengths(size_t{1} << cw.bits);
        for (size_t j = 0; j < lengths.size(); ++j) lengths[j] = (cp[j / 2] >> (4 * (j % 2))) & 0xf;
        std::unique_ptr<HuffmanDecoder> decoder;
        try {
            decoder = std::make_unique<HuffmanDecoder>(lengths);
        } catch (const std::invalid_argument& e) {
            in.fail("layer '" + *name + "': " + e.what());
        }
        BitReader br(cp + table, static_cast<size_t>(code_bytes - table));
        fill_codes([&] {
            uint32_t u = 0;
            if (!decoder->decode(br, &u)) in.fail("layer '" + *name + "': Huffman stream invalid or cut short");
            return u;
        });
        if ((br.bits_read() + 7) / 8 != code_bytes - table) in.fail("layer '" + *name + "': bytes after the Huffman stream");
    } else {
        in.fail("layer '" + *name + "': unknown code coding " + std::to_string(coding));
    }
    const std::string problem = check_compressed_weight(cw);
    if (!problem.empty()) in.fail("layer '" + *name + "': " + problem);
    return cw;
}

DczContents parse_body(const uint8_t* data, size_t size, const std::string& source) {
    auto fail = [&](const std::string& what) { throw InputError(source + ": " + what); };
    if (size < kHeaderBytes + 4)
        fail("truncated .dcz file (" + std::to_string(size) + " bytes)");
    if (!std::equal(kMagic.begin(), kMagic.end(), data)) fail("not a .dcz file (bad magic number)");
    const uint32_t version = uint32_t{data[8]} | uint32_t{data[9]} << 8 | uint32_t{data[10]} << 16 | uint32_t{data[11]} << 24;
    if (version != kDczVersion)
        fail("unsupported .dcz version " + std::to_string(version) + " (this build reads " + std::to_string(kDczVersion) + ")");
    const size_t body_end = size - 4;
    const uint32_t stored = uint32_t{data[body_end]} | uint32_t{data[body_end + 1]} << 8 |
                            uint32_t{data[body_end + 2]} << 16 | uint32_t{data[body_end + 3]} << 24;
    if (crc32(data, body_end) != stored) fail("checksum mismatch: the .dcz file is truncated or corrupt");
    const uint32_t flags = uint32_t{data[12]} | uint32_t{data[13]} << 8 | uint32_t{data[14]} << 16 | uint32_t{data[15]} << 24;
    if (flags & ~kFlagHuffman) fail("corrupt .dcz file: unknown flags " + std::to_string(flags));

    // Implausibly large tensors are rejected before anything is allocated for them: a real layer needs
    // at least one bit per kept weight, so its element count is bounded by the file size.
    const uint64_t max_elements = std::min<uint64_t>(
        static_cast<uint64_t>(kMaxWeightElements), std::max<uint64_t>(uint64_t{1} << 26, 1024 * static_cast<uint64_t>(size)));
    Cursor in(data, kHeaderBytes, body_end, source);
    DczContents c;
    c.huffman = (flags & kFlagHuffman) != 0;
    const uint64_t graph = in.count(1, "graph size");
    const uint8_t* g = in.take(graph, "graph");
    c.graph.assign(g, g + graph);
    const uint64_t layers = in.count(8, "layer count");  // a layer record has at least 8 bytes
    for (uint64_t k = 0; k < layers; ++k) {
        std::string name;
        CompressedWeight cw = parse_layer(in, &name, max_elements);
        c.layers.emplace_back(std::move(name), std::move(cw));
    }
    const uint64_t others = in.count(2, "tensor count");
    for (uint64_t k = 0; k < others; ++k) {
        std::string name = in.string("tensor name");
        FloatTensor t;
        const uint8_t rank = in.u8("tensor rank");
        if (rank > kMaxRank) in.fail("tensor '" + name + "' has rank " + std::to_string(rank));
        uint64_t n = 1;
        for (uint8_t a = 0; a < rank; ++a) {
            const uint64_t d = in.varint("tensor dimension");
            if (d > max_elements || (n > 0 && d > max_elements / n))
                in.fail("tensor '" + name + "' has an implausible shape");
            n *= d;
            t.shape.push_back(static_cast<int64_t>(d));
        }
        if (n > in.remaining() / 4) in.fail("tensor '" + name + "' data runs past the end");
        t.data = in.floats(n, "tensor data");
        c.others.emplace_back(std::move(name), std::move(t));
    }
    if (in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " unexpected bytes before the checksum");
    return c;
}

}  // namespace

DczLayerStats dcz_layer_stats(const std::string& name, const CompressedWeight& cw, bool huffman, bool check) {
    const LayerPlan p = plan_layer(name, cw, huffman, check);
    CountingSink counter;
    put_layer(counter, name, cw, p);
    DczLayerStats st = p.stats;
    st.bytes = counter.count();
    return st;
}

uint64_t dcz_frame_bytes(const DczContents& contents) {
    CountingSink counter;
    put_head(counter, contents.graph, contents.huffman, contents.layers.size());
    put_tail(counter, contents.others);
    return counter.count();
}

uint64_t dcz_size(const DczContents& contents) {
    CountingSink counter;
    serialize(contents, counter);
    return counter.count();
}

std::vector<uint8_t> dcz_bytes(const DczContents& contents) {
    std::vector<uint8_t> out;
    out.reserve(static_cast<size_t>(dcz_size(contents)));
    BufferSink sink(out);
    serialize(contents, sink);
    return out;
}

void write_dcz(const DczContents& contents, const std::string& path) {
    const std::vector<uint8_t> bytes = dcz_bytes(contents);
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    const int write_errno = errno;
    if (std::fclose(f) != 0 || !ok) {
        std::remove(tmp.c_str());
        throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(ok ? errno : write_errno));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
    }
}

DczContents parse_dcz(const uint8_t* data, size_t size, const std::string& source) {
    try {
        return parse_body(data, size, source);
    } catch (const std::bad_alloc&) {
        throw InputError(source + ": corrupt .dcz file: sizes too large to allocate");
    } catch (const std::length_error&) {
        throw InputError(source + ": corrupt .dcz file: sizes too large to allocate");
    }
}

DczContents read_dcz(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw InputError("cannot open " + path + ": " + std::strerror(errno));
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw InputError("cannot read " + path);
    return parse_dcz(bytes.data(), bytes.size(), path);
}

}  // namespace dcs::compress
