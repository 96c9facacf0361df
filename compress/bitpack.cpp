#include "compress/bitpack.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace dcs::compress {

void BitWriter::flush_bytes() {
    while (count_ >= 8) {
        if (pos_ >= size_) throw std::logic_error("BitWriter: buffer of " + std::to_string(size_) + " bytes overflowed");
        dst_[pos_++] = static_cast<uint8_t>(acc_);
        acc_ >>= 8;
        count_ -= 8;
    }
}

void BitWriter::put(uint32_t value, int nbits) {
    if (nbits == 0) return;
    const uint64_t v = nbits == 32 ? value : (value & ((uint32_t{1} << nbits) - 1));
    acc_ |= v << count_;
    count_ += nbits;
    flush_bytes();
}

void BitWriter::put_msb_first(uint32_t code, int length) {
    for (int b = length - 1; b >= 0; --b) put((code >> b) & 1u, 1);
}

size_t BitWriter::finish() {
    flush_bytes();
    if (count_ > 0) {
        if (pos_ >= size_) throw std::logic_error("BitWriter: buffer of " + std::to_string(size_) + " bytes overflowed");
        dst_[pos_++] = static_cast<uint8_t>(acc_);
        acc_ = 0;
        count_ = 0;
    }
    return pos_;
}

bool BitReader::get(int nbits, uint32_t* value) {
    if (nbits == 0) {
        *value = 0;
        return true;
    }
    if (bit_pos_ + static_cast<uint64_t>(nbits) > static_cast<uint64_t>(size_) * 8) return false;
    uint64_t v = 0;
    int got = 0;
    uint64_t pos = bit_pos_;
    while (got < nbits) {
        const uint64_t byte = src_[pos >> 3];
        const int offset = static_cast<int>(pos & 7);
        const int take = std::min(8 - offset, nbits - got);
        v |= ((byte >> offset) & ((1u << take) - 1)) << got;
        got += take;
        pos += static_cast<uint64_t>(take);
    }
    bit_pos_ = pos;
    *value = static_cast<uint32_t>(v);
    return true;
}

}  // namespace dcs::compress
