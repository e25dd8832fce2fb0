/* edgecnn AMX-INT8 conv path (included by gemm_s8.h after gemm_x86.h): tdpbssd tiles, compiled
 * with __attribute__((target)) into the baseline build and chosen at run time (cpu_features.h:
 * CPUID, XCR0 and the Linux tile permission).
 *
 * Tiles (one configuration, loaded per thread by ldtilecfg at the start of every chunk and
 * released at its end, so an idle thread carries no tile state across context switches):
 *   tmm0..3  C: 16 rows x 16 int32 (rows = output pixels, columns = panel columns),
 *            C0 = rows 0-15 x columns 0-15, C1 = rows 0-15 x 16-31, C2/C3 rows 16-31;
 *            loaded with the panel's folded bias' (a tile load of row stride 0) instead of
 *            zeroed, so the sums end on acc + bias' and the requantization adds nothing;
 *   tmm4, 5  A: 16 pixels x 64 int8 of K (A holds x as it is, int8: tdpbssd is signed x
 *            signed, so no +128 offset; the input zero point is folded into the bias);
 *   tmm6, 7  B: 16 rows of K groups x 16 columns x 4 int8 = the S8X4 panel layout
 *            [kp/4][NR][4], read with a row stride of NR * 4 bytes (tmm7 = columns 16-31).
 * tdpbssd C[m][n] += sum_{j<4} A[m][4g + j] * B[g][n][j] for the 16 groups g of a tile: each
 * product is at most 128 * 128 = 2^14 in size and the int32 lanes wrap modulo 2^32 (measured on
 * this project's AMX Xeon: 2100 x 16129 * 64 ends on the wrapped sum; the SDM's pseudo-code adds
 * without saturation), so the sum ends exactly on the reference accumulator whenever that one
 * fits int32, like every other path.
 *
 * A: pointwise convs (1x1, stride 1, no padding; plan.amx_direct) load A tiles straight from
 * the input, row stride Cin: a 64-byte K step of pixel m reads past its Cin channels into the
 * next pixel, and those bytes meet zero weights (K is padded to 64 with zeros). The last block,
 * whose reads would pass the end of the input, is copied into scratch first. Other convs
 * gather the im2col row of each pixel from the input into scratch (KH runs of KW * Cin bytes,
 * or KH * KW runs of Cin with dilated columns; out-of-image taps are the input zero point,
 * whose products the folded bias cancels), never reading past a run.
 * Order: blocks of 32 pixels, outer, each against every panel of 32 channels (the panel from
 * L2, the A block from L1), threads taking blocks, unless the weights outgrow an L2
 * (ec_amx_shared): then the layer's whole A is gathered once into plan.amx_a, and panels go
 * outer, each streamed from memory once (ResNet's 7x7x512 layers: 2.4 MB of weights, 49
 * pixels); with 2+ threads the panels are split between the threads in pairs, each streaming
 * only its own.
 * Requantization (gemm_amx_rq.h) runs on the vector units while the next tile multiplies.
 */
#ifndef EDGECNN_GEMM_AMX_H
#define EDGECNN_GEMM_AMX_H

#define EC_TGT_AMX \
    __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni")))

#define EC_AMX_MB 32                    /* pixels per block: two A tiles */
#define EC_AMX_BLOCK_BYTES(p) ((size_t)EC_AMX_MB * (p)->kp + 64) /* a block's A and slack */
#define EC_AMX_SHARED_A_MAX (1 << 20)   /* bytes: a layer's A gathered at once at most */
#define EC_AMX_BIG_B (2 << 20)          /* bytes of packed weights (an L2 here): panels outer from here */

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} ec_amx_cfg;

/* ldtilecfg through asm with the whole struct as a memory operand: gcc 12 drops stores to a
 * local configuration that only _tile_loadconfig reads (seen as a #GP on garbage columns). */
EC_TGT_AMX static inline void ec_amx_ldtilecfg(const ec_amx_cfg *cfg) {
    __asm__ __volatile__("ldtilecfg %0" : : "m"(*cfg));
}

/* The configuration above: 8 tiles of 16 rows x 64 bytes. */
EC_TGT_AMX static void ec_amx_load_config(void) {
    ec_amx_cfg cfg;
    int t;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    ec_amx_ldtilecfg(&cfg);
}

/* Back to the init state: an idle thread then carries no tile data across context switches. */
EC_TGT_AMX static void ec_amx_release(void) { _tile_release(); }

