/* edgecnn packed int8 fully connected at batch 1 (included by gemm_s8.h): out[o] =
 * requant(bias'[o] + sum_n x[n] * w[o, n]), w the model's own (O, N) row-major int8 array,
 * never copied: each weight byte is read once per call, rows in order, so the layer streams
 * its weights at the machine's read bandwidth (it does 1 multiply-add per byte: memory bound
 * on every path). The input is converted once per call into the path's form: x ^ 0x80 = x + 128
 * as uint8 for VNNI (and AMX, which runs the VNNI stream here), int8 otherwise; the input zero
 * point is folded into the bias: bias' = bias - zpA * sum_n w[o, n], zpA = zp (+ 128 on VNNI).
 * int32 sums wrap like the conv's (exact whenever the reference accumulator fits int32).
 * Threads take chunks of 64 consecutive rows: each reads one contiguous stretch of weights.
 */
#ifndef EDGECNN_FC_S8_H
#define EDGECNN_FC_S8_H

typedef struct {
    int isa;
    int n, o;
    const int8_t *w;       /* (o, n) row-major, the model's own array */
    ec_requant rq;         /* per output (per-tensor parameters broadcast at bind) */
    void *xs;              /* the input in the path's form (n + 64 elements) */
} ec_fc_plan;

/* Whether a dense plan of this path runs the VNNI stream (AMX does at batch 1: one tile row
 * of 16 would only add tile loads to a layer bound by memory). */
static int ec_fc_vnni(int isa) { return isa == EC_ISA_AVX512VNNI || isa == EC_ISA_AVX512AMX; }

static int ec_fc_pad_a(int isa, int zp) { return ec_fc_vnni(isa) ? zp + 128 : zp; }

/* Raw sums (no bias) of rows [r0, r1) into sums[0 .. r1 - r0). */
static void ec_fc_sums(const ec_fc_plan *p, int r0, int r1, int32_t *sums) {
    int32_t acc[4];
    int r;
#if defined(EC_X86)
    if (ec_fc_vnni(p->isa)) {
        ec_fc_rows_vnni((const uint8_t *)p->xs, p->w + (size_t)r0 * p->n, p->n, r1 - r0, sums);
        return;
    }
#endif
    for (r = r0; r < r1; r += 4) {
        int cnt = r1 - r < 4 ? r1 - r : 4, j;
        const int8_t *w = p->w + (size_t)r * p->n;
        switch (p->isa) {
#if defined(EC_X86)
        case EC_ISA_AVX2: ec_fc4_avx2((const int8_t *)p->xs, w, p->n, cnt, acc); break;
#endif
#if defined(EC_ARM64)
        case EC_ISA_NEON: ec_fc4_neon((const int8_t *)p->xs, w, p->n, cnt, acc); break;
        case EC_ISA_NEON_SDOT: ec_fc4_sdot((const int8_t *)p->xs, w, p->n, cnt, acc); break;
#endif
        default:
            for (j = 0; j < cnt; j++)
                acc[j] = ec_dot_generic((const int8_t *)p->xs, w + (size_t)j * p->n, p->n);
        }
        for (j = 0; j < cnt; j++) sums[r - r0 + j] = acc[j];
    }
}

static void ec_fc_rows(const ec_fc_plan *p, int r0, int r1, int8_t *out) {
    int32_t buf[64];
    for (; r0 < r1; r0 += 64) { /* 64 rows of sums, then one requantization pass */
        int r_end = r1 - r0 < 64 ? r1 : r0 + 64;
        ec_fc_sums(p, r0, r_end, buf);
#if defined(EC_X86)
        if (ec_fc_vnni(p->isa) && p->rq.policy == EC_ROUND_F64) {
            int j;
            int32_t biased[64];
            for (j = 0; j < r_end - r0; j++)
                biased[j] = (int32_t)((uint32_t)buf[j] + (uint32_t)p->rq.bias[r0 + j]);
            ec_requant_f64_avx512(&p->rq, r0, biased, out + r0, r_end - r0);
            continue;
        }
#endif
        ec_requant_row_scalar(&p->rq, r0, buf, out + r0, r_end - r0);
    }
}

