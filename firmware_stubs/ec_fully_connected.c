/* int8 FULLY_CONNECTED, the twin of edgecnn/reference/fully_connected.py, on the layer export-c
 * packs (ec_kernels.h): weight (O, N) in [-127, 127] then zero bytes, bias with the input zero
 * point folded in, so acc[o] = bias[o] + sum_n x[n] * w[o, n] (|bias| + 256 * sum|w| < 2^31,
 * export-c checks), then the layer's rounding policy: double (TFLite Micro), f64-int (LiteRT's
 * double-precision rescale, proved equal in integers by export-c) or any other.
 * Batch 1 reads every weight once, so the paths work 4 rows at a time against one pass over x
 * (in the last block the rows past O rerun row o and are not stored):
 *   C    plain multiply-adds.
 *   DSP  4 inputs per word, split into int16 pairs (x0, x2), (x1, x3) once for 4 rows; each
 *        row's weight word split the same way meets them in 2 SMLADs.
 *   MVE  16 inputs per vector load, one VMLADAVA per row; the last N % 16 inputs once more
 *        with x loaded under a tail predicate (zero lanes), so the weight loads need none: they
 *        may read past the row, by at most 15 - (N - 1) % 16 bytes (the zero bytes after the
 *        last row).
 */
#include "ec_simd.h"

void ec_fully_connected_s8(const ec_fc_layer_t *l, const int8_t *x, int8_t *out) {
    const int32_t n_in = l->n_in, n_out = l->n_out, pc = l->rq_per_channel;
    int32_t o, r;
#if defined(EC_PATH_MVE)
    const mve_pred16_t tail = vctp8q((uint32_t)(n_in & 15));
#endif
    for (o = 0; o < n_out; o += 4) {
        const int32_t rows = n_out - o < 4 ? n_out - o : 4;
        const int8_t *w0 = l->weight + o * n_in, *w1 = rows > 1 ? w0 + n_in : w0;
        const int8_t *w2 = rows > 2 ? w0 + 2 * n_in : w0, *w3 = rows > 3 ? w0 + 3 * n_in : w0;
        int32_t a[4] = {0, 0, 0, 0}, n = 0;
#if defined(EC_PATH_MVE)
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (; n + 16 <= n_in; n += 16) {
            const int8x16_t xv = vld1q_s8(x + n);
            a0 = vmladavaq_s8(a0, xv, vld1q_s8(w0 + n));
            a1 = vmladavaq_s8(a1, xv, vld1q_s8(w1 + n));
            a2 = vmladavaq_s8(a2, xv, vld1q_s8(w2 + n));
            a3 = vmladavaq_s8(a3, xv, vld1q_s8(w3 + n));
        }
        if (n < n_in) {
            const int8x16_t xv = vldrbq_z_s8(x + n, tail);
            a0 = vmladavaq_s8(a0, xv, vld1q_s8(w0 + n));
            a1 = vmladavaq_s8(a1, xv, vld1q_s8(w1 + n));
            a2 = vmladavaq_s8(a2, xv, vld1q_s8(w2 + n));
            a3 = vmladavaq_s8(a3, xv, vld1q_s8(w3 + n));
        }
        a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
#else
#if defined(EC_PATH_DSP)
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (; n + 4 <= n_in; n += 4) {
            const uint32_t xv = ec_read32(x + n);
            const int32_t xe = __sxtb16((int32_t)xv), xo = (int32_t)ec_sxtb16_ror8(xv);
            uint32_t wv = ec_read32(w0 + n);
            a0 = __smlad((int32_t)ec_sxtb16_ror8(wv), xo, __smlad(__sxtb16((int32_t)wv), xe, a0));
            wv = ec_read32(w1 + n);
            a1 = __smlad((int32_t)ec_sxtb16_ror8(wv), xo, __smlad(__sxtb16((int32_t)wv), xe, a1));
            wv = ec_read32(w2 + n);
            a2 = __smlad((int32_t)ec_sxtb16_ror8(wv), xo, __smlad(__sxtb16((int32_t)wv), xe, a2));
            wv = ec_read32(w3 + n);
            a3 = __smlad((int32_t)ec_sxtb16_ror8(wv), xo, __smlad(__sxtb16((int32_t)wv), xe, a3));
        }
        a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
#endif
        for (; n < n_in; n++) {
            const int32_t xn = x[n];
            a[0] += xn * w0[n];
            a[1] += xn * w1[n];
            a[2] += xn * w2[n];
            a[3] += xn * w3[n];
        }
#endif
        for (r = 0; r < rows; r++)
            out[o + r] = ec_requant_one(l->bias[o + r] + a[r], &l->rq, (o + r) * pc);
    }
}
