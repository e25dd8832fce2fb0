/* edgecnn graph-op kernels of the Cython backend: int8 ADD (NumPy broadcasting), MEAN over H
 * and W, CONCATENATION; twins of edgecnn/reference/add.py, mean.py and concat.py (LiteRT 2.3
 * BUILTIN_REF). Arrays are C-contiguous int8; sizes in elements.
 *
 * ADD is the hot one (ResNets add whole feature maps), so its per-element arithmetic is written
 * branch-free in int32 lanes except one 64-bit product, and each ISA gets its own compiled copy
 * of the same loop (target attributes; cpu_features.h picks one at run time): GCC vectorizes it
 * with SSE2, AVX2 (vpmuldq for the 64-bit product) and AVX-512, NEON on aarch64.
 */
#ifndef EDGECNN_GRAPH_OPS_H
#define EDGECNN_GRAPH_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_features.h"
#include "fixedpoint.h"
#include "threadpool.h"

#define EC_MAX_DIMS 8    /* params.MAX_BROADCAST_DIMS */
#define EC_ADD_CHUNK 512 /* elements per block: computed into a stack buffer, then copied out,
                          * so out may be x1 or x2 and the loop still vectorizes */

/* ADD constants derived once from AddParams (left_shift 20, every shift <= 0).
 *
 * The input of the larger scale always has multiplier 2^30 and shift 0 (s / (2 s) = 1/2
 * exactly): with v = x + offset (|v| <= 255), SRDHM(v << 20, 2^30) = v << 19, nothing to round.
 * That input is "a"; the other, "b", takes the general path, exact in int32:
 *   SRDHM(v << 20, M) = floor((v * M * 2^20 + 2^30) / 2^31) = floor((v * M + 2^10) / 2^11)
 * (gemmlowp's nudge-and-truncate is this floor for M >= 0: ties toward +inf), and with
 * M = mq * 2^11 + mr (mq < 2^20, mr < 2^11) that is v * mq + ((v * mr + 2^10) >> 11),
 * |v * mq| < 2^28, |v * mr| < 2^19. The output stage's SRDHM(s, M_out) needs one widening
 * 64-bit product (|s| <= 255 * 2^20, M_out < 2^31). RoundingDivideByPOT(x, e), ties away
 * from zero, is (x + half + (e > 0 && x >= 0)) >> e with half = (2^e - 1) >> 1: no branch,
 * and no overflow while |x| < 2^30. */
typedef struct {
    int swap;                  /* 1 when x2 is input a (x1 is then b) */
    int32_t off_a, off_b;      /* -zp of each */
    int32_t mq, mr, e, half, up; /* input b: M split at bit 11, -shift, rounding constants */
    int32_t mo, eo, half_o, up_o; /* output multiplier, -shift, rounding constants */
    int32_t out_off, act_min, act_max;
} ec_add_k;

/* 0, or -1 when neither input has multiplier 2^30 and shift 0 (make_add_params always gives
 * one: the input of the larger scale). */
static int ec_add_prepare(ec_add_k *k, int32_t input1_offset, int32_t input2_offset,
                          int32_t input1_multiplier, int32_t input1_shift,
                          int32_t input2_multiplier, int32_t input2_shift,
                          int32_t output_multiplier, int32_t output_shift,
                          int32_t output_offset, int32_t act_min, int32_t act_max) {
    const int32_t half_one = 1 << 30;
    int32_t mb, shift_b;
    if (input1_multiplier == half_one && input1_shift == 0) {
        k->swap = 0;
        k->off_a = input1_offset;
        k->off_b = input2_offset;
        mb = input2_multiplier;
        shift_b = input2_shift;
    } else if (input2_multiplier == half_one && input2_shift == 0) {
        k->swap = 1;
        k->off_a = input2_offset;
        k->off_b = input1_offset;
        mb = input1_multiplier;
        shift_b = input1_shift;
    } else {
        return -1;
    }
    k->mq = mb >> 11;
    k->mr = mb & 2047;
    k->e = -shift_b;
    k->half = (int32_t)(((1u << k->e) - 1u) >> 1);
    k->up = k->e > 0;
    k->mo = output_multiplier;
    k->eo = -output_shift;
    k->half_o = (int32_t)(((1u << k->eo) - 1u) >> 1);
    k->up_o = k->eo > 0;
    k->out_off = output_offset;
    k->act_min = act_min;
    k->act_max = act_max;
    return 0;
}

#define EC_INLINE static inline __attribute__((always_inline))

