#pragma once
/// The one CPU feature query of dcsearch: every hand-written vector kernel (runtime/kernels/, the
/// compressors' AVX-512 loops) asks has() before it runs, and has() honours one cap.
///
///     if (cpu::has(cpu::Isa::Avx512Vnni)) ...        // detected, allowed by the OS and under the cap
///
/// The cap orders the features as oneDNN's ONEDNN_MAX_CPU_ISA does: a feature is used only when it
/// and its level are at or below the cap. It comes from DCS_MAX_CPU_ISA (read once, at the first query:
/// portable, avx2, avx512, avx512_vnni, avx512_vbmi, amx; default: no cap) and tests change it at run
/// time with set_max_isa() / ScopedMaxIsa. It does not cap oneDNN's own kernels (ONEDNN_MAX_CPU_ISA
/// does). The environment switches are listed in docs/environment.md.

namespace dcs::cpu {

/// Instruction-set levels, lowest first. Each level names one feature group:
enum class Isa : int {
    Portable = 0,  ///< plain C++ (always available)
    Avx2,          ///< AVX2
    Avx512,        ///< AVX-512 F, BW, VL and DQ
    Avx512Vnni,    ///< AVX-512 VNNI (u8 x s8 dot products)
    Avx512Vbmi,    ///< AVX-512 VBMI (byte permutes)
    Amx,           ///< AMX-TILE and AMX-INT8, with the kernel's permission to use tile data (Linux 5.16+)
};
constexpr int kIsaCount = 6;

/// Whether the CPU (and, for AMX, the OS) supports `isa` and the cap allows it. A level needs the
/// levels its kernels build on: Avx512Vnni / Avx512Vbmi / Amx are only reported with Avx512.
bool has(Isa isa);

/// Whether the CPU supports `isa`, ignoring the cap.
bool detected(Isa isa);

/// The lowercase name used by DCS_MAX_CPU_ISA ("avx512_vnni").
const char* name(Isa isa);

/// The current cap (Amx when none is set).
Isa max_isa();

/// Sets the cap for the rest of the process, over DCS_MAX_CPU_ISA. Not to be called while another
/// thread runs kernels or compiles an executor (tests, before they build one).
void set_max_isa(Isa cap);

/// One line for logs and `--explain`: "avx2 avx512 avx512_vnni avx512_vbmi (cap: none; not on this
/// CPU: amx)".
const char* summary();

/// set_max_isa() for a scope (tests).
class ScopedMaxIsa {
public:
    explicit ScopedMaxIsa(Isa cap) : saved_(max_isa()) { set_max_isa(cap); }
    ~ScopedMaxIsa() { set_max_isa(saved_); }
    ScopedMaxIsa(const ScopedMaxIsa&) = delete;
    ScopedMaxIsa& operator=(const ScopedMaxIsa&) = delete;

private:
    Isa saved_;
};

}  // namespace dcs::cpu

/// Marks a loop kernel to be compiled for AVX2 and for the baseline, picked at load time (GCC on x86-64;
/// elsewhere, and under the sanitizers, the baseline only). AVX2 does not include FMA, so both clones
/// round identically. (The loader's pick does not see the cap: the clones give identical results.)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define DCS_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DCS_VECTOR_CLONES
#endif
