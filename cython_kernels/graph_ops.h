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

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void ec_add_run_avx512(
    const int8_t *a, ptrdiff_t sa, const int8_t *b, ptrdiff_t sb, int8_t *out, ptrdiff_t n,
    const ec_add_k *k) {
    ec_add_run_body(a, sa, b, sb, out, n, k);
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
static void ec_add_s8(ec_add_run_fn run, const int8_t *x1, const int8_t *x2, int8_t *out,
                      int rank, const int32_t *size, const int32_t *stride1,
                      const int32_t *stride2, const ec_add_k *k) {
    ptrdiff_t inner = size[rank - 1], outer = 1, r, o1 = 0, o2 = 0;
    int32_t idx[EC_MAX_DIMS] = {0};
    int d;
    if (k->swap) { /* addition commutes: walk x2 as input a */
        const int8_t *xt = x1;
        const int32_t *st = stride1;
        x1 = x2;
        x2 = xt;
        stride1 = stride2;
        stride2 = st;
    }
    for (d = 0; d < rank - 1; d++) outer *= size[d];
    for (r = 0; r < outer; r++) {
        run(x1 + o1, stride1[rank - 1], x2 + o2, stride2[rank - 1], out + r * inner, inner, k);
        for (d = rank - 2; d >= 0; d--) {
            o1 += stride1[d];
            o2 += stride2[d];
            if (++idx[d] < size[d]) break;
            o1 -= (ptrdiff_t)stride1[d] * size[d];
            o2 -= (ptrdiff_t)stride2[d] * size[d];
            idx[d] = 0;
        }
    }
}

/* MEAN over the count = H * W rows of x (count, c): per channel, the int32 sum (uint32 lanes:
 * it wraps exactly as LiteRT's temp_sum), then sum - zp * count wrapped to int32 (LiteRT's
 * int64 difference cast to int32) and MultiplyByQuantizedMultiplier (policy double): a left
 * shift (wrapping) when shift > 0, SRDHM as floor((x * M + 2^30) / 2^31) (M >= 0), then
 * RoundingDivideByPOT in its remainder-threshold form (no overflow for any int32). Channels go
 * in blocks of EC_MEAN_BLOCK accumulators on the stack; the row loop and the requantization
 * loop both vectorize. */
#define EC_MEAN_BLOCK 256
EC_INLINE void ec_mean_body(const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier,
                            int32_t shift, int32_t input_offset, int32_t output_offset,
                            int8_t *out) {
    uint32_t acc[EC_MEAN_BLOCK];
    const uint32_t bias = (uint32_t)input_offset * (uint32_t)count;
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
        for (j = 0; j < cb; j++) {
            const int32_t v = (int32_t)((acc[j] + bias) << left);
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
                               int8_t *out) {
    ec_mean_body(x, count, c, multiplier, shift, input_offset, output_offset, out);
}

#ifdef EC_X86
__attribute__((target("avx2"))) static void ec_mean_s8_avx2(
    const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier, int32_t shift,
    int32_t input_offset, int32_t output_offset, int8_t *out) {
    ec_mean_body(x, count, c, multiplier, shift, input_offset, output_offset, out);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void ec_mean_s8_avx512(
    const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier, int32_t shift,
    int32_t input_offset, int32_t output_offset, int8_t *out) {
    ec_mean_body(x, count, c, multiplier, shift, input_offset, output_offset, out);
}
#endif

static void ec_mean_s8(int isa, const int8_t *x, ptrdiff_t count, ptrdiff_t c,
                       int32_t multiplier, int32_t shift, int32_t input_offset,
                       int32_t output_offset, int8_t *out) {
    isa = ec_simd_isa(isa);
#ifdef EC_X86
    if (isa == EC_ISA_AVX512VNNI) {
        ec_mean_s8_avx512(x, count, c, multiplier, shift, input_offset, output_offset, out);
        return;
    }
    if (isa == EC_ISA_AVX2) {
        ec_mean_s8_avx2(x, count, c, multiplier, shift, input_offset, output_offset, out);
        return;
    }
#endif
    (void)isa;
    ec_mean_s8_generic(x, count, c, multiplier, shift, input_offset, output_offset, out);
}

#endif /* EDGECNN_GRAPH_OPS_H */