EC_INLINE int32_t ec_add_rdbp(int32_t x, int32_t e, int32_t half, int32_t up) {
    return (x + half + (up & ~(x >> 31))) >> e;
}

/* Input b to the common fixed point: RDBP(SRDHM((x + off) << 20, M), e). */
EC_INLINE int32_t ec_add_in_b(int32_t x, int32_t off, int32_t mq, int32_t mr, int32_t e,
                              int32_t half, int32_t up) {
    int32_t v = x + off;
    return ec_add_rdbp(v * mq + ((v * mr + 1024) >> 11), e, half, up);
}

/* The common-point sum to int8: RDBP(SRDHM(s, mo), eo) + out_off, clamped. */
EC_INLINE int8_t ec_add_out(int32_t s, int64_t mo, int32_t eo, int32_t half_o, int32_t up_o,
                            int32_t out_off, int32_t act_min, int32_t act_max) {
    int32_t y = (int32_t)(((int64_t)s * mo + ((int64_t)1 << 30)) >> 31);
    y = ec_add_rdbp(y, eo, half_o, up_o) + out_off;
    y = y > act_min ? y : act_min;
    y = y < act_max ? y : act_max;
    return (int8_t)y;
}

/* n outputs from a run of input a (stride sa: 1, or 0 = one repeated value) and of b (sb). */
EC_INLINE void ec_add_run_body(const int8_t *a, ptrdiff_t sa, const int8_t *b, ptrdiff_t sb,
                               int8_t *out, ptrdiff_t n, const ec_add_k *k) {
    const int32_t off_a = k->off_a, off_b = k->off_b, mq = k->mq, mr = k->mr, e = k->e;
    const int32_t half = k->half, up = k->up;
    const int64_t mo = k->mo; /* an int32 value: the product below is a widening multiply */
    const int32_t eo = k->eo, ho = k->half_o, uo = k->up_o;
    const int32_t oo = k->out_off, lo = k->act_min, hi = k->act_max;
    int8_t tmp[EC_ADD_CHUNK];
    ptrdiff_t i0, i, m;
    for (i0 = 0; i0 < n; i0 += EC_ADD_CHUNK) {
        m = n - i0 < EC_ADD_CHUNK ? n - i0 : EC_ADD_CHUNK;
        if (sa && sb) {
            for (i = 0; i < m; i++)
                tmp[i] = ec_add_out(((int32_t)a[i0 + i] + off_a) * (1 << 19) +
                                        ec_add_in_b(b[i0 + i], off_b, mq, mr, e, half, up),
                                    mo, eo, ho, uo, oo, lo, hi);
        } else if (sb) {
            const int32_t sa0 = ((int32_t)a[0] + off_a) * (1 << 19);
            for (i = 0; i < m; i++)
                tmp[i] = ec_add_out(sa0 + ec_add_in_b(b[i0 + i], off_b, mq, mr, e, half, up), mo,
                                    eo, ho, uo, oo, lo, hi);
        } else {
            const int32_t sb0 = ec_add_in_b(b[0], off_b, mq, mr, e, half, up);
            for (i = 0; i < m; i++)
                tmp[i] = ec_add_out(((int32_t)a[i0 + i] + off_a) * (1 << 19) + sb0, mo, eo, ho,
                                    uo, oo, lo, hi);
        }
        memcpy(out + i0, tmp, (size_t)m);
    }
}

typedef void (*ec_add_run_fn)(const int8_t *, ptrdiff_t, const int8_t *, ptrdiff_t, int8_t *,
                              ptrdiff_t, const ec_add_k *);

static void ec_add_run_generic(const int8_t *a, ptrdiff_t sa, const int8_t *b, ptrdiff_t sb,
                               int8_t *out, ptrdiff_t n, const ec_add_k *k) {
    ec_add_run_body(a, sa, b, sb, out, n, k);
}

#ifdef EC_X86
__attribute__((target("avx2"))) static void ec_add_run_avx2(const int8_t *a, ptrdiff_t sa,
                                                            const int8_t *b, ptrdiff_t sb,
                                                            int8_t *out, ptrdiff_t n,
                                                            const ec_add_k *k) {
    ec_add_run_body(a, sa, b, sb, out, n, k);
}

#include <immintrin.h>
#define EC_TGT_ADD512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(v, m), e) of 16 int32 lanes in one
 * exact step on 64-bit lanes (the derivation is in gemm_amx_rq.h): with P = v * m,
 * (P + K - [P + K < THR] * 2^31) >> (31 + e), K = 2^30 + 2^(30 + e) and THR = 2^(30 + e) when
 * e >= 1, K = 2^30 and no correction when e = 0. */
