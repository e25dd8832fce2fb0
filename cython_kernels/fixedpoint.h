/* edgecnn fixed-point helpers: the rounding policies of int8 requantization, in plain C99.
 *
 * Shared by the Cython kernels and the C firmware, so host and MCU cannot disagree. The NumPy
 * spec is edgecnn/reference/fixedpoint.py (same names without the ec_ prefix); policy codes
 * equal edgecnn.reference.params.ROUNDING_POLICIES indices. Values are int32 unless noted;
 * right shifts of negative numbers are arithmetic (true of every compiler we target).
 */
#ifndef EDGECNN_FIXEDPOINT_H
#define EDGECNN_FIXEDPOINT_H

#include <math.h>
#include <stdint.h>

#define EC_ROUND_DOUBLE 0 /* gemmlowp: SRDHM then RoundingDivideByPOT (TFLite reference conv) */
#define EC_ROUND_F64 1    /* round(double(acc) * real_scale), ties away (LiteRT reference FC) */
#define EC_ROUND_SINGLE 2 /* (x * M0 + 2^(t-1)) >> t, t = 31 - shift (ruy) */
#define EC_ROUND_FP32 3   /* rint(float(acc) * float(scale)), ties to even (XNNPACK) */
/* f64 in integers, firmware only: round(acc * M0 / 2^(31 - shift)), ties away from zero. export-c
 * uses it in place of f64 where it proved both equal on every accumulator the layer can produce
 * (edgecnn/export_c/exact_f64.py), so a core without a double FPU needs no soft-float. */
#define EC_ROUND_F64_INT 4

/* round(a * b / 2^31), ties away from zero; the one overflow (INT32_MIN^2) saturates. */
static inline int32_t ec_srdhm(int32_t a, int32_t b) {
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates toward 0 */
}

