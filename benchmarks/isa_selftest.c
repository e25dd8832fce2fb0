/* Self-test of edgecnn's packed int8 kernels in plain C, for cross-compiled targets (the Pi
 * stage, qemu): which ISA path this CPU gets, and every supported path (AMX-INT8 tiles where
 * the CPU, the OS and Linux's tile permission allow them, else the reason why not) bit-exact
 * against a naive conv / fully connected with the same fixedpoint.h requantization.
 *
 *   cc -O2 -Icython_kernels benchmarks/isa_selftest.c -o isa_selftest -lpthread -lm
 *   aarch64-linux-gnu-gcc -O2 -Icython_kernels benchmarks/isa_selftest.c -o st -lpthread -lm
 *   qemu-aarch64-static -cpu cortex-a72 -L /usr/aarch64-linux-gnu ./st   (a76: with sdot)
 * Exit 0 when every path matches.
 */
#include <stdio.h>

#include "gemm_s8.h"

static uint32_t rng_state = 12345u;
static int rnd(int lo, int hi) { /* [lo, hi] */
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (int)((rng_state >> 8) % (uint32_t)(hi - lo + 1));
}

static int conv_case(int isa, int threads) {
    ec_conv_plan p;
    int h = rnd(1, 12), w = rnd(1, 12), cin = rnd(1, 40), cout = rnd(1, 40);
    int kh = rnd(1, 5), kw = rnd(1, 5), sh = rnd(1, 3), sw = rnd(1, 3), dh = rnd(1, 2);
    int dw = rnd(0, 3) == 0 ? 2 : 1, pt = rnd(0, 2), pl = rnd(0, 2), pb = rnd(0, 2), pr = rnd(0, 2);
    int oh = (h + pt + pb - (kh - 1) * dh - 1) / sh + 1, ow = (w + pl + pr - (kw - 1) * dw - 1) / sw + 1;
    int zp = rnd(-128, 127), i, c, bad = 0;
    if (oh < 1 || ow < 1 || h + pt + pb - (kh - 1) * dh - 1 < 0 || w + pl + pr - (kw - 1) * dw - 1 < 0)
        return 0;
    memset(&p, 0, sizeof(p));
    p.isa = ec_conv_isa_for(isa, cout);
    p.L = ec_layout_for(p.isa, cout);
    p.h = h; p.w = w; p.cin = cin; p.oh = oh; p.ow = ow; p.cout = cout;
    p.kh = kh; p.kw = kw; p.sh = sh; p.sw = sw; p.dh = dh; p.dw = dw; p.pt = pt; p.pl = pl;
    ec_conv_geometry(&p);
    int k = p.k, np = p.npanels * p.L.nr;
    int8_t *x = malloc((size_t)h * w * cin), *wt = malloc((size_t)cout * k);
    int8_t *out = malloc((size_t)oh * ow * cout), *ref = malloc((size_t)oh * ow * cout);
    int32_t *bias = calloc(np, 4), *fb = calloc(np, 4), *m0 = calloc(np, 4), *sft = calloc(np, 4);
    int32_t *left = calloc(np, 4), *right = calloc(np, 4);
    double *rs = calloc(np, 8);
    int64_t *sums = calloc(cout, 8);
    void *b = malloc(ec_packed_b_bytes(&p));
    p.max_threads = threads;
    p.padded = calloc(ec_conv_padded_bytes(&p), 1);
    p.scratch = calloc(ec_conv_scratch_bytes(&p) + 1, 1);
    for (i = 0; i < h * w * cin; i++) x[i] = (int8_t)rnd(-128, 127);
    for (i = 0; i < cout * k; i++) wt[i] = (int8_t)rnd(-127, 127);
    ec_pack_b(&p, wt, b, sums);
    p.b = b;
    p.pad_a = zp + (p.L.u8 ? 128 : 0);
    for (c = 0; c < cout; c++) {
        bias[c] = rnd(-30000, 30000);
        fb[c] = (int32_t)(uint32_t)((int64_t)bias[c] - (int64_t)p.pad_a * sums[c]);
        m0[c] = (1 << 30) + rnd(0, (1 << 30) - 1);
        sft[c] = -rnd(8, 14);
        right[c] = -sft[c];
    }
    p.rq.bias = fb; p.rq.m0 = m0; p.rq.shift = sft; p.rq.left = left; p.rq.right = right;
    p.rq.real_scale = rs; p.rq.policy = EC_ROUND_DOUBLE; p.rq.out_off = rnd(-20, 20);
    p.rq.act_min = -128; p.rq.act_max = 127;
    void *amx_rq = NULL;
    if (p.isa == EC_ISA_AVX512AMX) { /* the AMX path's own parameter order and A buffer */
        amx_rq = malloc(ec_amx_rq_bytes(&p));
        ec_amx_bind(&p, amx_rq);
        p.amx_a = ec_amx_a_bytes(&p) ? calloc(ec_amx_a_bytes(&p), 1) : NULL;
    }
    ec_conv_run(&p, x, out, threads);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (c = 0; c < cout; c++) {
                int32_t acc = bias[c];
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        int iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                        for (int ci = 0; ci < cin; ci++)
                            acc += (x[(iy * w + ix) * cin + ci] - zp) *
                                   wt[c * k + (ky * kw + kx) * cin + ci];
                    }
                ref[(oy * ow + ox) * cout + c] =
                    ec_requantize(acc, EC_ROUND_DOUBLE, m0[c], sft[c], 0.0, p.rq.out_off, -128, 127);
            }
    for (i = 0; i < oh * ow * cout; i++) bad += out[i] != ref[i];
    free(x); free(wt); free(out); free(ref); free(bias); free(fb); free(m0); free(sft);
    free(left); free(right); free(rs); free(sums); free(b); free(p.padded); free(p.scratch);
    free(amx_rq); free(p.amx_a);
    return bad;
}

