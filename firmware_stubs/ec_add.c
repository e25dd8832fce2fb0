/* int8 ADD, the twin of edgecnn/reference/add.py (LiteRT reference_integer_ops::AddFunc).
 * x1, x2 NumPy-broadcast operands walked by an ec_broadcast_t; out of the broadcast shape, and
 * allowed to be x1 or x2 (each output is written after both of its inputs are read).
 *   s_i = MBQM((x_i + offset_i) << 20, M_i, shift_i)   |x_i - zp_i| <= 255: < 2^28, no overflow
 *   y   = MBQM(s_1 + s_2, M_out, shift_out) + zp_out, clamped to [act_min, act_max]
 * with every shift <= 0, so MBQM is SRDHM then RoundingDivideByPOT (fixedpoint.h). The walk:
 * the last (fused) dimension is an inner run with strides (1, 1), (1, 0) or (0, 1); an
 * odometer steps the outer ones. Paths, where every multiplier M0 is >= 2^30 (make_add_params
 * gives M0 in [2^30, 2^31) unless a scale ratio is below 2^-31; otherwise plain C):
 *   C    ec_mbqm_double per value (64-bit products).
 *   DSP  SRDHM by one SMMLAR (ec_rq_right's identity), RDBP as (h + half - [h < 0]) >> r
 *        (exact for r = 0 too, half = 0 and no correction then), SSAT to int8: about 20
 *        instructions a value.
 *   MVE  4 values per vector: widening byte loads, VQRDMULH by the scalar M0 (= SRDHM, see
 *        ec_simd.h), RDBP as VRSHL by -r of h - [h < 0]; a broadcast operand is a VDUP.
 */
#include "ec_simd.h"

#if defined(EC_PATH_DSP)
/* RDBP(h, r) for 0 <= r <= 31 and |h| < 2^30 as (h + half + (neg & (h >> 31))) >> r, with half
 * = 2^(r-1) (0 for r = 0) and neg = -1 for r >= 1 (0 for r = 0): RDBP rounds half away from
 * zero, which for h < 0 is rounding h - 1 half up; the sum stays below 2^31. */
typedef struct {
    int32_t m2, r, half, neg; /* m2 = 2 * M0 as int32 (the SMMLAR operand) */
} ec_add_rq_t;

static ec_add_rq_t ec_add_rq(int32_t m0, int32_t shift) {
    ec_add_rq_t q;
    q.m2 = (int32_t)((uint32_t)m0 << 1);
    q.r = -shift;
    q.half = q.r ? 1 << (q.r - 1) : 0;
    q.neg = q.r ? -1 : 0;
    return q;
}
#endif

static int8_t ec_add_one(int8_t a, int8_t b, const ec_add_params_t *p) {
    const int32_t s = ec_mbqm_double(((int32_t)a + p->input1_offset) * (1 << p->left_shift),
                                     p->input1_multiplier, p->input1_shift) +
                      ec_mbqm_double(((int32_t)b + p->input2_offset) * (1 << p->left_shift),
                                     p->input2_multiplier, p->input2_shift);
    const int32_t y = ec_mbqm_double(s, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)(y < p->act_min ? p->act_min : (y > p->act_max ? p->act_max : y));
}

#if defined(EC_PATH_DSP)
/* SRDHM(a, M0) by SMMLAR (M0 >= 2^30, ec_rq_right), then RDBP. */
static inline int32_t ec_add_scale(int32_t a, const ec_add_rq_t *q) {
    int32_t h;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(h) : "r"(a), "r"(q->m2));
    return (h + q->half + (q->neg & (h >> 31))) >> q->r;
}

