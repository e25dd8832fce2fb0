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
 * Input stage, exact in int32: with v = x + offset (|v| <= 255) and a = v << 20,
 *   SRDHM(a, M) = floor((a * M + 2^30) / 2^31) = floor((v * M + 2^10) / 2^11)
 * (gemmlowp's nudge-and-truncate is this floor for M >= 0, ties toward +inf), and with
 * M = mq * 2^11 + mr (mq < 2^20, mr < 2^11) that is v * mq + ((v * mr + 2^10) >> 11):
 * |v * mq| < 2^28 and |v * mr| < 2^19, no overflow. The output stage's SRDHM(s, M_out) needs
 * the 64-bit product (|s| <= 255 * 2^20, M_out < 2^31). RoundingDivideByPOT is
 * (x >> e) + ((x & mask) > (mask >> 1) + (x < 0)): ties away from zero, branch-free. */
typedef struct {
    int32_t off1, off2;          /* -zp of each input */
    int32_t mq1, mr1, mq2, mr2;  /* input multipliers split at bit 11 */
    int32_t e1, e2, eo;          /* right shifts = -shift, 0..31 */
    int32_t mask1, mask2, masko; /* 2^e - 1 */
    int64_t mo;                  /* output multiplier */
    int32_t out_off, act_min, act_max;
} ec_add_k;

static void ec_add_prepare(ec_add_k *k, int32_t input1_offset, int32_t input2_offset,
                           int32_t input1_multiplier, int32_t input1_shift,
                           int32_t input2_multiplier, int32_t input2_shift,
                           int32_t output_multiplier, int32_t output_shift,
                           int32_t output_offset, int32_t act_min, int32_t act_max) {
    k->off1 = input1_offset;
    k->off2 = input2_offset;
    k->mq1 = input1_multiplier >> 11;
    k->mr1 = input1_multiplier & 2047;
    k->mq2 = input2_multiplier >> 11;
    k->mr2 = input2_multiplier & 2047;
    k->e1 = -input1_shift;
    k->e2 = -input2_shift;
    k->eo = -output_shift;
    k->mask1 = (int32_t)((1u << k->e1) - 1u);
    k->mask2 = (int32_t)((1u << k->e2) - 1u);
    k->masko = (int32_t)((1u << k->eo) - 1u);
    k->mo = output_multiplier;
    k->out_off = output_offset;
    k->act_min = act_min;
    k->act_max = act_max;
}

#define EC_INLINE static inline __attribute__((always_inline))

EC_INLINE int32_t ec_add_rdbp(int32_t x, int32_t e, int32_t mask) {
    return (x >> e) + ((x & mask) > ((mask >> 1) - (x >> 31)));
}

/* One input rescaled to the common fixed point: RDBP(SRDHM((x + off) << 20, M), e). */
EC_INLINE int32_t ec_add_in(int32_t x, int32_t off, int32_t mq, int32_t mr, int32_t e,
                            int32_t mask) {
    int32_t v = x + off;
    return ec_add_rdbp(v * mq + ((v * mr + 1024) >> 11), e, mask);
}

EC_INLINE int8_t ec_add_out(int32_t s, const ec_add_k *k) {
    int32_t y = (int32_t)(((int64_t)s * k->mo + ((int64_t)1 << 30)) >> 31);
    y = ec_add_rdbp(y, k->eo, k->masko) + k->out_off;
    y = y < k->act_min ? k->act_min : y;
    return (int8_t)(y > k->act_max ? k->act_max : y);
}

/* n outputs from a run of x1 (stride sa: 1, or 0 = one repeated value) and of x2 (sb). */
EC_INLINE void ec_add_run_body(const int8_t *a, ptrdiff_t sa, const int8_t *b, ptrdiff_t sb,
                               int8_t *out, ptrdiff_t n, const ec_add_k *k) {
    const int32_t off1 = k->off1, mq1 = k->mq1, mr1 = k->mr1, e1 = k->e1, mask1 = k->mask1;
    const int32_t off2 = k->off2, mq2 = k->mq2, mr2 = k->mr2, e2 = k->e2, mask2 = k->mask2;
    int8_t tmp[EC_ADD_CHUNK];
    ptrdiff_t i0, i, m;
    for (i0 = 0; i0 < n; i0 += EC_ADD_CHUNK) {
        m = n - i0 < EC_ADD_CHUNK ? n - i0 : EC_ADD_CHUNK;
        if (sa && sb) {
            for (i = 0; i < m; i++)
                tmp[i] = ec_add_out(ec_add_in(a[i0 + i], off1, mq1, mr1, e1, mask1) +
                                        ec_add_in(b[i0 + i], off2, mq2, mr2, e2, mask2), k);
        } else if (sb) {
            const int32_t s1 = ec_add_in(a[0], off1, mq1, mr1, e1, mask1);
            for (i = 0; i < m; i++)
                tmp[i] = ec_add_out(s1 + ec_add_in(b[i0 + i], off2, mq2, mr2, e2, mask2), k);
        } else {
            const int32_t s2 = ec_add_in(b[0], off2, mq2, mr2, e2, mask2);
            for (i = 0; i < m; i++)
                tmp[i] = ec_add_out(ec_add_in(a[i0 + i], off1, mq1, mr1, e1, mask1) + s2, k);
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
 * int64 difference cast to int32) and MultiplyByQuantizedMultiplier (policy double). Channels
 * go in blocks of EC_MEAN_BLOCK accumulators on the stack; the row loop vectorizes. */
#define EC_MEAN_BLOCK 256
static void ec_mean_s8(const int8_t *x, ptrdiff_t count, ptrdiff_t c, int32_t multiplier,
                       int32_t shift, int32_t input_offset, int32_t output_offset, int8_t *out) {
    uint32_t acc[EC_MEAN_BLOCK];
    const uint32_t bias = (uint32_t)input_offset * (uint32_t)count;
    ptrdiff_t c0, r, j, cb;
    for (c0 = 0; c0 < c; c0 += EC_MEAN_BLOCK) {
        cb = c - c0 < EC_MEAN_BLOCK ? c - c0 : EC_MEAN_BLOCK;
        for (j = 0; j < cb; j++) acc[j] = 0;
        for (r = 0; r < count; r++) {
            const int8_t *row = x + r * c + c0;
            for (j = 0; j < cb; j++) acc[j] += (uint32_t)(int32_t)row[j];
        }
        for (j = 0; j < cb; j++) {
            int32_t y = ec_mbqm_double((int32_t)(acc[j] + bias), multiplier, shift) +
                        output_offset;
            out[c0 + j] = (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
        }
    }
}

#endif /* EDGECNN_GRAPH_OPS_H */