typedef struct {
    const ec_fc_plan *p;
    int8_t *out;
    int rows_per_chunk;
} ec_fc_job;

static void ec_fc_chunk(void *ctx, int index, int slot) {
    const ec_fc_job *j = (const ec_fc_job *)ctx;
    int lo = index * j->rows_per_chunk, hi = lo + j->rows_per_chunk;
    (void)slot;
    ec_fc_rows(j->p, lo, hi < j->p->o ? hi : j->p->o, j->out);
}

/* Rows in chunks of 64, spread over the threads. */
static void ec_fc_run(const ec_fc_plan *p, const int8_t *x, int8_t *out, int nthreads) {
    ec_fc_job j;
    int i;
    if (ec_fc_vnni(p->isa)) {
        uint8_t *d = (uint8_t *)p->xs;
        for (i = 0; i < p->n; i++) d[i] = (uint8_t)x[i] ^ 0x80u;
    } else {
        memcpy(p->xs, x, (size_t)p->n);
    }
    j.p = p;
    j.out = out;
    if (nthreads <= 1 || p->o <= 64 || (double)p->o * p->n < EC_SERIAL_MACS) {
        ec_fc_rows(p, 0, p->o, out);
        return;
    }
    j.rows_per_chunk = 64;
    ec_pool_run(ec_fc_chunk, &j, (p->o + 63) / 64, nthreads);
}

/* ---------------------------------------------------------------- batches (throughput)
 * nb images at once: X (nb, n) -> out (nb, o), each weight byte read once per pass of up to
 * EC_FC_PASS images instead of once per image. The VNNI and AMX paths share the batch-1
 * plan (bias' folded for x ^ 0x80): VNNI dots one weight row with 8 images at a time; AMX
 * computes C^T = W X^T with tdpbsud (A = 16 rows of W read in place, signed; B = X^T packed per
 * pass as [n/4][nb][4] uint8 x ^ 0x80), 32 rows a block, the K tail (n % 64) and the row tail
 * (o % 32) on VNNI. Other paths run the batch-1 kernel image by image. */
#define EC_FC_PASS 16

/* Scratch of a batch of nb images: a pass's converted inputs, then (AMX) its X^T. */
static size_t ec_fc_batch_scratch_bytes(int n, int nb) {
    size_t pass = (size_t)(nb < EC_FC_PASS ? nb : EC_FC_PASS);
    return pass * ((size_t)n + 64) + (size_t)(n / 64 * 64) * pass + 64;
}

typedef struct {
    const ec_fc_plan *p;
    const uint8_t *xu;   /* nb rows of n + 64 bytes, the path's input form */
    const uint8_t *xt;   /* AMX: X^T of this pass */
    int nb;              /* images in this pass */
    int8_t *out;         /* image b's outputs at out + b * o */
} ec_fc_batch_job;

#if defined(EC_X86)
/* Sums over k in [k0, n) of rows [0, cnt) of w with 8 images (rows of xu, stride xs; rows past
 * the batch repeat image 0 and are not stored): acc[r * 8 + b]. */
EC_TGT_VNNI static void ec_fc_rows_vnni8(const uint8_t *const *x, const int8_t *w, int n, int k0,
                                         int cnt, int32_t *acc) {
    int r, b, i;
    __mmask64 tail = (n - k0) % 64 ? ((__mmask64)1 << ((n - k0) % 64)) - 1 : 0;
    int body = k0 + (n - k0) / 64 * 64;
    for (r = 0; r < cnt; r++, w += n) {
        __m512i s[8];
        for (b = 0; b < 8; b++) s[b] = _mm512_setzero_si512();
        for (i = k0; i < body; i += 64) {
            __m512i wv = _mm512_loadu_si512((const void *)(w + i));
#pragma GCC unroll 8
            for (b = 0; b < 8; b++)
                s[b] = _mm512_dpbusd_epi32(s[b], _mm512_loadu_si512((const void *)(x[b] + i)), wv);
        }
        if (tail) {
            __m512i wv = _mm512_maskz_loadu_epi8(tail, w + i);
#pragma GCC unroll 8
            for (b = 0; b < 8; b++)
                s[b] = _mm512_dpbusd_epi32(s[b], _mm512_maskz_loadu_epi8(tail, x[b] + i), wv);
        }
        for (b = 0; b < 8; b++) acc[r * 8 + b] = _mm512_reduce_add_epi32(s[b]);
    }
}