typedef struct {
    __m512i m, k, thr;
    __m128i sh;
} ec_add_q;

EC_TGT_ADD512 static inline void ec_add_q_init(ec_add_q *q, int32_t m, int32_t e) {
    q->m = _mm512_set1_epi64((int64_t)m);
    q->k = _mm512_set1_epi64(((int64_t)1 << 30) + (e >= 1 ? (int64_t)1 << (30 + e) : 0));
    q->thr = _mm512_set1_epi64(e >= 1 ? (int64_t)1 << (30 + e) : INT64_MIN);
    q->sh = _mm_cvtsi32_si128(31 + e);
}

EC_TGT_ADD512 static inline __m512i ec_add_q_half(__m512i v, const ec_add_q *q) {
    __m512i s = _mm512_add_epi64(_mm512_mul_epi32(v, q->m), q->k);
    s = _mm512_mask_sub_epi64(s, _mm512_cmplt_epi64_mask(s, q->thr), s,
                              _mm512_set1_epi64((int64_t)1 << 31));
    return _mm512_sra_epi64(s, q->sh);
}

EC_TGT_ADD512 static inline __m512i ec_add_q16(__m512i v, const ec_add_q *q) {
    __m512i e = ec_add_q_half(v, q), o = ec_add_q_half(_mm512_srli_epi64(v, 32), q);
    return _mm512_mask_shuffle_epi32(e, (__mmask16)0xAAAA, o, _MM_PERM_CDAB);
}

/* The same arithmetic as ec_add_run_body, 16 outputs at a time: input a exactly
 * (x + off_a) << 19, input b and the output through ec_add_q16 (input b's
 * SRDHM((x + off_b) << 20, M) needs no split of M here), then + output offset and the clamp
 * (|result| < 2^30: no overflow), saturating narrow. A run of stride 0 is one value. */
EC_TGT_ADD512 static void ec_add_run_avx512(const int8_t *a, ptrdiff_t sa, const int8_t *b,
                                            ptrdiff_t sb, int8_t *out, ptrdiff_t n,
                                            const ec_add_k *k) {
    ec_add_q qb, qo;
    const __m512i off_a = _mm512_set1_epi32(k->off_a), off_b = _mm512_set1_epi32(k->off_b);
    const __m512i off = _mm512_set1_epi32(k->out_off);
    const __m512i lo = _mm512_set1_epi32(k->act_min), hi = _mm512_set1_epi32(k->act_max);
    const int32_t mb = k->mq * 2048 + k->mr;
    __m512i a0 = _mm512_set1_epi32((k->off_a + a[0]) * (1 << 19));
    __m512i b0 = _mm512_set1_epi32(ec_add_in_b(b[0], k->off_b, k->mq, k->mr, k->e, k->half,
                                               k->up));
    ptrdiff_t i;
    ec_add_q_init(&qb, mb, k->e);
    ec_add_q_init(&qo, k->mo, k->eo);
    for (i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512i va = a0, vb = b0, y;
        if (sa)
            va = _mm512_slli_epi32(
                _mm512_add_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, a + i)), off_a), 19);
        if (sb)
            vb = ec_add_q16(_mm512_slli_epi32(_mm512_add_epi32(
                                _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, b + i)), off_b), 20),
                            &qb);
        y = _mm512_add_epi32(ec_add_q16(_mm512_add_epi32(va, vb), &qo), off);
        y = _mm512_min_epi32(_mm512_max_epi32(y, lo), hi);
        _mm_mask_storeu_epi8(out + i, m, _mm512_cvtsepi32_epi8(y));
    }
}
#endif

static ec_add_run_fn ec_add_run_for(int isa) {
    isa = ec_simd_isa(isa);
#ifdef EC_X86
    if (isa == EC_ISA_AVX512VNNI) return ec_add_run_avx512;
    if (isa == EC_ISA_AVX2) return ec_add_run_avx2;
#endif
    (void)isa;
    return ec_add_run_generic;
}

/* The broadcast walk (params.Broadcast): rank fused dims, outermost first; the last one is the
 * inner run, the others an odometer over input offsets. out is contiguous in that order. */
typedef struct {
    ec_add_run_fn run;
    const int8_t *x1, *x2;
    int8_t *out;
    int rank;
    const int32_t *size, *stride1, *stride2;
    const ec_add_k *k;
    ptrdiff_t inner, outer, per_chunk; /* a chunk: per_chunk runs, or per_chunk elements of
                                        * the single run when rank is 1 */
} ec_add_job;

