/* int8 MEAN over H and W, the twin of edgecnn/reference/mean.py. x (H, W, C) -> out (C,). Per
 * channel the int32 sum of count = H * W values (kept in uint32 so it wraps as LiteRT's int32
 * temp_sum; exact below 2^24 values) plus zp_in * count, then policy double (LiteRT BUILTIN_REF
 * reference_ops::QuantizedMeanOrSum): that sum through MultiplyByQuantizedMultiplier with
 * 1/count folded into multiplier and shift at export time; or policy fp32 (XNNPACK's, see
 * ec_mean_out); clamped to int8.
 * The sums, channel by channel down the count rows of C bytes:
 *   C    one channel at a time.
 *   DSP  4 channels per word: SXTAB16 adds bytes 0, 2 and (rotated by 8) 1, 3 into int16 lane
 *        pairs; 256 rows at most (|sum| <= 128 * 256 = 2^15) before they join int32 sums.
 *   MVE  4 channels per widening load into int32 lanes (the last ones predicated); the
 *        double policy's requantization 4 lanes at once (ec_rq_double_x4: the shift may be
 *        left, the multiplier below 2^30, which VQRDMULH takes as it is); fp32's lane by lane.
 */
#include "ec_simd.h"

/* sum: the int32 sum of the inputs plus zp_in * count (offset), wrapped. Policy fp32 takes the
 * raw sum back (sum - offset, exact in uint32) through XNNPACK's float32 rescale; the product
 * passes a volatile so no compiler fuses it with the addition (one FMA rounding instead of
 * XNNPACK's two): once per output channel, nothing next to the sums. */
static int8_t ec_mean_out(uint32_t sum, uint32_t offset, const ec_mean_params_t *p) {
    int32_t y;
#if EC_ROUND_FP32_USED
    if (p->policy == EC_ROUND_FP32) {
        volatile float product = (float)(int32_t)(sum - offset) * p->scale;
        const float r = rintf(product + p->bias);
        return (int8_t)(r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r));
    }
#else
    (void)offset;
#endif
    y = ec_mbqm_double((int32_t)sum, p->multiplier, p->shift) + p->output_offset;
    return (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
}

void ec_mean_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_mean_params_t *p, int8_t *out) {
    const int32_t c = x_dims->c, count = x_dims->h * x_dims->w;
    const uint32_t offset = (uint32_t)p->input_offset * (uint32_t)p->count;
    int32_t ch = 0, r;
#if defined(EC_PATH_DSP)
    for (; ch + 4 <= c; ch += 4) {
        uint32_t s[4] = {offset, offset, offset, offset};
        int32_t r0, k;
        for (r0 = 0; r0 < count; r0 += 256) {
            const int32_t r1 = count - r0 < 256 ? count : r0 + 256;
            int32_t se = 0, so = 0;
            for (r = r0; r < r1; r++) {
                const uint32_t v = ec_read32(x + r * c + ch);
                se = __sxtab16(se, (int32_t)v);
                so = __sxtab16(so, (int32_t)((v >> 8) | (v << 24)));
            }
            s[0] += (uint32_t)(int32_t)(int16_t)se, s[1] += (uint32_t)(int32_t)(int16_t)so;
            s[2] += (uint32_t)(se >> 16), s[3] += (uint32_t)(so >> 16);
        }
        for (k = 0; k < 4; k++) out[ch + k] = ec_mean_out(s[k], offset, p);
    }
#elif defined(EC_PATH_MVE)
    const int32x4_t left = vdupq_n_s32(p->shift > 0 ? p->shift : 0);
    const int32x4_t neg_r = vdupq_n_s32(p->shift > 0 ? 0 : p->shift);
    const int32x4_t m0 = vdupq_n_s32(p->multiplier), neg_fix = vshrq_n_s32(neg_r, 31);
    for (; ch < c; ch += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(c - ch));
        const int8_t *xr = x + ch;
        int32x4_t s = vdupq_n_s32((int32_t)offset);
        for (r = 0; r < count; r++, xr += c) /* int32 lanes wrap like the uint32 sum */
            s = vaddq_s32(s, vldrbq_z_s32(xr, pr));
        if (p->policy == EC_ROUND_FP32) { /* the float rescale lane by lane */
            int32_t lanes[4], k;
            vst1q_s32(lanes, s);
            for (k = 0; k < 4 && ch + k < c; k++)
                out[ch + k] = ec_mean_out((uint32_t)lanes[k], offset, p);
            continue;
        }
        vstrbq_p_s32(out + ch, ec_rq_double_x4(s, left, m0, neg_r, neg_fix, p->output_offset,
                                               -128, 127), pr);
    }
#endif
    for (; ch < c; ch++) {
        uint32_t sum = offset;
        for (r = 0; r < count; r++) sum += (uint32_t)(int32_t)x[r * c + ch];
        out[ch] = ec_mean_out(sum, offset, p);
    }
}