#include "gemm_amx_rq.h"

/* ---------------------------------------------------------------- A rows */

/* n bytes src -> dst in whole 64-byte moves: up to 63 bytes past dst + n are written too (into
 * the next run, written after it, or the K tail, which meets zero weights, or the next row,
 * written after it, or the 64 bytes of slack after a buffer); reads stop at src_end (a masked
 * last move there). */
EC_TGT_AMX static inline void ec_amx_copy(int8_t *dst, const int8_t *src, int n,
                                          const int8_t *src_end) {
    int i;
    for (i = 0; i < n; i += 64) {
        __m512i v;
        if (src + i + 64 <= src_end) /* else fewer than 64 bytes are left: n - i < 64 */
            v = _mm512_loadu_si512((const void *)(src + i));
        else
            v = _mm512_maskz_loadu_epi8(((__mmask64)1 << (n - i)) - 1, src + i);
        _mm512_storeu_si512((void *)(dst + i), v);
    }
}

EC_TGT_AMX static inline void ec_amx_fill(int8_t *dst, __m512i v, int n) {
    int i;
    for (i = 0; i < n; i += 64) _mm512_storeu_si512((void *)(dst + i), v);
}

/* The im2col row of an output pixel at the image's edge (or near the end of x). */
EC_TGT_AMX static void ec_amx_gather_edge(const ec_conv_plan *p, const int8_t *x, int oy, int ox,
                                          int8_t *dst) {
    const __m512i zp = _mm512_set1_epi8((char)p->pad_a);
    const int cin = p->cin, run = p->kw * cin;
    const int8_t *x_end = x + (size_t)p->h * p->w * cin;
    const int iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
    int ky, kx;
    for (ky = 0; ky < p->kh; ky++, dst += run) {
        int iy = iy0 + ky * p->dh;
        const int8_t *row = x + (size_t)(iy < 0 ? 0 : iy) * p->w * cin;
        if (iy < 0 || iy >= p->h) {
            ec_amx_fill(dst, zp, run);
        } else if (p->dw == 1) { /* taps [lo, hi) in the image: one contiguous run */
            int lo = ix0 < 0 ? -ix0 : 0, hi = p->w - ix0 < p->kw ? p->w - ix0 : p->kw;
            if (hi <= lo) {
                ec_amx_fill(dst, zp, run);
                continue;
            }
            if (lo) ec_amx_fill(dst, zp, lo * cin);
            ec_amx_copy(dst + lo * cin, row + (size_t)(ix0 + lo) * cin, (hi - lo) * cin,
                        x_end);
            if (hi < p->kw) ec_amx_fill(dst + hi * cin, zp, (p->kw - hi) * cin);
        } else {
            for (kx = 0; kx < p->kw; kx++) {
                int ix = ix0 + kx * p->dw;
                if (ix < 0 || ix >= p->w)
                    ec_amx_fill(dst + kx * cin, zp, cin);
                else
                    ec_amx_copy(dst + kx * cin, row + (size_t)ix * cin, cin, x_end);
            }
        }
    }
}

/* im2col rows of pixels m0 .. m0 + nrows - 1 from the input x into a (row stride kp); the K
 * tail of each row holds whatever the moves left there (zero weights). Writes reach up to 63
 * bytes past the last row: every block buffer has that much slack (EC_AMX_BLOCK_BYTES). */
EC_TGT_AMX static void ec_amx_gather(const ec_conv_plan *p, const int8_t *x, int m0, int nrows,
                                     int8_t *a) {
    const int cin = p->cin, run = p->kw * cin;
    const int8_t *x_end = x + (size_t)p->h * p->w * cin;
    int oy = m0 / p->ow, ox = m0 % p->ow, r, ky;
    if (p->amx_direct) { /* pixel rows, contiguous in x */
        for (r = 0; r < nrows; r++)
            ec_amx_copy(a + (size_t)r * p->kp, x + (size_t)(m0 + r) * cin, cin, x_end);
        return;
    }
    for (r = 0; r < nrows; r++) {
        int8_t *dst = a + (size_t)r * p->kp;
        int iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
        const int8_t *src = x + ((ptrdiff_t)iy0 * p->w + ix0) * cin;
        if (p->dw == 1 && iy0 >= 0 && ix0 >= 0 && ix0 + p->kw <= p->w &&
            iy0 + (p->kh - 1) * p->dh < p->h &&
            src + (size_t)(p->kh - 1) * p->dh * p->w * cin + (run + 63) / 64 * 64 <= x_end) {
            /* the whole window in the image, and no move reads past x: plain moves */
            const size_t step = (size_t)p->dh * p->w * cin;
            for (ky = 0; ky < p->kh; ky++, dst += run, src += step) {
                int i;
                for (i = 0; i < run; i += 64)
                    _mm512_storeu_si512((void *)(dst + i),
                                        _mm512_loadu_si512((const void *)(src + i)));
            }
        } else {
            ec_amx_gather_edge(p, x, oy, ox, dst);
        }
        if (++ox == p->ow) {
            ox = 0;
            oy++;
        }
    }
}

