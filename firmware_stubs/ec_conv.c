/* int8 CONV_2D, the twin of edgecnn/reference/conv.py (LiteRT reference ConvPerChannel), on the
 * layer export-c packs (ec_kernels.h: input zero point folded into the bias, so every tap adds
 * x * w, out-of-image taps reading the input zero point). x (H, W, C_in), weight OHWI with
 * K = KH * KW * C_in bytes per output channel and (-K) % 16 zero bytes after the last, out
 * (OH, OW, C_out); int32 accumulators (|bias| + 256 * sum|w| < 2^31, export-c checks), then
 * the layer's rounding policy.
 * Paths (ec_simd.h):
 *   C    direct loops; an in-image filter row is KW * C_in contiguous bytes of x and of w.
 *   DSP  per output pixel an im2col column of K int8, widened to int16 pairs (x0, x2), (x1, x3)
 *        per 4 taps and interleaved with the next pixel's; 2 pixels x 2 channels per block, so
 *        each weight word, split the same way, feeds 8 MACs through 4 SMLADs.
 *   MVE  the int8 column, zero up to K16 = K rounded up to 16; 4 channels at once, one
 *        VMLADAVA per 16 taps and channel (the weights read past a filter meet zero taps), the
 *        4 results requantized as one vector under policy double.
 */
#include "ec_simd.h"

#if defined(EC_PATH_C)
void ec_conv2d_s8(const ec_conv_layer_t *l, const int8_t *x, int8_t *out, int8_t *scratch) {
    const ec_conv_params_t *p = &l->p;
    const int32_t h = l->in.h, wd = l->in.w, cin = l->in.c, kh = l->kh, kw = l->kw;
    const int32_t cout = l->out.c, k = kh * kw * cin, row = kw * cin, pad = -p->input_offset;
    int32_t oy, ox, co, ky, kx, i;
    (void)scratch;
    for (oy = 0; oy < l->out.h; oy++) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < l->out.w; ox++, out += cout) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            const int inside = y0 >= 0 && y0 + (kh - 1) * p->dilation_h < h && x0 >= 0 &&
                               x0 + (kw - 1) * p->dilation_w < wd && p->dilation_w == 1;
            for (co = 0; co < cout; co++) {
                const int8_t *wc = l->weight + co * k;
                int32_t acc = l->bias[co];
                for (ky = 0; ky < kh; ky++, wc += row) {
                    const int32_t iy = y0 + ky * p->dilation_h;
                    if (inside) {
                        const int8_t *xi = x + (iy * wd + x0) * cin;
                        for (i = 0; i < row; i++) acc += xi[i] * wc[i];
                        continue;
                    }
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t ix = x0 + kx * p->dilation_w;
                        const int in = iy >= 0 && iy < h && ix >= 0 && ix < wd;
                        for (i = 0; i < cin; i++)
                            acc += (in ? x[(iy * wd + ix) * cin + i] : pad) * wc[kx * cin + i];
                    }
                }
                out[co] = ec_requant_one(acc, &l->rq, co * l->rq_per_channel);
            }
        }
    }
}
#else

/* A filter row of n bytes: 16-byte vectors where Helium has them, then words, then bytes. */
static inline void ec_copy_row(int8_t *dst, const int8_t *src, int32_t n) {
#if defined(EC_PATH_MVE)
    for (; n >= 16; n -= 16, src += 16, dst += 16) vst1q_s8(dst, vld1q_s8(src));
#endif
    ec_copy_small(dst, src, n);
}

/* The K int8 taps of output pixel (oy, ox) in OHWI order into col; out-of-image taps get the
 * input zero point. An in-image filter row is one copy of KW * C_in bytes. */
