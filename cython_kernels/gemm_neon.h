/* edgecnn aarch64 int8 paths (included by gemm_s8.h): NEON (armv8-a baseline) and the
 * dot-product variant (sdot, armv8.2-a+dotprod) compiled with a target attribute into the same
 * baseline build and chosen at run time by getauxval(AT_HWCAP) & HWCAP_ASIMDDP.
 *
 * sdot: int8 A times int8 weights, 4 products into an int32 lane (|sum| <= 4 * 128 * 127).
 * NEON: int16 A and weights (S16X2 layout), smlal by lane into int32: exact.
 * FC without sdot: smull/smlal of two int8 products into int16 (|2 * 128 * 127| < 2^15),
 * then sadalp into int32. Requantization (policy double) uses SQRDMULH, which equals
 * gemmlowp's SRDHM for every input but INT32_MIN^2 (M0 >= 0 here), and TFLite's
 * fixup + SRSHL form of RoundingDivideByPOT.
 */
#ifndef EDGECNN_GEMM_NEON_H
#define EDGECNN_GEMM_NEON_H

#include <arm_neon.h>

#define EC_TGT_SDOT __attribute__((target("arch=armv8.2-a+dotprod")))

/* S8X4, MR 4 x NR 16: A int8 runs, b [kp/4][16][4] int8 = 4 q registers a step. */
EC_TGT_SDOT static void ec_kern_sdot(const uint8_t *const *rows, int nseg, int segp,
                                     ptrdiff_t ss, const void *bv, int32_t *tile) {
    const int8_t *b = (const int8_t *)bv;
    int32x4_t c[4][4];
    int r, q, g, s, groups = segp / 4;
    for (r = 0; r < 4; r++)
        for (q = 0; q < 4; q++) c[r][q] = vdupq_n_s32(0);
    for (s = 0; s < nseg; s++) {
        const int8_t *a[4];
        for (r = 0; r < 4; r++) a[r] = (const int8_t *)(rows[r] + s * ss);
        for (g = 0; g < groups; g++, b += 64) {
            int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16);
            int8x16_t b2 = vld1q_s8(b + 32), b3 = vld1q_s8(b + 48);
            for (r = 0; r < 4; r++) {
                int32_t v;
                memcpy(&v, a[r] + 4 * g, 4);
                int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(v));
                c[r][0] = vdotq_s32(c[r][0], b0, x);
                c[r][1] = vdotq_s32(c[r][1], b1, x);
                c[r][2] = vdotq_s32(c[r][2], b2, x);
                c[r][3] = vdotq_s32(c[r][3], b3, x);
            }
        }
    }
    for (r = 0; r < 4; r++)
        for (q = 0; q < 4; q++) vst1q_s32(tile + r * EC_MAX_NR + 4 * q, c[r][q]);
}

/* S16X2, MR 4 x NR 16: A int16 runs, b [kp/2][16][2] int16; vld2 splits even/odd k. */
static void ec_kern_neon(const uint8_t *const *rows, int nseg, int segp, ptrdiff_t ss,
                         const void *bv, int32_t *tile) {
    const int16_t *b = (const int16_t *)bv;
    int32x4_t c[4][4];
    int r, q, g, s, groups = segp / 2;
    for (r = 0; r < 4; r++)
        for (q = 0; q < 4; q++) c[r][q] = vdupq_n_s32(0);
    for (s = 0; s < nseg; s++) {
        const int16_t *a[4];
        for (r = 0; r < 4; r++) a[r] = (const int16_t *)(rows[r] + s * ss);
        for (g = 0; g < groups; g++, b += 32) {
            int16x8x2_t lo = vld2q_s16(b);      /* channels 0..7 */
            int16x8x2_t hi = vld2q_s16(b + 16); /* channels 8..15 */
            for (r = 0; r < 4; r++) {
                int16_t a0 = a[r][2 * g], a1 = a[r][2 * g + 1];
                c[r][0] = vmlal_n_s16(vmlal_n_s16(c[r][0], vget_low_s16(lo.val[0]), a0),
                                      vget_low_s16(lo.val[1]), a1);
                c[r][1] = vmlal_n_s16(vmlal_n_s16(c[r][1], vget_high_s16(lo.val[0]), a0),
                                      vget_high_s16(lo.val[1]), a1);
                c[r][2] = vmlal_n_s16(vmlal_n_s16(c[r][2], vget_low_s16(hi.val[0]), a0),
                                      vget_low_s16(hi.val[1]), a1);
                c[r][3] = vmlal_n_s16(vmlal_n_s16(c[r][3], vget_high_s16(hi.val[0]), a0),
                                      vget_high_s16(hi.val[1]), a1);
            }
        }
    }
    for (r = 0; r < 4; r++)
        for (q = 0; q < 4; q++) vst1q_s32(tile + r * EC_MAX_NR + 4 * q, c[r][q]);
}

