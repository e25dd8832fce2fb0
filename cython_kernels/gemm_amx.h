/* edgecnn AMX-INT8 conv path (included by gemm_s8.h after gemm_x86.h): tdpbssd tiles, compiled
 * with __attribute__((target)) into the baseline build and chosen at run time (cpu_features.h:
 * CPUID, XCR0 and the Linux tile permission).
 *
 * Tiles (one configuration, loaded per thread by ldtilecfg at the start of every chunk and
 * released at its end, so an idle thread carries no tile state across context switches):
 *   tmm0..3  C: 16 rows x 16 int32 (rows = output pixels, columns = output channels),
 *            C0 = rows 0-15 x channels 0-15, C1 = rows 0-15 x 16-31, C2/C3 rows 16-31;
 *   tmm4, 5  A: 16 pixels x 64 int8 of K (A holds x as it is, int8: tdpbssd is signed x
 *            signed, so no +128 offset; the input zero point is folded into the bias);
 *   tmm6, 7  B: 16 rows of K groups x 16 channels x 4 int8 = the S8X4 panel layout
 *            [kp/4][NR][4], read with a row stride of NR * 4 bytes (tmm7 = channels 16-31).
 * tdpbssd C[m][n] += sum_{j<4} A[m][4g + j] * B[g][n][j] for the 16 groups g of a tile: each
 * product is at most 128 * 128 = 2^14 in size and the int32 lanes wrap modulo 2^32 (measured on
 * this project's AMX Xeon: 2100 x 16129 * 64 ends on the wrapped sum; the SDM's pseudo-code adds
 * without saturation), so the sum ends exactly on the reference accumulator whenever that one
 * fits int32, like every other path.
 *
 * K: the A row of an output pixel is its im2col row, gathered per block of 32 pixels from the
 * padded input (ec_pad_input, border = the zero point) into per-thread scratch, KH runs of
 * KW * Cin contiguous bytes (dilated columns: KH * KW runs of Cin), K rounded up to 64 with zero
 * weights. B is packed at bind time by ec_pack_b in panels of 32 channels (16 when Cout <= 16;
 * convs of 8 channels or fewer bind to VNNI instead: ec_conv_isa_for). Pointwise (1x1)
 * convolutions take this path as they are.
 * Measured on AlexNet (1 thread, best of 200 calls): conv2 0.15 ms (1.5 T MAC/s; VNNI 0.71 ms),
 * conv3-5 1.4-1.6 T MAC/s, against 3.3 T for tdpbssd alone: A and B tiles come from L2 (a
 * 32-pixel block of conv4 is 110 KB of A and each 32-channel panel as much of B).
 */
#ifndef EDGECNN_GEMM_AMX_H
#define EDGECNN_GEMM_AMX_H

#define EC_TGT_AMX \
    __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni")))

#define EC_AMX_MB 32 /* pixels per block: two A tiles */

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

/* n bytes src -> dst in whole 64-byte moves: up to 63 bytes past src + n are read (the padded
 * input has 64 bytes of slack) and written (into the next run, which is written after, or
 * into the K tail, which meets zero weights, or into the slot's 64 bytes of slack). */
EC_TGT_AMX static inline void ec_amx_copy(int8_t *dst, const int8_t *src, int n) {
    int i;
    for (i = 0; i < n; i += 64)
        _mm512_storeu_si512((void *)(dst + i), _mm512_loadu_si512((const void *)(src + i)));
}

/* im2col rows of pixels m0 .. m0 + nrows - 1 from the padded input into a (row stride kp). */
EC_TGT_AMX static void ec_amx_gather(const ec_conv_plan *p, int m0, int nrows, int8_t *a) {
    const int8_t *pad = (const int8_t *)p->padded;
    int oy = m0 / p->ow, ox = m0 % p->ow, r, ky, kx;
    int run = p->dw == 1 ? p->kw * p->cin : p->cin;
    for (r = 0; r < nrows; r++) {
        int8_t *dst = a + (size_t)r * p->kp;
        for (ky = 0; ky < p->kh; ky++) {
            const int8_t *src =
                pad + ((size_t)(oy * p->sh + ky * p->dh) * p->wp + (size_t)ox * p->sw) * p->cin;
            if (p->dw == 1) {
                ec_amx_copy(dst, src, run);
                dst += run;
            } else {
                for (kx = 0; kx < p->kw; kx++, dst += run)
                    ec_amx_copy(dst, src + (size_t)kx * p->dw * p->cin, run);
            }
        }
        if (++ox == p->ow) {
            ox = 0;
            oy++;
        }
    }
}

