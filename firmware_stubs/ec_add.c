/* int8 ADD, the twin of edgecnn/reference/add.py (LiteRT reference_integer_ops::AddFunc).
 * x1, x2 NumPy-broadcast operands walked by an ec_broadcast_t; out of the broadcast shape, and
 * allowed to be x1 or x2 (each output is written after both of its inputs are read).
 *   s_i = MBQM((x_i + offset_i) << 20, M_i, shift_i)   |x_i - zp_i| <= 255: < 2^28, no overflow
 *   y   = MBQM(s_1 + s_2, M_out, shift_out) + zp_out, clamped to [act_min, act_max]
 * with every shift <= 0, so MBQM is SRDHM then RoundingDivideByPOT (fixedpoint.h). The walk:
 * the last (fused) dimension is an inner run with strides (1, 1), (1, 0) or (0, 1); an
 * odometer steps the outer ones.
 * The larger-scale operand A has M0 = 2^30, shift 0 (its ratio is exactly 1/2), so its s is
 * (x + offset) << 19 exactly (SRDHM halves an even number, RDBP by 2^0 keeps it); the other, B,
 * has M0 in [2^30, 2^31) and shift <= -1, or is exact too (equal scales). The SIMD paths take
 * that form (make_add_params always gives it; any other runs in C):
 *   C    ec_mbqm_double per value (64-bit products).
 *   DSP  SRDHM by one SMMLAR (ec_rq_right's identity), RDBP(h, r) as (h + half - [h < 0]) >> r
 *        (the output's r may be 0: half = 0, no correction), SSAT to int8.
 *   MVE  4 values per vector: widening byte loads, VQRDMULH by the scalar M0 (= SRDHM, see
 *        ec_simd.h), RDBP as VRSHL by -r of h - [h < 0] (VMLA adds (h >> 31) * [r >= 1]).
 */
#include "ec_simd.h"

static int8_t ec_add_one(int8_t a, int8_t b, const ec_add_params_t *p) {
    const int32_t s = ec_mbqm_double(((int32_t)a + p->input1_offset) * (1 << p->left_shift),
                                     p->input1_multiplier, p->input1_shift) +
                      ec_mbqm_double(((int32_t)b + p->input2_offset) * (1 << p->left_shift),
                                     p->input2_multiplier, p->input2_shift);
    const int32_t y = ec_mbqm_double(s, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)(y < p->act_min ? p->act_min : (y > p->act_max ? p->act_max : y));
}

/* The SIMD paths' view of the parameters: A and B as above (A and B may be inputs 2 and 1). */
typedef struct {
    int32_t off_a19, off_b20, off_b19; /* offsets times 2^19 or 2^20 */
    int32_t m_b, r_b, b_exact;         /* B's M0 and r = -shift (>= 1 unless exact) */
    int32_t m_o, r_o, zp, lo, hi;      /* the output's M0 (>= 2^30), r >= 0, zp, clamp */
} ec_add_k_t;

#if defined(EC_PATH_DSP)
/* SRDHM(a, M0) by SMMLAR of m2 = 2 * M0 as int32 (M0 >= 2^30, ec_rq_right). */
static inline int32_t ec_add_srdhm(int32_t a, int32_t m2) {
    int32_t h;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(h) : "r"(a), "r"(m2));
    return h;
}

/* n values, A and B stepping sa and sb (0 or 1). RDBP(h, r) = (h + half + (neg & (h >> 31)))
 * >> r: half = 2^(r-1), neg = -1 for r >= 1, both 0 for r = 0 (|h| < 2^29: no overflow). */
__attribute__((always_inline)) static inline void ec_add_run_k(
    const int8_t *xa, int32_t sa, const int8_t *xb, int32_t sb, int32_t n, const ec_add_k_t *k,
    int b_exact, int8_t *out) {
    const int32_t off_a = k->off_a19, off_b = b_exact ? k->off_b19 : k->off_b20;
    const int32_t m2_b = (int32_t)((uint32_t)k->m_b << 1), r_b = k->r_b;
    const int32_t half_b = r_b ? 1 << (r_b - 1) : 0, m2_o = (int32_t)((uint32_t)k->m_o << 1);
    const int32_t r_o = k->r_o, half_o = r_o ? 1 << (r_o - 1) : 0, neg_o = r_o ? -1 : 0;
    const int32_t zp = k->zp, lo = k->lo, hi = k->hi;
    int32_t i, y;
    for (i = 0; i < n; i++, xa += sa, xb += sb) {
        int32_t s;
        if (b_exact) {
            s = off_a + off_b + (*xa + *xb) * (1 << 19);
        } else {
            int32_t h = ec_add_srdhm(off_b + *xb * (1 << 20), m2_b);
            h += h >> 31; /* r_b >= 1 */
            s = ((h + half_b) >> r_b) + off_a + *xa * (1 << 19);
        }
        s = ec_add_srdhm(s, m2_o);
        s = ((s + half_o + (neg_o & (s >> 31))) >> r_o) + zp;
        __asm__("ssat %0, #8, %1" : "=r"(y) : "r"(s));
        y = y < lo ? lo : y;
        out[i] = (int8_t)(y > hi ? hi : y);
    }
}

static void ec_add_run(const int8_t *xa, int32_t sa, const int8_t *xb, int32_t sb, int32_t n,
                       const ec_add_k_t *k, int8_t *out) {
    if (k->b_exact)
        ec_add_run_k(xa, sa, xb, sb, n, k, 1, out);
    else
        ec_add_run_k(xa, sa, xb, sb, n, k, 0, out);
}
#elif defined(EC_PATH_MVE)
/* n values, 4 a step: s is A's (x + offset) << 19 plus B's, exact or MBQM'd (VMLA by 2^19
 * does A's shift and the sum at once), then the output's MBQM, zp and clamp. Equal shapes
 * (both strides 1) run whole vectors unpredicated and the last one predicated; a broadcast
 * operand (stride 0) is one value in every lane. */
