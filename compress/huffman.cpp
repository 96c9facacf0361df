#include "compress/huffman.hpp"

#include <algorithm>
#include <queue>
#include <stdexcept>
#include <string>

namespace dcs::compress {

namespace {

/// Unlimited Huffman code lengths; 0 for unused symbols.
std::vector<uint8_t> plain_lengths(const std::vector<uint64_t>& freq, int* longest) {
    const size_t n = freq.size();
    std::vector<uint8_t> lengths(n, 0);
    struct Node {
        uint64_t weight;
        size_t order;  // creation order: leaves by symbol, then merged nodes
    };
    auto heavier = [](const Node& a, const Node& b) {
        return a.weight > b.weight || (a.weight == b.weight && a.order > b.order);
    };
    std::priority_queue<Node, std::vector<Node>, decltype(heavier)> heap(heavier);
    std::vector<size_t> parent;  // by order
    std::vector<size_t> leaf_order(n, SIZE_MAX);
    for (size_t s = 0; s < n; ++s)
        if (freq[s] > 0) {
            leaf_order[s] = parent.size();
            heap.push({freq[s], parent.size()});
            parent.push_back(SIZE_MAX);
        }
    *longest = 0;
    if (parent.empty()) return lengths;
    if (parent.size() == 1) {
        for (size_t s = 0; s < n; ++s)
            if (freq[s] > 0) lengths[s] = 1;
        *longest = 1;
        return lengths;
    }
    while (heap.size() > 1) {
        const Node a = heap.top();
        heap.pop();
        const Node b = heap.top();
        heap.pop();
        const size_t id = parent.size();
        parent.push_back(SIZE_MAX);
        parent[a.order] = id;
        parent[b.order] = id;
        heap.push({a.weight + b.weight, id});
    }
    // Node depth = parent depth + 1; parents are created after their children, so sweep backwards.
    std::vector<int> depth(parent.size(), 0);
    for (size_t id = parent.size(); id-- > 0;)
        if (parent[id] != SIZE_MAX) depth[id] = depth[parent[id]] + 1;
    for (size_t s = 0; s < n; ++s)
        if (leaf_order[s] != SIZE_MAX) {
            const int d = depth[leaf_order[s]];
            *longest = std::max(*longest, d);
            lengths[s] = static_cast<uint8_t>(std::min(d, 255));
        }
    return lengths;
}

}  // namespace

std::vector<uint8_t> huffman_code_lengths(const std::vector<uint64_t>& freq, int max_length) {
    if (max_length < 1 || max_length > 32)
        throw std::invalid_argument("huffman: max_length must be in 1..32, got " + std::to_string(max_length));
    if (max_length < 32 && freq.size() > (size_t{1} << max_length))
        throw std::invalid_argument("huffman: " + std::to_string(freq.size()) + " symbols do not fit codes of " +
                                    std::to_string(max_length) + " bits");
    std::vector<uint64_t> f = freq;
    for (;;) {
        int longest = 0;
        std::vector<uint8_t> lengths = plain_lengths(f, &longest);
        if (longest <= max_length) return lengths;
        for (uint64_t& x : f) x = (x + 1) / 2;
    }
}

std::vector<uint32_t> huffman_canonical_codes(const std::vector<uint8_t>& lengths) {
    std::vector<uint32_t> count(33, 0);
    for (uint8_t l : lengths) {
        if (l > 32) throw std::invalid_argument("huffman: code length " + std::to_string(l) + " exceeds 32");
        ++count[l];
    }
    count[0] = 0;
    std::vector<uint64_t> next(34, 0);
    uint64_t code = 0;
    for (int len = 1; len <= 32; ++len) {
        code = (code + count[static_cast<size_t>(len - 1)]) << 1;
        next[static_cast<size_t>(len)] = code;
        if (count[static_cast<size_t>(len)] > 0 && code + count[static_cast<size_t>(len)] > (uint64_t{1} << len))
            throw std::invalid_argument("huffman: code lengths oversubscribe the code space");
    }
    std::vector<uint32_t> codes(lengths.size(), 0);
    for (size_t s = 0; s < lengths.size(); ++s)
        if (lengths[s] > 0) codes[s] = static_cast<uint32_t>(next[lengths[s]]++);
    return codes;
}

uint64_t huffman_coded_bits(const std::vector<uint64_t>& freq, const std::vector<uint8_t>& lengths) {
    uint64_t bits = 0;
    for (size_t s = 0; s < freq.size() && s < lengths.size(); ++s) bits += freq[s] * lengths[s];
    return bits;
}

HuffmanDecoder::HuffmanDecoder(const std::vector<uint8_t>& lengths) : count_(kHuffmanMaxLength + 1, 0) {
    for (uint8_t l : lengths) {
        if (l > kHuffmanMaxLength)
            throw std::invalid_argument("huffman: code length " + std::to_string(l) + " exceeds " +
                                        std::to_string(kHuffmanMaxLength));
        ++count_[l];
    }
    count_[0] = 0;
    int64_t left = 1;  // unused codes of the current length
    for (int len = 1; len <= kHuffmanMaxLength; ++len) {
        left = left * 2 - count_[static_cast<size_t>(len)];
        if (left < 0) throw std::invalid_argument("huffman: code lengths oversubscribe the code space");
    }
    for (int len = 1; len <= kHuffmanMaxLength; ++len)
        for (size_t s = 0; s < lengths.size(); ++s)
            if (lengths[s] == len) symbols_.push_back(static_cast<uint32_t>(s));
}

bool HuffmanDecoder::decode(BitReader& in, uint32_t* symbol) const {
    uint32_t code = 0, first = 0, index = 0;
    for (int len = 1; len <= kHuffmanMaxLength; ++len) {
        uint32_t bit;
        if (!in.get_bit(&bit)) return false;
        code |= bit;
        const uint32_t n = count_[static_cast<size_t>(len)];
        if (code - first < n) {
            *symbol = symbols_[index + code - first];
            return true;
        }
        index += n;
        first = (first + n) << 1;
        code <<= 1;
    }
    return false;
}

}  // namespace dcs::compress
