/* edgecnn firmware kernels: C99 int8 ops, twins of edgecnn/reference/ (the NumPy spec), each with
 * a plain C path and, where it pays, DSP (Cortex-M4/M7/M33) and Helium (Cortex-M55) paths chosen
 * at compile time (ec_simd.h).
 *
 * Layout NHWC without the batch dimension: images are (H, W, C), vectors (N,), row-major.
 * Activations int8 in [-128, 127]; weights int8 in [-127, 127] (zero point 0), conv OHWI,
 * fully connected (C_out, C_in). Conv, depthwise and fully connected take their weights as
 * export-c packs them (edgecnn/export_c/kernels.py): the input zero point folded into the bias. The parameter structs carry the field names of
 * edgecnn/reference/params.py (tests/test_firmware.py checks it).
 * Kernels check nothing and allocate nothing: the generated model owns every buffer.
 */
#ifndef EDGECNN_KERNELS_H
#define EDGECNN_KERNELS_H

#include <stdint.h>

#include "ec_config.h"
#include "fixedpoint.h"

/* Bumped whenever a struct below or a kernel signature changes; the generated model records
 * the version it was written for and ec_model_init() refuses a mismatch. */
#define EC_FORMAT_VERSION 4

typedef struct {
    int32_t h, w, c;
} ec_dims_t;

/* int32 accumulator -> int8 per output channel. multiplier/shift are NULL under the f64 and
 * fp32 policies, real_scale is NULL under double, single and f64-int (only what the policy reads).
 * The arrays hold one entry per channel, or one for the whole tensor where a layer record says
 * rq_per_channel = 0. */
typedef struct {
    const int32_t *multiplier; /* M0 in [2^30, 2^31), 0 for tiny scales */
    const int32_t *shift;      /* > 0 is a left shift: M = M0 * 2^(shift - 31) */
    const double *real_scale;  /* s_in * s_w[c] / s_out */
    int32_t policy;            /* EC_ROUND_* */
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} ec_requant_t;

typedef struct {
    int32_t stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
    int32_t input_offset; /* -zp_in */
} ec_conv_params_t;

typedef struct {
    int32_t stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
    int32_t depth_multiplier; /* output channel oc = ic * depth_multiplier + m reads channel ic */
    int32_t input_offset;     /* -zp_in */
} ec_depthwise_params_t;

typedef struct {
    int32_t filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, act_min, act_max;
} ec_pool_params_t;

typedef struct {
    int32_t input_multiplier; /* Q31 multiplier of beta * s_in * 2^26 */
    int32_t input_left_shift; /* >= 0 */
    int32_t diff_min;         /* x - max below this gives exp = 0 */
} ec_softmax_params_t;

/* int8 SOFTMAX as LiteRT's default path runs it (optimized_ops::Softmax, float32; policy fp32). */
typedef struct {
    const float *exps;     /* [256]: exps[d] = expf(-beta * s_in * d) for d = max(x) - x */
    float output_scale;    /* s_out */
    int32_t output_offset; /* zp_out */
} ec_softmax_float_params_t;

typedef struct {
    int32_t input_offset; /* zp_in, subtracted */
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} ec_relu_params_t;

/* A convolution as export-c packs it. weight: OHWI, C_out * K bytes (K = KH * KW * C_in) and
 * (-K) % 16 zero bytes (word and vector loads may run past the last filter); bias: bias[c] +
 * input_offset * sum(w[c]), so the kernels sum x * w over every tap with out-of-image taps read
 * as the input zero point (-input_offset): that adds -input_offset * w, which the folded bias
 * takes back, exactly as skipping the tap does. Accumulator bound: |bias| + 256 * sum|w[c]|
 * < 2^31 (export-c checks). */
typedef struct {
    ec_dims_t in, out;
    int32_t kh, kw;
    ec_conv_params_t p;
    const int8_t *weight;
    const int32_t *bias;
    ec_requant_t rq;
    int32_t rq_per_channel;
} ec_conv_layer_t;

/* A fully connected layer: weight (C_out, C_in) + (-C_in) % 16 zero bytes, bias folded as for
 * conv. */
typedef struct {
    int32_t n_in, n_out;
    const int8_t *weight;
    const int32_t *bias;
    ec_requant_t rq;
    int32_t rq_per_channel;
} ec_fc_layer_t;

/* A depthwise convolution as export-c packs it. Output channel oc = ic * M + m reads input
 * channel ic (M = p.depth_multiplier). weight: int16, B = ceil(C*M / 8) blocks of 8 output
 * channels, each KH * KW taps (row-major) of 8 values (channels past C*M zero): a word holds 2
 * channels for the DSP path's SMLAxy, a vector 8 for Helium's VMULL. bias: 8 * B entries,
 * bias[oc] + input_offset * sum_t w[t][oc] (zero past C*M), so out-of-image taps read the input
 * zero point, as for conv; wsum: sum_t w[t][oc] (8 * B entries), which gives back the unfolded
 * bias where a kernel skips out-of-image taps instead; rq2: under policy double with every
 * multiplier below 0.5 (M0 >= 2^30, shift <= -1), per channel the pair (2 * M0, -shift - 1)
 * for the DSP path's requantization, else NULL. Accumulator bound as for conv. */
typedef struct {
    ec_dims_t in, out;
    int32_t kh, kw;
    ec_depthwise_params_t p;
    const int16_t *weight;
    const int32_t *bias;
    const int32_t *wsum;
    const int32_t *rq2;
    ec_requant_t rq;
    int32_t rq_per_channel;
} ec_dw_layer_t;

