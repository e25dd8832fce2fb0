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
#endif

#if defined(EC_PATH_DSP)
/* The K int8 taps of a window at (y0, x0) that leaves the image, OHWI order, into col: per
 * filter row (no dilation along W) padding (the input zero point) for kx < lo, a copy for
 * lo <= kx < hi, padding for kx >= hi; a row above or below the image is all padding. Kept out
 * of line so the in-image path of ec_im2col stays small. */
__attribute__((noinline)) static void ec_im2col_clipped(const ec_conv_layer_t *l,
                                                        const int8_t *x, int32_t y0, int32_t x0,
                                                        int8_t *col) {
    const ec_conv_params_t *p = &l->p;
    const int32_t h = l->in.h, wd = l->in.w, cin = l->in.c, kw = l->kw, row = kw * cin;
    const int8_t pad = (int8_t)-p->input_offset;
    int32_t ky, kx;
    for (ky = 0; ky < l->kh; ky++, col += row) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= h) {
            memset(col, pad, (size_t)row);
        } else if (p->dilation_w == 1) {
            const int32_t lo = x0 >= 0 ? 0 : (-x0 < kw ? -x0 : kw);
            const int32_t hi0 = wd - x0 < kw ? wd - x0 : kw, hi = hi0 > lo ? hi0 : lo;
            if (lo > 0) memset(col, pad, (size_t)(lo * cin));
            if (hi > lo)
                ec_copy_small(col + lo * cin, x + (iy * wd + x0 + lo) * cin, (hi - lo) * cin);
            if (hi < kw) memset(col + hi * cin, pad, (size_t)((kw - hi) * cin));
        } else {
            for (kx = 0; kx < kw; kx++) {
                const int32_t ix = x0 + kx * p->dilation_w;
                if (ix < 0 || ix >= wd)
                    memset(col + kx * cin, pad, (size_t)cin);
                else
                    ec_copy_small(col + kx * cin, x + (iy * wd + ix) * cin, cin);
            }
        }
    }
}

/* The K int8 taps of output pixel (oy, ox) in OHWI order into col: an in-image filter row is
 * one copy of KW * C_in bytes. */
static void ec_im2col(const ec_conv_layer_t *l, const int8_t *x, int32_t oy, int32_t ox,
                      int8_t *col) {
    const ec_conv_params_t *p = &l->p;
    const int32_t h = l->in.h, wd = l->in.w, cin = l->in.c, kw = l->kw, row = kw * cin;
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    int32_t ky;
    if (x0 >= 0 && x0 + (kw - 1) * p->dilation_w < wd && p->dilation_w == 1 && y0 >= 0 &&
        y0 + (l->kh - 1) * p->dilation_h < h) {
        const int8_t *src = x + (y0 * wd + x0) * cin;
        const int32_t step = p->dilation_h * wd * cin;
        for (ky = 0; ky < l->kh; ky++, col += row, src += step) ec_copy_small(col, src, row);
        return;
    }
    ec_im2col_clipped(l, x, y0, x0, col);
}

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
#define EC_MVE_PIXELS 4 /* columns built per pass; each filter row then serves all of them */

/* Scratch: the columns of EC_MVE_PIXELS output pixels interleaved by 16-byte chunks, chunk b of
 * column j at (4 * b + j) * 16, so the 4 pixels' chunks of 16 taps sit at fixed offsets from one
 * pointer; taps K .. K16 - 1 stay zero. n bytes (src, or the value v where src is NULL) into
 * taps t .. t + n - 1 of column j: a predicated vector move per piece within a chunk. */
__attribute__((always_inline)) static inline void ec_put_mve(int8_t *s, int32_t j, int32_t t,
                                                             const int8_t *src, int8_t v,
                                                             int32_t n) {
    int8_t *d = s + ((t >> 4) * 4 + j) * 16 + (t & 15);
    const int8x16_t fill = vdupq_n_s8(v);
    int32_t m = 16 - (t & 15);
    if (n <= m) { /* the common short run: one predicated move within a chunk */
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        vstrbq_p_s8(d, src ? vldrbq_z_s8(src, pr) : fill, pr);
        return;
    }
    if (m < 16) { /* n > m: a piece up to the first chunk boundary */
        const mve_pred16_t pr = vctp8q((uint32_t)m);
        vstrbq_p_s8(d, src ? vldrbq_z_s8(src, pr) : fill, pr);
        d += m + 48, n -= m;
        if (src) src += m;
    }
    for (; n >= 16; n -= 16, d += 64) { /* whole chunks */
        vst1q_s8(d, src ? vld1q_s8(src) : fill);
        if (src) src += 16;
    }
    if (n > 0) {
        const mve_pred16_t pr = vctp8q((uint32_t)n);
        vstrbq_p_s8(d, src ? vldrbq_z_s8(src, pr) : fill, pr);
    }
}

