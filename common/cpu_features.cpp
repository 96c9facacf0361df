#include "common/cpu_features.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "common/error.hpp"

namespace dcs::cpu {

namespace {

constexpr const char* kNames[kIsaCount] = {"portable", "avx2", "avx512", "avx512_vnni", "avx512_vbmi", "amx"};

/// What the CPU supports, per level, detected once.
struct Detected {
    bool level[kIsaCount] = {true, false, false, false, false, false};
    Detected() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        __builtin_cpu_init();
        level[1] = __builtin_cpu_supports("avx2");
        const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
        level[2] = avx512;
        level[3] = avx512 && __builtin_cpu_supports("avx512vnni");
        level[4] = avx512 && __builtin_cpu_supports("avx512vbmi");
#if defined(__linux__)
        if (avx512 && __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-int8")) {
            // The OS hands out tile data only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
            constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
            level[5] = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
        }
#endif
#endif
    }
};

const Detected& detected_levels() {
    static const Detected d;
    return d;
}

Isa parse_cap(const char* v) {
    for (int i = 0; i < kIsaCount; ++i)
        if (std::strcmp(v, kNames[i]) == 0) return static_cast<Isa>(i);
    std::string all;
    for (int i = 0; i < kIsaCount; ++i) all += std::string(i ? ", " : "") + kNames[i];
    throw InputError("DCS_MAX_CPU_ISA: '" + std::string(v) + "' is not one of " + all);
}

/// -1: not read from the environment yet.
std::atomic<int> cap{-1};

int current_cap() {
    int c = cap.load(std::memory_order_relaxed);
    if (c >= 0) return c;
    const char* v = std::getenv("DCS_MAX_CPU_ISA");
    const int parsed = v && *v ? static_cast<int>(parse_cap(v)) : kIsaCount - 1;
    int expected = -1;
    cap.compare_exchange_strong(expected, parsed, std::memory_order_relaxed);
    return cap.load(std::memory_order_relaxed);
}

}  // namespace

bool detected(Isa isa) { return detected_levels().level[static_cast<int>(isa)]; }

bool has(Isa isa) { return static_cast<int>(isa) <= current_cap() && detected(isa); }

const char* name(Isa isa) { return kNames[static_cast<int>(isa)]; }

Isa max_isa() { return static_cast<Isa>(current_cap()); }

void set_max_isa(Isa c) { cap.store(static_cast<int>(c), std::memory_order_relaxed); }

const char* summary() {
    static thread_local std::string s;
    std::string on, missing;
    for (int i = 1; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        if (has(isa)) on += std::string(on.empty() ? "" : " ") + kNames[i];
        else if (!detected(isa)) missing += std::string(missing.empty() ? "" : " ") + kNames[i];
    }
    const int c = current_cap();
    s = (on.empty() ? std::string("portable") : on) + " (cap: " + (c == kIsaCount - 1 ? "none" : kNames[c]) +
        (missing.empty() ? "" : "; not on this CPU: " + missing) + ")";
    return s.c_str();
}

}  // namespace dcs::cpu