static int fc_case(int isa, int threads) {
    ec_fc_plan p;
    int n = rnd(1, 700), o = rnd(1, 300), zp = rnd(-128, 127), i, j, bad = 0;
    int8_t *x = malloc(n), *w = malloc((size_t)o * n), *out = malloc(o);
    int32_t *bias = calloc(o, 4), *fb = calloc(o, 4), *m0 = calloc(o, 4), *sft = calloc(o, 4);
    int32_t *zero = calloc(o, 4);
    double *rs = calloc(o, 8);
    memset(&p, 0, sizeof(p));
    p.isa = isa; p.n = n; p.o = o; p.w = w; p.xs = malloc(n + 64);
    for (i = 0; i < n; i++) x[i] = (int8_t)rnd(-128, 127);
    for (i = 0; i < o * n; i++) w[i] = (int8_t)rnd(-127, 127);
    for (j = 0; j < o; j++) {
        int64_t s = 0;
        for (i = 0; i < n; i++) s += w[j * n + i];
        bias[j] = rnd(-30000, 30000);
        fb[j] = (int32_t)(uint32_t)((int64_t)bias[j] - (int64_t)ec_fc_pad_a(isa, zp) * s);
        m0[j] = (1 << 30) + rnd(0, (1 << 30) - 1);
        sft[j] = -rnd(8, 14);
        rs[j] = ldexp((double)m0[j], sft[j] - 31);
    }
    p.rq.bias = fb; p.rq.m0 = m0; p.rq.shift = sft; p.rq.left = zero; p.rq.right = zero;
    p.rq.real_scale = rs; p.rq.policy = EC_ROUND_F64; p.rq.out_off = 3;
    p.rq.act_min = -128; p.rq.act_max = 127;
    ec_fc_run(&p, x, out, threads);
    for (j = 0; j < o; j++) {
        int32_t acc = bias[j];
        for (i = 0; i < n; i++) acc += (x[i] - zp) * w[j * n + i];
        bad += out[j] != ec_requantize(acc, EC_ROUND_F64, m0[j], sft[j], rs[j], 3, -128, 127);
    }
    free(x); free(w); free(out); free(bias); free(fb); free(m0); free(sft); free(zero);
    free(rs); free(p.xs);
    return bad;
}

int main(void) {
    int isa, t, failed = 0;
    printf("edgecnn kernels: this CPU runs '%s'; supported:", ec_isa_names[ec_best_isa()]);
    for (isa = 0; isa < EC_ISA_COUNT; isa++)
        if (ec_isa_supported(isa)) printf(" %s", ec_isa_names[isa]);
    printf("\n");
    if (!ec_isa_supported(EC_ISA_AVX512AMX))
        printf("avx512amx not tested here: %s\n", ec_amx_missing());
    for (isa = 0; isa < EC_ISA_COUNT; isa++) {
        int bad = 0;
        if (!ec_isa_supported(isa)) continue;
        for (t = 0; t < 60; t++) bad += conv_case(isa, 1 + t % 2) != 0;
        for (t = 0; t < 30; t++) bad += fc_case(isa, 1 + t % 2) != 0;
        printf("%-12s %s (%d of 90 cases differ)\n", ec_isa_names[isa], bad ? "FAIL" : "ok", bad);
        failed |= bad != 0;
    }
    return failed;
}
