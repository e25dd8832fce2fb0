/* int8 FULLY_CONNECTED, the twin of edgecnn/reference/fully_connected.py, on the layer export-c
 * packs (ec_kernels.h): weight (O, N) in [-127, 127] then zero bytes, bias with the input zero
 * point folded in, so acc[o] = bias[o] + sum_n x[n] * w[o, n] (|bias| + 256 * sum|w| < 2^31,
 * export-c checks), then the layer's rounding policy: double (TFLite Micro), f64-int (LiteRT's
 * double-precision rescale, proved equal in integers by export-c) or any other.
 * Batch 1 reads every weight once, so the paths work 4 rows at a time against one pass over x
 * (in the last block the rows past O rerun row o and are not stored):
 *   C    plain multiply-adds.
 *   DSP  4 inputs per word, split into int16 pairs (x0, x2), (x1, x3) once for 4 rows; each
 *        row's weight word split the same way meets them in 2 SMLADs (the last rows, fewer
 *        than 4, one at a time).
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
        if (rows == 4 && n_in >= 4) {
            /* 4 rows per pass over x in 25 instructions per 16 MACs (inline asm: gcc spills
             * the 4 weight pointers): rows 1 and 3 are read at +n_in from rows 0 and 2, so 13
             * registers hold 4 accumulators, x, 2 row pointers, n_in, the end, the split x
             * word, a weight word and its half. */
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, xe, xo, v, we;
            const int8_t *xp = x, *const end = x + (n_in & ~3), *r0 = w0, *r2 = w2;
            __asm__ volatile(
                "1:\n\t"
                "ldr %[v], [%[xp]], #4\n\t"
                "sxtb16 %[xe], %[v]\n\t"
                "sxtb16 %[xo], %[v], ror #8\n\t"
                "ldr %[v], [%[r0], %[n]]\n\t"
                "sxtb16 %[we], %[v]\n\t"
                "smlad %[a1], %[we], %[xe], %[a1]\n\t"
                "sxtb16 %[we], %[v], ror #8\n\t"
                "smlad %[a1], %[we], %[xo], %[a1]\n\t"
                "ldr %[v], [%[r2], %[n]]\n\t"
                "sxtb16 %[we], %[v]\n\t"
                "smlad %[a3], %[we], %[xe], %[a3]\n\t"
                "sxtb16 %[we], %[v], ror #8\n\t"
                "smlad %[a3], %[we], %[xo], %[a3]\n\t"
                "ldr %[v], [%[r2]], #4\n\t"
                "sxtb16 %[we], %[v]\n\t"
                "smlad %[a2], %[we], %[xe], %[a2]\n\t"
                "sxtb16 %[we], %[v], ror #8\n\t"
                "smlad %[a2], %[we], %[xo], %[a2]\n\t"
                "ldr %[v], [%[r0]], #4\n\t"
                "sxtb16 %[we], %[v]\n\t"
                "smlad %[a0], %[we], %[xe], %[a0]\n\t"
                "sxtb16 %[we], %[v], ror #8\n\t"
                "smlad %[a0], %[we], %[xo], %[a0]\n\t"
                "cmp %[xp], %[end]\n\t"
                "bne 1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp),
                  [r0] "+r"(r0), [r2] "+r"(r2), [xe] "=&r"(xe), [xo] "=&r"(xo), [v] "=&r"(v),
                  [we] "=&r"(we)
                : [n] "r"(n_in), [end] "r"(end)
                : "cc", "memory");
            a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
            n = n_in & ~3;
        } else {
            for (r = 0; r < rows; r++) {
                const int8_t *w = l->weight + (o + r) * n_in;
                for (n = 0; n + 4 <= n_in; n += 4) {
                    const uint32_t xv = ec_read32(x + n), wv = ec_read32(w + n);
                    a[r] = __smlad(__sxtb16((int32_t)xv), __sxtb16((int32_t)wv), a[r]);
                    a[r] = __smlad((int32_t)ec_sxtb16_ror8(xv), (int32_t)ec_sxtb16_ror8(wv), a[r]);
                }
            }
            n = n_in & ~3;
        }
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
