#pragma once
/// Bit-level packing used by the .dcz format. Bits are stored LSB-first: value bit 0 goes to the lowest
/// free bit of the current byte, and a byte is complete after 8 bits. Huffman codes are written one bit
/// at a time, most significant code bit first, through the same writer.
#include <cstddef>
#include <cstdint>

namespace dcs::compress {

/// Bytes needed for `count` values of `bits` bits each: ceil(count * bits / 8).
inline uint64_t packed_bytes(uint64_t count, int bits) { return (count * static_cast<uint64_t>(bits) + 7) / 8; }

/// Writes bit fields into a caller-sized buffer. Unused bits of the last byte are zero.
class BitWriter {
public:
    /// @param dst  buffer of `size` bytes; the writer owns no memory
    BitWriter(uint8_t* dst, size_t size) : dst_(dst), size_(size) {}
    /// Appends the low `nbits` bits of `value` (nbits 0..32).
    /// @throws std::logic_error when the buffer would overflow (a sizing bug, not bad input)
    void put(uint32_t value, int nbits);
    /// Appends the `length` low bits of `code`, most significant first (Huffman codes, length 0..32).
    void put_msb_first(uint32_t code, int length);
    /// Writes out the partial last byte; returns the bytes written in total.
    size_t finish();

private:
    void flush_bytes();
    uint8_t* dst_;
    size_t size_;
    size_t pos_ = 0;
    uint64_t acc_ = 0;
    int count_ = 0;
};

/// Reads bit fields written by BitWriter. Never reads past the buffer.
class BitReader {
public:
    BitReader(const uint8_t* src, size_t size) : src_(src), size_(size) {}
    /// Reads `nbits` bits (0..32) into *value; false (and *value untouched) when fewer remain.
    bool get(int nbits, uint32_t* value);
    /// Reads one bit; false when none remain.
    bool get_bit(uint32_t* bit) { return get(1, bit); }
    /// Bits consumed so far.
    uint64_t bits_read() const { return bit_pos_; }

private:
    const uint8_t* src_;
    size_t size_;
    uint64_t bit_pos_ = 0;
};

}  // namespace dcs::compress
