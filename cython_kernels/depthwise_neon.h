/* edgecnn aarch64 depthwise kernel (included by depthwise_s8.h): NEON, armv8-a baseline, used
 * on the neon and neon-sdot paths (sdot needs 4-element dot products; a depthwise tap has one).
 *
 * 16 channels at a time in channel order: x widened with sxtl to int16, smlal of int16 x by the
 * int16 weights into 4 int32x4 accumulators per pixel (|x * w| <= 128 * 128, exact). Policy
 * double requantizes with SQRDMULH (gemmlowp's SRDHM for M0 >= 0) and TFLite's fixup + SRSHL
 * form of RoundingDivideByPOT; fp32 with FCVTNS (ties to even) after a clamp in float.
 */
#ifndef EDGECNN_DEPTHWISE_NEON_H
#define EDGECNN_DEPTHWISE_NEON_H

static inline int8x16_t ec_dw_load16_neon(const int8_t *src, int n) {
    int8_t tmp[16];
    if (n == 16) return vld1q_s8(src);
    memset(tmp, 0, sizeof(tmp));
    memcpy(tmp, src, (size_t)n);
    return vld1q_s8(tmp);
}

/* Policy double on 4 lanes: SQRDMULH is gemmlowp's SRDHM (M0 >= 0), then TFLite's fixup +
 * SRSHL form of RoundingDivideByPOT (neg_right = -right). */
static inline int32x4_t ec_dw_double_neon(int32x4_t v, int32x4_t m0, int32x4_t left,
                                          int32x4_t neg_right) {
    v = vqrdmulhq_s32(vshlq_s32(v, left), m0);
    int32x4_t fixup = vshrq_n_s32(vandq_s32(v, neg_right), 31);
    return vrshlq_s32(vqaddq_s32(v, fixup), neg_right);
}

static void ec_dw_store_neon(const ec_dw_plan *p, int c, int32x4_t (*a)[4], int npix,
                             int8_t *out, int n, int32_t *acc) {
    const ec_requant *rq = &p->rq;
    const int32x4_t off = vdupq_n_s32(rq->out_off);
    const int32x4_t lo = vdupq_n_s32(rq->act_min), hi = vdupq_n_s32(rq->act_max);
    int q, k;
    for (q = 0; q < npix; q++) {
        int32x4_t r[4];
        int8_t *dst = out + (size_t)q * p->cm;
        if (rq->policy == EC_ROUND_DOUBLE) {
            for (k = 0; k < 4; k++) {
                int32x4_t v = ec_dw_double_neon(a[q][k], vld1q_s32(p->sp.m0 + c + 4 * k),
                                                 vld1q_s32(p->sp.left + c + 4 * k),
                                                 vnegq_s32(vld1q_s32(p->sp.right + c + 4 * k)));
                r[k] = vminq_s32(vmaxq_s32(vaddq_s32(v, off), lo), hi);
            }
        } else if (rq->policy == EC_ROUND_FP32) {
            const float32x4_t flo = vdupq_n_f32((float)(rq->act_min - rq->out_off));
            const float32x4_t fhi = vdupq_n_f32((float)(rq->act_max - rq->out_off));
            for (k = 0; k < 4; k++) {
                float32x4_t f = vmulq_f32(vcvtq_f32_s32(a[q][k]), vld1q_f32(p->sp.scale + c + 4 * k));
                f = vminq_f32(vmaxq_f32(f, flo), fhi);
                r[k] = vaddq_s32(vcvtnq_s32_f32(f), off); /* ties to even */
            }
        } else {
            for (k = 0; k < 4; k++) vst1q_s32(acc + 4 * k, a[q][k]);
            ec_dw_requant_scalar(rq, c, acc, dst, n);
            continue;
        }
        int8x16_t b = vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(r[0]), vqmovn_s32(r[1]))),
                                  vqmovn_s16(vcombine_s16(vqmovn_s32(r[2]), vqmovn_s32(r[3]))));
        if (n == 16) {
            vst1q_s8(dst, b);
        } else {
            int8_t tmp[16];
            vst1q_s8(tmp, b);
            memcpy(dst, tmp, (size_t)n);
        }
    }
}

/* 16 channels at a time: sxtl to int16, four smlal per tap and pixel. */
static void ec_dw_kern_neon(const ec_dw_plan *p, const int8_t *const *taps, int npix,
                            int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm;
    int c, t, q, k;
    for (c = 0; c < cm; c += 16) {
        int n = cm - c < 16 ? cm - c : 16;
        int32x4_t a[EC_DW_PIX][4];
        for (k = 0; k < 4; k++) {
            int32x4_t b = vld1q_s32(p->sp.bias + c + 4 * k);
            for (q = 0; q < EC_DW_PIX; q++) a[q][k] = b;
        }
        for (t = 0; t < nt; t++) {
            const int16_t *w = p->w16 + (size_t)t * p->cp + c;
            int16x8_t w0 = vld1q_s16(w), w1 = vld1q_s16(w + 8);
            for (q = 0; q < EC_DW_PIX; q++) {
                int8x16_t xv = ec_dw_load16_neon(taps[q * nt + t] + c, n);
                int16x8_t x0 = vmovl_s8(vget_low_s8(xv)), x1 = vmovl_s8(vget_high_s8(xv));
                a[q][0] = vmlal_s16(a[q][0], vget_low_s16(x0), vget_low_s16(w0));
                a[q][1] = vmlal_s16(a[q][1], vget_high_s16(x0), vget_high_s16(w0));
                a[q][2] = vmlal_s16(a[q][2], vget_low_s16(x1), vget_low_s16(w1));
                a[q][3] = vmlal_s16(a[q][3], vget_high_s16(x1), vget_high_s16(w1));
            }
        }
        ec_dw_store_neon(p, c, a, npix, out + c, n, acc);
    }
}

#endif /* EDGECNN_DEPTHWISE_NEON_H */
