/* int8 MAX_POOL_2D / AVERAGE_POOL_2D, the twins of edgecnn/reference/pool.py.
 * x (H, W, C), out (OH, OW, C); output scale and zero point equal the input's. Only in-image
 * taps count: max pool takes the raw int8 max, average pool divides the int32 sum by the number
 * of valid taps rounding half away from zero. Both clamp to [act_min, act_max].
 * Per output pixel the window is walked once per group of channels:
 *   C    one channel at a time.
 *   DSP  4 channels per word: SSUB8 sets the per-byte GE flags of a - b, SEL keeps the larger
 *        bytes; average sums in int16 pairs (SXTAB16; a window of at most 256 taps keeps
 *        |sum| <= 32768), then divides per channel.
 *   MVE  16 channels per vector (VMAX.S8; the last group under a tail predicate); average sums
 *        8 channels in int16 lanes (widening loads), then divides per channel.
 */
#include "ec_simd.h"

static int32_t ec_max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t ec_min32(int32_t a, int32_t b) { return a < b ? a : b; }

/* (|s| + count/2) / count with the sign put back: ties away from zero, then the clamp. */
static int8_t ec_avg_out(int32_t s, int32_t count, const ec_pool_params_t *p) {
    const int32_t v = s >= 0 ? (s + count / 2) / count : -((-s + count / 2) / count);
    return (int8_t)ec_min32(ec_max32(v, p->act_min), p->act_max);
}

/* Channels [c0, c) of one window, one at a time (the whole C path, the SIMD paths' tail). */
static inline void ec_pool_scalar(const int8_t *x, int32_t wd, int32_t c, int32_t c0, int32_t ya,
                           int32_t yb, int32_t xa, int32_t xb, const ec_pool_params_t *p,
                           int is_max, int8_t *o) {
    const int32_t count = (yb - ya) * (xb - xa);
    int32_t ch, iy, ix;
    for (ch = c0; ch < c; ch++) {
        int32_t v = is_max ? -128 : 0;
        for (iy = ya; iy < yb; iy++)
            for (ix = xa; ix < xb; ix++) {
                const int32_t q = x[(iy * wd + ix) * c + ch];
                v = is_max ? ec_max32(v, q) : v + q;
            }
        o[ch] = is_max ? (int8_t)ec_min32(ec_max32(v, p->act_min), p->act_max)
                       : ec_avg_out(v, count, p);
    }
}

/* Max pool of channels from 0 up to the first one the path leaves to ec_pool_scalar (returned). */
static int32_t ec_max_simd(const int8_t *x, int32_t wd, int32_t c, int32_t ya, int32_t yb,
                           int32_t xa, int32_t xb, const ec_pool_params_t *p, int8_t *o) {
    int32_t ch = 0, iy, ix;
#if defined(EC_PATH_DSP)
    const uint32_t lo = 0x01010101u * (uint8_t)p->act_min;
    const uint32_t hi = 0x01010101u * (uint8_t)p->act_max;
    for (; ch + 4 <= c; ch += 4) {
        uint32_t v = 0x80808080u;
        for (iy = ya; iy < yb; iy++)
            for (ix = xa; ix < xb; ix++)
                v = ec_max_s8x4(ec_read32(x + (iy * wd + ix) * c + ch), v);
        ec_write32(o + ch, ec_min_s8x4(ec_max_s8x4(v, lo), hi));
    }
#elif defined(EC_PATH_MVE)
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    for (; ch < c; ch += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)(c - ch));
        int8x16_t v = vdupq_n_s8(-128);
        for (iy = ya; iy < yb; iy++)
            for (ix = xa; ix < xb; ix++)
                v = vmaxq_s8(v, vldrbq_z_s8(x + (iy * wd + ix) * c + ch, pr));
        vstrbq_p_s8(o + ch, vminq_s8(vmaxq_s8(v, lo), hi), pr);
    }
#else
    (void)x, (void)wd, (void)c, (void)ya, (void)yb, (void)xa, (void)xb, (void)p, (void)o;
    (void)iy, (void)ix;
#endif
    return ch;
}

/* Average pool, as ec_max_simd: window sums in int16 lanes (count <= 256), divided per channel. */
static int32_t ec_avg_simd(const int8_t *x, int32_t wd, int32_t c, int32_t ya, int32_t yb,
                           int32_t xa, int32_t xb, const ec_pool_params_t *p, int8_t *o) {
    const int32_t count = (yb - ya) * (xb - xa);
    int32_t ch = 0, iy, ix;
    if (count > 256) return 0;
#if defined(EC_PATH_DSP)
    for (; ch + 4 <= c; ch += 4) {
        int32_t se = 0, so = 0;
        for (iy = ya; iy < yb; iy++)
            for (ix = xa; ix < xb; ix++) {
                const uint32_t w = ec_read32(x + (iy * wd + ix) * c + ch);
                se = __sxtab16(se, (int32_t)w);
                so = __sxtab16(so, (int32_t)((w >> 8) | (w << 24)));
            }
        o[ch] = ec_avg_out((int16_t)se, count, p);
        o[ch + 1] = ec_avg_out((int16_t)so, count, p);
        o[ch + 2] = ec_avg_out(se >> 16, count, p);
        o[ch + 3] = ec_avg_out(so >> 16, count, p);
    }
#elif defined(EC_PATH_MVE)
    for (; ch < c; ch += 8) {
        const mve_pred16_t pr = vctp16q((uint32_t)(c - ch));
        int16_t sums[8];
        int16x8_t v = vdupq_n_s16(0);
        int32_t k;
        for (iy = ya; iy < yb; iy++)
            for (ix = xa; ix < xb; ix++)
                v = vaddq_s16(v, vldrbq_z_s16(x + (iy * wd + ix) * c + ch, pr));
        vst1q_s16(sums, v);
        for (k = 0; k < 8 && ch + k < c; k++) o[ch + k] = ec_avg_out(sums[k], count, p);
    }
#else
    (void)x, (void)wd, (void)c, (void)ya, (void)yb, (void)xa, (void)xb, (void)p, (void)o;
    (void)iy, (void)ix;
#endif
    return ch;
}

static inline void ec_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                       int8_t *out, const ec_dims_t *out_dims, int is_max) {
    const int32_t h = x_dims->h, wd = x_dims->w, c = x_dims->c;
    int32_t oy, ox;
    for (oy = 0; oy < out_dims->h; oy++) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int32_t ya = ec_max32(y0, 0), yb = ec_min32(y0 + p->filter_h, h);
        for (ox = 0; ox < out_dims->w; ox++, out += c) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            const int32_t xa = ec_max32(x0, 0), xb = ec_min32(x0 + p->filter_w, wd);
            const int32_t done = is_max ? ec_max_simd(x, wd, c, ya, yb, xa, xb, p, out)
                                        : ec_avg_simd(x, wd, c, ya, yb, xa, xb, p, out);
            ec_pool_scalar(x, wd, c, done, ya, yb, xa, xb, p, is_max, out);
        }
    }
}
/* Each entry point inlines the walk with its own op, so a model links only the pools it uses. */
void ec_max_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                    int8_t *out, const ec_dims_t *out_dims) {
    ec_pool_s8(x, x_dims, p, out, out_dims, 1);
}

void ec_avg_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                    int8_t *out, const ec_dims_t *out_dims) {
    ec_pool_s8(x, x_dims, p, out, out_dims, 0);
}
