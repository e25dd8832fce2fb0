/* int8 ADD, the twin of edgecnn/reference/add.py (LiteRT reference_integer_ops::AddFunc).
 * x1, x2 NumPy-broadcast operands walked by an ec_broadcast_t; out of the broadcast shape, and
 * allowed to be x1 or x2 (each output is written after both of its inputs are read).
 *   s_i = MBQM((x_i + offset_i) << 20, M_i, shift_i)   |x_i - zp_i| <= 255: < 2^28, no overflow
 *   y   = MBQM(s_1 + s_2, M_out, shift_out) + zp_out, clamped to [act_min, act_max]
 * with every shift <= 0, so MBQM is SRDHM then RoundingDivideByPOT (fixedpoint.h).
 */
#include "ec_kernels.h"

static int32_t ec_add_scaled(int8_t x, int32_t offset, int32_t left_shift, int32_t multiplier,
                             int32_t shift) {
    return ec_mbqm_double(((int32_t)x + offset) * (1 << left_shift), multiplier, shift);
}

void ec_add_s8(const int8_t *x1, const int8_t *x2, const ec_broadcast_t *b,
               const ec_add_params_t *p, int8_t *out) {
    const int32_t last = b->rank - 1, inner = b->size[last];
    const int32_t sa = b->stride1[last], sb = b->stride2[last];
    int32_t idx[EC_MAX_DIMS] = {0};
    int32_t outer = 1, r, i, d, o1 = 0, o2 = 0;
    for (d = 0; d < last; d++) outer *= b->size[d];
    for (r = 0; r < outer; r++) {
        for (i = 0; i < inner; i++) {
            int32_t s = ec_add_scaled(x1[o1 + i * sa], p->input1_offset, p->left_shift,
                                      p->input1_multiplier, p->input1_shift) +
                        ec_add_scaled(x2[o2 + i * sb], p->input2_offset, p->left_shift,
                                      p->input2_multiplier, p->input2_shift);
            int32_t y = ec_mbqm_double(s, p->output_multiplier, p->output_shift) +
                        p->output_offset;
            if (y < p->act_min) y = p->act_min;
            if (y > p->act_max) y = p->act_max;
            out[r * inner + i] = (int8_t)y;
        }
        for (d = last - 1; d >= 0; d--) { /* odometer over the outer dimensions */
            o1 += b->stride1[d];
            o2 += b->stride2[d];
            if (++idx[d] < b->size[d]) break;
            o1 -= b->stride1[d] * b->size[d];
            o2 -= b->stride2[d] * b->size[d];
            idx[d] = 0;
        }
    }
}
