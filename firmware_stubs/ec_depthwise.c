/* int8 DEPTHWISE_CONV_2D, the twin of edgecnn/reference/depthwise_conv.py (LiteRT reference
 * DepthwiseConvPerChannel), on the layer export-c packs (ec_kernels.h, ec_dw_layer_t): int16
 * weights in blocks of 8 output channels, tap after tap. x (H, W, C), out (OH, OW, C*M); int32
 * accumulators (|bias| + 256 * sum|w| < 2^31, export-c checks), then the layer's rounding policy.
 * Two equal sums: the folded bias plus raw x * w over every tap, out-of-image taps reading the
 * input zero point (-input_offset * w each, which the folding takes back), or the unfolded
 * bias (bias - input_offset * wsum) plus (x + input_offset) * w over the in-image taps only
 * (LiteRT's own sum). One output pixel at a time, its window walked once per block of channels:
 *   C    one output channel at a time, folded; any depth multiplier M (the SIMD paths' M > 1).
 *   DSP  M = 1, 4 channels a tap from one word of x, split by SXTB16 into (x0, x2), (x1, x3), and
 *        the weight words (w0, w1), (w2, w3): SMLABB, SMLABT, SMLATB, SMLATT pair each channel's
 *        halves. A whole in-image 3x3 window folded (8 instructions per 4 MACs), any other the
 *        in-image taps unfolded (SXTAB16 adds the offset); the last C % 4 channels in C.
 *   MVE  M = 1, 16 channels a tap: x widened to int16 lanes, VMULLB / VMULLT products of the even
 *        and odd channels as int32, so the bias, requantization arrays and results are
 *        de-interleaved (VLD2) and re-interleaved by the narrowing moves; windows as on DSP,
 *        the last block predicated.
 */
#include "ec_simd.h"

/* Channels [c0, c1) of the output pixel whose window starts at (y0, x0), one at a time. */
static void ec_dw_pixel_c(const ec_dw_layer_t *l, const int8_t *x, int32_t y0, int32_t x0,
                          int32_t c0, int32_t c1, int8_t *o) {
    const ec_depthwise_params_t *p = &l->p;
    const int32_t h = l->in.h, wd = l->in.w, cin = l->in.c, m = p->depth_multiplier;
    const int32_t taps = l->kh * l->kw, zp = -p->input_offset;
    int32_t oc, ky, kx;
    for (oc = c0; oc < c1; oc++) {
        const int16_t *w = l->weight + (oc >> 3) * taps * 8 + (oc & 7);
        const int8_t *xc = x + oc / m;
        int32_t acc = l->bias[oc];
        for (ky = 0; ky < l->kh; ky++) {
            const int32_t iy = y0 + ky * p->dilation_h;
            for (kx = 0; kx < l->kw; kx++, w += 8) {
                const int32_t ix = x0 + kx * p->dilation_w;
                const int in = iy >= 0 && iy < h && ix >= 0 && ix < wd;
                acc += (in ? xc[(iy * wd + ix) * cin] : zp) * *w;
            }
        }
        o[oc] = ec_requant_one(acc, &l->rq, oc * l->rq_per_channel);
    }
}

/* The taps [lo, hi) of a window of k taps from start s (step d) that fall inside [0, n). */
static inline void ec_dw_range(int32_t s, int32_t d, int32_t k, int32_t n, int32_t *lo,
                               int32_t *hi) {
    int32_t a = 0, b = k;
    while (a < k && s + a * d < 0) a++;
    while (b > a && s + (b - 1) * d >= n) b--;
    *lo = a;
    *hi = b;
}

/* The in-image part of the window of the output pixel (oy, ox): its rows, its columns, whether
 * it is the whole window, and the offset of its first tap in x and in a block's taps. */
typedef struct {
    int32_t y0, x0, rows, cols, whole, first_x, first_tap;
} ec_dw_win_t;

