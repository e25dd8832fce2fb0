/* int8 CONV_2D, the twin of edgecnn/reference/conv.py (LiteRT reference ConvPerChannel).
 * x (H, W, C_in), w OHWI (C_out, KH, KW, C_in), bias int32 (C_out,), out (OH, OW, C_out).
 * acc = bias + sum over in-image taps of (x + input_offset) * w; out-of-image taps are skipped,
 * so padding acts as the input zero point. |x + input_offset| <= 255 and |w| <= 127, so one tap
 * adds at most 32385: the int32 accumulator is safe up to 66 000 taps (export-c checks it).
 */
#include "ec_kernels.h"

void ec_conv2d_s8(const int8_t *x, const ec_dims_t *x_dims, const int8_t *w, int32_t kh,
                  int32_t kw, const int32_t *bias, const ec_conv_params_t *p,
                  const ec_requant_t *rq, int8_t *out, const ec_dims_t *out_dims) {
    const int32_t h = x_dims->h, wd = x_dims->w, cin = x_dims->c;
    const int32_t oh = out_dims->h, ow = out_dims->w, cout = out_dims->c;
    int32_t oy, ox, co, ky, kx, ci;
    for (oy = 0; oy < oh; oy++) {
        for (ox = 0; ox < ow; ox++) {
            int8_t *o = out + ((int32_t)oy * ow + ox) * cout;
            for (co = 0; co < cout; co++) {
                const int8_t *wc = w + (int32_t)co * kh * kw * cin;
                int32_t acc = bias ? bias[co] : 0;
                for (ky = 0; ky < kh; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= h) continue;
                    for (kx = 0; kx < kw; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        const int8_t *xi, *wi;
                        if (ix < 0 || ix >= wd) continue;
                        xi = x + (iy * wd + ix) * cin;
                        wi = wc + (ky * kw + kx) * cin;
                        for (ci = 0; ci < cin; ci++)
                            acc += ((int32_t)xi[ci] + p->input_offset) * wi[ci];
                    }
                }
                o[co] = ec_requantize_channel(acc, rq, co);
            }
        }
    }
}
