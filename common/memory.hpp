#pragma once
/// Process-wide heap policy for the evaluating processes (dcsearch, the benchmarks), and their peak
/// memory.
#include <sys/resource.h>

#include <cstdint>
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

/// The process's peak resident set size so far, in bytes (getrusage: the high-water mark of RSS,
/// memory-mapped file pages that were read included).
inline int64_t peak_rss_bytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

}  // namespace dcs
