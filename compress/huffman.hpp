#pragma once
/// Canonical, length-limited Huffman coding of code symbols (Deep Compression's last stage).
/// A code is fully described by its code lengths; codes are assigned canonically (shorter first, then
/// by symbol), as in DEFLATE.
#include <cstdint>
#include <vector>

#include "compress/bitpack.hpp"

namespace dcs::compress {

/// Longest code length the .dcz format stores (4 bits per length).
inline constexpr int kHuffmanMaxLength = 15;

/// Code lengths of a Huffman code for `freq` (0 for symbols with frequency 0; a single used symbol gets
/// length 1). Deterministic: equal weights are merged in order of creation (leaves by symbol first).
/// When the longest code would exceed `max_length`, the frequencies are halved (rounding up, so used
/// symbols stay used) and the code rebuilt until it fits.
/// @param freq       per-symbol counts, at most 2^max_length symbols
/// @param max_length 1..32
/// @throws std::invalid_argument when there are more symbols than 2^max_length or max_length is out of range
std::vector<uint8_t> huffman_code_lengths(const std::vector<uint64_t>& freq, int max_length = kHuffmanMaxLength);

/// Canonical codes for `lengths`: codes[s] holds lengths[s] bits, to be written most significant first.
/// @throws std::invalid_argument when the lengths oversubscribe the code space or exceed 32
std::vector<uint32_t> huffman_canonical_codes(const std::vector<uint8_t>& lengths);

/// Total coded bits: sum of freq[s] * lengths[s].
uint64_t huffman_coded_bits(const std::vector<uint64_t>& freq, const std::vector<uint8_t>& lengths);

/// Decodes symbols of the canonical code given by its lengths (puff.c's counting decoder).
class HuffmanDecoder {
public:
    /// @throws std::invalid_argument when a length exceeds kHuffmanMaxLength or the lengths
    ///         oversubscribe the code space (incomplete codes are allowed)
    explicit HuffmanDecoder(const std::vector<uint8_t>& lengths);
    /// Reads one symbol; false when the bits run out or match no code.
    bool decode(BitReader& in, uint32_t* symbol) const;

private:
    std::vector<uint32_t> count_;    ///< codes of each length
    std::vector<uint32_t> symbols_;  ///< symbols ordered by (length, symbol)
};

}  // namespace dcs::compress