/* Whether block mb reads A in place from x (pointwise, and every byte its tiles load,
 * 32 rows of kp from pixel m0 on, lies inside x). */
static inline int ec_amx_in_place(const ec_conv_plan *p, int mb) {
    size_t m_total = (size_t)p->oh * p->ow;
    return p->amx_direct &&
           ((size_t)mb * EC_AMX_MB + EC_AMX_MB - 1) * p->cin + p->kp <= m_total * p->cin;
}

/* The first block of the layer's A in plan.amx_a: 0, or for pointwise convs the first one
 * that cannot be read in place (the last one or two). */
static int ec_amx_first_kept(const ec_conv_plan *p) {
    int nmb = (p->oh * p->ow + EC_AMX_MB - 1) / EC_AMX_MB, mb = nmb;
    if (!p->amx_direct) return 0;
    while (mb > 0 && !ec_amx_in_place(p, mb - 1)) mb--;
    return mb;
}

/* Block mb's A in the shared order: in place, or its rows in plan.amx_a; *as = row stride. */
static inline const int8_t *ec_amx_shared_a(const ec_conv_plan *p, const int8_t *x, int mb,
                                            size_t *as) {
    if (ec_amx_in_place(p, mb)) {
        *as = (size_t)p->cin;
        return x + (size_t)mb * EC_AMX_MB * p->cin;
    }
    *as = (size_t)p->kp;
    return (const int8_t *)p->amx_a + (size_t)(mb - ec_amx_first_kept(p)) * EC_AMX_BLOCK_BYTES(p);
}

/* ---------------------------------------------------------------- tiles */

/* C tiles = bias' + A (32 or 16 rows of a, row stride as) x one panel b ([kp/4][nr][4]); the
 * C tiles go to tile (row stride EC_MAX_NR int32). While the tiles multiply, the vector units
 * requantize the previous tile (q), a few rows per K step. */
EC_TGT_AMX static void ec_amx_block(const ec_conv_plan *p, const int8_t *a, size_t as,
                                    const int8_t *b, const int32_t *bias, int two_m, int two_n,
                                    int32_t *tile, ec_amx_pending *q) {
    const size_t bstride = (size_t)p->L.nr * 4;
    const int kp = p->kp, steps = kp / 64;
    const int per_step = (q->nrows - q->done + steps - 1) / steps;
    int k;
    _tile_loadd(0, bias, 0);
    if (two_n) _tile_loadd(1, bias + 16, 0);
    if (two_m) {
        _tile_loadd(2, bias, 0);
        if (two_n) _tile_loadd(3, bias + 16, 0);
    }
    for (k = 0; k < kp; k += 64) {
        const int8_t *bk = b + (size_t)(k / 4) * bstride;
        _tile_loadd(4, a + k, as);
        _tile_loadd(6, bk, bstride);
        _tile_dpbssd(0, 4, 6);
        if (two_n) {
            _tile_loadd(7, bk + 64, bstride);
            _tile_dpbssd(1, 4, 7);
        }
        if (two_m) {
            _tile_loadd(5, a + (size_t)16 * as + k, as);
            _tile_dpbssd(2, 5, 6);
            if (two_n) _tile_dpbssd(3, 5, 7);
        }
        ec_amx_drain(p, q, per_step);
    }
    ec_amx_drain(p, q, 0);
    _tile_stored(0, tile, EC_MAX_NR * 4);
    if (two_n) _tile_stored(1, tile + 16, EC_MAX_NR * 4);
    if (two_m) {
        _tile_stored(2, tile + 16 * EC_MAX_NR, EC_MAX_NR * 4);
        if (two_n) _tile_stored(3, tile + 16 * EC_MAX_NR + 16, EC_MAX_NR * 4);
    }
}