/* The K taps of output pixel (oy, ox) in OHWI order into column j; out-of-image taps get the
 * input zero point. An in-image filter row is one run of KW * C_in bytes; a clipped one (no
 * dilation along W) at most three: padding for kx < lo, the image for lo <= kx < hi, padding
 * for kx >= hi; a row above or below the image is one run of padding. */
static void ec_im2col_mve(const ec_conv_layer_t *l, const int8_t *x, int32_t oy, int32_t ox,
                          int8_t *s, int32_t j) {
    const ec_conv_params_t *p = &l->p;
    const int32_t h = l->in.h, wd = l->in.w, cin = l->in.c, kw = l->kw, row = kw * cin;
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    const int8_t pad = (int8_t)-p->input_offset;
    int32_t ky, kx, t = 0;
    if (x0 >= 0 && x0 + (kw - 1) * p->dilation_w < wd && p->dilation_w == 1 && y0 >= 0 &&
        y0 + (l->kh - 1) * p->dilation_h < h) {
        const int8_t *src = x + (y0 * wd + x0) * cin;
        for (ky = 0; ky < l->kh; ky++, t += row, src += p->dilation_h * wd * cin)
            ec_put_mve(s, j, t, src, 0, row);
        return;
    }
    for (ky = 0; ky < l->kh; ky++) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= h) {
            ec_put_mve(s, j, t, 0, pad, row);
            t += row;
        } else if (p->dilation_w == 1) {
            const int32_t lo = x0 >= 0 ? 0 : (-x0 < kw ? -x0 : kw);
            const int32_t hi0 = wd - x0 < kw ? wd - x0 : kw, hi = hi0 > lo ? hi0 : lo;
            if (lo > 0) ec_put_mve(s, j, t, 0, pad, lo * cin);
            if (hi > lo) ec_put_mve(s, j, t + lo * cin, x + (iy * wd + x0 + lo) * cin, 0,
                                    (hi - lo) * cin);
            if (hi < kw) ec_put_mve(s, j, t + hi * cin, 0, pad, (kw - hi) * cin);
            t += row;
        } else {
            for (kx = 0; kx < kw; kx++, t += cin) {
                const int32_t ix = x0 + kx * p->dilation_w;
                const int in = ix >= 0 && ix < wd;
                ec_put_mve(s, j, t, in ? x + (iy * wd + ix) * cin : 0, pad, cin);
            }
        }
    }
}

/* Channels co, co + 1 of the 4 columns of s (c1 = co + 1 < C_out, else co again): per 16 taps
 * one load of each filter row and 4 of the columns, 8 VMLADAVA (the weights read past a filter
 * meet zero taps), 16 instructions per 128 MACs. Written out with the 8 sums in fixed even
 * registers (VMLADAVA takes only those; gcc 12 spills 8 of them); the sums of pixel j go to
 * sums[4 j] and sums[4 j + 1], so sums ends as 4 pixel rows of 4 channels. */
static inline void ec_pair_mve(const int8_t *w0, const int8_t *w1, const int8_t *s, int32_t n,
                               int32_t *sums) {
    __asm__ volatile("movs r0, #0\n\tmovs r2, #0\n\tmovs r4, #0\n\tmovs r6, #0\n\t"
                     "mov r8, #0\n\tmov r10, #0\n\tmov r12, #0\n\tmov lr, #0\n"
                     "1:\n\t"
                     "vldrb.8 q0, [%[w0]], #16\n\t"
                     "vldrb.8 q1, [%[w1]], #16\n\t"
                     "vldrb.8 q2, [%[xs]], #16\n\t"
                     "vmladava.s8 r0, q2, q0\n\t"
                     "vmladava.s8 r2, q2, q1\n\t"
                     "vldrb.8 q2, [%[xs]], #16\n\t"
                     "vmladava.s8 r4, q2, q0\n\t"
                     "vmladava.s8 r6, q2, q1\n\t"
                     "vldrb.8 q2, [%[xs]], #16\n\t"
                     "vmladava.s8 r8, q2, q0\n\t"
                     "vmladava.s8 r10, q2, q1\n\t"
                     "vldrb.8 q2, [%[xs]], #16\n\t"
                     "vmladava.s8 r12, q2, q0\n\t"
                     "vmladava.s8 lr, q2, q1\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     "strd r0, r2, [%[res]]\n\t"
                     "strd r4, r6, [%[res], #16]\n\t"
                     "strd r8, r10, [%[res], #32]\n\t"
                     "strd r12, lr, [%[res], #48]"
                     : [w0] "+r"(w0), [w1] "+r"(w1), [xs] "+r"(s), [n] "+r"(n)
                     : [res] "r"(sums)
                     : "cc", "memory", "r0", "r2", "r4", "r6", "r8", "r10", "r12", "lr", "d0",
                       "d1", "d2", "d3", "d4", "d5");
}

