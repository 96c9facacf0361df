#pragma once
/// The packed model format `.dcz`: the model's structure (an opaque blob from the caller), every
/// compressed layer (bit-packed codes of the kept weights, a sparse index, scales / zero points /
/// codebook), other float tensors in fp32, optionally Huffman-coded codes. The byte layout is in
/// docs/compression.md.
///
/// A candidate's size is dcz_size(): it runs the serializer that write_dcz() runs, over a sink that only
/// counts bytes, so the file written has exactly that many bytes.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "compress/weight.hpp"

namespace dcs::compress {

/// A dense fp32 tensor stored as is (biases, uncompressed initializers).
struct FloatTensor {
    std::vector<int64_t> shape;  ///< rank 0..8, every dimension >= 0
    std::vector<float> data;     ///< product(shape) values, row-major
    bool operator==(const FloatTensor& o) const { return shape == o.shape && data == o.data; }
};

/// Everything a .dcz file holds.
struct DczContents {
    std::vector<uint8_t> graph;  ///< the rest of the model (structure without weights), opaque
    std::vector<std::pair<std::string, CompressedWeight>> layers;  ///< in file order
    std::vector<std::pair<std::string, FloatTensor>> others;       ///< in file order
    bool huffman = false;  ///< Huffman-code each layer's codes when that is smaller than fixed width
    bool operator==(const DczContents& o) const {
        return graph == o.graph && layers == o.layers && others == o.others && huffman == o.huffman;
    }
};

/// How a layer's pruned positions are stored (the smallest applicable wins; ties go to the lower value).
enum class SparseIndex : uint8_t {
    None = 0,      ///< nothing pruned
    Channels = 1,  ///< whole output channels pruned: one bit per channel
    Bitmap = 2,    ///< one bit per element
    Runs = 3,      ///< alternating kept / pruned run lengths, LEB128 varints, starting with kept
};

/// How a layer's codes are stored.
enum class CodeCoding : uint8_t {
    Fixed = 0,    ///< `bits` bits per kept element
    Huffman = 1,  ///< canonical Huffman code (only when DczContents::huffman and smaller than Fixed)
};

/// What one layer costs in a .dcz file and how it is stored.
struct DczLayerStats {
    uint64_t bytes = 0;        ///< the layer's whole record, name included
    uint64_t index_bytes = 0;  ///< sparse index
    uint64_t code_bytes = 0;   ///< codes (and the Huffman table)
    SparseIndex index = SparseIndex::None;
    CodeCoding coding = CodeCoding::Fixed;
};

/// Cost and storage decisions of one layer, as the serializer makes them.
/// @param check false skips check_compressed_weight, for a weight straight from compress_weight (the
///              search's size accounting); writing a file always checks
/// @throws std::invalid_argument when checked and check_compressed_weight(cw) reports a problem
DczLayerStats dcz_layer_stats(const std::string& name, const CompressedWeight& cw, bool huffman, bool check = true);

/// Bytes write_dcz() writes for `contents`, computed without building the file: O(elements) time and
/// no allocation proportional to the model (Huffman frequency tables only).
/// @throws std::invalid_argument on an inconsistent layer or a tensor whose data does not match its shape
uint64_t dcz_size(const DczContents& contents);

/// Bytes of everything but the layer records: header, structure, layer count (contents.layers.size()),
/// other tensors, checksum. The layers' codes are not read. For any contents,
/// dcz_size(c) == dcz_frame_bytes(c) + sum over c.layers of dcz_layer_stats(name, cw, c.huffman).bytes,
/// so a caller holding per-layer byte counts gets a candidate's size without serializing it.
/// @throws std::invalid_argument on a tensor of `others` whose data does not match its shape
uint64_t dcz_frame_bytes(const DczContents& contents);

/// The file's bytes (what write_dcz writes). Throws as dcz_size.
std::vector<uint8_t> dcz_bytes(const DczContents& contents);

/// Writes `path` atomically: to "<path>.tmp", then renamed over `path`.
/// @throws std::invalid_argument as dcz_size
/// @throws std::runtime_error naming the path when the file cannot be written or renamed
void write_dcz(const DczContents& contents, const std::string& path);

/// Reads a .dcz file; the layers' codes, masks and side data, hence their dequantized weights, come back
/// bit for bit (a mask without pruned elements comes back empty).
/// @throws dcs::InputError naming the file on a missing file, bad magic, unsupported version, checksum
///         mismatch (truncation or corruption) or any inconsistency; never reads out of bounds
DczContents read_dcz(const std::string& path);

/// Same, from memory; `source` names the data in messages.
DczContents parse_dcz(const uint8_t* data, size_t size, const std::string& source);

/// Format version this build writes and reads.
inline constexpr uint32_t kDczVersion = 1;

}  // namespace dcs::compress
