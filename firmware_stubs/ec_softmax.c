/* int8 SOFTMAX, the twins of edgecnn/reference/softmax.py: ec_softmax_s8 is LiteRT's
 * reference_ops::Softmax, ec_softmax_float_s8 (policy fp32) its optimized float32 kernel.
 * ec_softmax_s8:
 * x (N,), out (N,) with scale 1/256 and zero point -128. d = x - max(x) rescaled to Q5.26; exp(d)
 * in Q0.31 for d >= diff_min (else 0); the sum in Q12.19 (below 2^31 for N < 4096, which prepare
 * checks); its reciprocal; out = RoundingDivideByPOT(recip * exp, bits + 23) - 128, a shift past
 * 31 once the sum reaches 2^28 (see ec_rdbp_wide).
 * The exps are computed twice (sum, then output) so the kernel needs no scratch buffer.
 */
#include "ec_kernels.h"

static int32_t ec_softmax_exp(int32_t diff, const ec_softmax_params_t *p) {
    /* valid diffs lie in [diff_min, 0]: diff * 2^left_shift fits int32 by construction */
    /* unsigned: input_left_shift reaches 31 (then diff_min is 0) */
    int32_t scaled = ec_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
    return ec_exp_on_negative_values_q5(scaled);
}

void ec_softmax_s8(const int8_t *x, int32_t n, const ec_softmax_params_t *p, int8_t *out) {
    int32_t i, max = -128, sum_of_exps = 0, recip;
    int num_bits_over_unit;
    for (i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    for (i = 0; i < n; i++) {
        const int32_t diff = (int32_t)x[i] - max;
        if (diff >= p->diff_min) sum_of_exps += ec_rdbp(ec_softmax_exp(diff, p), 12);
    }
    recip = ec_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit);
    for (i = 0; i < n; i++) {
        const int32_t diff = (int32_t)x[i] - max;
        int32_t y = -128;
        if (diff >= p->diff_min) {
            const int32_t e = ec_softmax_exp(diff, p);
            y = ec_rdbp_wide(ec_srdhm(recip, e), num_bits_over_unit + 31 - 8) - 128;
            if (y > 127) y = 127;
            if (y < -128) y = -128;
        }
        out[i] = (int8_t)y;
    }
}

#if EC_ROUND_FP32_USED
/* LiteRT optimized_ops::Softmax: the table's exps summed in float32 in index order, inv =
 * 1 / (sum * s_out), out = roundf(exp * inv) + zp_out (ties away from zero, as std::round),
 * clamped. exp * inv lies in [0, 256 (1 + 2^-22)]. No multiply feeds an addition, so no FMA
 * contraction can change a rounding. */
void ec_softmax_float_s8(const int8_t *x, int32_t n, const ec_softmax_float_params_t *p,
                         int8_t *out) {
    int32_t i, max = -128;
    float sum = 0.0f, inv;
    for (i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    for (i = 0; i < n; i++) sum += p->exps[max - x[i]];
    inv = 1.0f / (sum * p->output_scale);
    for (i = 0; i < n; i++) {
        int32_t y = (int32_t)roundf(p->exps[max - x[i]] * inv) + p->output_offset;
        out[i] = (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
    }
}
#endif