typedef struct {
    const ec_conv_plan *p;
    const int8_t *x;
    int8_t *out;
    int nmb, blocks_per_chunk, panels_per_chunk;
} ec_amx_job;

/* A per thread: its tile buffers (two in turn: one multiplies while the other requantizes). */
typedef struct {
    int32_t tiles[2][EC_MAX_MR * EC_MAX_NR] __attribute__((aligned(64)));
    ec_amx_pending q;
    int flip;
} ec_amx_ctx;

/* Block mb x panel pn: multiply into the next tile buffer, queue it for requantization. */
EC_TGT_AMX static inline void ec_amx_step(const ec_conv_plan *p, ec_amx_ctx *t, int8_t *out,
                                          const int8_t *a, size_t as, int mb, int pn) {
    const int nr = p->L.nr, m0 = mb * EC_AMX_MB, c0 = pn * nr;
    const int m_total = p->oh * p->ow;
    int nrows = m_total - m0 < EC_AMX_MB ? m_total - m0 : EC_AMX_MB;
    int32_t *buf = t->tiles[t->flip];
    ec_amx_block(p, a, as, (const int8_t *)p->b + (size_t)pn * nr * p->kp, p->arq.bias + c0,
                 nrows > 16, nr > 16, buf, &t->q);
    t->q.buf = buf;
    t->q.out = out + (size_t)m0 * p->cout + c0;
    t->q.pn = pn;
    t->q.n = p->cout - c0 < nr ? p->cout - c0 : nr;
    t->q.nrows = nrows;
    t->q.done = 0;
    t->flip ^= 1;
}

/* Blocks [index * blocks_per_chunk, ...): gather (or read in place) each, then every panel. */
EC_TGT_AMX static void ec_amx_chunk_blocks(void *ctx, int index, int slot) {
    const ec_amx_job *j = (const ec_amx_job *)ctx;
    const ec_conv_plan *p = j->p;
    int8_t *scratch = ec_conv_scratch_slot(p, slot);
    ec_amx_ctx t;
    int mb = index * j->blocks_per_chunk, end = mb + j->blocks_per_chunk, pn;
    if (end > j->nmb) end = j->nmb;
    t.q.nrows = t.q.done = 0;
    t.flip = 0;
    ec_amx_load_config();
    for (; mb < end; mb++) {
        int m0 = mb * EC_AMX_MB, m_total = p->oh * p->ow;
        const int8_t *a = scratch;
        size_t as = (size_t)p->kp;
        if (ec_amx_in_place(p, mb)) {
            a = j->x + (size_t)m0 * p->cin;
            as = (size_t)p->cin;
        } else { /* rows past the last pixel: stale, computed, never stored */
            ec_amx_gather(p, j->x, m0, m_total - m0 < EC_AMX_MB ? m_total - m0 : EC_AMX_MB,
                          scratch);
        }
        for (pn = 0; pn < p->npanels; pn++) ec_amx_step(p, &t, j->out, a, as, mb, pn);
    }
    ec_amx_drain(p, &t.q, 0);
    _tile_release();
}

/* Phase one of the shared order (convs other than pointwise): the blocks of chunk `index`
 * gathered into plan.amx_a. */
EC_TGT_AMX static void ec_amx_chunk_gather(void *ctx, int index, int slot) {
    const ec_amx_job *j = (const ec_amx_job *)ctx;
    const ec_conv_plan *p = j->p;
    int mb = index * j->blocks_per_chunk, end = mb + j->blocks_per_chunk, m_total = p->oh * p->ow;
    (void)slot;
    if (end > j->nmb) end = j->nmb;
    for (; mb < end; mb++) {
        int m0 = mb * EC_AMX_MB;
        ec_amx_gather(p, j->x, m0, m_total - m0 < EC_AMX_MB ? m_total - m0 : EC_AMX_MB,
                      (int8_t *)p->amx_a + (size_t)mb * EC_AMX_BLOCK_BYTES(p));
    }
}

/* Phase two: panels [index * panels_per_chunk, ...), each against every block of amx_a. */
EC_TGT_AMX static void ec_amx_chunk_panels(void *ctx, int index, int slot) {
    const ec_amx_job *j = (const ec_amx_job *)ctx;
    const ec_conv_plan *p = j->p;
    ec_amx_ctx t;
    int pn = index * j->panels_per_chunk, end = pn + j->panels_per_chunk, mb;
    (void)slot;
    if (end > p->npanels) end = p->npanels;
    t.q.nrows = t.q.done = 0;
    t.flip = 0;
    ec_amx_load_config();
    for (; pn < end; pn++)
        for (mb = 0; mb < j->nmb; mb++) {
            size_t as;
            const int8_t *a = ec_amx_shared_a(p, j->x, mb, &as);
            ec_amx_step(p, &t, j->out, a, as, mb, pn);
        }
    ec_amx_drain(p, &t.q, 0);
    _tile_release();
}