/* Channels co .. co + 3 (nc of them) of the np <= 4 pixels in the columns of s, 4 C_out bytes
 * apart from o: two ec_pair_mve, then per pixel one vector of its 4 channels plus the bias,
 * requantized under policy double (ec_rq_double_raw_x4, per-channel M0 and shift lanes). */
static void ec_quad_mve(const ec_conv_layer_t *l, const int8_t *s, int32_t k16, int32_t co,
                        int32_t nc, int32_t np, int8_t *o) {
    const ec_requant_t *rq = &l->rq;
    const int32_t k = l->kh * l->kw * l->in.c, cout = l->out.c;
    const int8_t *w = l->weight + co * k;
    const mve_pred16_t pr = vctp32q((uint32_t)nc);
    int32_t sums[16], j;
    ec_pair_mve(w, nc > 1 ? w + k : w, s, k16 >> 4, sums);
    if (nc > 2)
        ec_pair_mve(w + 2 * k, nc > 3 ? w + 3 * k : w, s, k16 >> 4, sums + 2);
    else /* lanes 2 and 3 are never stored: zeros, not a pass */
        for (j = 0; j < 4; j++) sums[4 * j + 2] = sums[4 * j + 3] = 0;
    if (rq->policy == EC_ROUND_DOUBLE) {
        int32x4_t sh, m0, neg_r, left, bias = vldrwq_z_s32(l->bias + co, pr);
        if (l->rq_per_channel) {
            sh = vldrwq_z_s32(rq->shift + co, pr);
            m0 = vldrwq_z_s32(rq->multiplier + co, pr);
        } else {
            sh = vdupq_n_s32(rq->shift[0]);
            m0 = vdupq_n_s32(rq->multiplier[0]);
        }
        left = vmaxq_s32(sh, vdupq_n_s32(0));
        neg_r = vminq_s32(sh, vdupq_n_s32(0));
        for (j = 0; j < np; j++, o += cout) {
            int32x4_t y = ec_rq_double_raw_x4(vaddq_s32(vld1q_s32(sums + 4 * j), bias), left, m0,
                                              neg_r, vshrq_n_s32(neg_r, 31));
            y = vaddq_n_s32(y, rq->output_offset);
            y = vminq_s32(vmaxq_s32(y, vdupq_n_s32(rq->act_min)), vdupq_n_s32(rq->act_max));
            vstrbq_p_s32(o + co, y, pr);
        }
    } else {
        int32_t c;
        for (j = 0; j < np; j++, o += cout)
            for (c = 0; c < nc; c++)
                o[co + c] = ec_requantize_channel(sums[4 * j + c] + l->bias[co + c], rq,
                                                  (co + c) * l->rq_per_channel);
    }
}

void ec_conv2d_s8(const ec_conv_layer_t *l, const int8_t *x, int8_t *out, int8_t *scratch) {
    const int32_t cout = l->out.c, ow = l->out.w, npix = l->out.h * ow;
    const int32_t k16 = (l->kh * l->kw * l->in.c + 15) & ~15;
    int32_t pix, co, j, oy = 0, ox = 0;
    memset(scratch, 0, (size_t)(EC_MVE_PIXELS * k16));
    for (pix = 0; pix < npix; pix += EC_MVE_PIXELS, out += EC_MVE_PIXELS * cout) {
        const int32_t np = npix - pix < EC_MVE_PIXELS ? npix - pix : EC_MVE_PIXELS;
        for (j = 0; j < np; j++) {
            ec_im2col_mve(l, x, oy, ox, scratch, j);
            if (++ox == ow) ox = 0, oy++;
        }
        for (co = 0; co < cout; co += 4)
            ec_quad_mve(l, scratch, k16, co, cout - co < 4 ? cout - co : 4, np, out);
    }
}
#endif
