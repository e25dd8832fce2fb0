/* edgecnn packed int8 conv / fully connected: the driver, the portable C path and the layouts.
 *
 * Conv as a GEMM: out[m, n] = requant(bias'[n] + sum_k A[m, k] * B[k, n]), m = output pixel
 * (oy * OW + ox), n = output channel, k = (ky, kx, ci) like the OHWI weights. Direct mode
 * (dilation_w 1): the input is copied once per call into a padded buffer (border = the input
 * zero point, so padded taps add exactly the (x + input_offset) = 0 the reference skips), in
 * the path's A type; row m of A is then KH runs of KW * Cin contiguous elements read in place,
 * each run rounded up to the path's K step with zero weights (the extra elements read belong to
 * the next pixel and are multiplied by 0). Otherwise (dilated columns) A rows are built per
 * block of MR pixels into per-thread scratch (im2col). B (weights) is packed once at bind time
 * in panels of NR channels, K in the same (run, padded) order.
 * The input offset is folded into the bias: bias' = bias - zpA * sum_k w[n, k], where zpA is
 * the zero point as stored in A (zp + 128 on the u8 VNNI path, whose A holds x ^ 0x80 = x + 128).
 * The int32 sums wrap modulo 2^32 and so end exactly on the reference accumulator whenever
 * that one fits int32 (the reference contract: |acc| < 2^31).
 *
 * Layouts per path (see ec_layouts): S8X4 = int8 A, B as [k/4][NR][4] (generic, neon-sdot,
 * avx512amx); U8X4 = uint8 A (x ^ 0x80), same B (avx512vnni); S16X2 = int16 A, B int16
 * [k/2][NR][2] (avx2 vpmaddwd, neon smlal). K is rounded up to the step with zero weights.
 * avx512amx (gemm_amx.h) reads pointwise convs' A straight from the input and gathers whole
 * im2col rows (one run of K, rounded up to 64) of the others from the input into scratch, for
 * any dilation, with no padded copy; its panels of 32 channels hold them in the order
 * ec_amx_col_channel gives. Dense layers at batch 1 run the VNNI stream there (they are bound
 * by memory, not by multiply-adds).
 */
#ifndef EDGECNN_GEMM_S8_H
#define EDGECNN_GEMM_S8_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_features.h"
#include "fixedpoint.h"
#include "threadpool.h"

/* Layers under this many multiply-adds run on the calling thread alone: they take about as
 * long as waking a sleeping worker (LeNet-5's layers all do). */
#define EC_SERIAL_MACS 1.0e6

#define EC_MAX_MR 32 /* AMX: two 16-row tiles */
#define EC_MAX_NR 32

typedef struct {
    int mr, nr;     /* micro-tile: MR pixels x NR channels */
    int kstep;      /* K rounded up to a multiple of this */
    int a_bytes;    /* bytes per A element (1 or 2) */
    int u8;         /* A holds x + 128 as uint8 */
} ec_layout;

static const ec_layout ec_layouts[EC_ISA_COUNT] = {
    {4, 16, 4, 1, 0}, /* generic: S8X4 */
    {4, 16, 2, 2, 0}, /* avx2: S16X2 */
    {8, 32, 4, 1, 1}, /* avx512vnni: U8X4 */
    {4, 16, 2, 2, 0}, /* neon: S16X2 */
    {4, 16, 4, 1, 0}, /* neon-sdot: S8X4 */
    {32, 32, 64, 1, 0}, /* avx512amx: S8X4, K in whole tiles of 64 */
};

/* The path a conv binds to on the chosen one: AMX leaves convs of 8 channels or fewer to
 * VNNI's 8-channel ymm kernel (a tile column of 16 channels would be half empty and the
 * gather cost the same; LeNet-5's first conv, 28x28x1 -> 6: 12 us on AMX, 7 us on VNNI). */
static int ec_conv_isa_for(int isa, int cout) {
    return isa == EC_ISA_AVX512AMX && cout <= 8 ? EC_ISA_AVX512VNNI : isa;
}

/* The layout of a conv: VNNI uses 8- or 16-channel panels for convs that narrow, AMX one
 * 16-channel tile column. */
