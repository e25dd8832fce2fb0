/* int8 MEAN over H and W, the twin of edgecnn/reference/mean.py (LiteRT BUILTIN_REF
 * reference_ops::QuantizedMeanOrSum). x (H, W, C) -> out (C,). Per channel the int32 sum of
 * H * W values (kept in uint32 so it wraps as LiteRT's int32 temp_sum; exact below 2^24
 * values), minus zp_in * count wrapped to int32, through MultiplyByQuantizedMultiplier with
 * 1/count folded into multiplier and shift at export time; clamped to int8.
 */
#include "ec_kernels.h"

void ec_mean_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_mean_params_t *p, int8_t *out) {
    const int32_t c = x_dims->c, count = x_dims->h * x_dims->w;
    const uint32_t offset = (uint32_t)p->input_offset * (uint32_t)p->count;
    int32_t ch, r;
    for (ch = 0; ch < c; ch++) {
        uint32_t sum = offset;
        int32_t y;
        for (r = 0; r < count; r++) sum += (uint32_t)(int32_t)x[r * c + ch];
        y = ec_mbqm_double((int32_t)sum, p->multiplier, p->shift) + p->output_offset;
        out[ch] = (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
    }
}