/* Runs [r0, r1) of the walk (x1 is input a here: swapped already). */
static void ec_add_rows(const ec_add_job *j, ptrdiff_t r0, ptrdiff_t r1) {
    const int rank = j->rank;
    const int32_t *size = j->size, *s1 = j->stride1, *s2 = j->stride2;
    ptrdiff_t o1 = 0, o2 = 0, rem = r0, r;
    int32_t idx[EC_MAX_DIMS] = {0};
    int d;
    for (d = rank - 2; d >= 0; d--) { /* odometer position of run r0 */
        idx[d] = (int32_t)(rem % size[d]);
        rem /= size[d];
        o1 += (ptrdiff_t)idx[d] * s1[d];
        o2 += (ptrdiff_t)idx[d] * s2[d];
    }
    for (r = r0; r < r1; r++) {
        j->run(j->x1 + o1, s1[rank - 1], j->x2 + o2, s2[rank - 1], j->out + r * j->inner,
               j->inner, j->k);
        for (d = rank - 2; d >= 0; d--) {
            o1 += s1[d];
            o2 += s2[d];
            if (++idx[d] < size[d]) break;
            o1 -= (ptrdiff_t)s1[d] * size[d];
            o2 -= (ptrdiff_t)s2[d] * size[d];
            idx[d] = 0;
        }
    }
}

static void ec_add_chunk(void *ctx, int index, int slot) {
    const ec_add_job *j = (const ec_add_job *)ctx;
    ptrdiff_t lo = index * j->per_chunk, hi = lo + j->per_chunk;
    (void)slot;
    if (j->rank == 1) { /* a piece of the one run */
        ptrdiff_t s1 = j->stride1[0], s2 = j->stride2[0];
        if (hi > j->inner) hi = j->inner;
        j->run(j->x1 + lo * s1, s1, j->x2 + lo * s2, s2, j->out + lo, hi - lo, j->k);
        return;
    }
    ec_add_rows(j, lo, hi < j->outer ? hi : j->outer);
}

/* Outputs: smaller ADDs stay on the calling thread. An ADD after a layer split between
 * threads finds each half of its inputs in the cache of the thread that wrote it, and its
 * chunks go in the same memory order: on one thread MobileNetV2's 28x28x32 ADDs (25,088
 * outputs, 12 us) took longer at 2 threads than at 1, pulling half their bytes from the
 * other core. */
#define EC_ADD_SERIAL 4096

static void ec_add_s8(ec_add_run_fn run, const int8_t *x1, const int8_t *x2, int8_t *out,
                      int rank, const int32_t *size, const int32_t *stride1,
                      const int32_t *stride2, const ec_add_k *k, int nthreads) {
    ec_add_job j;
    ptrdiff_t total, units;
    int d;
    if (k->swap) { /* addition commutes: walk x2 as input a */
        const int8_t *xt = x1;
        const int32_t *st = stride1;
        x1 = x2;
        x2 = xt;
        stride1 = stride2;
        stride2 = st;
    }
    j.run = run;
    j.x1 = x1;
    j.x2 = x2;
    j.out = out;
    j.rank = rank;
    j.size = size;
    j.stride1 = stride1;
    j.stride2 = stride2;
    j.k = k;
    j.inner = size[rank - 1];
    j.outer = 1;
    for (d = 0; d < rank - 1; d++) j.outer *= size[d];
    total = j.inner * j.outer;
    units = rank == 1 ? j.inner : j.outer;
    if (nthreads <= 1 || total < EC_ADD_SERIAL || units < 2) {
        ec_add_rows(&j, 0, j.outer);
        return;
    }
    j.per_chunk = (units + 4 * nthreads - 1) / (4 * nthreads);
    if (rank == 1) j.per_chunk = (j.per_chunk + 63) / 64 * 64;
    ec_pool_run(ec_add_chunk, &j, (int)((units + j.per_chunk - 1) / j.per_chunk), nthreads);
}