static ec_layout ec_layout_for(int isa, int cout) {
    ec_layout L = ec_layouts[isa];
    if (isa == EC_ISA_AVX512VNNI && cout <= 16) L.nr = cout <= 8 ? 8 : 16;
    if (isa == EC_ISA_AVX512AMX && cout <= 16) L.nr = 16;
    return L;
}

/* AMX requantization parameters in the order of a panel's columns (gemm_amx.h). */
typedef struct {
    const int32_t *bias;  /* [npanels * nr] folded bias', preloaded into the C tiles */
    const int32_t *left;  /* [npanels * nr] policy double: max(shift, 0) */
    const int64_t *q;     /* [npanels][EC_AQ_KINDS][4][8]: one-step rounding constants */
    const float *f32;     /* [npanels * nr] policy fp32: float32(real_scale) */
    const double *f64;    /* [npanels * nr] policy f64: real_scale */
    int has_left;         /* policy double and some channel shifts left */
} ec_amx_rq;

/* Requantization parameters per output channel, padded to a whole number of panels. */
typedef struct {
    const int32_t *bias;    /* folded bias' */
    const int32_t *m0;      /* Q31 multiplier */
    const int32_t *shift;   /* TFLite shift (> 0 left) */
    const int32_t *left;    /* max(shift, 0) */
    const int32_t *right;   /* max(-shift, 0) */
    const double *real_scale;
    int policy, out_off, act_min, act_max;
} ec_requant;

typedef struct {
    int isa;
    ec_layout L;
    int h, w, cin, oh, ow, cout, kh, kw, sh, sw, dh, dw, pt, pl;
    int k, kp, npanels;
    int direct;            /* 1: A read in place from the padded input (not AMX) */
    int amx_direct;        /* AMX, 1x1 stride 1 unpadded: A tiles read from the input itself */
    int nseg, seg, segp;   /* K = nseg runs of seg elements, each padded to segp */
    int hp, wp;            /* padded input rows and columns (direct mode) */
    int pad_a;             /* the zero point as stored in A */
    const void *b;         /* packed weights */
    ec_requant rq;
    void *padded;          /* hp * wp * cin A elements + 64 bytes (direct mode) */
    void *scratch;         /* max_threads * mr * kp A elements (im2col mode, AMX) + 64 */
    int max_threads;
    ec_amx_rq arq;         /* AMX only (ec_amx_bind) */
    void *amx_a;           /* AMX: A of a whole layer, or NULL (ec_amx_a_bytes) */
} ec_conv_plan;

/* Fill the geometry of a plan whose isa, L, shapes, strides, paddings and dilations are set. */
static void ec_conv_geometry(ec_conv_plan *p) {
    int ks = p->L.kstep;
    p->k = p->kh * p->kw * p->cin;
    p->direct = p->dw == 1;
    p->amx_direct = 0;
    if (p->isa == EC_ISA_AVX512AMX) { /* one K run per pixel, gathered from the input */
        p->direct = 0;
        p->amx_direct = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->pt == 0 &&
                        p->pl == 0 && p->oh == p->h && p->ow == p->w;
        p->nseg = 1;
        p->seg = p->k;
        p->hp = p->wp = 0;
    } else if (p->direct) {
        p->nseg = p->kh;
        p->seg = p->kw * p->cin;
        p->hp = (p->oh - 1) * p->sh + (p->kh - 1) * p->dh + 1;
        p->wp = (p->ow - 1) * p->sw + p->kw;
    } else {
        p->nseg = 1;
        p->seg = p->k;
        p->hp = p->wp = 0;
    }
    p->segp = (p->seg + ks - 1) / ks * ks;
    p->kp = p->nseg * p->segp;
    p->npanels = (p->cout + p->L.nr - 1) / p->L.nr;
}

/* Bytes the caller allocates for p->padded and p->scratch (zero-filled); each holds 64 bytes
 * of slack (vector over-reads; 64-byte alignment of the scratch). */
static size_t ec_conv_padded_bytes(const ec_conv_plan *p) {
    return (p->direct ? (size_t)p->hp * p->wp * p->cin * p->L.a_bytes : 0) + 64;
}

/* One pool slot's scratch: mr rows of kp A elements and 64 bytes of slack (AMX's gather
 * writes whole 64-byte moves), a multiple of 64 bytes. */
