#pragma once
/// The table of weight-compression methods (like ggml's type traits table). compress_weight() picks the
/// first row, in table order, that serves the requested (bits, spec); the .dcz format stores a row's id.
/// Adding a method means one new file defining a WeightMethod and one row in registry.cpp; the generic
/// test (tests/compress/test_registry.cpp) then covers it. See docs/adding-a-compression-method.md.
#include <cstdint>
#include <string>
#include <vector>

#include "compress/types.hpp"
#include "compress/weight.hpp"

namespace dcs::compress {

/// The container codes a method uses and how they map to the b-bit values packed in .dcz files:
/// valid codes are code_min + step*u for u in [0, symbols()), and u is what gets packed.
struct CodeMap {
    int code_min = 0;  ///< smallest code, >= -128
    int code_max = 0;  ///< largest code, <= 127
    int step = 1;      ///< distance between valid codes, >= 1
    /// Number of valid codes, at most 2^bits.
    int symbols() const { return (code_max - code_min) / step + 1; }
    /// Whether `code` is one of the valid codes.
    bool valid(int code) const { return code >= code_min && code <= code_max && (code - code_min) % step == 0; }
    /// The packed value u of a valid code.
    uint32_t pack(int code) const { return static_cast<uint32_t>((code - code_min) / step); }
    /// The code of packed value u < symbols().
    int unpack(uint32_t u) const { return code_min + static_cast<int>(u) * step; }
};

/// One row of the method table: plain functions, portable C++, no state.
struct WeightMethod {
    /// Stored in .dcz files: never renumber or reuse an id.
    uint8_t id;
    /// Short lowercase name, unique ("uniform").
    const char* name;
    /// Which WeightSpec::method selects this row.
    Method method;
    /// Bit-widths this row serves, inclusive, within 1..8.
    int min_bits;
    int max_bits;
    /// Whether codes are int8 runtime weights (dequantized = scale * (code - zero_point)).
    bool int8_codes;
    /// nullptr when the row serves (bits, spec), else a short reason why not (method and bit range
    /// are checked by select_method before this is called).
    const char* (*unsupported)(int bits, const WeightSpec& spec);
    /// Encodes a pruned weight (w.masked(): pruned elements read as +0; w.weight(): the original;
    /// w.memo(): data derived once per pruned weight and reused for every bit width). On entry `out`
    /// has shape, out_axis, bits, method_id and mask set; the function sets scheme and granularity
    /// (normalised for its method), codes of kept elements, scales / zero_points / codebook.
    /// compress_weight sets pruned codes afterwards.
    void (*encode)(const PrunedWeight& w, const WeightSpec& spec, CompressedWeight& out);
    /// Dequantizes every element of `cw` into `out` (numel floats). Pruned elements may be written with
    /// anything: dequantize_into() zeroes them after.
    void (*decode)(const CompressedWeight& cw, float* out);
    /// The codes of kept elements for (bits, scheme).
    CodeMap (*code_map)(int bits, Scheme scheme);
    /// Checks the side data (scales, zero points, codebook, scheme, granularity) of `cw` made by this
    /// method; returns "" when fine, else what is wrong.
    std::string (*check)(const CompressedWeight& cw);
};

/// Every row, in selection order. Ids and names are unique.
const std::vector<const WeightMethod*>& method_table();

/// The first row serving (bits, spec).
/// @throws std::invalid_argument when bits is outside 1..8
/// @throws dcs::UnsupportedError listing each row's reason when none serves
const WeightMethod& select_method(int bits, const WeightSpec& spec);

/// The row with this id, or nullptr.
const WeightMethod* find_method(uint8_t id);
/// The row with this name, or nullptr.
const WeightMethod* find_method(const std::string& name);

}  // namespace dcs::compress
