/* edgecnn run-time ISA choice for the packed int8 kernels (gemm_s8.h).
 *
 * One portable build runs anywhere: the SIMD paths are separate functions compiled with
 * __attribute__((target(...))) (x86) or for the baseline armv8-a with the dot-product path
 * behind a target attribute too (aarch64), and the path is picked here at run time:
 * x86 by __builtin_cpu_supports, aarch64 by getauxval(AT_HWCAP) & HWCAP_ASIMDDP. Never by
 * compile flags alone: a -march=armv8.2-a+dotprod build dies on a Cortex-A72 (Raspberry Pi 4).
 * ec_force_isa() pins a path (tests run every path the CPU can run, one by one).
 *
 * AMX-INT8 (avx512amx) needs three things beyond the VNNI path it builds on: the CPU
 * (CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8), the OS saving the tile state (XCR0
 * bits 17 XTILECFG and 18 XTILEDATA, read by XGETBV once CPUID.1:ECX.OSXSAVE says it may be),
 * and, on Linux, the process's permission: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
 * (Linux 5.16+). The permission is process-wide (every thread, the worker pool's included,
 * may then use tiles; the kernel grows a thread's XSAVE buffer at its first tile
 * instruction); the tile configuration (ldtilecfg) is per thread and is loaded by each AMX
 * chunk (gemm_amx.h). Other systems: no AMX.
 */
#ifndef EDGECNN_CPU_FEATURES_H
#define EDGECNN_CPU_FEATURES_H

#include <string.h>

#define EC_ISA_GENERIC 0
#define EC_ISA_AVX2 1
#define EC_ISA_AVX512VNNI 2
#define EC_ISA_NEON 3
#define EC_ISA_NEON_SDOT 4
#define EC_ISA_AVX512AMX 5
#define EC_ISA_COUNT 6

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EC_X86 1
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define EC_ARCH_REQ_XCOMP_PERM 0x1023
#define EC_XFEATURE_XTILEDATA 18
#endif
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

static const char *const ec_isa_names[EC_ISA_COUNT] = {"generic",   "avx2",      "avx512vnni",
                                                        "neon",      "neon-sdot", "avx512amx"};

#ifdef EC_X86
static int ec_avx512vnni_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

/* Why AMX-INT8 is not used here ("" when it is): CPU, OS and permission (see the top of this
 * file); asked once per process. */
static const char *ec_amx_missing(void) {
    static const char *why = NULL;
    unsigned a, b, c, d, lo, hi;
    if (why) return why;
    if (!ec_avx512vnni_ok()) /* requantization and batch-1 dense use AVX-512 */
        return why = "the CPU has no AVX-512 VNNI";
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
        return why = "the CPU has no AMX-TILE/AMX-INT8 (CPUID.7.0:EDX bits 24, 25)";
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
        return why = "the OS has not enabled XSAVE (CPUID.1:ECX.OSXSAVE)";
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & (3u << 17)) != (3u << 17))
        return why = "the OS does not save the tile state (XCR0 bits 17, 18)";
#if defined(__linux__)
    if (syscall(SYS_arch_prctl, EC_ARCH_REQ_XCOMP_PERM, EC_XFEATURE_XTILEDATA) != 0)
        return why = "Linux refused the tile permission (arch_prctl ARCH_REQ_XCOMP_PERM)";
    return why = "";
#else
    return why = "AMX is enabled on Linux only";
#endif
}

static int ec_amx_ok(void) { return ec_amx_missing()[0] == 0; }
#else
static const char *ec_amx_missing(void) { return "AMX is an x86-64 feature"; }
#endif

/* Whether this CPU (and this build) can run a path. */
static int ec_isa_supported(int isa) {
    switch (isa) {
    case EC_ISA_GENERIC: return 1;
#ifdef EC_X86
    case EC_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    case EC_ISA_AVX512VNNI: return ec_avx512vnni_ok();
    case EC_ISA_AVX512AMX: return ec_amx_ok();
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
    static const int order[EC_ISA_COUNT] = {EC_ISA_AVX512AMX, EC_ISA_AVX512VNNI, EC_ISA_AVX2,
                                            EC_ISA_NEON_SDOT, EC_ISA_NEON, EC_ISA_GENERIC};
    int i;
    for (i = 0; i < EC_ISA_COUNT; i++)
        if (ec_isa_supported(order[i])) return order[i];
    return EC_ISA_GENERIC;
}

/* The vector path of the kernels that are not dot-product GEMMs (depthwise, ADD, MEAN) for a
 * chosen path: AMX tiles only multiply matrices, and every CPU with AMX-INT8 has AVX-512 VNNI,
 * whose kernels run beside the tiles. */
static int ec_simd_isa(int isa) { return isa == EC_ISA_AVX512AMX ? EC_ISA_AVX512VNNI : isa; }

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
