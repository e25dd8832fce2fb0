/* Element-wise int8 ops, the twins of edgecnn/reference/quantize.py: pad, standalone ReLU/ReLU6,
 * tanh/logistic through a 256-entry table, quantize/dequantize at float graph boundaries, and the
 * copy a reshape needs when it cannot alias. Any shape, C order, n elements.
 */
#include <string.h>

#include "ec_kernels.h"

void ec_pad_s8(const int8_t *x, const ec_dims_t *x_dims, int32_t pad_top, int32_t pad_left,
               int32_t pad_value, int8_t *out, const ec_dims_t *out_dims) {
    const int32_t row = x_dims->w * x_dims->c;
    int32_t y;
    memset(out, pad_value, (size_t)out_dims->h * (size_t)out_dims->w * (size_t)out_dims->c);
    for (y = 0; y < x_dims->h; y++)
        memcpy(out + ((pad_top + y) * out_dims->w + pad_left) * out_dims->c, x + y * row,
               (size_t)row);
}

/* LiteRT QuantizedReluX: clamp(zp_out + MultiplyByQuantizedMultiplier(x - zp_in, M0, shift)). */
void ec_relu_s8_params(const int8_t *x, int32_t n, const ec_relu_params_t *p, int8_t *out) {
    int32_t i;
    for (i = 0; i < n; i++) {
        int32_t y = p->output_offset +
                    ec_mbqm_double((int32_t)x[i] - p->input_offset, p->multiplier, p->shift);
        if (y < p->act_min) y = p->act_min;
        if (y > p->act_max) y = p->act_max;
        out[i] = (int8_t)y;
    }
}

/* lut[q + 128]: the table is built at export time exactly as edgecnn's prepare builds it. */
void ec_lut_s8(const int8_t *x, int32_t n, const int8_t *lut, int8_t *out) {
    int32_t i;
    for (i = 0; i < n; i++) out[i] = lut[(int32_t)x[i] + 128];
}

/* LiteRT QUANTIZE: roundf(float32(x) / float32(scale)) + zp (ties away from zero), clamped.
 * The clamp happens in float first so huge inputs never overflow the int conversion. */
void ec_quantize_s8(const float *x, int32_t n, float scale, int32_t zero_point, int8_t *out) {
    int32_t i;
    for (i = 0; i < n; i++) {
        float r = roundf(x[i] / scale);
        int32_t y;
        if (r > 512.0f) r = 512.0f;
        if (r < -512.0f) r = -512.0f;
        y = (int32_t)r + zero_point;
        out[i] = (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
    }
}

/* LiteRT reference DEQUANTIZE: float32(double(scale) * (q - zp)). */
void ec_dequantize_s8(const int8_t *x, int32_t n, float scale, int32_t zero_point, float *out) {
    int32_t i;
    for (i = 0; i < n; i++) out[i] = (float)((double)scale * (double)((int32_t)x[i] - zero_point));
}

void ec_copy_s8(const int8_t *x, int32_t n, int8_t *out) {
    if (x != out) memmove(out, x, (size_t)n);
}