static void ec_dw_window(const ec_dw_layer_t *l, int32_t oy, int32_t ox, ec_dw_win_t *win) {
    const ec_depthwise_params_t *p = &l->p;
    int32_t ky0, ky1, kx0, kx1;
    win->y0 = oy * p->stride_h - p->pad_top;
    win->x0 = ox * p->stride_w - p->pad_left;
    ec_dw_range(win->y0, p->dilation_h, l->kh, l->in.h, &ky0, &ky1);
    ec_dw_range(win->x0, p->dilation_w, l->kw, l->in.w, &kx0, &kx1);
    win->cols = kx1 - kx0;
    win->rows = win->cols > 0 ? ky1 - ky0 : 0;
    win->whole = win->rows == l->kh && win->cols == l->kw;
    win->first_tap = ky0 * l->kw + kx0;
    win->first_x = win->rows ? ((win->y0 + ky0 * p->dilation_h) * l->in.w + win->x0 +
                                kx0 * p->dilation_w) * l->in.c : 0;
}

#if defined(EC_PATH_DSP)
/* One tap of 4 channels, the x word in xo: xe = (x0, x2), xo = (x1, x3); the block's tap is 16
 * bytes, these 4 channels' weights the first or last 8 of them. */
#define EC_DW_TAP                                  \
    "sxtb16 %[xe], %[xo]\n\t"                      \
    "sxtb16 %[xo], %[xo], ror #8\n\t"              \
    "ldrd %[w01], %[w23], [%[w]], #16\n\t"         \
    "smlabb %[a0], %[xe], %[w01], %[a0]\n\t"       \
    "smlabt %[a1], %[xo], %[w01], %[a1]\n\t"       \
    "smlatb %[a2], %[xe], %[w23], %[a2]\n\t"       \
    "smlatt %[a3], %[xo], %[w23], %[a3]\n\t"
#define EC_DW_ROW3                                              \
    "ldr %[xo], [%[xp]]\n\t" EC_DW_TAP                          \
    "ldr %[xo], [%[xp], %[c]]\n\t" EC_DW_TAP                    \
    "ldr %[xo], [%[xp], %[c], lsl #1]\n\t" EC_DW_TAP            \
    "add %[xp], %[xp], %[row]\n\t"

/* A whole in-image 3x3 window (dilation 1 along x), folded: the columns at +0, +C, +2C of a row
 * are register-offset loads, so 8 instructions a tap (2 per MAC) and one add a row. */
static inline void ec_dw_3x3_dsp(const int8_t *xp, int32_t c, int32_t row, const int16_t *wp,
                                 int32_t *a) {
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], xe, xo, w01, w23;
    const int16_t *w = wp;
    __asm__ volatile(EC_DW_ROW3 EC_DW_ROW3 EC_DW_ROW3
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w),
                       [xe] "=&r"(xe), [xo] "=&r"(xo), [w01] "=&r"(w01), [w23] "=&r"(w23),
                       [xp] "+r"(xp)
                     : [c] "r"(c), [row] "r"(row)
                     : "cc", "memory");
    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
}

/* The in-image taps of any other window, unfolded: rows of cols >= 1 taps from x1 (rows apart
 * by row bytes, taps by col), w at the first tap's weights, skip int16 between rows; SXTAB16
 * adds off2 (the input offset in both halves). 12 instructions a tap. A function of its own:
 * the asm's 12 registers need a caller with few live values. */
__attribute__((noinline)) static void ec_dw_rect_dsp(const int8_t *x1, int32_t col, int32_t row,
                                                     const int16_t *w, int32_t rows,
                                                     int32_t cols, int32_t skip, uint32_t off2,
                                                     int32_t *a) {
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], xe, xo, wv, j;
    for (j = 0; j < rows; j++, w += skip) {
        const int8_t *xq = x1 + j * row;
        int32_t n = cols;
        __asm__ volatile("1:\n\t"
                         "ldr %[xo], [%[xq]]\n\t"
                         "add %[xq], %[xq], %[col]\n\t"
                         "sxtab16 %[xe], %[off], %[xo]\n\t"
                         "sxtab16 %[xo], %[off], %[xo], ror #8\n\t"
                         "ldr %[wv], [%[w], #4]\n\t"
                         "smlatb %[a2], %[xe], %[wv], %[a2]\n\t"
                         "smlatt %[a3], %[xo], %[wv], %[a3]\n\t"
                         "ldr %[wv], [%[w]], #16\n\t"
                         "smlabb %[a0], %[xe], %[wv], %[a0]\n\t"
                         "smlabt %[a1], %[xo], %[wv], %[a1]\n\t"
                         "subs %[n], %[n], #1\n\t"
                         "bne 1b"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                           [w] "+r"(w), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv),
                           [xq] "+r"(xq), [n] "+r"(n)
                         : [col] "r"(col), [off] "r"(off2)
                         : "cc", "memory");
    }
    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
}