static void ec_im2col(const ec_conv_layer_t *l, const int8_t *x, int32_t oy, int32_t ox,
                      int8_t *col) {
    const ec_conv_params_t *p = &l->p;
    const int32_t h = l->in.h, wd = l->in.w, cin = l->in.c, kw = l->kw, row = kw * cin;
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    const int8_t pad = (int8_t)-p->input_offset;
    int32_t ky, kx;
    if (x0 >= 0 && x0 + (kw - 1) * p->dilation_w < wd && p->dilation_w == 1 && y0 >= 0 &&
        y0 + (l->kh - 1) * p->dilation_h < h) {
        const int8_t *src = x + (y0 * wd + x0) * cin;
        const int32_t step = p->dilation_h * wd * cin;
#if defined(EC_PATH_MVE)
        if (row <= 16) { /* one predicated vector per row, no access past it */
            const mve_pred16_t pr = vctp8q((uint32_t)row);
            for (ky = 0; ky < l->kh; ky++, col += row, src += step)
                vstrbq_p_s8(col, vldrbq_z_s8(src, pr), pr);
            return;
        }
#endif
        for (ky = 0; ky < l->kh; ky++, col += row, src += step) ec_copy_row(col, src, row);
        return;
    }
    for (ky = 0; ky < l->kh; ky++, col += row) {
        const int32_t iy = y0 + ky * p->dilation_h;
        for (kx = 0; kx < kw; kx++) {
            const int32_t ix = x0 + kx * p->dilation_w;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
                memset(col + kx * cin, pad, (size_t)cin);
            else
                ec_copy_row(col + kx * cin, x + (iy * wd + ix) * cin, cin);
        }
    }
}
#endif

#if defined(EC_PATH_DSP)
/* Scratch: col16, 4 words per group of 4 taps (pixel A's (x0, x2), (x1, x3), then pixel B's),
 * then col8, K4 = 4 * groups int8 taps whose K4 - K padding bytes stay zero (they meet the next
 * filter's first weights, or the zero tail). 20 * groups = 5 * K4 bytes. */
static void ec_column16(const ec_conv_layer_t *l, const int8_t *x, int32_t oy, int32_t ox,
                        int32_t groups, uint32_t *col16, int slot) {
    int8_t *col8 = (int8_t *)(col16 + 4 * groups);
    int32_t g;
    ec_im2col(l, x, oy, ox, col8);
    for (g = 0, col16 += 2 * slot; g < groups; g++, col16 += 4) {
        const uint32_t v = ec_read32(col8 + 4 * g);
        col16[0] = (uint32_t)__sxtb16((int32_t)v);
        col16[1] = ec_sxtb16_ror8(v);
    }
}

/* Outputs of channel c for pixels A and B (B first: without a pixel B, ob is oa). */
static inline void ec_requant2(int32_t a, int32_t b, const ec_requant_t *rq, int32_t c,
                               int8_t *oa, int8_t *ob) {
    const int32_t m0 = rq->multiplier ? rq->multiplier[c] : 0, shift = rq->shift ? rq->shift[c] : 0;
    if (rq->policy == EC_ROUND_DOUBLE && ec_rq_right_ok(m0, shift)) {
        const int32_t m2 = (int32_t)((uint32_t)m0 << 1), s = -shift - 1, zp = rq->output_offset;
        const int32_t lo = rq->act_min, hi = rq->act_max;
        *ob = ec_clamp_out(ec_rq_right(b, m2, s), zp, lo, hi);
        *oa = ec_clamp_out(ec_rq_right(a, m2, s), zp, lo, hi);
    } else {
        *ob = ec_requantize_channel(b, rq, c);
        *oa = ec_requantize_channel(a, rq, c);
    }
}

/* 2 pixels (the interleaved columns) x 2 filters of K4 = 4 * groups taps: acc[0..3] = (A, f0),
 * (A, f1), (B, f0), (B, f1), each starting from its bias. */