/* A tile of int32 results waiting for requantization: rows [done, nrows) of buf. */
typedef struct {
    const int32_t *buf;
    int8_t *out;
    int c0, n, nrows, done;
} ec_amx_pending;

/* Requantize up to `rows` more rows of a pending tile (all of them when rows <= 0). */
static inline void ec_amx_drain(const ec_conv_plan *p, ec_amx_pending *q, int rows) {
    int r0 = q->done, r1 = rows > 0 && q->done + rows < q->nrows ? q->done + rows : q->nrows;
    if (r1 <= r0) return;
    ec_requant_tile(p->isa, &p->rq, q->c0, q->buf + (size_t)r0 * EC_MAX_NR, r1 - r0,
                    q->out + (size_t)r0 * p->cout, (size_t)p->cout, q->n);
    q->done = r1;
}

/* C tiles = A (rows of a, stride kp) x one panel b ([kp/4][nr][4]); two_m: 32 pixels (else
 * 16), two_n: 32 channels (else 16); the C tiles go to tile (row stride EC_MAX_NR int32).
 * While the tiles multiply, the vector units requantize the previous panel's tile (q), a few
 * rows per K step, so the AMX unit does not wait for the requantization. */
EC_TGT_AMX static void ec_amx_block(const ec_conv_plan *p, const int8_t *a, const int8_t *b,
                                    int two_m, int two_n, int32_t *tile, ec_amx_pending *q) {
    const size_t bstride = (size_t)p->L.nr * 4;
    const int kp = p->kp, steps = kp / 64;
    const int per_step = (q->nrows - q->done + steps - 1) / steps;
    int k;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (k = 0; k < kp; k += 64) {
        const int8_t *bk = b + (size_t)(k / 4) * bstride;
        _tile_loadd(4, a + k, kp);
        _tile_loadd(6, bk, bstride);
        _tile_dpbssd(0, 4, 6);
        if (two_n) {
            _tile_loadd(7, bk + 64, bstride);
            _tile_dpbssd(1, 4, 7);
        }
        if (two_m) {
            _tile_loadd(5, a + (size_t)16 * kp + k, kp);
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

/* Blocks [index * per_chunk, ...) of 32 pixels: gather, then every panel; each panel's tile
 * is requantized during the next panel's multiplies (two tile buffers in turn). */
EC_TGT_AMX static void ec_conv_chunk_amx(void *ctx, int index, int slot) {
    const ec_conv_job *j = (const ec_conv_job *)ctx;
    const ec_conv_plan *p = j->p;
    int8_t *a = ec_conv_scratch_slot(p, slot);
    int32_t tiles[2][EC_MAX_MR * EC_MAX_NR] __attribute__((aligned(64)));
    ec_amx_pending q = {tiles[0], j->out, 0, 0, 0, 0};
    int m_total = p->oh * p->ow, nr = p->L.nr, flip = 0;
    size_t panel_bytes = (size_t)nr * p->kp;
    int mb = index * j->per_chunk, end = mb + j->per_chunk, pn;
    if (end > j->nmb) end = j->nmb;
    ec_amx_load_config();
    for (; mb < end; mb++) {
        int m0 = mb * EC_AMX_MB;
        int nrows = m_total - m0 < EC_AMX_MB ? m_total - m0 : EC_AMX_MB;
        ec_amx_gather(p, m0, nrows, a); /* rows past nrows: stale, computed, never stored */
        for (pn = 0; pn < p->npanels; pn++, flip ^= 1) {
            int c0 = pn * nr;
            int n = p->cout - c0 < nr ? p->cout - c0 : nr;
            ec_amx_block(p, a, (const int8_t *)p->b + panel_bytes * pn, nrows > 16, n > 16,
                         tiles[flip], &q);
            q.buf = tiles[flip];
            q.out = j->out + (size_t)m0 * p->cout + c0;
            q.c0 = c0;
            q.n = n;
            q.nrows = nrows;
            q.done = 0;
        }
    }
    ec_amx_drain(p, &q, 0);
    _tile_release();
}

#endif /* EDGECNN_GEMM_AMX_H */