/* n values, x1 and x2 stepping s1 and s2 (0 or 1). */
static void ec_add_run(const int8_t *x1, int32_t s1, const int8_t *x2, int32_t s2, int32_t n,
                       const ec_add_params_t *p, int8_t *out) {
    const ec_add_rq_t q1 = ec_add_rq(p->input1_multiplier, p->input1_shift);
    const ec_add_rq_t q2 = ec_add_rq(p->input2_multiplier, p->input2_shift);
    const ec_add_rq_t qo = ec_add_rq(p->output_multiplier, p->output_shift);
    const int32_t o1 = p->input1_offset * (1 << 20), o2 = p->input2_offset * (1 << 20);
    const int32_t lo = p->act_min, hi = p->act_max, zp = p->output_offset;
    int32_t i, y;
    for (i = 0; i < n; i++, x1 += s1, x2 += s2) {
        const int32_t a = ec_add_scale(o1 + *x1 * (1 << 20), &q1);
        const int32_t b = ec_add_scale(o2 + *x2 * (1 << 20), &q2);
        __asm__("ssat %0, #8, %1" : "=r"(y) : "r"(ec_add_scale(a + b, &qo) + zp));
        y = y < lo ? lo : y;
        out[i] = (int8_t)(y > hi ? hi : y);
    }
}
#elif defined(EC_PATH_MVE)
/* RDBP by VRSHL of h - [h < 0] for r >= 1 (nfix = -1), h itself for r = 0 (nfix = 0). */
static inline int32x4_t ec_add_scale_x4(int32x4_t a, int32_t m0, int32_t r, int32_t nfix) {
    const int32x4_t h = vqrdmulhq_n_s32(a, m0);
    return vrshlq_n_s32(vaddq_s32(h, vandq_s32(vshrq_n_s32(h, 31), vdupq_n_s32(nfix))), -r);
}

static void ec_add_run(const int8_t *x1, int32_t s1, const int8_t *x2, int32_t s2, int32_t n,
                       const ec_add_params_t *p, int8_t *out) {
    const int32_t r1 = -p->input1_shift, r2 = -p->input2_shift, ro = -p->output_shift;
    const int32_t f1 = r1 ? -1 : 0, f2 = r2 ? -1 : 0, fo = ro ? -1 : 0;
    const int32x4_t o1 = vdupq_n_s32(p->input1_offset * (1 << 20));
    const int32x4_t o2 = vdupq_n_s32(p->input2_offset * (1 << 20));
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32_t i;
    for (i = 0; i < n; i += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
        const int32x4_t a = s1 ? vldrbq_z_s32(x1 + i, pr) : vdupq_n_s32(*x1);
        const int32x4_t b = s2 ? vldrbq_z_s32(x2 + i, pr) : vdupq_n_s32(*x2);
        const int32x4_t sa = ec_add_scale_x4(vaddq_s32(o1, vshlq_n_s32(a, 20)),
                                             p->input1_multiplier, r1, f1);
        const int32x4_t sb = ec_add_scale_x4(vaddq_s32(o2, vshlq_n_s32(b, 20)),
                                             p->input2_multiplier, r2, f2);
        int32x4_t y = ec_add_scale_x4(vaddq_s32(sa, sb), p->output_multiplier, ro, fo);
        y = vminq_s32(vmaxq_s32(vaddq_n_s32(y, p->output_offset), lo), hi);
        vstrbq_p_s32(out + i, y, pr);
    }
}
#endif

void ec_add_s8(const int8_t *x1, const int8_t *x2, const ec_broadcast_t *b,
               const ec_add_params_t *p, int8_t *out) {
    const int32_t last = b->rank - 1, inner = b->size[last];
    const int32_t sa = b->stride1[last], sb = b->stride2[last];
    int32_t idx[EC_MAX_DIMS] = {0};
    int32_t outer = 1, r, i, d, o1 = 0, o2 = 0;
#if !defined(EC_PATH_C)
    const int simd = p->input1_multiplier >= (1 << 30) && p->input2_multiplier >= (1 << 30) &&
                     p->output_multiplier >= (1 << 30) && p->left_shift == 20;
#endif
    for (d = 0; d < last; d++) outer *= b->size[d];
    for (r = 0; r < outer; r++) {
#if !defined(EC_PATH_C)
        if (simd)
            ec_add_run(x1 + o1, sa, x2 + o2, sb, inner, p, out + r * inner);
        else
#endif
            for (i = 0; i < inner; i++)
                out[r * inner + i] = ec_add_one(x1[o1 + i * sa], x2[o2 + i * sb], p);
        for (d = last - 1; d >= 0; d--) { /* odometer over the outer dimensions */
            o1 += b->stride1[d];
            o2 += b->stride2[d];
            if (++idx[d] < b->size[d]) break;
            o1 -= b->stride1[d] * b->size[d];
            o2 -= b->stride2[d] * b->size[d];
            idx[d] = 0;
        }
    }
}