static inline void ec_mac2x2(const uint32_t *c, const int8_t *w0, const int8_t *w1,
                             int32_t groups, int32_t *acc) {
    /* One group (16 MACs) per pass in 18 instructions: 2 LDRD bring pixel A's and B's column
     * words, each weight word is split in turn and meets both. Written out because gcc keeps
     * both weight words and all 4 column words live, which spills the loop counter; here 14
     * registers (4 accumulators, 3 pointers and the end, 4 column words, a weight word and
     * its half) are exactly r0-r12 and lr. groups >= 1. */
    int32_t a00 = acc[0], a10 = acc[1], a01 = acc[2], a11 = acc[3];
    int32_t xae, xao, xbe, xbo, v, we;
    const uint32_t *const end = c + 4 * groups;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[xae], %[xao], [%[c]], #8\n\t"
        "ldrd %[xbe], %[xbo], [%[c]], #8\n\t"
        "ldr %[v], [%[w0]], #4\n\t"
        "sxtb16 %[we], %[v]\n\t"
        "smlad %[a00], %[we], %[xae], %[a00]\n\t"
        "smlad %[a01], %[we], %[xbe], %[a01]\n\t"
        "sxtb16 %[we], %[v], ror #8\n\t"
        "smlad %[a00], %[we], %[xao], %[a00]\n\t"
        "smlad %[a01], %[we], %[xbo], %[a01]\n\t"
        "ldr %[v], [%[w1]], #4\n\t"
        "sxtb16 %[we], %[v]\n\t"
        "smlad %[a10], %[we], %[xae], %[a10]\n\t"
        "smlad %[a11], %[we], %[xbe], %[a11]\n\t"
        "sxtb16 %[we], %[v], ror #8\n\t"
        "smlad %[a10], %[we], %[xao], %[a10]\n\t"
        "smlad %[a11], %[we], %[xbo], %[a11]\n\t"
        "cmp %[c], %[end]\n\t"
        "bne 1b"
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [c] "+r"(c),
          [w0] "+r"(w0), [w1] "+r"(w1), [xae] "=&r"(xae), [xao] "=&r"(xao), [xbe] "=&r"(xbe),
          [xbo] "=&r"(xbo), [v] "=&r"(v), [we] "=&r"(we)
        : [end] "r"(end)
        : "cc", "memory");
    acc[0] = a00;
    acc[1] = a10;
    acc[2] = a01;
    acc[3] = a11;
}

void ec_conv2d_s8(const ec_conv_layer_t *l, const int8_t *x, int8_t *out, int8_t *scratch) {
    const int32_t cout = l->out.c, ow = l->out.w, npix = l->out.h * ow;
    const int32_t k = l->kh * l->kw * l->in.c, groups = (k + 3) >> 2, pc = l->rq_per_channel;
    const int8_t *const weight = l->weight;
    const int32_t *const bias = l->bias;
    const ec_requant_t *const rq = &l->rq;
    uint32_t *const col16 = (uint32_t *)(void *)scratch;
    int32_t pix, co, oy = 0, ox = 0;
    ec_write32((int8_t *)(col16 + 4 * groups) + 4 * groups - 4, 0);
    for (pix = 0; pix < npix; pix += 2) {
        const int two = pix + 1 < npix;
        int8_t *const oa = out + pix * cout, *const ob = two ? oa + cout : oa;
        ec_column16(l, x, oy, ox, groups, col16, 0);
        if (++ox == ow) ox = 0, oy++;
        if (two) {
            ec_column16(l, x, oy, ox, groups, col16, 1);
            if (++ox == ow) ox = 0, oy++;
        }
        for (co = 0; co < cout; co += 2) {
            const int two_ch = co + 1 < cout;
            const int8_t *w0 = weight + co * k;
            int32_t acc[4];
            acc[0] = acc[2] = bias[co];
            acc[1] = acc[3] = bias[two_ch ? co + 1 : co];
            ec_mac2x2(col16, w0, two_ch ? w0 + k : w0, groups, acc);
            ec_requant2(acc[0], acc[2], rq, co * pc, oa + co, ob + co);
            if (two_ch) ec_requant2(acc[1], acc[3], rq, (co + 1) * pc, oa + co + 1, ob + co + 1);
        }
    }
}
#endif

#if defined(EC_PATH_MVE)
#define EC_MVE_PIXELS 4 /* columns built per pass; each filter block then serves all of them */

/* Per 4-channel block: bias and the policy-double constants as vectors (lanes past C_out
 * repeat channel co: computed, never stored). */
typedef struct {
    int32x4_t bias, left, m0, neg_r;
} ec_block_t;