static size_t ec_conv_slot_bytes(const ec_conv_plan *p) {
    return ((size_t)p->L.mr * p->kp * p->L.a_bytes + 127) / 64 * 64;
}

static size_t ec_conv_scratch_bytes(const ec_conv_plan *p) {
    if (p->direct) return 0;
    return (size_t)p->max_threads * ec_conv_slot_bytes(p) + 64;
}

/* The scratch rows of one pool slot, 64-byte aligned (AMX tile rows then sit in one line). */
static inline void *ec_conv_scratch_slot(const ec_conv_plan *p, int slot) {
    uintptr_t base = ((uintptr_t)p->scratch + 63) & ~(uintptr_t)63;
    return (uint8_t *)base + (size_t)slot * ec_conv_slot_bytes(p);
}

/* ---------------------------------------------------------------- packing (bind time) */

static size_t ec_packed_b_bytes(const ec_conv_plan *p) {
    return (size_t)p->npanels * p->L.nr * p->kp * p->L.a_bytes;
}

/* The channel in column c of an AMX panel of nr channels: with 32, tile 0's columns 4L + j
 * hold channels 8L + j and tile 1's hold 8L + 4 + j (L, j < 4), so that one vpackssdw of a
 * tile-0 row and a tile-1 row lays the 32 results out in channel order (gemm_amx.h). */
static inline int ec_amx_col_channel(int nr, int c) {
    return nr == 32 ? 8 * ((c & 15) >> 2) + 4 * (c >> 4) + (c & 3) : c;
}

/* w int8 (cout, k) row-major -> the plan's panels [kp/ks][nr][ks], ks = 4 products per lane
 * (2 for int16 B; AMX pads K to 64 but groups by 4 as well, columns in ec_amx_col_channel
 * order); sums[c] = sum_k w[c, k]. */
static void ec_pack_b(const ec_conv_plan *pl, const int8_t *w, void *dst, int64_t *sums) {
    int nr = pl->L.nr, ks = pl->L.a_bytes == 2 ? 2 : 4, cout = pl->cout, k = pl->k;
    int groups = pl->kp / ks, p, g, c, j;
    for (c = 0; c < cout; c++) {
        int64_t s = 0;
        for (j = 0; j < k; j++) s += w[(size_t)c * k + j];
        sums[c] = s;
    }
    for (p = 0; p < pl->npanels; p++)
        for (g = 0; g < groups; g++)
            for (c = 0; c < nr; c++)
                for (j = 0; j < ks; j++) {
                    int kk = g * ks + j; /* kk in padded K */
                    int n = p * nr + (pl->isa == EC_ISA_AVX512AMX ? ec_amx_col_channel(nr, c) : c);
                    int run = kk / pl->segp, in_run = kk % pl->segp;
                    int8_t v = (n < cout && in_run < pl->seg)
                                   ? w[(size_t)n * k + (size_t)run * pl->seg + in_run] : 0;
                    size_t at = (((size_t)p * groups + g) * nr + c) * ks + j;
                    if (ks == 2)
                        ((int16_t *)dst)[at] = v;
                    else
                        ((int8_t *)dst)[at] = v;
                }
}

/* ---------------------------------------------------------------- A rows (run time) */

/* n elements of x into A at index `at`, converted to the path's A type. */
static inline void ec_put_x(void *a, int a_bytes, int u8, size_t at, const int8_t *x, int n) {
    int i;
    if (a_bytes == 2) {
        int16_t *d = (int16_t *)a + at;
        for (i = 0; i < n; i++) d[i] = x[i];
    } else if (u8) {
        uint8_t *d = (uint8_t *)a + at;
        for (i = 0; i < n; i++) d[i] = (uint8_t)x[i] ^ 0x80u;
    } else {
        memcpy((int8_t *)a + at, x, (size_t)n);
    }
}

static inline void ec_put_fill(void *a, int a_bytes, size_t at, int v, int n) {
    int i;
    if (a_bytes == 2) {
        int16_t *d = (int16_t *)a + at;
        for (i = 0; i < n; i++) d[i] = (int16_t)v;
    } else {
        memset((uint8_t *)a + at, v & 0xff, (size_t)n);
    }
}