/* Tiles for C^T: C0, C1 = 16 rows x nb int32; A 4, 5 = 16 rows x 64 bytes; B 6 = 16 x nb*4. */
EC_TGT_AMX static void ec_fc_amx_config(int nb) {
    ec_amx_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    cfg.rows[0] = cfg.rows[1] = cfg.rows[4] = cfg.rows[5] = cfg.rows[6] = 16;
    cfg.colsb[0] = cfg.colsb[1] = cfg.colsb[6] = (uint16_t)(nb * 4);
    cfg.colsb[4] = cfg.colsb[5] = 64;
    ec_amx_ldtilecfg(&cfg);
}

/* Rows [r0, r0 + 32) over k in [0, n64): sums c[r * EC_FC_PASS + b]. */
EC_TGT_AMX static void ec_fc_amx_rows32(const int8_t *w, int n, int n64, const uint8_t *xt,
                                        int nb, int32_t *c) {
    int k;
    _tile_zero(0);
    _tile_zero(1);
    for (k = 0; k < n64; k += 64) {
        _tile_loadd(6, xt + (size_t)k * nb, nb * 4); /* 16 groups of 4 k, every image */
        _tile_loadd(4, w + k, n);
        _tile_loadd(5, w + (size_t)16 * n + k, n);
        _tile_dpbsud(0, 4, 6);
        _tile_dpbsud(1, 5, 6);
    }
    _tile_stored(0, c, EC_FC_PASS * 4);
    _tile_stored(1, c + 16 * EC_FC_PASS, EC_FC_PASS * 4);
}
#endif

/* Sums of rows [r0, r1) (at most 64) for the pass's images: sums[(r - r0) * EC_FC_PASS + b]. */
static void ec_fc_batch_sums(const ec_fc_batch_job *j, int r0, int r1, int32_t *sums) {
    const ec_fc_plan *p = j->p;
    size_t xs = (size_t)p->n + 64;
    int r = r0, b, g;
#if defined(EC_X86)
    const uint8_t *x8[8];
    int32_t acc[32 * 8];
    int n64 = p->n / 64 * 64;
    if (p->isa == EC_ISA_AVX512AMX) { /* 32-row blocks on tiles, K tail on VNNI */
        for (; r + 32 <= r1; r += 32) {
            ec_fc_amx_rows32(p->w + (size_t)r * p->n, p->n, n64, j->xt, j->nb,
                             sums + (r - r0) * EC_FC_PASS);
            if (n64 == p->n) continue;
            for (g = 0; g < j->nb; g += 8) {
                for (b = 0; b < 8; b++) x8[b] = j->xu + xs * (size_t)(g + b < j->nb ? g + b : 0);
                ec_fc_rows_vnni8(x8, p->w + (size_t)r * p->n, p->n, n64, 32, acc);
                for (b = 0; b < 8 && g + b < j->nb; b++) {
                    int q;
                    for (q = 0; q < 32; q++)
                        sums[(r - r0 + q) * EC_FC_PASS + g + b] =
                            (int32_t)((uint32_t)sums[(r - r0 + q) * EC_FC_PASS + g + b] +
                                      (uint32_t)acc[q * 8 + b]);
                }
            }
        }
    }
    if (ec_fc_vnni(p->isa)) { /* VNNI rows (AMX: the row tail), 8 images a pass */
        for (; r < r1; r += 32) {
            int cnt = r1 - r < 32 ? r1 - r : 32, q;
            for (g = 0; g < j->nb; g += 8) {
                for (b = 0; b < 8; b++) x8[b] = j->xu + xs * (size_t)(g + b < j->nb ? g + b : 0);
                ec_fc_rows_vnni8(x8, p->w + (size_t)r * p->n, p->n, 0, cnt, acc);
                for (q = 0; q < cnt; q++)
                    for (b = 0; b < 8 && g + b < j->nb; b++)
                        sums[(r - r0 + q) * EC_FC_PASS + g + b] = acc[q * 8 + b];
            }
        }
        return;
    }
#endif
    { /* other paths: the batch-1 sums, image by image */
        ec_fc_plan one = *p;
        int32_t col[64];
        for (b = 0; b < j->nb; b++) {
            one.xs = (void *)(j->xu + xs * (size_t)b);
            ec_fc_sums(&one, r0, r1, col);
            for (g = 0; g < r1 - r0; g++) sums[g * EC_FC_PASS + b] = col[g];
        }
    }
}

