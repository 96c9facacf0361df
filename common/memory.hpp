#pragma once
/// Process-wide heap policy for the evaluating processes (dcsearch, the benchmarks).
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace dcs {

/// Keeps freed heap memory for reuse instead of returning it to the system at once. A candidate's
/// compression allocates and frees a few buffers of the size of a layer (mask, masked copy, codes,
/// packed rows); by default glibc hands such blocks back (munmap, heap trimming) and takes them again
/// with a page fault per 4 KiB on the next candidate: about 450 faults and a third of the compression
/// time for LeNet-300's first layer. Blocks under 64 MiB now come from the heap, and up to 256 MiB of
/// free heap stays mapped. Larger blocks (datasets) are still returned when freed.
inline void keep_freed_memory() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace dcs
