#include "compress/isa.hpp"

#include <atomic>

namespace dcs::compress {

namespace {

bool cpu_has_avx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    return has;
#else
    return false;
#endif
}

std::atomic<bool> allowed{true};

}  // namespace

bool avx512_enabled() { return cpu_has_avx512() && allowed.load(std::memory_order_relaxed); }

void set_avx512_allowed(bool on) { allowed.store(on, std::memory_order_relaxed); }

}  // namespace dcs::compress