/* The 4 output bytes of a group under policy double in its fast form (ec_dw_layer_t.rq2: per
 * channel 2 * M0 and s = -shift - 1; k = 1 + 2 * zp_out): h = SRDHM(acc, M0) by SMMLAR
 * (ec_rq_right), ((h - [h < 0]) >> s) + k, and SSAT #8 of that >> 1 is RDBP(h, s + 1) + zp_out
 * saturated to int8 (k adds RDBP's 1 and 2 * zp_out, even, before the halving). The activation
 * clamp lies inside int8, so it can follow on the packed bytes. */
static inline uint32_t ec_dw_rq4_dsp(const int32_t *a, const int32_t *q, int32_t k) {
    uint32_t v;
    int32_t m, s, h;
#define EC_DW_RQ(acc)                               \
    "ldrd %[m], %[s], [%[q]], #8\n\t"               \
    "smmlar %[h], " acc ", %[m], " acc "\n\t"       \
    "add %[h], %[h], %[h], asr #31\n\t"             \
    "asr %[h], %[h], %[s]\n\t"                      \
    "add %[h], %[h], %[k]\n\t"                      \
    "ssat %[h], #8, %[h], asr #1\n\t"
    __asm__(EC_DW_RQ("%[a0]") "uxtb %[v], %[h]\n\t"
            EC_DW_RQ("%[a1]") "bfi %[v], %[h], #8, #8\n\t"
            EC_DW_RQ("%[a2]") "bfi %[v], %[h], #16, #8\n\t"
            EC_DW_RQ("%[a3]") "bfi %[v], %[h], #24, #8"
            : [v] "=&r"(v), [m] "=&r"(m), [s] "=&r"(s), [h] "=&r"(h), [q] "+r"(q)
            : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [k] "r"(k)
            : "memory");
#undef EC_DW_RQ
    return v;
}

static void ec_dw_dsp(const ec_dw_layer_t *l, const int8_t *x, int8_t *out) {
    const ec_depthwise_params_t *p = &l->p;
    const ec_requant_t *rq = &l->rq;
    const int32_t c = l->in.c, kh = l->kh, kw = l->kw, taps = kh * kw, off = p->input_offset;
    const int32_t col = p->dilation_w * c, row = p->dilation_h * l->in.w * c;
    const uint32_t off2 = ((uint32_t)off & 0xffffu) * 0x10001u;
    const int32_t k = 1 + 2 * rq->output_offset, is3 = kh == 3 && kw == 3 && p->dilation_w == 1;
    const int clamp = rq->act_min > -128 || rq->act_max < 127;
    const uint32_t lo4 = 0x01010101u * (uint8_t)rq->act_min;
    const uint32_t hi4 = 0x01010101u * (uint8_t)rq->act_max;
    const int32_t *const bias = l->bias, *const wsum = l->wsum, *const rq2 = l->rq2;
    int32_t oy, ox, g, j, a[4];
    ec_dw_win_t win;
    for (oy = 0; oy < l->out.h; oy++) {
        for (ox = 0; ox < l->out.w; ox++, out += c) {
            ec_dw_window(l, oy, ox, &win);
            for (g = 0; g + 4 <= c; g += 4) {
                const int16_t *w = l->weight + (g >> 3) * taps * 8 + (g & 4);
                memcpy(a, bias + g, sizeof a);
                if (win.whole && is3) {
                    ec_dw_3x3_dsp(x + win.first_x + g, c, row, w, a);
                } else {
                    for (j = 0; j < 4; j++) a[j] -= off * wsum[g + j];
                    if (win.rows)
                        ec_dw_rect_dsp(x + win.first_x + g, col, row, w + 8 * win.first_tap,
                                       win.rows, win.cols, 8 * (kw - win.cols), off2, a);
                }
                if (rq2) {
                    uint32_t v = ec_dw_rq4_dsp(a, rq2 + 2 * g, k);
                    if (clamp) v = ec_min_s8x4(ec_max_s8x4(v, lo4), hi4);
                    ec_write32(out + g, v);
                } else {
                    for (j = 0; j < 4; j++)
                        out[g + j] = ec_requantize_channel(a[j], rq, (g + j) * l->rq_per_channel);
                }
            }
            ec_dw_pixel_c(l, x, win.y0, win.x0, g, c, out);
        }
    }
}
#endif

