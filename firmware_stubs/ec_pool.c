/* int8 MAX_POOL_2D / AVERAGE_POOL_2D, the twins of edgecnn/reference/pool.py.
 * x (H, W, C), out (OH, OW, C); output scale and zero point equal the input's. Only in-image
 * taps count: max pool takes the raw int8 max, average pool divides the int32 sum by the number
 * of valid taps rounding half away from zero. Both clamp to [act_min, act_max].
 */
#include "ec_kernels.h"

static int32_t ec_max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t ec_min32(int32_t a, int32_t b) { return a < b ? a : b; }

static void ec_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                       int8_t *out, const ec_dims_t *out_dims, int is_max) {
    const int32_t h = x_dims->h, wd = x_dims->w, c = x_dims->c;
    int32_t oy, ox, ch, iy, ix;
    for (oy = 0; oy < out_dims->h; oy++) {
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int32_t ya = ec_max32(y0, 0), yb = ec_min32(y0 + p->filter_h, h);
        for (ox = 0; ox < out_dims->w; ox++) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            const int32_t xa = ec_max32(x0, 0), xb = ec_min32(x0 + p->filter_w, wd);
            const int32_t count = (yb - ya) * (xb - xa);
            for (ch = 0; ch < c; ch++) {
                int32_t v = is_max ? -128 : 0;
                for (iy = ya; iy < yb; iy++) {
                    for (ix = xa; ix < xb; ix++) {
                        const int32_t q = x[(iy * wd + ix) * c + ch];
                        v = is_max ? ec_max32(v, q) : v + q;
                    }
                }
                if (!is_max) /* (|s| + count/2) / count with the sign put back: ties away */
                    v = v >= 0 ? (v + count / 2) / count : -((-v + count / 2) / count);
                v = ec_min32(ec_max32(v, p->act_min), p->act_max);
                out[(oy * out_dims->w + ox) * c + ch] = (int8_t)v;
            }
        }
    }
}

void ec_max_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                    int8_t *out, const ec_dims_t *out_dims) {
    ec_pool_s8(x, x_dims, p, out, out_dims, 1);
}

void ec_avg_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                    int8_t *out, const ec_dims_t *out_dims) {
    ec_pool_s8(x, x_dims, p, out, out_dims, 0);
}
