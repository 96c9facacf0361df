#pragma once
/// Which vector kernels the compressors use. The AVX-512 kernels (magnitude pruning's gather, the MSE
/// clip search) give bit-identical results to the portable code; tests switch them off to compare.

/// Marks a loop kernel to be compiled for AVX2 and for the baseline, picked at load time (GCC on x86-64;
/// elsewhere, and under the sanitizers, the baseline only). AVX2 does not include FMA, so both clones
/// round identically.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define DCS_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DCS_VECTOR_CLONES
#endif

namespace dcs::compress {

/// Whether the CPU has AVX-512 F and DQ and they are allowed (the default).
bool avx512_enabled();

/// Allows or forbids the AVX-512 kernels (tests). Not to be called while another thread compresses.
void set_avx512_allowed(bool allowed);

}  // namespace dcs::compress