#if defined(EC_PATH_MVE)
/* acc (even channels, odd channels) += x * w of one tap of a block of 8 channels, xv the tap's x
 * widened to int16 lanes. The empty asm keeps each tap's loads with its MACs: gcc 12 otherwise
 * hoists every load of a window ahead and spills them (8 vector registers). */
#define EC_DW_MVE_MAC(xv, wp)                                                                \
    do {                                                                                     \
        const int16x8_t xv_ = (xv), wv_ = vld1q_s16(wp);                                     \
        ae = vaddq_s32(ae, vmullbq_int_s16(xv_, wv_));                                       \
        ao = vaddq_s32(ao, vmulltq_int_s16(xv_, wv_));                                       \
        __asm__ volatile("" ::: "memory");                                                   \
    } while (0)

/* 8 widened x of a tap: a plain load for a whole block, predicated for the last (no access
 * past C). */
#define EC_DW_MVE_X(p) (whole_block ? vldrbq_s16(p) : vldrbq_z_s16(p, pr))

/* Policy double, fast form (rq2, de-interleaved by VLD4 into the even and odd channels' 2 * M0
 * and s = -shift - 1): SRDHM by VQRDMULH of M0, then RDBP(h, s + 1) = VRSHL(h - [h < 0], shift),
 * exact as ec_rq_double_x4 shows. */
static inline int32x4_t ec_dw_rq_mve(int32x4_t acc, int32x4_t m2, int32x4_t s) {
    int32x4_t h = vqrdmulhq_s32(acc, vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(m2), 1)));
    return vrshlq_s32(vaddq_s32(h, vshrq_n_s32(h, 31)), vmvnq_s32(s));
}

/* The 8 output bytes of a block from the even and odd channels' accumulators: rq2 (fast policy
 * double) or per lane. int32 lanes saturated to int16, then zp_out added in int16: a value past
 * int16 ends beyond [act_min, act_max] either way, so the clamp gives the same byte. */
static inline void ec_dw_out_mve(const ec_dw_layer_t *l, int32x4_t ae, int32x4_t ao, int32_t co,
                                 int32_t n, int8_t *o) {
    const ec_requant_t *rq = &l->rq;
    int32_t j;
    if (l->rq2) {
        const int32x4x4_t q = vld4q_s32(l->rq2 + 2 * co);
        int16x8_t y = vqmovnbq_s32(vdupq_n_s16(0), ec_dw_rq_mve(ae, q.val[0], q.val[1]));
        y = vqmovntq_s32(y, ec_dw_rq_mve(ao, q.val[2], q.val[3]));
        y = vqaddq_n_s16(y, (int16_t)rq->output_offset);
        y = vminq_s16(vmaxq_s16(y, vdupq_n_s16((int16_t)rq->act_min)),
                      vdupq_n_s16((int16_t)rq->act_max));
        vstrbq_p_s16(o + co, y, vctp16q((uint32_t)n));
    } else {
        int32_t even[4], odd[4];
        vst1q_s32(even, ae);
        vst1q_s32(odd, ao);
        for (j = 0; j < n; j++)
            o[co + j] = ec_requant_one(j & 1 ? odd[j >> 1] : even[j >> 1], rq,
                                       (co + j) * l->rq_per_channel);
    }
}

/* The whole blocks of an output pixel whose 3x3 window lies in the image, folded, under the
 * fast policy double (rq2): per block of 8 channels the bias (de-interleaved, VLD2), 9 taps of
 * (VLDRB.S16 of x, VLDRH of w, VMULLB, VMULLT, 2 VADD) from the window's first byte xp (rows
 * apart by row, columns by col), then ec_dw_rq_mve's steps on the even and odd lanes, the
 * saturating narrows back into channel order, zp_out, the clamp and one 8-byte store: 84
 * instructions per 72 MACs. Written out because gcc 12 hoists the window's loads and spills. */
