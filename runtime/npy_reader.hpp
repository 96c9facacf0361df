#pragma once
/// NumPy arrays: the .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html,
/// versions 1.0, 2.0 and 3.0) and .npz archives of them (np.savez, np.savez_compressed), read-only.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dcs {

/// The numeric element types read; any other dtype is an InputError.
enum class NpyType { Bool, I8, U8, I16, U16, I32, U32, I64, U64, F16, F32, F64 };

/// The numpy name of `t`: "bool", "int8", "uint8", ..., "float16", "float32", "float64".
const char* npy_type_name(NpyType t);

/// Bytes per element of `t` (1, 2, 4 or 8).
size_t npy_type_size(NpyType t);

/// An array read from a .npy file or a member of a .npz archive: C order, little-endian in memory.
struct NpyArray {
    NpyType type = NpyType::U8;
    std::vector<int64_t> shape;         ///< empty for a 0-d (scalar) array
    const uint8_t* data = nullptr;      ///< the elements, C order, aligned to the item size
    size_t bytes = 0;                   ///< element bytes (product of shape x itemsize)
    std::shared_ptr<const void> owner;  ///< keeps `data` alive (a file mapping or a heap buffer)
    std::string source;                 ///< "x.npy" or "d.npz:images" for messages
    bool mapped = false;                ///< true when `data` is a read-only memory mapping of the file

    /// Number of elements (product of `shape`; 1 for a 0-d array).
    int64_t count() const;
};

/// Reads a .npy file (format versions 1.0, 2.0 and 3.0). Only the header is read with read calls: the file is
/// memory-mapped (mmap, read-only) when the data is little-endian or single-byte and its offset is a multiple
/// of the item size (always so for files numpy writes); big-endian arrays are read and byte-swapped into memory.
/// A mapped file must not be truncated while the array lives (the kernel would raise SIGBUS).
/// Throws InputError with one line naming `path` for: a missing, unreadable or non-regular file; a bad magic
/// string or version; a header length beyond the file; a header that is not a Python dict literal with exactly
/// the keys 'descr', 'fortran_order' and 'shape'; a dtype other than NpyType's (object, structured, string,
/// complex, datetime: the message says how to convert); a Fortran-order array of rank > 1 (use
/// np.ascontiguousarray); a negative dimension or a shape whose byte size overflows; a data length other than
/// product(shape) x itemsize (both lengths stated, truncated files and trailing bytes alike).
NpyArray read_npy(const std::string& path);

/// Names of the arrays in a .npz archive ("images" for member "images.npy"; members without the .npy suffix
/// keep their names), in archive order. Throws InputError naming `path` if it is missing or not a zip archive.
std::vector<std::string> npz_names(const std::string& path);

/// Reads array `name` (member "name.npy", or a member called exactly `name`) of a .npz archive via libzip:
/// stored members (np.savez) and deflated ones (np.savez_compressed) are read into memory, checking the CRC.
/// Throws InputError for everything read_npy does (messages name "path:name"), and for: a missing name (the
/// message lists the names present); a non-zip file or corrupt archive; an encrypted member, an unsupported
/// compression method, a member failing its CRC or inflation.
NpyArray read_npz(const std::string& path, const std::string& name);

/// Reads "file.npy", or "file.npz" with member `name` (required for .npz; ignored for .npy), chosen by the
/// extension (case-insensitive). Throws InputError for any other extension or a .npz without `name`, and
/// whatever read_npy / read_npz throw.
NpyArray read_array(const std::string& path, const std::string& name = "");

}  // namespace dcs