/* x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31. */
static inline int32_t ec_rdbp(int32_t x, int exponent) {
    int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* ec_rdbp for 0 <= exponent <= 62, in int64. The int8 softmax's final shift passes 31 when its
 * sum of exps reaches 2^28 (512 or more values at the row maximum): LiteRT's reference stops
 * there (TFLITE_CHECK aborts the process); edgecnn rounds as for smaller exponents, which is
 * what the NumPy spec's int64 rounding_divide_by_pot computes. */
static inline int32_t ec_rdbp_wide(int32_t x, int exponent) {
    int64_t mask = ((int64_t)1 << exponent) - 1;
    int64_t remainder = (int64_t)x & mask;
    int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* x * 2^exponent saturated to int32 (exponent > 0), or ec_rdbp(x, -exponent). */
static inline int32_t ec_srmpot(int32_t x, int exponent) {
    if (exponent <= 0) return ec_rdbp(x, -exponent);
    int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
}

/* Parameter ranges: edgecnn/quant_rules.py accepts only shift in [-31, 30] and accumulators
 * whose |acc| * M plus the output offset stays inside int32, so nothing below overflows or
 * shifts past the width for a model that prepared; outside those ranges LiteRT's own C++ is
 * undefined and edgecnn refuses the model. */

/* Policy double: TFLite MultiplyByQuantizedMultiplier, M = M0 * 2^(shift - 31). */
static inline int32_t ec_mbqm_double(int32_t x, int32_t m0, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return ec_rdbp(ec_srdhm((int32_t)((uint32_t)x << left), m0), right);
}

/* Policy single: one rounding, ties toward +inf; needs shift <= 30. */
static inline int32_t ec_mbqm_single(int32_t x, int32_t m0, int32_t shift) {
    int t = 31 - shift;
    return (int32_t)(((int64_t)x * m0 + ((int64_t)1 << (t - 1))) >> t);
}

/* Policy f64-int: one rounding of x * M0 / 2^t (t = 31 - shift, 1 <= t <= 62), ties away from zero:
 * floor((p + 2^(t-1) - [p < 0]) / 2^t) with p = x * M0 (M0 > 0, so p < 0 exactly when x < 0). */
static inline int32_t ec_mbqm_away(int32_t x, int32_t m0, int32_t shift) {
    int t = 31 - shift;
    return (int32_t)(((int64_t)x * m0 + ((int64_t)1 << (t - 1)) - (x < 0)) >> t);
}

/* Policy f64: C round() is ties away from zero. */
static inline int32_t ec_scale_f64(int32_t x, double real_scale) {
    return (int32_t)round((double)x * real_scale);
}

/* Policy fp32: rintf rounds ties to even in the default rounding mode. */
static inline int32_t ec_scale_fp32(int32_t x, float scale) {
    return (int32_t)rintf((float)x * scale);
}

/* acc -> int8 under one policy, with the output zero point and the activation clamp. */
static inline int8_t ec_requantize(int32_t acc, int policy, int32_t m0, int32_t shift,
                                   double real_scale, int32_t output_offset, int32_t act_min,
                                   int32_t act_max) {
    int32_t y;
    switch (policy) {
    case EC_ROUND_F64: y = ec_scale_f64(acc, real_scale); break;
    case EC_ROUND_SINGLE: y = ec_mbqm_single(acc, m0, shift); break;
    case EC_ROUND_F64_INT: y = ec_mbqm_away(acc, m0, shift); break;
    case EC_ROUND_FP32: y = ec_scale_fp32(acc, (float)real_scale); break;
    default: y = ec_mbqm_double(acc, m0, shift); break;
    }
    y += output_offset;
    if (y < act_min) y = act_min;
    if (y > act_max) y = act_max;
    return (int8_t)y;
}

/* ---- gemmlowp transcendental helpers for the int8 softmax (Qm.n = m integer bits) ---- */

/* exp(a) for a in [-1/4, 0): Q0.31 in and out, Taylor series around -1/8. */
static inline int32_t ec_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    int32_t x = (int32_t)((uint32_t)a + (1u << 28));
    int32_t x2 = ec_srdhm(x, x);
    int32_t x3 = ec_srdhm(x2, x);
    int32_t x4 = ec_srdhm(x2, x2);
    int32_t x4_over_4 = ec_rdbp(x4, 2);
    int32_t poly = ec_rdbp(
        (int32_t)((uint32_t)ec_srdhm((int32_t)((uint32_t)x4_over_4 + (uint32_t)x3),
                                     constant_1_over_3) + (uint32_t)x2), 1);
    return (int32_t)((uint32_t)constant_term +
                     (uint32_t)ec_srdhm(constant_term, (int32_t)((uint32_t)x + (uint32_t)poly)));
}

/* exp(a) for a <= 0 in Q5.26 -> Q0.31 (gemmlowp exp_on_negative_values, 5 integer bits). */
static inline int32_t ec_exp_on_negative_values_q5(int32_t a) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242};
    const int32_t one_quarter = 1 << 24;
    int32_t a_mod = (int32_t)((uint32_t)(a & (one_quarter - 1)) - (uint32_t)one_quarter);
    int32_t result = ec_exp_on_interval_between_negative_one_quarter_and_0_excl(
        ec_srmpot(a_mod, 5));
    int32_t remainder = (int32_t)((uint32_t)a_mod - (uint32_t)a);
    int k;
    for (k = 0; k < 7; k++) {
        if (remainder & (1 << (24 + k))) result = ec_srdhm(result, barrel[k]);
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1): Q0.31 in and out; Newton-Raphson in Q2.29. */
static inline int32_t ec_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    int64_t sum = (int64_t)a + INT32_MAX;
    int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = (int32_t)(1515870810u + (uint32_t)ec_srdhm(half_denominator, -1010580540));
    int i;
    for (i = 0; i < 3; i++) {
        int32_t one_minus = (int32_t)((1u << 29) - (uint32_t)ec_srdhm(half_denominator, x));
        x = (int32_t)((uint32_t)x + (uint32_t)ec_srmpot(ec_srdhm(x, one_minus), 2));
    }
    return ec_srmpot(x, 1);
}

/* TFLite GetReciprocal: x > 0 with x_integer_digits integer bits. */
static inline int32_t ec_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit) {
    int headroom_plus_one = 0;
    uint32_t ux = (uint32_t)x;
    while (headroom_plus_one < 32 && !(ux & 0x80000000u)) {
        ux <<= 1;
        headroom_plus_one++;
    }
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return ec_one_over_one_plus_x_for_x_in_0_1((int32_t)(ux - 0x80000000u));
}

#endif /* EDGECNN_FIXEDPOINT_H */