/* MEAN over the count = H * W rows of x (count, c): per channel, the int32 sum (uint32 lanes:
 * it wraps exactly as LiteRT's temp_sum), then sum - zp * count wrapped to int32 (LiteRT's
 * int64 difference cast to int32) and MultiplyByQuantizedMultiplier (policy double): a left
 * shift (wrapping) when shift > 0, SRDHM as floor((x * M + 2^30) / 2^31) (M >= 0), then
 * RoundingDivideByPOT in its remainder-threshold form (no overflow for any int32). Policy fp32
 * (XNNPACK's qs8 mean): rintf(float32(float32(sum) * scale) + bias), the product stored through
 * a volatile so no compiler fuses it with the addition into one FMA rounding (XNNPACK rounds
 * twice); per output channel only, so it costs nothing next to the row loop. Channels go in
 * blocks of EC_MEAN_BLOCK accumulators on the stack; the row loop and the double policy's
 * requantization loop both vectorize. */
#define EC_MEAN_BLOCK 256
EC_INLINE void ec_mean_body(const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier,
                            int32_t shift, int32_t input_offset, int32_t output_offset,
                            int policy, float scale, float bias, int8_t *out) {
    uint32_t acc[EC_MEAN_BLOCK];
    const uint32_t offset = (uint32_t)input_offset * (uint32_t)count;
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32_t mask = (int32_t)((1u << right) - 1u), half = mask >> 1;
    const int64_t m = multiplier;
    ptrdiff_t c0, r, j, cb;
    for (c0 = 0; c0 < c; c0 += EC_MEAN_BLOCK) {
        cb = c - c0 < EC_MEAN_BLOCK ? c - c0 : EC_MEAN_BLOCK;
        for (j = 0; j < cb; j++) acc[j] = 0;
        for (r = 0; r < count; r++) {
            const int8_t *row = x + r * c + c0;
            for (j = 0; j < cb; j++) acc[j] += (uint32_t)(int32_t)row[j];
        }
        if (policy == EC_ROUND_FP32) {
            for (j = 0; j < cb; j++) {
                volatile float product = (float)(int32_t)acc[j] * scale;
                float y = rintf(product + bias);
                y = y > -128.0f ? y : -128.0f;
                out[c0 + j] = (int8_t)(y < 127.0f ? y : 127.0f);
            }
            continue;
        }
        for (j = 0; j < cb; j++) {
            const int32_t v = (int32_t)((acc[j] + offset) << left);
            const int32_t h = (int32_t)(((int64_t)v * m + ((int64_t)1 << 30)) >> 31);
            int32_t y = (h >> right) + ((h & mask) > (half - (h >> 31))) + output_offset;
            y = y > -128 ? y : -128;
            out[c0 + j] = (int8_t)(y < 127 ? y : 127);
        }
    }
}

/* The same body compiled per ISA, as ADD's (the signed widening multiply of the requantization
 * needs SSE4.1's pmuldq or better to vectorize on x86). */
static void ec_mean_s8_generic(const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier,
                               int32_t shift, int32_t input_offset, int32_t output_offset,
                               int policy, float scale, float bias, int8_t *out) {
    ec_mean_body(x, count, c, multiplier, shift, input_offset, output_offset, policy, scale, bias,
                 out);
}

#ifdef EC_X86
__attribute__((target("avx2"))) static void ec_mean_s8_avx2(
    const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier, int32_t shift,
    int32_t input_offset, int32_t output_offset, int policy, float scale, float bias,
    int8_t *out) {
    ec_mean_body(x, count, c, multiplier, shift, input_offset, output_offset, policy, scale, bias,
                 out);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void ec_mean_s8_avx512(
    const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier, int32_t shift,
    int32_t input_offset, int32_t output_offset, int policy, float scale, float bias,
    int8_t *out) {
    ec_mean_body(x, count, c, multiplier, shift, input_offset, output_offset, policy, scale, bias,
                 out);
}
#endif

static void ec_mean_s8(int isa, const int8_t *x, ptrdiff_t count, ptrdiff_t c,
                       int32_t multiplier, int32_t shift, int32_t input_offset,
                       int32_t output_offset, int policy, float scale, float bias, int8_t *out) {
    isa = ec_simd_isa(isa);
#ifdef EC_X86
    if (isa == EC_ISA_AVX512VNNI) {
        ec_mean_s8_avx512(x, count, c, multiplier, shift, input_offset, output_offset, policy,
                          scale, bias, out);
        return;
    }
    if (isa == EC_ISA_AVX2) {
        ec_mean_s8_avx2(x, count, c, multiplier, shift, input_offset, output_offset, policy,
                        scale, bias, out);
        return;
    }
#endif
    (void)isa;
    ec_mean_s8_generic(x, count, c, multiplier, shift, input_offset, output_offset, policy, scale,
                       bias, out);
}

#endif /* EDGECNN_GRAPH_OPS_H */
