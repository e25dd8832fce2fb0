/* int8 FULLY_CONNECTED, the twin of edgecnn/reference/fully_connected.py.
 * x (N,), w (O, N) in [-127, 127], bias int32 (O,), out (O,):
 * acc[o] = bias[o] + sum_n (x[n] + input_offset) * w[o, n], then the model's rounding policy
 * (LiteRT BUILTIN_REF uses f64: a double multiply, soft-float on cores without a double FPU).
 * Each term is at most 32385 in magnitude: int32 is safe up to 66 000 inputs.
 */
#include "ec_kernels.h"

void ec_fully_connected_s8(const int8_t *x, int32_t n_in, const int8_t *w, const int32_t *bias,
                           const ec_fc_params_t *p, const ec_requant_t *rq, int8_t *out,
                           int32_t n_out) {
    int32_t o, n;
    for (o = 0; o < n_out; o++) {
        const int8_t *wo = w + o * n_in; /* one pass over the weights: batch 1 is memory bound */
        int32_t acc = bias ? bias[o] : 0;
        for (n = 0; n < n_in; n++) acc += ((int32_t)x[n] + p->input_offset) * wo[n];
        out[o] = ec_requantize_channel(acc, rq, o);
    }
}