/* The im2col row of output pixel m into A + at (kp elements). */
static void ec_pack_a_row(const ec_conv_plan *p, const int8_t *x, int m, void *a, size_t at) {
    const ec_layout *L = &p->L;
    int oy = m / p->ow, ox = m % p->ow, ky, kx;
    int seg = p->kw * p->cin;
    int x0 = ox * p->sw - p->pl;
    for (ky = 0; ky < p->kh; ky++, at += seg) {
        int iy = oy * p->sh - p->pt + ky * p->dh;
        if (iy < 0 || iy >= p->h) {
            ec_put_fill(a, L->a_bytes, at, p->pad_a, seg);
            continue;
        }
        const int8_t *row = x + (size_t)iy * p->w * p->cin;
        if (p->dw == 1) { /* one contiguous run of in-image taps */
            int lo = x0 < 0 ? -x0 : 0;
            int hi = p->w - x0 < p->kw ? p->w - x0 : p->kw;
            if (hi < lo) hi = lo;
            if (lo > p->kw) lo = hi = p->kw;
            ec_put_fill(a, L->a_bytes, at, p->pad_a, lo * p->cin);
            ec_put_x(a, L->a_bytes, L->u8, at + (size_t)lo * p->cin,
                     row + (size_t)(x0 + lo) * p->cin, (hi - lo) * p->cin);
            ec_put_fill(a, L->a_bytes, at + (size_t)hi * p->cin, p->pad_a, (p->kw - hi) * p->cin);
        } else {
            for (kx = 0; kx < p->kw; kx++) {
                int ix = x0 + kx * p->dw;
                if (ix < 0 || ix >= p->w)
                    ec_put_fill(a, L->a_bytes, at + (size_t)kx * p->cin, p->pad_a, p->cin);
                else
                    ec_put_x(a, L->a_bytes, L->u8, at + (size_t)kx * p->cin,
                             row + (size_t)ix * p->cin, p->cin);
            }
        }
    }
    ec_put_fill(a, L->a_bytes, at, 0, p->kp - p->k); /* K tail: zero weights there */
}

/* ---------------------------------------------------------------- requantization */

/* Scalar, any policy: tile row (n accumulators) + bias' -> int8. */
static inline void ec_requant_row_scalar(const ec_requant *rq, int c0, const int32_t *acc,
                                         int8_t *out, int n) {
    int j;
    for (j = 0; j < n; j++) {
        int c = c0 + j;
        int32_t v = (int32_t)((uint32_t)acc[j] + (uint32_t)rq->bias[c]);
        out[j] = ec_requantize(v, rq->policy, rq->m0[c], rq->shift[c], rq->real_scale[c],
                               rq->out_off, rq->act_min, rq->act_max);
    }
}

/* ---------------------------------------------------------------- portable C path */

/* Micro-kernels: tile[r][c] (row stride EC_MAX_NR) = sum over the nseg runs s and the segp
 * elements j of a run of A[rows[r] + s * seg_stride][j] * B; B is the panel, contiguous. */
typedef void (*ec_kern_fn)(const uint8_t *const *rows, int nseg, int segp, ptrdiff_t seg_stride,
                           const void *b, int32_t *tile);

/* S8X4, MR 4 x NR 16, portable C. */
static void ec_kern_generic(const uint8_t *const *rows, int nseg, int segp, ptrdiff_t ss,
                            const void *bv, int32_t *tile) {
    const int8_t *b = (const int8_t *)bv;
    int32_t acc[4][16];
    int r, c, g, j, s;
    memset(acc, 0, sizeof(acc));
    for (s = 0; s < nseg; s++) {
        for (g = 0; g < segp / 4; g++, b += 64) {
            for (r = 0; r < 4; r++) {
                const int8_t *ar = (const int8_t *)(rows[r] + s * ss) + 4 * g;
                for (c = 0; c < 16; c++) {
                    int32_t t = 0;
                    for (j = 0; j < 4; j++) t += (int32_t)ar[j] * b[c * 4 + j];
                    acc[r][c] += t;
                }
            }
        }
    }
    for (r = 0; r < 4; r++)
        for (c = 0; c < 16; c++) tile[r * EC_MAX_NR + c] = acc[r][c];
}

/* int8 x (n) . int8 w row (n), plain int32 sum. */
static inline int32_t ec_dot_generic(const int8_t *x, const int8_t *w, int n) {
    int32_t s = 0;
    int i;
    for (i = 0; i < n; i++) s += (int32_t)x[i] * w[i];
    return s;
}

