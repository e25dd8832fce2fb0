/* edgecnn int8 DEPTHWISE_CONV_2D, the fast twin of edgecnn/reference/depthwise_conv.py (LiteRT
 * reference_integer_ops::DepthwiseConvPerChannel), vectorised over channels.
 *
 * x int8 (H, W, C), out int8 (OH, OW, CM), CM = C * M; with M > 1 the input is first copied once
 * per call with every channel repeated M times, so output channel oc reads channel oc of the
 * copy. Weights are widened once at bind time, [KH*KW][CP] (CP = CM rounded up to 64, zeros past
 * CM): int16 for NEON and generic, int32 pairs for x86 (depthwise_x86.h). The input zero point
 * is folded into the bias, bias' = bias - zp * sum_t w[t][c], so the inner loops add plain
 * x * w; an out-of-image tap reads a row of CP zero points instead (zp * w cancels its share of
 * the fold: exactly the tap the reference skips). Sums wrap modulo 2^32 and so end on the
 * reference accumulator whenever that fits int32 (the contract).
 *
 * A call walks output rows EC_DW_PIX pixels at a time (threads take blocks of rows); for each
 * channel block the accumulators of those pixels stay in registers across all KH*KW taps and a
 * tap's weights are loaded once for all of them. Paths (cpu_features.h picks one at bind time):
 * - x86 (AVX-512 on the avx512vnni path, AVX2): blocks of 2V channels (V int32 lanes), even and
 *   odd channels in separate accumulators (depthwise_x86.h).
 * - NEON: 16 channels, x widened with sxtl, smlal into 4 int32x4 accumulators, channel order.
 * - generic: plain C loops the compiler vectorises, scalar requantization.
 * Policies double and fp32 requantize in vector registers; single and f64 (rare) go through the
 * scalar ec_requantize of fixedpoint.h.
 */
#ifndef EDGECNN_DEPTHWISE_S8_H
#define EDGECNN_DEPTHWISE_S8_H

#include "gemm_s8.h"

#define EC_DW_PIX 4     /* output pixels per kernel call */
#define EC_DW_CALIGN 64 /* channel padding of weights, parameters and the zero-point row */

/* Per-channel parameters as the vector path reads them, padded to CP: on x86 in the split
 * order (block b of 2V channels holds its V even channels, then its V odd ones), elsewhere in
 * channel order. */
typedef struct {
    const int32_t *bias, *m0, *left, *right;
    const float *scale; /* fp32 policy: float32(real_scale) */
} ec_dw_split;

typedef struct {
    int isa;
    int h, w, c, m, cm, cp;
    int oh, ow, kh, kw, sh, sw, dh, dw, pt, pl;
    int ntaps;
    const int16_t *w16;    /* [ntaps][cp] (NEON, generic) */
    const int32_t *w32;    /* x86: [ntaps][cp], per block (w[2i], 0) pairs, then (0, w[2i+1]) */
    const int64_t *q64;    /* avx512 policy double: per block of 32 the constants of ec_dw_q64 */
    int has_left;          /* some channel's multiplier has a left shift */
    const ptrdiff_t *off;  /* [ntaps] tap offsets of an interior pixel: (ky*dh*w + kx*dw) * cm */
    ec_requant rq;         /* channel order, padded to cp; bias = the folded bias' */
    ec_dw_split sp;        /* the vector paths' order (ec_dw_split_block) */
    const int8_t *zrow;    /* cp input zero points */
    int8_t *xexp;          /* M > 1: h * w * cm bytes, the channel-repeated input */
    const int8_t **taps;   /* max_threads * ec_dw_taps_stride(ntaps) tap pointers */
    int32_t *acc;          /* max_threads * ec_dw_acc_stride(cp) accumulators (scalar paths) */
    int max_threads;
} ec_dw_plan;

/* Per-thread scratch strides: a whole number of 64-byte lines plus one line of gap, so two
 * threads never write the same cache line (false sharing took all of the second thread's
 * gain: every 4 pixels rewrite 4 * ntaps tap pointers). */
static size_t ec_dw_taps_stride(int ntaps) { return ((size_t)EC_DW_PIX * ntaps + 7) / 8 * 8 + 8; }
static size_t ec_dw_acc_stride(int cp) { return (size_t)cp + 16; }

typedef void (*ec_dw_kern_fn)(const ec_dw_plan *p, const int8_t *const *taps, int npix,
                              int8_t *out, int32_t *acc);