#define EC_DW_MVE_TAP(addr)                        \
    "vldrb.s16 q0, " addr "\n\t"                   \
    "vldrh.u16 q1, [%[w]], #16\n\t"                \
    "vmullb.s16 q2, q0, q1\n\t"                    \
    "vmullt.s16 q3, q0, q1\n\t"                    \
    "vadd.i32 q4, q4, q2\n\t"                      \
    "vadd.i32 q5, q5, q3\n\t"
#define EC_DW_MVE_ROW                              \
    EC_DW_MVE_TAP("[%[t]]")                        \
    "add %[u], %[t], %[col]\n\t"                   \
    EC_DW_MVE_TAP("[%[u]]")                        \
    "add %[u], %[u], %[col]\n\t"                   \
    EC_DW_MVE_TAP("[%[u]]")                        \
    "add %[t], %[t], %[row]\n\t"
#define EC_DW_MVE_RQ(acc, m2, s)                   \
    "vshr.u32 " m2 ", " m2 ", #1\n\t"              \
    "vqrdmulh.s32 " acc ", " acc ", " m2 "\n\t"    \
    "vshr.s32 q6, " acc ", #31\n\t"                \
    "vadd.i32 " acc ", " acc ", q6\n\t"            \
    "vmvn " s ", " s "\n\t"                        \
    "vrshl.s32 " acc ", " acc ", " s "\n\t"

#define EC_DW_MVE_OUT                                                                       \
    "vld40.32 {q0, q1, q2, q3}, [%[q]]\n\t"                                                  \
    "vld41.32 {q0, q1, q2, q3}, [%[q]]\n\t"                                                  \
    "vld42.32 {q0, q1, q2, q3}, [%[q]]\n\t"                                                  \
    "vld43.32 {q0, q1, q2, q3}, [%[q]]!\n\t"                                                 \
    EC_DW_MVE_RQ("q4", "q0", "q1") EC_DW_MVE_RQ("q5", "q2", "q3")                              \
    "vqmovnb.s32 q6, q4\n\t"                                                                 \
    "vqmovnt.s32 q6, q5\n\t"                                                                 \
    "vqadd.s16 q6, q6, %[zp]\n\t"                                                            \
    "vdup.16 q7, %[lo]\n\t"                                                                  \
    "vmax.s16 q6, q6, q7\n\t"                                                                \
    "vdup.16 q7, %[hi]\n\t"                                                                  \
    "vmin.s16 q6, q6, q7\n\t"                                                                \
    "vstrb.16 q6, [%[o]]"

static void ec_dw_3x3_mve(const ec_dw_layer_t *l, const int8_t *xp, int32_t col, int32_t row,
                          int32_t blocks, int8_t *o) {
    const int16_t *w = l->weight;
    const int32_t *b = l->bias, *q = l->rq2;
    const int32_t zp = l->rq.output_offset, lo = l->rq.act_min, hi = l->rq.act_max;
    int32_t k;
    for (k = 0; k < blocks; k++, xp += 8) {
        const int8_t *t = xp, *u;
        __asm__ volatile("vld20.32 {q4, q5}, [%[b]]\n\t"
                         "vld21.32 {q4, q5}, [%[b]]!\n\t"
                         EC_DW_MVE_ROW EC_DW_MVE_ROW EC_DW_MVE_ROW
                         EC_DW_MVE_OUT
                         : [w] "+r"(w), [b] "+r"(b), [q] "+r"(q), [t] "+l"(t), [u] "=&l"(u)
                         : [o] "l"(o + 8 * k), [col] "r"(col), [row] "r"(row), [zp] "r"(zp), [lo] "r"(lo),
                           [hi] "r"(hi)
                         : "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9",
                           "d10", "d11", "d12", "d13", "d14", "d15");
    }
}