#if defined(EC_X86)
#include "gemm_x86.h"
#endif
#if defined(EC_ARM64)
#include "gemm_neon.h"
#endif

static ec_kern_fn ec_kernel_for(const ec_conv_plan *p) {
    switch (p->isa) {
#if defined(EC_X86)
    case EC_ISA_AVX2: return ec_kern_avx2;
    case EC_ISA_AVX512VNNI:
        return p->L.nr == 8 ? ec_kern_vnni8 : p->L.nr == 16 ? ec_kern_vnni16 : ec_kern_vnni;
#endif
#if defined(EC_ARM64)
    case EC_ISA_NEON: return ec_kern_neon;
    case EC_ISA_NEON_SDOT: return ec_kern_sdot;
#endif
    default: return ec_kern_generic;
    }
}

/* A tile (nrows rows) -> int8 with the fastest requantizer of the path for the double
 * policy, the scalar one otherwise. */
static inline void ec_requant_tile(int isa, const ec_requant *rq, int c0, const int32_t *tile,
                                   int nrows, int8_t *out, size_t out_stride, int n) {
    int r;
#if defined(EC_X86)
    if (rq->policy == EC_ROUND_DOUBLE &&
        (isa == EC_ISA_AVX512VNNI || isa == EC_ISA_AVX512AMX)) {
        ec_requant_tile_double_avx512(rq, c0, tile, nrows, out, out_stride, n);
        return;
    }
    if (rq->policy == EC_ROUND_DOUBLE && isa == EC_ISA_AVX2) {
        ec_requant_tile_double_avx2(rq, c0, tile, nrows, out, out_stride, n);
        return;
    }
#endif
#if defined(EC_ARM64)
    if (rq->policy == EC_ROUND_DOUBLE && (isa == EC_ISA_NEON || isa == EC_ISA_NEON_SDOT)) {
        ec_requant_tile_double_neon(rq, c0, tile, nrows, out, out_stride, n);
        return;
    }
#endif
    for (r = 0; r < nrows; r++)
        ec_requant_row_scalar(rq, c0, tile + r * EC_MAX_NR, out + r * out_stride, n);
}

/* ---------------------------------------------------------------- conv driver */

/* The padded input in the path's A type (direct mode), once per call. */
static void ec_pad_input(const ec_conv_plan *p, const int8_t *x) {
    const ec_layout *L = &p->L;
    size_t row = (size_t)p->wp * p->cin;
    int py;
    for (py = 0; py < p->hp; py++) {
        int iy = py - p->pt;
        size_t at = (size_t)py * row;
        if (iy < 0 || iy >= p->h) {
            ec_put_fill(p->padded, L->a_bytes, at, p->pad_a, (int)row);
            continue;
        }
        int lo = p->pl < p->wp ? p->pl : p->wp;            /* left border columns */
        int hi = p->pl + p->w < p->wp ? p->pl + p->w : p->wp; /* end of image columns */
        ec_put_fill(p->padded, L->a_bytes, at, p->pad_a, lo * p->cin);
        if (hi > lo)
            ec_put_x(p->padded, L->a_bytes, L->u8, at + (size_t)lo * p->cin,
                     x + ((size_t)iy * p->w + (lo - p->pl)) * p->cin, (hi - lo) * p->cin);
        else
            hi = lo;
        ec_put_fill(p->padded, L->a_bytes, at + (size_t)hi * p->cin, p->pad_a,
                    (p->wp - hi) * p->cin);
    }
}

