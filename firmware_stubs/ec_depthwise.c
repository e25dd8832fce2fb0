/* int8 DEPTHWISE_CONV_2D, the twin of edgecnn/reference/depthwise_conv.py (LiteRT reference
 * DepthwiseConvPerChannel). x (H, W, C), w (KH, KW, C*M), bias int32 (C*M,) or NULL,
 * out (OH, OW, C*M); output channel oc = ic * M + m reads input channel ic only.
 * acc = bias + sum over in-image taps of (x + input_offset) * w; out-of-image taps are skipped,
 * so padding acts as the input zero point. |x + input_offset| <= 255 and |w| <= 128, so a tap
 * adds at most 32640: the int32 accumulator holds 2^16 taps (KH * KW), far beyond any filter.
 */
#include "ec_kernels.h"

void ec_depthwise_conv2d_s8(const int8_t *x, const ec_dims_t *x_dims, const int8_t *w,
                            int32_t kh, int32_t kw, const int32_t *bias,
                            const ec_depthwise_params_t *p, const ec_requant_t *rq, int8_t *out,
                            const ec_dims_t *out_dims) {
    const int32_t h = x_dims->h, wd = x_dims->w, c = x_dims->c, m = p->depth_multiplier;
    const int32_t oh = out_dims->h, ow = out_dims->w, cm = out_dims->c;
    int32_t oy, ox, oc, ky, kx;
    for (oy = 0; oy < oh; oy++) {
        for (ox = 0; ox < ow; ox++) {
            int8_t *o = out + (oy * ow + ox) * cm;
            for (oc = 0; oc < cm; oc++) {
                const int32_t ic = oc / m;
                int32_t acc = bias ? bias[oc] : 0;
                for (ky = 0; ky < kh; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        if (ix < 0 || ix >= wd) continue;
                        acc += ((int32_t)x[(iy * wd + ix) * c + ic] + p->input_offset) *
                               w[(ky * kw + kx) * cm + oc];
                    }
                }
                o[oc] = ec_requantize_channel(acc, rq, oc);
            }
        }
    }
}