#define EC_ADD_X4(va, vb, y)                                                                 \
    do {                                                                                     \
        int32x4_t s_, h_;                                                                    \
        if (b_exact) {                                                                       \
            s_ = vaddq_n_s32(vshlq_n_s32(vaddq_s32(va, vb), 19), off_ab);                    \
        } else {                                                                             \
            h_ = vqrdmulhq_n_s32(vaddq_n_s32(vshlq_n_s32(vb, 20), off_b), m_b);              \
            h_ = vrshlq_n_s32(vaddq_s32(h_, vshrq_n_s32(h_, 31)), neg_rb);                   \
            s_ = vmlaq_n_s32(vaddq_n_s32(h_, off_a), va, 1 << 19);                           \
        }                                                                                    \
        h_ = vqrdmulhq_n_s32(s_, m_o);                                                       \
        h_ = vrshlq_n_s32(vmlaq_n_s32(h_, vshrq_n_s32(h_, 31), fix), neg_r);                 \
        y = vminq_s32(vmaxq_s32(vaddq_n_s32(h_, zp), lo), hi);                               \
    } while (0)

__attribute__((always_inline)) static inline void ec_add_run_k(
    const int8_t *xa, int32_t sa, const int8_t *xb, int32_t sb, int32_t n, const ec_add_k_t *k,
    int b_exact, int8_t *out) {
    const int32_t m_o = k->m_o, neg_r = -k->r_o, fix = k->r_o > 0, zp = k->zp;
    const int32_t off_ab = k->off_a19 + k->off_b19, off_a = k->off_a19, off_b = k->off_b20;
    const int32_t m_b = k->m_b, neg_rb = -k->r_b;
    const int32x4_t lo = vdupq_n_s32(k->lo), hi = vdupq_n_s32(k->hi);
    int32x4_t y;
    int32_t i = 0;
    if (sa && sb) {
        for (; i + 4 <= n; i += 4) {
            EC_ADD_X4(vldrbq_s32(xa + i), vldrbq_s32(xb + i), y);
            vstrbq_s32(out + i, y);
        }
        if (i < n) {
            const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
            EC_ADD_X4(vldrbq_z_s32(xa + i, pr), vldrbq_z_s32(xb + i, pr), y);
            vstrbq_p_s32(out + i, y, pr);
        }
        return;
    }
    for (; i < n; i += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
        EC_ADD_X4(sa ? vldrbq_z_s32(xa + i, pr) : vdupq_n_s32(*xa),
                  sb ? vldrbq_z_s32(xb + i, pr) : vdupq_n_s32(*xb), y);
        vstrbq_p_s32(out + i, y, pr);
    }
}
#undef EC_ADD_X4

static void ec_add_run(const int8_t *xa, int32_t sa, const int8_t *xb, int32_t sb, int32_t n,
                       const ec_add_k_t *k, int8_t *out) {
    if (k->b_exact)
        ec_add_run_k(xa, sa, xb, sb, n, k, 1, out);
    else
        ec_add_run_k(xa, sa, xb, sb, n, k, 0, out);
}
#endif

void ec_add_s8(const int8_t *x1, const int8_t *x2, const ec_broadcast_t *b,
               const ec_add_params_t *p, int8_t *out) {
    const int32_t last = b->rank - 1, inner = b->size[last];
    int32_t idx[EC_MAX_DIMS] = {0};
    int32_t outer = 1, r, i, d, o1 = 0, o2 = 0;
#if !defined(EC_PATH_C)
    /* A: the exact operand (input 1 where both are), B the other */
    const int a1 = p->input1_multiplier == 1 << 30 && p->input1_shift == 0;
    const int a2 = p->input2_multiplier == 1 << 30 && p->input2_shift == 0;
    const int32_t mb = a1 ? p->input2_multiplier : p->input1_multiplier;
    const int32_t shb = a1 ? p->input2_shift : p->input1_shift;
    const int32_t off_a = a1 ? p->input1_offset : p->input2_offset;
    const int32_t off_b = a1 ? p->input2_offset : p->input1_offset;
    const int b_exact = a1 && a2;
    const ec_add_k_t k = {off_a * (1 << 19), off_b * (1 << 20), off_b * (1 << 19), mb, -shb,
                          b_exact, p->output_multiplier, -p->output_shift, p->output_offset,
                          p->act_min, p->act_max};
    const int simd = (a1 || a2) && (b_exact || (mb >= 1 << 30 && shb <= -1)) &&
                     p->output_multiplier >= 1 << 30 && p->output_shift <= 0 &&
                     p->left_shift == 20;
    /* the inner strides of A and B */
    const int32_t sa = a1 ? b->stride1[last] : b->stride2[last];
    const int32_t sb = a1 ? b->stride2[last] : b->stride1[last];
#endif
    for (d = 0; d < last; d++) outer *= b->size[d];
    for (r = 0; r < outer; r++) {
#if !defined(EC_PATH_C)
        if (simd && a1)
            ec_add_run(x1 + o1, sa, x2 + o2, sb, inner, &k, out + r * inner);
        else if (simd)
            ec_add_run(x2 + o2, sa, x1 + o1, sb, inner, &k, out + r * inner);
        else
#endif
            for (i = 0; i < inner; i++)
                out[r * inner + i] = ec_add_one(x1[o1 + i * b->stride1[last]],
                                                x2[o2 + i * b->stride2[last]], p);
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