/* int8 ADD (LiteRT reference_integer_ops::AddFunc); every shift <= 0. */
typedef struct {
    int32_t left_shift;    /* 20 */
    int32_t input1_offset; /* -zp1 */
    int32_t input2_offset; /* -zp2 */
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t output_offset; /* zp_out */
    int32_t act_min;
    int32_t act_max;
} ec_add_params_t;

#define EC_MAX_DIMS 8 /* LiteRT broadcasts at most 8 dimensions */

/* ADD's walk over two broadcast operands: dimensions of equal broadcast pattern fused,
 * outermost first; strides in elements, 0 where the operand repeats (params.make_broadcast). */
typedef struct {
    int32_t rank;
    int32_t size[EC_MAX_DIMS];
    int32_t stride1[EC_MAX_DIMS];
    int32_t stride2[EC_MAX_DIMS];
} ec_broadcast_t;

/* int8 CONCATENATION is a copy: LiteRT refuses inputs quantized unlike the output. */
typedef struct {
    int32_t inputs_count;
} ec_concat_params_t;

/* int8 MEAN over H, W: policy double is LiteRT's reference_ops::QuantizedMeanOrSum (1/count
 * folded into multiplier and shift), policy fp32 XNNPACK's (scale and bias, float32). */
typedef struct {
    int32_t multiplier;
    int32_t shift;
    int32_t input_offset; /* -zp_in */
    int32_t output_offset;
    int32_t count; /* H * W */
    int32_t policy; /* EC_ROUND_DOUBLE or EC_ROUND_FP32 */
    float scale;    /* fp32: float32(s_in / s_out) * float32(1 / count) */
    float bias;     /* fp32: zp_out - count * zp_in * scale, in float32 */
} ec_mean_params_t;

/* One output channel through the model's rounding policy (fixedpoint.h does the arithmetic);
 * the policies ec_config.h leaves out are not compiled. */
static inline int8_t ec_requantize_channel(int32_t acc, const ec_requant_t *rq, int32_t c) {
    int32_t y;
    switch (rq->policy) {
#if EC_ROUND_F64_USED
    case EC_ROUND_F64: y = ec_scale_f64(acc, rq->real_scale[c]); break;
#endif
#if EC_ROUND_SINGLE_USED
    case EC_ROUND_SINGLE: y = ec_mbqm_single(acc, rq->multiplier[c], rq->shift[c]); break;
#endif
#if EC_ROUND_FP32_USED
    case EC_ROUND_FP32: y = ec_scale_fp32(acc, (float)rq->real_scale[c]); break;
#endif
#if EC_ROUND_F64_INT_USED
    case EC_ROUND_F64_INT: y = ec_mbqm_away(acc, rq->multiplier[c], rq->shift[c]); break;
#endif
    default: y = ec_mbqm_double(acc, rq->multiplier[c], rq->shift[c]); break;
    }
    y += rq->output_offset;
    y = y < rq->act_min ? rq->act_min : y;
    return (int8_t)(y > rq->act_max ? rq->act_max : y);
}

/* scratch: 4-byte aligned, max(5 * K4, 4 * K16) bytes with K4 (K16) = KH * KW * C_in rounded up
 * to a multiple of 4 (16): the DSP path's im2col columns, Helium's (plain C needs none). The
 * arena plans it (edgecnn/export_c/kernels.py, conv_scratch). */
void ec_conv2d_s8(const ec_conv_layer_t *l, const int8_t *x, int8_t *out, int8_t *scratch);
void ec_depthwise_conv2d_s8(const ec_dw_layer_t *l, const int8_t *x, int8_t *out);
void ec_fully_connected_s8(const ec_fc_layer_t *l, const int8_t *x, int8_t *out);
void ec_max_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                    int8_t *out, const ec_dims_t *out_dims);
void ec_avg_pool_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_pool_params_t *p,
                    int8_t *out, const ec_dims_t *out_dims);
void ec_pad_s8(const int8_t *x, const ec_dims_t *x_dims, int32_t pad_top, int32_t pad_left,
               int32_t pad_value, int8_t *out, const ec_dims_t *out_dims);
void ec_softmax_s8(const int8_t *x, int32_t n, const ec_softmax_params_t *p, int8_t *out);
#if EC_ROUND_FP32_USED
void ec_softmax_float_s8(const int8_t *x, int32_t n, const ec_softmax_float_params_t *p,
                         int8_t *out);
#endif
void ec_relu_s8_params(const int8_t *x, int32_t n, const ec_relu_params_t *p, int8_t *out);
void ec_lut_s8(const int8_t *x, int32_t n, const int8_t *lut, int8_t *out);
void ec_quantize_s8(const float *x, int32_t n, float scale, int32_t zero_point, int8_t *out);
void ec_dequantize_s8(const int8_t *x, int32_t n, float scale, int32_t zero_point, float *out);
void ec_add_s8(const int8_t *x1, const int8_t *x2, const ec_broadcast_t *b,
               const ec_add_params_t *p, int8_t *out);
void ec_concat_s8(const int8_t *const *inputs, const int32_t *copy_sizes,
                  const ec_concat_params_t *p, int32_t outer_size, int8_t *out);
void ec_mean_s8(const int8_t *x, const ec_dims_t *x_dims, const ec_mean_params_t *p, int8_t *out);
/* Reshape as a copy, for the rare plan that cannot alias input and output. */
void ec_copy_s8(const int8_t *x, int32_t n, int8_t *out);

#endif /* EDGECNN_KERNELS_H */