static void ec_conv_mblock(const ec_conv_plan *p, ec_kern_fn kern, const int8_t *x,
                           int8_t *out, int mb, void *a) {
    const ec_layout *L = &p->L;
    int32_t tile[EC_MAX_MR * EC_MAX_NR];
    const uint8_t *rows[EC_MAX_MR];
    ptrdiff_t ss = 0;
    int m_total = p->oh * p->ow, r, pn;
    int m0 = mb * L->mr;
    int nrows = m_total - m0 < L->mr ? m_total - m0 : L->mr;
    size_t panel_bytes = (size_t)L->nr * p->kp * L->a_bytes;
    int oy = m0 / p->ow, ox = m0 % p->ow;
    for (r = 0; r < L->mr; r++) { /* rows past the end repeat the last pixel, never stored */
        int m = m0 + (r < nrows ? r : nrows - 1);
        if (p->direct) {
            rows[r] = (const uint8_t *)p->padded +
                      ((size_t)oy * p->sh * p->wp + (size_t)ox * p->sw) * p->cin * L->a_bytes;
            if (r + 1 < nrows && ++ox == p->ow) {
                ox = 0;
                oy++;
            }
        } else {
            ec_pack_a_row(p, x, m, a, (size_t)r * p->kp);
            rows[r] = (const uint8_t *)a + (size_t)r * p->kp * L->a_bytes;
        }
    }
    if (p->direct) ss = (ptrdiff_t)p->dh * p->wp * p->cin * L->a_bytes;
    for (pn = 0; pn < p->npanels; pn++) {
        int c0 = pn * L->nr;
        int n = p->cout - c0 < L->nr ? p->cout - c0 : L->nr;
        kern(rows, p->nseg, p->segp, ss, (const uint8_t *)p->b + panel_bytes * pn, tile);
        ec_requant_tile(p->isa, &p->rq, c0, tile, nrows, out + (size_t)m0 * p->cout + c0,
                        (size_t)p->cout, n);
    }
}

typedef struct {
    const ec_conv_plan *p;
    ec_kern_fn kern;
    const int8_t *x;
    int8_t *out;
    int nmb, per_chunk;
} ec_conv_job;

static void ec_conv_chunk(void *ctx, int index, int slot) {
    const ec_conv_job *j = (const ec_conv_job *)ctx;
    const ec_conv_plan *p = j->p;
    void *a = p->direct ? NULL : ec_conv_scratch_slot(p, slot);
    int mb = index * j->per_chunk, end = mb + j->per_chunk;
    if (end > j->nmb) end = j->nmb;
    for (; mb < end; mb++) ec_conv_mblock(p, j->kern, j->x, j->out, mb, a);
}

#if defined(EC_X86)
#include "gemm_amx.h"
#else /* no AMX path off x86: nothing to bind */
static size_t ec_amx_rq_bytes(const ec_conv_plan *p) { (void)p; return 0; }
static void ec_amx_bind(ec_conv_plan *p, void *mem) { (void)p; (void)mem; }
static size_t ec_amx_a_bytes(const ec_conv_plan *p) { (void)p; return 0; }
#endif

/* Blocks of MR output pixels, about 8 chunks per thread so a busy core costs little. */
static void ec_conv_run(const ec_conv_plan *p, const int8_t *x, int8_t *out, int nthreads) {
    ec_conv_job j;
    j.p = p;
    j.kern = ec_kernel_for(p);
    j.x = x;
    j.out = out;
    j.nmb = (p->oh * p->ow + p->L.mr - 1) / p->L.mr;
    if (nthreads > p->max_threads) nthreads = p->max_threads;
    if ((double)p->oh * p->ow * p->cout * p->kp < EC_SERIAL_MACS) nthreads = 1;
#if defined(EC_X86)
    if (p->isa == EC_ISA_AVX512AMX) {
        ec_conv_run_amx(p, x, out, nthreads);
        return;
    }
#endif
    if (p->direct) ec_pad_input(p, x);
    if (nthreads <= 1) {
        j.per_chunk = j.nmb;
        ec_conv_chunk(&j, 0, 0);
        return;
    }
    j.per_chunk = (j.nmb + 8 * nthreads - 1) / (8 * nthreads);
    ec_pool_run(ec_conv_chunk, &j, (j.nmb + j.per_chunk - 1) / j.per_chunk, nthreads);
}

/* nb images (H, W, Cin) one after another -> nb outputs (OH, OW, Cout): the batch entry of
 * the conv (the weights stay in cache from one image to the next). */
static void ec_conv_run_batch(const ec_conv_plan *p, const int8_t *x, int nb, int8_t *out,
                              int nthreads) {
    size_t in = (size_t)p->h * p->w * p->cin, on = (size_t)p->oh * p->ow * p->cout;
    int b;
    for (b = 0; b < nb; b++) ec_conv_run(p, x + in * b, out + on * b, nthreads);
}

#include "fc_s8.h"

#endif /* EDGECNN_GEMM_S8_H */
