/* edgecnn run-time ISA choice for the packed int8 kernels (gemm_s8.h).
 *
 * One portable build runs anywhere: the SIMD paths are separate functions compiled with
 * __attribute__((target(...))) (x86) or for the baseline armv8-a with the dot-product path
 * behind a target attribute too (aarch64), and the path is picked here at run time:
 * x86 by __builtin_cpu_supports, aarch64 by getauxval(AT_HWCAP) & HWCAP_ASIMDDP. Never by
 * compile flags alone: a -march=armv8.2-a+dotprod build dies on a Cortex-A72 (Raspberry Pi 4).
 * ec_force_isa() pins a path (tests run every path the CPU can run, one by one).
 */
#ifndef EDGECNN_CPU_FEATURES_H
#define EDGECNN_CPU_FEATURES_H

#include <string.h>

#define EC_ISA_GENERIC 0
#define EC_ISA_AVX2 1
#define EC_ISA_AVX512VNNI 2
#define EC_ISA_NEON 3
#define EC_ISA_NEON_SDOT 4
#define EC_ISA_COUNT 5

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EC_X86 1
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define EC_ARM64 1
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif
#endif

static const char *const ec_isa_names[EC_ISA_COUNT] = {"generic", "avx2", "avx512vnni", "neon",
                                                        "neon-sdot"};

/* Whether this CPU (and this build) can run a path. */
static int ec_isa_supported(int isa) {
    switch (isa) {
    case EC_ISA_GENERIC: return 1;
#ifdef EC_X86
    case EC_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    case EC_ISA_AVX512VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
#ifdef EC_ARM64
    case EC_ISA_NEON: return 1; /* Advanced SIMD is part of armv8-a */
    case EC_ISA_NEON_SDOT:
#if defined(__linux__)
        return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
        return 0;
#endif
#endif
    default: return 0;
    }
}

/* The fastest supported path. */
static int ec_best_isa(void) {
    static const int order[EC_ISA_COUNT] = {EC_ISA_AVX512VNNI, EC_ISA_AVX2, EC_ISA_NEON_SDOT,
                                            EC_ISA_NEON, EC_ISA_GENERIC};
    int i;
    for (i = 0; i < EC_ISA_COUNT; i++)
        if (ec_isa_supported(order[i])) return order[i];
    return EC_ISA_GENERIC;
}

static int ec_forced_isa = -1;

/* The path new bindings use: the forced one, else the best. */
static int ec_current_isa(void) { return ec_forced_isa >= 0 ? ec_forced_isa : ec_best_isa(); }

/* Pin a path by name ("" or "auto" unpins). 0 on success, -1 unknown, -2 unsupported here. */
static int ec_force_isa(const char *name) {
    int i;
    if (name[0] == 0 || strcmp(name, "auto") == 0) {
        ec_forced_isa = -1;
        return 0;
    }
    for (i = 0; i < EC_ISA_COUNT; i++) {
        if (strcmp(name, ec_isa_names[i]) == 0) {
            if (!ec_isa_supported(i)) return -2;
            ec_forced_isa = i;
            return 0;
        }
    }
    return -1;
}

#endif /* EDGECNN_CPU_FEATURES_H */