static ec_block_t ec_block_setup(const ec_conv_layer_t *l, int32_t co, mve_pred16_t pr) {
    const ec_requant_t *rq = &l->rq;
    ec_block_t b;
    int32x4_t sh;
    b.bias = vldrwq_z_s32(l->bias + co, pr);
    if (rq->policy != EC_ROUND_DOUBLE) {
        b.left = b.m0 = b.neg_r = vdupq_n_s32(0);
        return b;
    }
    if (l->rq_per_channel) {
        sh = vldrwq_z_s32(rq->shift + co, pr);
        b.m0 = vldrwq_z_s32(rq->multiplier + co, pr);
    } else {
        sh = vdupq_n_s32(rq->shift[0]);
        b.m0 = vdupq_n_s32(rq->multiplier[0]);
    }
    b.left = vmaxq_s32(sh, vdupq_n_s32(0));
    b.neg_r = vminq_s32(sh, vdupq_n_s32(0));
    return b;
}

/* Channels co .. co + n - 1 (n <= 4) of one pixel from its zero-padded column: one VMLADAVA
 * per 16 taps and channel (lanes past n rerun channel co), then the requantized vector. */
static void ec_block4(const ec_conv_layer_t *l, const int8_t *col, const int8_t *w0, int32_t k,
                      int32_t k16, int32_t co, int32_t n, const ec_block_t *b, mve_pred16_t pr,
                      int8_t *out) {
    const ec_requant_t *rq = &l->rq;
    const int8_t *w1 = n > 1 ? w0 + k : w0, *w2 = n > 2 ? w0 + 2 * k : w0;
    const int8_t *w3 = n > 3 ? w0 + 3 * k : w0;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i;
    int32x4_t acc;
    for (i = k16; i > 0; i -= 16, col += 16, w0 += 16, w1 += 16, w2 += 16, w3 += 16) {
        const int8x16_t xv = vld1q_s8(col);
        a0 = vmladavaq_s8(a0, xv, vld1q_s8(w0));
        a1 = vmladavaq_s8(a1, xv, vld1q_s8(w1));
        a2 = vmladavaq_s8(a2, xv, vld1q_s8(w2));
        a3 = vmladavaq_s8(a3, xv, vld1q_s8(w3));
    }
    acc = vsetq_lane_s32(a3, vsetq_lane_s32(a2, vsetq_lane_s32(a1, vdupq_n_s32(a0), 1), 2), 3);
    acc = vaddq_s32(acc, b->bias);
    if (rq->policy == EC_ROUND_DOUBLE) {
        acc = ec_rq_double_x4(acc, b->left, b->m0, b->neg_r, vshrq_n_s32(b->neg_r, 31),
                              rq->output_offset, rq->act_min, rq->act_max);
        vstrbq_p_s32(out + co, acc, pr);
    } else {
        int32_t lanes[4];
        vst1q_s32(lanes, acc);
        for (i = 0; i < n; i++)
            out[co + i] = ec_requant_one(lanes[i], rq, (co + i) * l->rq_per_channel);
    }
}

/* Scratch: EC_MVE_PIXELS int8 columns of K16 bytes, taps K .. K16 - 1 zero. */
void ec_conv2d_s8(const ec_conv_layer_t *l, const int8_t *x, int8_t *out, int8_t *scratch) {
    const int32_t cout = l->out.c, ow = l->out.w, npix = l->out.h * ow;
    const int32_t k = l->kh * l->kw * l->in.c, k16 = (k + 15) & ~15;
    const mve_pred16_t all = vctp32q(4), tail = vctp32q((uint32_t)(cout & 3));
    int32_t pix, co, j, oy = 0, ox = 0;
    for (j = 0; j < EC_MVE_PIXELS; j++) memset(scratch + j * k16 + k, 0, (size_t)(k16 - k));
    for (pix = 0; pix < npix; pix += EC_MVE_PIXELS) {
        const int32_t np = npix - pix < EC_MVE_PIXELS ? npix - pix : EC_MVE_PIXELS;
        for (j = 0; j < np; j++) {
            ec_im2col(l, x, oy, ox, scratch + j * k16);
            if (++ox == ow) ox = 0, oy++;
        }
        for (co = 0; co < cout; co += 4) {
            const int32_t n = cout - co < 4 ? cout - co : 4;
            const mve_pred16_t pr = n == 4 ? all : tail;
            const ec_block_t b = ec_block_setup(l, co, pr);
            for (j = 0; j < np; j++)
                ec_block4(l, scratch + j * k16, l->weight + co * k, k, k16, co, n, &b, pr,
                          out + (pix + j) * cout);
        }
    }
}
#endif