/* Any other window of a whole block, unfolded, under the fast policy double: the bias minus
 * input_offset * wsum (VMLA by the scalar -input_offset), then rows x cols >= 1 in-image taps
 * from x1 (rows apart by row, columns by col), w at the first tap's weights and wskip bytes
 * between rows, each x widened and offset (VADD.I16: x + input_offset fits int16). The asm
 * reads its scalars from a (ec_dw_rect_t) to stay within the core registers; the widening
 * loads and the narrowing store take a base in r0-r7 ("l"). */
typedef struct {
    const int32_t *bias, *wsum, *q; /* offsets 0, 4, 8 */
    int8_t *o;                      /* 12 */
    int32_t col, row, cols, wskip;  /* 16, 20, 24, 28 */
    int32_t neg, off, zp, lo, hi;   /* 32, 36, 40, 44, 48 */
} ec_dw_rect_t;

static void ec_dw_rect_mve(const ec_dw_rect_t *a, const int8_t *x1, int32_t rows,
                           const int16_t *w) {
    const int8_t *t = x1, *u;
    int32_t r = rows, n, v;
    __asm__ volatile("ldr %[v], [%[a], #0]\n\t"
                     "vld20.32 {q4, q5}, [%[v]]\n\t"
                     "vld21.32 {q4, q5}, [%[v]]\n\t"
                     "ldr %[v], [%[a], #4]\n\t"
                     "vld20.32 {q6, q7}, [%[v]]\n\t"
                     "vld21.32 {q6, q7}, [%[v]]\n\t"
                     "ldr %[v], [%[a], #32]\n\t"
                     "vmla.s32 q4, q6, %[v]\n\t"
                     "vmla.s32 q5, q7, %[v]\n\t"
                     "ldr %[v], [%[a], #36]\n\t"
                     "vdup.16 q7, %[v]\n\t"
                     "1:\n\t"
                     "mov %[u], %[t]\n\t"
                     "ldr %[n], [%[a], #24]\n\t"
                     "ldr %[v], [%[a], #16]\n\t"
                     "2:\n\t"
                     "vldrb.s16 q0, [%[u]]\n\t"
                     "add %[u], %[u], %[v]\n\t"
                     "vadd.i16 q0, q0, q7\n\t"
                     "vldrh.u16 q1, [%[w]], #16\n\t"
                     "vmullb.s16 q2, q0, q1\n\t"
                     "vmullt.s16 q3, q0, q1\n\t"
                     "vadd.i32 q4, q4, q2\n\t"
                     "vadd.i32 q5, q5, q3\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 2b\n\t"
                     "ldr %[v], [%[a], #20]\n\t"
                     "add %[t], %[t], %[v]\n\t"
                     "ldr %[v], [%[a], #28]\n\t"
                     "add %[w], %[w], %[v]\n\t"
                     "subs %[r], %[r], #1\n\t"
                     "bne 1b\n\t"
                     "ldr %[v], [%[a], #8]\n\t"
                     "vld40.32 {q0, q1, q2, q3}, [%[v]]\n\t"
                     "vld41.32 {q0, q1, q2, q3}, [%[v]]\n\t"
                     "vld42.32 {q0, q1, q2, q3}, [%[v]]\n\t"
                     "vld43.32 {q0, q1, q2, q3}, [%[v]]\n\t"
                     EC_DW_MVE_RQ("q4", "q0", "q1") EC_DW_MVE_RQ("q5", "q2", "q3")
                     "vqmovnb.s32 q6, q4\n\t"
                     "vqmovnt.s32 q6, q5\n\t"
                     "ldr %[v], [%[a], #40]\n\t"
                     "vqadd.s16 q6, q6, %[v]\n\t"
                     "ldr %[v], [%[a], #44]\n\t"
                     "vdup.16 q7, %[v]\n\t"
                     "vmax.s16 q6, q6, q7\n\t"
                     "ldr %[v], [%[a], #48]\n\t"
                     "vdup.16 q7, %[v]\n\t"
                     "vmin.s16 q6, q6, q7\n\t"
                     "ldr %[v], [%[a], #12]\n\t"
                     "vstrb.16 q6, [%[v]]"
                     : [w] "+r"(w), [t] "+r"(t), [r] "+r"(r), [u] "=&l"(u), [n] "=&r"(n),
                       [v] "=&l"(v)
                     : [a] "r"(a)
                     : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8",
                       "d9", "d10", "d11", "d12", "d13", "d14", "d15");
}

