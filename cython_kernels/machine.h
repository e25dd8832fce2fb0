/* edgecnn machine floor (edgecnn/machine.py): the peak int8 multiply-add rate of a kernel path
 * and the streaming read bandwidth, measured by tight loops of the real instructions.
 *
 * ec_peak_loop(isa, iters) issues the path's dot-product instruction on independent
 * accumulators (enough to cover its latency, so the loop runs at the instruction's throughput)
 * and returns the multiply-adds done:
 *   avx512amx   tdpbssd on 4 C tiles from 2 A and 2 B tiles: 4 x 16 x 16 x 64 a step;
 *   avx512vnni  vpdpbusd zmm, 10 accumulators: 10 x 64;
 *   avx2        vpmaddwd + vpaddd ymm, 6 accumulators: 6 x 16;
 *   neon-sdot   sdot q, 8 accumulators: 8 x 16;  neon  smlal 4s, 8 accumulators: 8 x 4;
 *   generic     4 scalar int32 multiply-adds.
 * The empty asm statements keep the accumulators in registers and the loops unvectorized.
 * ec_stream_read(p, n) reads n bytes (a multiple of 256) once and returns a checksum.
 */
#ifndef EDGECNN_MACHINE_H
#define EDGECNN_MACHINE_H

#include "gemm_s8.h"

#if defined(EC_X86)
EC_TGT_AMX static double ec_peak_amx(long iters) {
    static int8_t src[16 * 64] __attribute__((aligned(64)));
    int32_t out[16 * 16];
    long i;
    ec_amx_load_config();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    for (i = 0; i < iters; i++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return (double)iters * 4 * 16 * 16 * 64 + (double)(out[0] & 0);
}

EC_TGT_VNNI static double ec_peak_vnni(long iters) {
    __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x02020202);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0, a8 = a0, a9 = a0;
    long i;
    for (i = 0; i < iters; i++) {
        a0 = _mm512_dpbusd_epi32(a0, x, y);
        a1 = _mm512_dpbusd_epi32(a1, x, y);
        a2 = _mm512_dpbusd_epi32(a2, x, y);
        a3 = _mm512_dpbusd_epi32(a3, x, y);
        a4 = _mm512_dpbusd_epi32(a4, x, y);
        a5 = _mm512_dpbusd_epi32(a5, x, y);
        a6 = _mm512_dpbusd_epi32(a6, x, y);
        a7 = _mm512_dpbusd_epi32(a7, x, y);
        a8 = _mm512_dpbusd_epi32(a8, x, y);
        a9 = _mm512_dpbusd_epi32(a9, x, y);
        __asm__ __volatile__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),
                             "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9));
    }
    return (double)iters * 10 * 64;
}

EC_TGT_AVX2 static double ec_peak_avx2(long iters) {
    const __m256i y = _mm256_set1_epi16(5);
    __m256i x0 = _mm256_set1_epi16(3), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    long i;
    for (i = 0; i < iters; i++) { /* x "changes" every step: 6 independent vpmaddwd */
        __asm__ __volatile__("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, y));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x1, y));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x2, y));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x3, y));
        a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(x4, y));
        a5 = _mm256_add_epi32(a5, _mm256_madd_epi16(x5, y));
        __asm__ __volatile__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    }
    return (double)iters * 6 * 16;
}

