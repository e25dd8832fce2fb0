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

#endif /* EDGECNN_FC_S8_H */
