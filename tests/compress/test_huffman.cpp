#include "compress/huffman.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

using namespace dcs::compress;

// RFC 1951 section 3.2.2's example: lengths (3, 3, 3, 3, 3, 2, 4, 4) for A..H give the codes
// 010 011 100 101 110 00 1110 1111.
TEST(Huffman, CanonicalCodesRfc1951) {
    const std::vector<uint8_t> lengths = {3, 3, 3, 3, 3, 2, 4, 4};
    EXPECT_EQ(huffman_canonical_codes(lengths),
              (std::vector<uint32_t>{0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111}));
}

// By hand: weights A 10, B 1, C 1, D 2. Merge B+C (2), then D (2, created earlier) with BC (2) into 4,
// then A with 4: depths A 1, D 2, B 3, C 3.
TEST(Huffman, LengthsGolden) {
    EXPECT_EQ(huffman_code_lengths({10, 1, 1, 2}), (std::vector<uint8_t>{1, 3, 3, 2}));
    EXPECT_EQ(huffman_code_lengths({0, 5, 0}), (std::vector<uint8_t>{0, 1, 0}));  // a single symbol: 1 bit
    EXPECT_EQ(huffman_code_lengths({0, 0}), (std::vector<uint8_t>{0, 0}));
    EXPECT_EQ(huffman_code_lengths({3, 3}), (std::vector<uint8_t>{1, 1}));
    EXPECT_EQ(huffman_coded_bits({10, 1, 1, 2}, {1, 3, 3, 2}), 10u + 3 + 3 + 4);
    EXPECT_THROW(huffman_code_lengths({1, 2}, 0), std::invalid_argument);
    EXPECT_THROW(huffman_code_lengths(std::vector<uint64_t>(5, 1), 2), std::invalid_argument);
}

// Fibonacci weights make the deepest unlimited code: 25 symbols need depth 24; the limit brings it to 15.
TEST(Huffman, LengthLimit) {
    std::vector<uint64_t> freq = {1, 1};
    while (freq.size() < 25) freq.push_back(freq[freq.size() - 1] + freq[freq.size() - 2]);
    const std::vector<uint8_t> unlimited = huffman_code_lengths(freq, 32);
    EXPECT_EQ(*std::max_element(unlimited.begin(), unlimited.end()), 24);
    const std::vector<uint8_t> lengths = huffman_code_lengths(freq, 15);
    double kraft = 0;
    for (uint8_t l : lengths) {
        EXPECT_GE(l, 1);
        EXPECT_LE(l, 15);
        kraft += std::ldexp(1.0, -l);
    }
    EXPECT_LE(kraft, 1.0);
    EXPECT_NO_THROW(HuffmanDecoder{lengths});
}

TEST(Huffman, RoundTripRandomSkewedSymbols) {
    std::mt19937 rng(5);
    for (int alphabet : {2, 4, 16, 256}) {
        std::geometric_distribution<int> geo(0.3);
        std::vector<uint32_t> symbols(5000);
        std::vector<uint64_t> freq(static_cast<size_t>(alphabet), 0);
        for (auto& s : symbols) {
            s = static_cast<uint32_t>(std::min(geo(rng), alphabet - 1));
            ++freq[s];
        }
        const std::vector<uint8_t> lengths = huffman_code_lengths(freq);
        const std::vector<uint32_t> codes = huffman_canonical_codes(lengths);
        const uint64_t bits = huffman_coded_bits(freq, lengths);
        std::vector<uint8_t> buf((bits + 7) / 8);
        BitWriter w(buf.data(), buf.size());
        for (uint32_t s : symbols) w.put_msb_first(codes[s], lengths[s]);
        ASSERT_EQ(w.finish(), buf.size());
        const HuffmanDecoder d(lengths);
        BitReader r(buf.data(), buf.size());
        for (uint32_t s : symbols) {
            uint32_t got;
            ASSERT_TRUE(d.decode(r, &got));
            ASSERT_EQ(got, s);
        }
        EXPECT_EQ((r.bits_read() + 7) / 8, buf.size());
    }
}

TEST(Huffman, DecoderRejectsBadCodes) {
    EXPECT_THROW(HuffmanDecoder({1, 1, 1}), std::invalid_argument);  // oversubscribed
    EXPECT_THROW(HuffmanDecoder({16, 1}), std::invalid_argument);    // too long
    EXPECT_THROW(huffman_canonical_codes({1, 1, 1}), std::invalid_argument);
    // An incomplete code is accepted; a bit pattern outside it decodes to nothing.
    const HuffmanDecoder d({1, 0});
    const uint8_t one = 0x01, zero = 0x00;
    BitReader r1(&one, 1), r0(&zero, 1), empty(nullptr, 0);
    uint32_t s;
    EXPECT_TRUE(d.decode(r0, &s));
    EXPECT_EQ(s, 0u);
    EXPECT_FALSE(d.decode(r1, &s));
    EXPECT_FALSE(d.decode(empty, &s));
}