/* Channels per x86 block (2V), 0 where parameters stay in channel order. */
static int ec_dw_split_block(int isa) {
    isa = ec_simd_isa(isa);
    return isa == EC_ISA_AVX512VNNI ? 32 : isa == EC_ISA_AVX2 ? 16 : 0;
}

/* n accumulators (bias' included) of channels c0.. -> int8, any policy. */
static inline void ec_dw_requant_scalar(const ec_requant *rq, int c0, const int32_t *acc,
                                        int8_t *out, int n) {
    int j;
    for (j = 0; j < n; j++)
        out[j] = ec_requantize(acc[j], rq->policy, rq->m0[c0 + j], rq->shift[c0 + j],
                               rq->real_scale[c0 + j], rq->out_off, rq->act_min, rq->act_max);
}

/* ---------------------------------------------------------------- portable C path */

static void ec_dw_kern_generic(const ec_dw_plan *p, const int8_t *const *taps, int npix,
                               int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm;
    uint32_t *a = (uint32_t *)acc; /* unsigned: wraps modulo 2^32 like the SIMD paths */
    int q, t, c;
    for (q = 0; q < npix; q++) {
        for (c = 0; c < cm; c++) a[c] = (uint32_t)p->rq.bias[c];
        for (t = 0; t < nt; t++) {
            const int8_t *x = taps[q * nt + t];
            const int16_t *w = p->w16 + (size_t)t * p->cp;
            for (c = 0; c < cm; c++) a[c] += (uint32_t)((int32_t)x[c] * w[c]);
        }
        ec_dw_requant_scalar(&p->rq, 0, acc, out + (size_t)q * cm, cm);
    }
}