static void ec_requant_tile_double_neon(const ec_requant *rq, int c0, const int32_t *tile,
                                        int nrows, int8_t *out, size_t out_stride, int n) {
    const int32x4_t off = vdupq_n_s32(rq->out_off);
    const int32x4_t lo = vdupq_n_s32(rq->act_min), hi = vdupq_n_s32(rq->act_max);
    int j, r;
    for (j = 0; j < n; j += 4) { /* tile rows and parameters are padded to whole panels */
        int c = c0 + j, cnt = n - j < 4 ? n - j : 4;
        int32x4_t bias = vld1q_s32(rq->bias + c), m0 = vld1q_s32(rq->m0 + c);
        int32x4_t left = vld1q_s32(rq->left + c), neg_right = vnegq_s32(vld1q_s32(rq->right + c));
        for (r = 0; r < nrows; r++) {
            int32x4_t v = vaddq_s32(vld1q_s32(tile + r * EC_MAX_NR + j), bias);
            v = vqrdmulhq_s32(vshlq_s32(v, left), m0);
            int32x4_t fixup = vshrq_n_s32(vandq_s32(v, neg_right), 31);
            v = vrshlq_s32(vqaddq_s32(v, fixup), neg_right);
            v = vminq_s32(vmaxq_s32(vaddq_s32(v, off), lo), hi);
            int16x4_t v16 = vqmovn_s32(v);
            int8x8_t v8 = vqmovn_s16(vcombine_s16(v16, v16));
            int8_t tmp[8];
            vst1_s8(tmp, v8);
            memcpy(out + r * out_stride + j, tmp, (size_t)cnt);
        }
    }
}

EC_TGT_SDOT static void ec_fc4_sdot(const int8_t *x, const int8_t *w, int n, int cnt,
                                    int32_t *acc) {
    const int8_t *rows[4];
    int32x4_t s[4];
    int i = 0, j;
    for (j = 0; j < 4; j++) {
        rows[j] = w + (size_t)(j < cnt ? j : 0) * n;
        s[j] = vdupq_n_s32(0);
    }
    for (; i + 16 <= n; i += 16) {
        int8x16_t xv = vld1q_s8(x + i);
        for (j = 0; j < 4; j++) s[j] = vdotq_s32(s[j], xv, vld1q_s8(rows[j] + i));
    }
    for (j = 0; j < 4; j++) {
        int32_t t = vaddvq_s32(s[j]);
        int k;
        for (k = i; k < n; k++) t += (int32_t)x[k] * rows[j][k];
        acc[j] = t;
    }
}

static void ec_fc4_neon(const int8_t *x, const int8_t *w, int n, int cnt, int32_t *acc) {
    const int8_t *rows[4];
    int32x4_t s[4];
    int i = 0, j;
    for (j = 0; j < 4; j++) {
        rows[j] = w + (size_t)(j < cnt ? j : 0) * n;
        s[j] = vdupq_n_s32(0);
    }
    for (; i + 16 <= n; i += 16) {
        int8x16_t xv = vld1q_s8(x + i);
        for (j = 0; j < 4; j++) {
            int8x16_t wv = vld1q_s8(rows[j] + i);
            int16x8_t p = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
            p = vmlal_s8(p, vget_high_s8(xv), vget_high_s8(wv));
            s[j] = vpadalq_s16(s[j], p);
        }
    }
    for (j = 0; j < 4; j++) {
        int32_t t = vaddvq_s32(s[j]);
        int k;
        for (k = i; k < n; k++) t += (int32_t)x[k] * rows[j][k];
        acc[j] = t;
    }
}

#endif /* EDGECNN_GEMM_NEON_H */
