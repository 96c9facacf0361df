#include "compress/bitpack.hpp"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <vector>

using namespace dcs::compress;

// Golden by hand (and Python: acc |= v << n, LSB first): 5 in 3 bits, 1 in 1 bit, 0xAB in 8 bits,
// 3 in 2 bits -> byte 0 = 0xB | 1 << 3 | 5 ... = 0xBD, byte 1 = 0b0011'1010 = 0x3A.
TEST(BitWriter, GoldenLsbFirst) {
    uint8_t buf[2] = {0xff, 0xff};
    BitWriter w(buf, 2);
    w.put(5, 3);
    w.put(1, 1);
    w.put(0xAB, 8);
    w.put(3, 2);
    EXPECT_EQ(w.finish(), 2u);
    EXPECT_EQ(buf[0], 0xBD);
    EXPECT_EQ(buf[1], 0x3A);  // the two unused high bits are zero
}

TEST(BitWriter, MsbFirstCodes) {
    uint8_t buf[1] = {0};
    BitWriter w(buf, 1);
    w.put_msb_first(0b110, 3);  // bits 1, 1, 0 land at bit positions 0, 1, 2
    w.put_msb_first(0b01, 2);   // 0, 1 at positions 3, 4
    EXPECT_EQ(w.finish(), 1u);
    EXPECT_EQ(buf[0], 0b10011);
}

TEST(BitWriter, OverflowIsALogicError) {
    uint8_t buf[1];
    BitWriter w(buf, 1);
    w.put(0xff, 8);
    EXPECT_THROW(w.put(0xff, 8), std::logic_error);  // a second full byte
    BitWriter v(buf, 1);
    v.put(0xff, 8);
    v.put(1, 1);
    EXPECT_THROW(v.finish(), std::logic_error);
    EXPECT_EQ(packed_bytes(9, 1), 2u);
    EXPECT_EQ(packed_bytes(3, 3), 2u);
    EXPECT_EQ(packed_bytes(0, 8), 0u);
}

TEST(BitReader, RoundTripEveryWidth) {
    std::mt19937 rng(3);
    for (int bits = 1; bits <= 32; ++bits) {
        std::vector<uint32_t> values(101);
        for (auto& v : values) v = bits == 32 ? rng() : rng() & ((1u << bits) - 1);
        std::vector<uint8_t> buf(packed_bytes(values.size(), bits));
        BitWriter w(buf.data(), buf.size());
        for (uint32_t v : values) w.put(v, bits);
        ASSERT_EQ(w.finish(), buf.size());
        BitReader r(buf.data(), buf.size());
        for (uint32_t v : values) {
            uint32_t got = 0;
            ASSERT_TRUE(r.get(bits, &got));
            ASSERT_EQ(got, v) << "bits " << bits;
        }
        uint32_t rest = 0;
        EXPECT_EQ(r.get(8, &rest), (buf.size() * 8 - values.size() * bits) >= 8);
    }
}

TEST(BitReader, NeverReadsPastTheEnd) {
    const uint8_t buf[1] = {0xA5};
    BitReader r(buf, 1);
    uint32_t v = 7;
    EXPECT_FALSE(r.get(9, &v));
    EXPECT_EQ(v, 7u);
    EXPECT_TRUE(r.get(8, &v));
    EXPECT_EQ(v, 0xA5u);
    EXPECT_FALSE(r.get_bit(&v));
    EXPECT_TRUE(r.get(0, &v));
    EXPECT_EQ(r.bits_read(), 8u);
    BitReader empty(nullptr, 0);
    EXPECT_FALSE(empty.get(1, &v));
}