/* The ntaps tap pointers of output pixel (oy, ox); x has cm channels. */
static inline void ec_dw_fill_taps(const ec_dw_plan *p, const int8_t *x, int oy, int ox,
                                   const int8_t **taps) {
    int iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl, ky, kx, t;
    if (iy0 >= 0 && iy0 + (p->kh - 1) * p->dh < p->h && ix0 >= 0 &&
        ix0 + (p->kw - 1) * p->dw < p->w) {
        const int8_t *base = x + ((size_t)iy0 * p->w + ix0) * p->cm;
        for (t = 0; t < p->ntaps; t++) taps[t] = base + p->off[t];
        return;
    }
    for (ky = 0, t = 0; ky < p->kh; ky++) {
        int iy = iy0 + ky * p->dh;
        for (kx = 0; kx < p->kw; kx++, t++) {
            int ix = ix0 + kx * p->dw;
            taps[t] = (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
                          ? x + ((size_t)iy * p->w + ix) * p->cm : p->zrow;
        }
    }
}

#if defined(EC_X86)
#include "depthwise_x86.h"
#endif

#if defined(EC_ARM64)
#include "depthwise_neon.h"
#endif

static ec_dw_kern_fn ec_dw_kernel_for(int isa) {
    switch (ec_simd_isa(isa)) {
#if defined(EC_X86)
    case EC_ISA_AVX512VNNI: return ec_dw_kern_avx512;
    case EC_ISA_AVX2: return ec_dw_kern_avx2;
#endif
#if defined(EC_ARM64)
    case EC_ISA_NEON:
    case EC_ISA_NEON_SDOT: return ec_dw_kern_neon;
#endif
    default: return ec_dw_kern_generic;
    }
}

/* ---------------------------------------------------------------- driver */

/* Fill ntaps and off of a plan whose shapes, strides, dilations and paddings are set. */
static void ec_dw_geometry(ec_dw_plan *p, ptrdiff_t *off) {
    int ky, kx;
    p->ntaps = p->kh * p->kw;
    for (ky = 0; ky < p->kh; ky++)
        for (kx = 0; kx < p->kw; kx++)
            off[ky * p->kw + kx] = ((ptrdiff_t)ky * p->dh * p->w + (ptrdiff_t)kx * p->dw) * p->cm;
}


/* Pixels [oxa, oxb) of output row oy through the per-pixel kernel, EC_DW_PIX at a time. */
static void ec_dw_pixels(const ec_dw_plan *p, ec_dw_kern_fn kern, const int8_t *x, int8_t *out,
                         int oy, int oxa, int oxb, const int8_t **taps, int32_t *acc) {
    int ox, q;
    for (ox = oxa; ox < oxb; ox += EC_DW_PIX) {
        int n = oxb - ox < EC_DW_PIX ? oxb - ox : EC_DW_PIX;
        for (q = 0; q < EC_DW_PIX; q++) /* past the range: its last pixel, never stored */
            ec_dw_fill_taps(p, x, oy, ox + (q < n ? q : n - 1), taps + q * p->ntaps);
        kern(p, (const int8_t *const *)taps, n, out + ((size_t)oy * p->ow + ox) * p->cm, acc);
    }
}

/* Whether the row kernel for 3x3 filters (depthwise_x86.h) runs this layer's interior. */
static int ec_dw3_fits(const ec_dw_plan *p) {
#if defined(EC_X86)
    return ec_simd_isa(p->isa) == EC_ISA_AVX512VNNI && p->kh == 3 && p->kw == 3 && p->dw == 1 &&
           (p->sw == 1 || p->sw == 2);
#else
    (void)p;
    return 0;
#endif
}

static void ec_dw_rows(const ec_dw_plan *p, ec_dw_kern_fn kern, const int8_t *x, int8_t *out,
                       int oy0, int oy1, int slot) {
    const int8_t **taps = p->taps + (size_t)slot * ec_dw_taps_stride(p->ntaps);
    int32_t *acc = p->acc + (size_t)slot * ec_dw_acc_stride(p->cp);
    const int row3 = ec_dw3_fits(p);
    /* output columns whose 3 input columns are all inside the image: [lo, hi) */
    const int lo = (p->pl + p->sw - 1) / p->sw;
    const int hi = p->w - 3 + p->pl >= 0 ? (p->w - 3 + p->pl) / p->sw + 1 : 0;
    int oy;
    for (oy = oy0; oy < oy1; oy++) {
        int iy0 = oy * p->sh - p->pt;
        if (row3 && iy0 >= 0 && iy0 + 2 * p->dh < p->h) {
#if defined(EC_X86)
            ec_dw3_row_avx512(p, x, oy, lo, hi < p->ow ? hi : p->ow, taps,
                              out + (size_t)oy * p->ow * p->cm, acc);
            continue;
#endif
        }
        ec_dw_pixels(p, kern, x, out, oy, 0, p->ow, taps, acc);
    }
}

typedef struct {
    const ec_dw_plan *p;
    ec_dw_kern_fn kern;
    const int8_t *x;
    int8_t *out;
    int rows_per_chunk;
} ec_dw_job;

static void ec_dw_chunk(void *ctx, int index, int slot) {
    const ec_dw_job *j = (const ec_dw_job *)ctx;
    int lo = index * j->rows_per_chunk, hi = lo + j->rows_per_chunk;
    ec_dw_rows(j->p, j->kern, j->x, j->out, lo, hi < j->p->oh ? hi : j->p->oh, slot);
}

/* Layers under this many multiply-adds stay on the caller: depthwise runs about 20 G MAC/s a
 * core, so this is some 8 us of work (MobileNetV2's 7x7 and 14x14 layers, 25-45 us each on
 * one thread, are above it; a pool hand-over costs about 1 us). */
#define EC_DW_SERIAL_MACS 1.5e5

/* Blocks of output rows, about 8 chunks per thread. */
static void ec_dw_run(const ec_dw_plan *p, const int8_t *x, int8_t *out, int nthreads) {
    ec_dw_job j;
    if (p->m > 1) { /* channel ic -> channels ic * M .. ic * M + M - 1 */
        size_t i, n = (size_t)p->h * p->w * p->c;
        int k;
        for (i = 0; i < n; i++)
            for (k = 0; k < p->m; k++) p->xexp[i * p->m + k] = x[i];
        x = p->xexp;
    }
    j.p = p;
    j.kern = ec_dw_kernel_for(p->isa);
    j.x = x;
    j.out = out;
    if (nthreads > p->max_threads) nthreads = p->max_threads;
    if ((double)p->oh * p->ow * p->cm * p->ntaps < EC_DW_SERIAL_MACS) nthreads = 1;
    if (nthreads <= 1) {
        ec_dw_rows(p, j.kern, x, out, 0, p->oh, 0);
        return;
    }
    j.rows_per_chunk = (p->oh + 8 * nthreads - 1) / (8 * nthreads);
    ec_pool_run(ec_dw_chunk, &j, (p->oh + j.rows_per_chunk - 1) / j.rows_per_chunk, nthreads);
}

#endif /* EDGECNN_DEPTHWISE_S8_H */