/* Bytes of plan.amx_a: the whole layer's A when it fits EC_AMX_SHARED_A_MAX (pointwise convs
 * keep only the blocks not read in place there), else 0 (no shared order). */
static size_t ec_amx_a_bytes(const ec_conv_plan *p) {
    size_t nmb = ((size_t)p->oh * p->ow + EC_AMX_MB - 1) / EC_AMX_MB;
    size_t n = (nmb - (size_t)ec_amx_first_kept(p)) * EC_AMX_BLOCK_BYTES(p);
    return n <= EC_AMX_SHARED_A_MAX ? n : 0;
}

/* The shared order (panels outer) when the weights would not stay in L2 across blocks. Not
 * for sharing few blocks between threads: split by panels, two threads wrote alternate
 * 32-byte halves of every output line and each read all of A, and MobileNetV2's 7x7 and
 * 14x14 layers took 1.3-3.5x as long as split by blocks (7x7x960 -> 160: 19.6 vs 5.5 us,
 * 14x14x128 -> 256 3x3: 59 vs 30 us, on 2 threads). */
static int ec_amx_shared(const ec_conv_plan *p, int nmb) {
    return p->amx_a && p->npanels >= 2 && ec_packed_b_bytes(p) >= EC_AMX_BIG_B && nmb > 1;
}

static void ec_conv_run_amx(const ec_conv_plan *p, const int8_t *x, int8_t *out, int nthreads) {
    ec_amx_job j;
    int m_total = p->oh * p->ow;
    j.p = p;
    j.x = x;
    j.out = out;
    j.nmb = (m_total + EC_AMX_MB - 1) / EC_AMX_MB;
    if (nthreads > p->max_threads) nthreads = p->max_threads;
    if ((double)m_total * p->cout * (p->kp + 256) < EC_SERIAL_MACS) nthreads = 1;
    if (ec_amx_shared(p, j.nmb)) {
        int chunks = nthreads > 1 ? 4 * nthreads : 1;
        j.blocks_per_chunk = (j.nmb + chunks - 1) / chunks;
        if (p->amx_direct) { /* only the last blocks, which cannot be read in place */
            int mb;
            for (mb = ec_amx_first_kept(p); mb < j.nmb; mb++) {
                size_t as;
                ec_amx_gather(p, x, mb * EC_AMX_MB, m_total - mb * EC_AMX_MB < EC_AMX_MB ?
                              m_total - mb * EC_AMX_MB : EC_AMX_MB,
                              (int8_t *)ec_amx_shared_a(p, x, mb, &as));
            }
        } else if (nthreads > 1 && j.nmb > 1) {
            ec_pool_run(ec_amx_chunk_gather, &j, (j.nmb + j.blocks_per_chunk - 1) /
                        j.blocks_per_chunk, nthreads);
        } else {
            j.blocks_per_chunk = j.nmb;
            ec_amx_chunk_gather(&j, 0, 0);
        }
        /* an even number of 32-column panels: a chunk writes whole 64-byte pieces of each
         * output row, so two threads write the same cache line only where rows meet */
        j.panels_per_chunk = (p->npanels + chunks - 1) / chunks;
        if (p->L.nr * j.panels_per_chunk < 64) j.panels_per_chunk = (64 + p->L.nr - 1) / p->L.nr;
        ec_pool_run(ec_amx_chunk_panels, &j, (p->npanels + j.panels_per_chunk - 1) /
                    j.panels_per_chunk, nthreads);
        return;
    }
    if (nthreads <= 1) {
        j.blocks_per_chunk = j.nmb;
        ec_amx_chunk_blocks(&j, 0, 0);
        return;
    }
    j.blocks_per_chunk = (j.nmb + 8 * nthreads - 1) / (8 * nthreads);
    ec_pool_run(ec_amx_chunk_blocks, &j, (j.nmb + j.blocks_per_chunk - 1) / j.blocks_per_chunk,
                nthreads);
}

#endif /* EDGECNN_GEMM_AMX_H */