EC_TGT_AVX2 static uint64_t ec_stream_read_simd(const uint8_t *p, size_t n) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    size_t i;
    for (i = 0; i + 256 <= n; i += 256) { /* 8 lines in flight: two 32-byte loads per line */
        s0 = _mm256_xor_si256(s0, _mm256_loadu_si256((const __m256i *)(p + i)));
        s1 = _mm256_xor_si256(s1, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        s2 = _mm256_xor_si256(s2, _mm256_loadu_si256((const __m256i *)(p + i + 128)));
        s3 = _mm256_xor_si256(s3, _mm256_loadu_si256((const __m256i *)(p + i + 192)));
        s0 = _mm256_xor_si256(s0, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        s1 = _mm256_xor_si256(s1, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
        s2 = _mm256_xor_si256(s2, _mm256_loadu_si256((const __m256i *)(p + i + 160)));
        s3 = _mm256_xor_si256(s3, _mm256_loadu_si256((const __m256i *)(p + i + 224)));
    }
    s0 = _mm256_xor_si256(_mm256_xor_si256(s0, s1), _mm256_xor_si256(s2, s3));
    return (uint64_t)_mm256_extract_epi64(s0, 0) ^ (uint64_t)_mm256_extract_epi64(s0, 3);
}
#endif

#if defined(EC_ARM64)
EC_TGT_SDOT static double ec_peak_sdot(long iters) {
    int8x16_t x = vdupq_n_s8(1), y = vdupq_n_s8(2);
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    long i;
    for (i = 0; i < iters; i++) {
        a0 = vdotq_s32(a0, x, y);
        a1 = vdotq_s32(a1, x, y);
        a2 = vdotq_s32(a2, x, y);
        a3 = vdotq_s32(a3, x, y);
        a4 = vdotq_s32(a4, x, y);
        a5 = vdotq_s32(a5, x, y);
        a6 = vdotq_s32(a6, x, y);
        a7 = vdotq_s32(a7, x, y);
        __asm__ __volatile__("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(a4), "+w"(a5),
                             "+w"(a6), "+w"(a7));
    }
    return (double)iters * 8 * 16;
}

static double ec_peak_neon(long iters) {
    int16x4_t x = vdup_n_s16(3), y = vdup_n_s16(5);
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    long i;
    for (i = 0; i < iters; i++) {
        a0 = vmlal_s16(a0, x, y);
        a1 = vmlal_s16(a1, x, y);
        a2 = vmlal_s16(a2, x, y);
        a3 = vmlal_s16(a3, x, y);
        a4 = vmlal_s16(a4, x, y);
        a5 = vmlal_s16(a5, x, y);
        a6 = vmlal_s16(a6, x, y);
        a7 = vmlal_s16(a7, x, y);
        __asm__ __volatile__("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(a4), "+w"(a5),
                             "+w"(a6), "+w"(a7));
    }
    return (double)iters * 8 * 4;
}
#endif

#if defined(__GNUC__) || defined(__clang__)
#define EC_OPAQUE4(a, b, c, d) __asm__ __volatile__("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d))
#else /* MSVC: no inline asm on x64; volatile round trips keep the loop honest, if slower */
#define EC_OPAQUE4(a, b, c, d)                                                                  \
    do {                                                                                        \
        volatile int32_t v0 = (a), v1 = (b), v2 = (c), v3 = (d);                                \
        (a) = v0, (b) = v1, (c) = v2, (d) = v3;                                                 \
    } while (0)
#endif

static double ec_peak_generic(long iters) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, x0 = 3, x1 = 3, x2 = 3, x3 = 3, y = 5;
    long i;
    for (i = 0; i < iters; i++) {
        EC_OPAQUE4(x0, x1, x2, x3);
        a0 += x0 * y;
        a1 += x1 * y;
        a2 += x2 * y;
        a3 += x3 * y;
        EC_OPAQUE4(a0, a1, a2, a3);
    }
    return (double)iters * 4 + (double)((a0 ^ a1 ^ a2 ^ a3) & 0);
}

/* Multiply-adds done by iters steps of the path's loop (the path must be supported). */
static double ec_peak_loop(int isa, long iters) {
    switch (isa) {
#if defined(EC_X86)
    case EC_ISA_AVX512AMX: return ec_peak_amx(iters);
    case EC_ISA_AVX512VNNI: return ec_peak_vnni(iters);
    case EC_ISA_AVX2: return ec_peak_avx2(iters);
#endif
#if defined(EC_ARM64)
    case EC_ISA_NEON_SDOT: return ec_peak_sdot(iters);
    case EC_ISA_NEON: return ec_peak_neon(iters);
#endif
    default: return ec_peak_generic(iters);
    }
}

static uint64_t ec_stream_read(const uint8_t *p, size_t n) {
#if defined(EC_X86)
    if (ec_isa_supported(EC_ISA_AVX2)) return ec_stream_read_simd(p, n);
#endif
    {
        const uint64_t *q = (const uint64_t *)p;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t i;
        for (i = 0; i + 4 <= n / 8; i += 4) { /* the compiler vectorizes this (SSE2, NEON) */
            s0 ^= q[i];
            s1 ^= q[i + 1];
            s2 ^= q[i + 2];
            s3 ^= q[i + 3];
        }
        return s0 ^ s1 ^ s2 ^ s3;
    }
}

/* The two loops on up to nthreads pool threads at once (chunk i: one share of the work). */
typedef struct {
    int isa;
    long iters;
    const uint8_t *p;
    size_t chunk_bytes;
    int passes;
    double macs[EC_POOL_MAX];
    uint64_t sum[EC_POOL_MAX];
} ec_machine_job;

static void ec_machine_peak_chunk(void *ctx, int index, int slot) {
    ec_machine_job *j = (ec_machine_job *)ctx;
    (void)slot;
    j->macs[index] = ec_peak_loop(j->isa, j->iters);
}

static void ec_machine_read_chunk(void *ctx, int index, int slot) {
    ec_machine_job *j = (ec_machine_job *)ctx;
    uint64_t s = 0;
    int i;
    (void)slot;
    for (i = 0; i < j->passes; i++)
        s ^= ec_stream_read(j->p + (size_t)index * j->chunk_bytes, j->chunk_bytes);
    j->sum[index] = s;
}

/* Multiply-adds of nthreads loops of iters steps, run side by side. */
static double ec_peak_threads(int isa, long iters, int nthreads) {
    ec_machine_job j;
    double total = 0;
    int i;
    if (nthreads > EC_POOL_MAX) nthreads = EC_POOL_MAX;
    j.isa = isa;
    j.iters = iters;
    ec_pool_run(ec_machine_peak_chunk, &j, nthreads, nthreads);
    for (i = 0; i < nthreads; i++) total += j.macs[i];
    return total;
}

/* Read n bytes (a multiple of 256 * nthreads) in nthreads equal shares side by side, each
 * share `passes` times over (a small buffer's read must outlast waking the workers). */
static uint64_t ec_stream_read_threads(const uint8_t *p, size_t n, int nthreads, int passes) {
    ec_machine_job j;
    uint64_t s = 0;
    int i;
    if (nthreads > EC_POOL_MAX) nthreads = EC_POOL_MAX;
    j.p = p;
    j.chunk_bytes = n / (size_t)nthreads;
    j.passes = passes;
    ec_pool_run(ec_machine_read_chunk, &j, nthreads, nthreads);
    for (i = 0; i < nthreads; i++) s ^= j.sum[i];
    return s;
}

#endif /* EDGECNN_MACHINE_H */