/* Channels co .. co + 7 (n of them, the last block fewer) of one output pixel, any policy. */
static void ec_dw_block_mve(const ec_dw_layer_t *l, const int8_t *x, const ec_dw_win_t *win,
                            int32_t co, int32_t n, int whole_block, int8_t *o) {
    const ec_depthwise_params_t *p = &l->p;
    const int32_t c = l->in.c, kw = l->kw;
    const int32_t col = p->dilation_w * c, row = p->dilation_h * l->in.w * c;
    const int16_t *w = l->weight + (co >> 3) * l->kh * kw * 8;
    const int8_t *xr = x + win->first_x + co;
    const mve_pred16_t pr = vctp16q((uint32_t)n);
    const int32x4x2_t b = vld2q_s32(l->bias + co);
    int32x4_t ae = b.val[0], ao = b.val[1];
    int32_t j, t;
    if (win->whole) { /* folded: raw x, every tap */
        for (j = 0; j < l->kh; j++, xr += row)
            for (t = 0; t < kw; t++, w += 8) EC_DW_MVE_MAC(EC_DW_MVE_X(xr + t * col), w);
    } else { /* unfolded: bias - input_offset * wsum, in-image taps of x + input_offset */
        const int32x4x2_t s = vld2q_s32(l->wsum + co);
        const int16x8_t off = vdupq_n_s16((int16_t)p->input_offset);
        ae = vmlaq_n_s32(ae, s.val[0], -p->input_offset);
        ao = vmlaq_n_s32(ao, s.val[1], -p->input_offset);
        for (j = 0, w += 8 * win->first_tap; j < win->rows; j++, xr += row, w += 8 * kw)
            for (t = 0; t < win->cols; t++)
                EC_DW_MVE_MAC(vaddq_s16(EC_DW_MVE_X(xr + t * col), off), w + 8 * t);
    }
    ec_dw_out_mve(l, ae, ao, co, n, o);
}
#endif

void ec_depthwise_conv2d_s8(const ec_dw_layer_t *l, const int8_t *x, int8_t *out) {
    const int32_t cm = l->out.c, simd = l->p.depth_multiplier == 1;
    int32_t oy, ox;
    ec_dw_win_t win;
#if defined(EC_PATH_DSP)
    if (simd) {
        ec_dw_dsp(l, x, out);
        return;
    }
#endif
    for (oy = 0; oy < l->out.h; oy++) {
        for (ox = 0; ox < l->out.w; ox++, out += cm) {
            int32_t co = 0;
            ec_dw_window(l, oy, ox, &win);
#if defined(EC_PATH_MVE)
            if (simd && l->rq2 && win.whole && l->kh == 3 && l->kw == 3) {
                ec_dw_3x3_mve(l, x + win.first_x, l->p.dilation_w * cm,
                              l->p.dilation_h * l->in.w * cm, cm >> 3, out);
                co = cm & ~7;
            } else if (simd && l->rq2 && win.rows) {
                const int16_t *w = l->weight + 8 * win.first_tap;
                ec_dw_rect_t a = {l->bias, l->wsum, l->rq2, out, l->p.dilation_w * cm,
                                  l->p.dilation_h * l->in.w * cm, win.cols,
                                  16 * (l->kw - win.cols), -l->p.input_offset,
                                  l->p.input_offset, l->rq.output_offset, l->rq.act_min,
                                  l->rq.act_max};
                for (; co + 8 <= cm; co += 8, w += 8 * l->kh * l->kw) {
                    ec_dw_rect_mve(&a, x + win.first_x + co, win.rows, w);
                    a.bias += 8, a.wsum += 8, a.q += 16, a.o += 8;
                }
            }
            for (; simd && co + 8 <= cm; co += 8) ec_dw_block_mve(l, x, &win, co, 8, 1, out);
            if (simd && co < cm) ec_dw_block_mve(l, x, &win, co, cm - co, 0, out), co = cm;
#endif
            ec_dw_pixel_c(l, x, win.y0, win.x0, co, cm, out);
        }
    }
    (void)simd;
}