static void ec_fc_batch_chunk(void *ctx, int index, int slot) {
    const ec_fc_batch_job *j = (const ec_fc_batch_job *)ctx;
    const ec_fc_plan *p = j->p;
    int32_t sums[64 * EC_FC_PASS], col[64];
    int r0 = index * 64, r1 = r0 + 64 < p->o ? r0 + 64 : p->o, b, r;
    (void)slot;
#if defined(EC_X86)
    if (p->isa == EC_ISA_AVX512AMX) ec_fc_amx_config(j->nb);
#endif
    ec_fc_batch_sums(j, r0, r1, sums);
#if defined(EC_X86)
    if (p->isa == EC_ISA_AVX512AMX) ec_amx_release();
#endif
    for (b = 0; b < j->nb; b++) {
        int8_t *out = j->out + (size_t)b * p->o;
        for (r = 0; r < r1 - r0; r++) col[r] = sums[r * EC_FC_PASS + b];
#if defined(EC_X86)
        if (ec_fc_vnni(p->isa) && p->rq.policy == EC_ROUND_F64) {
            for (r = 0; r < r1 - r0; r++)
                col[r] = (int32_t)((uint32_t)col[r] + (uint32_t)p->rq.bias[r0 + r]);
            ec_requant_f64_avx512(&p->rq, r0, col, out + r0, r1 - r0);
            continue;
        }
#endif
        ec_requant_row_scalar(&p->rq, r0, col, out + r0, r1 - r0);
    }
}

/* nb images of n int8 (row-major) -> nb rows of o int8; scratch of
 * ec_fc_batch_scratch_bytes(n, nb) bytes. */
static void ec_fc_run_batch(const ec_fc_plan *p, const int8_t *x, int nb, int8_t *out,
                            void *scratch, int nthreads) {
    ec_fc_batch_job j;
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    size_t xs = (size_t)p->n + 64;
    int b0, b, i, n64 = p->n / 64 * 64;
    j.p = p;
    for (b0 = 0; b0 < nb; b0 += EC_FC_PASS) {
        int cnt = nb - b0 < EC_FC_PASS ? nb - b0 : EC_FC_PASS;
        uint8_t *xu = base, *xt = base + (size_t)cnt * xs;
        for (b = 0; b < cnt; b++) {
            const int8_t *src = x + (size_t)(b0 + b) * p->n;
            uint8_t *d = xu + xs * (size_t)b;
            if (ec_fc_vnni(p->isa))
                for (i = 0; i < p->n; i++) d[i] = (uint8_t)src[i] ^ 0x80u;
            else
                memcpy(d, src, (size_t)p->n);
        }
        if (p->isa == EC_ISA_AVX512AMX) /* X^T: [k/4][b][4] */
            for (i = 0; i < n64; i += 4)
                for (b = 0; b < cnt; b++) memcpy(xt + ((size_t)i * cnt + 4 * b), xu + xs * b + i, 4);
        j.xu = xu;
        j.xt = xt;
        j.nb = cnt;
        j.out = out + (size_t)b0 * p->o;
        if (nthreads <= 1 || p->o <= 64)
            for (i = 0; i < (p->o + 63) / 64; i++) ec_fc_batch_chunk(&j, i, 0);
        else
            ec_pool_run(ec_fc_batch_chunk, &j, (p->o + 63) / 64, nthreads);
    }
}

#endif /* EDGECNN_FC_S8_H */
