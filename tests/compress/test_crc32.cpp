#include "compress/crc32.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace dcs::compress;

// Check values of CRC-32/ISO-HDLC (also Python's zlib.crc32): "123456789" -> 0xCBF43926,
// "The quick brown fox jumps over the lazy dog" -> 0x414FA339.
TEST(Crc32, CheckValues) {
    const char* a = "123456789";
    EXPECT_EQ(crc32(reinterpret_cast<const uint8_t*>(a), std::strlen(a)), 0xCBF43926u);
    const char* b = "The quick brown fox jumps over the lazy dog";
    EXPECT_EQ(crc32(reinterpret_cast<const uint8_t*>(b), std::strlen(b)), 0x414FA339u);
    EXPECT_EQ(crc32(nullptr, 0), 0u);
}

TEST(Crc32, Incremental) {
    const char* a = "The quick brown fox jumps over the lazy dog";
    const auto* p = reinterpret_cast<const uint8_t*>(a);
    EXPECT_EQ(crc32(p + 10, std::strlen(a) - 10, crc32(p, 10)), 0x414FA339u);
}
