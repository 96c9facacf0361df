#pragma once
/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum zlib, PNG and gzip use.
#include <cstddef>
#include <cstdint>

namespace dcs::compress {

/// CRC-32 of `size` bytes, continuing from `crc` (0 to start): crc32(b, crc32(a)) == crc32(a + b).
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace dcs::compress
