"""Reference int8 SOFTMAX (the spec): softmax_s8 matches LiteRT BUILTIN_REF
(reference_ops::Softmax); softmax_float_s8 (--rounding fp32) LiteRT's default path.

softmax_s8:

x int8 (N,), out int8 (N,) with scale 1/256 and zero point -128. gemmlowp fixed point:
d = x - max(x) rescaled to Q5.26 by (input_multiplier, input_left_shift); exp(d) in Q0.31 for
d >= diff_min (else 0); the sum in Q12.19; its reciprocal by Newton-Raphson; each output is
RoundingDivideByPOT(recip * exp, num_bits_over_unit + 23) - 128, clamped. That exponent stays
<= 31 while the sum of exps is below 2^28, i.e. for any input when N < 512 (gemmlowp's limit).

softmax_float_s8: XNNPACK takes no int8 SOFTMAX, so LiteRT's default resolver runs its builtin
optimized kernel, optimized_ops::Softmax on x86-64 (an aarch64 clang build would take
SoftmaxInt8LUT instead), all in float32:
  e[i]   = exps[max(x) - x[i]]           (the 256-entry expf table of make_softmax_float_params)
  sum    = e[0] + e[1] + ... + e[N-1]    (float32, in index order: the order changes the bits)
  inv    = 1 / (sum * s_out)             (float32, two roundings)
  y[i]   = round(e[i] * inv) + zp_out    (std::round: ties away from zero), clamped to int8
e[i] * inv lies in [0, 256 (1 + 2^-22)], so its rounding fits any int type.
"""

from __future__ import annotations

import numpy as np

from . import fixedpoint as fp
from .params import SoftmaxFloatParams, SoftmaxParams

_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12
_ONE_Q31 = fp.INT32_MAX  # FixedPoint<int32, 0>::One() saturates to 2^31 - 1


def _mul(a, b):
    """FixedPoint product: Q(i).(31-i) * Q(j).(31-j) -> Q(i+j)."""
    return fp.saturating_rounding_doubling_high_mul(a, b)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = fp.wrap_int32(a + (1 << 28))  # + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = fp.rounding_divide_by_pot(x4, 2)
    poly = fp.rounding_divide_by_pot(
        fp.wrap_int32(_mul(fp.wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return fp.wrap_int32(constant_term + _mul(constant_term, fp.wrap_int32(x + poly)))


# (bit of the remainder, exp(-2^k) in Q0.31) for k = -2 .. 4: gemmlowp's barrel shifter
_EXP_BARREL = [(24, 1672461947), (25, 1302514674), (26, 790015084), (27, 290630308),
               (28, 39332535), (29, 720401), (30, 242)]


def exp_on_negative_values(a):
    """gemmlowp exp_on_negative_values: a Q5.26 <= 0 -> exp(a) Q0.31."""
    a = fp._i64(a)
    one_quarter = 1 << 24
    a_mod_quarter_minus_one_quarter = fp.wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        fp.saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, 5))
    remainder = fp.wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for bit, multiplier in _EXP_BARREL:
        result = np.where(remainder & (1 << bit), _mul(result, multiplier), result)
    return np.where(a == 0, _ONE_Q31, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp: 1 / (1 + a) for a in [0, 1), Q0.31 in and out, Newton-Raphson in Q2.29."""
    s = fp._i64(a) + _ONE_Q31
    half_denominator = fp._trunc_div_pot(s + np.where(s >= 0, 1, -1), 1)  # RoundingHalfSum
    x = fp.wrap_int32(1515870810 + _mul(half_denominator, -1010580540))  # 48/17 - 32/17 d
    for _ in range(3):
        one_minus_half_denominator_times_x = fp.wrap_int32((1 << 29) - _mul(half_denominator, x))
        x = fp.wrap_int32(x + fp.saturating_rounding_multiply_by_pot(
            _mul(x, one_minus_half_denominator_times_x), 2))
    return fp.saturating_rounding_multiply_by_pot(x, 1)


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """TFLite GetReciprocal: (Q0.31 reciprocal of x scaled into [1, 2), num_bits_over_unit)."""
    headroom_plus_one = 32 - int(x).bit_length()  # count leading zeros of a positive int32
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = fp.wrap_int32(((int(x) << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return int(one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)), num_bits_over_unit


def softmax_s8(x: np.ndarray, p: SoftmaxParams, out: np.ndarray) -> None:
    diff = x.astype(np.int64) - int(x.max())
    valid = diff >= p.diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(diff << left_shift, M0), Q5.26
    scaled = fp.saturating_rounding_doubling_high_mul(diff << p.input_left_shift,
                                                      p.input_multiplier)
    exps = np.where(valid, exp_on_negative_values(np.where(valid, scaled, 0)), 0)
    shift_to_accum = _ACCUMULATION_INTEGER_BITS  # Q0.31 -> Q12.19
    sum_of_exps = int(fp.wrap_int32(fp.rounding_divide_by_pot(exps, shift_to_accum)[valid].sum()))
    recip, num_bits_over_unit = get_reciprocal(sum_of_exps, _ACCUMULATION_INTEGER_BITS)
    unsat = fp.rounding_divide_by_pot(_mul(recip, exps), num_bits_over_unit + 31 - 8)
    y = np.where(valid, unsat - 128, -128)
    out[...] = np.clip(y, -128, 127)


def softmax_float_s8(x: np.ndarray, p: SoftmaxFloatParams, out: np.ndarray) -> None:
    e = p.exps[int(x.max()) - x.astype(np.int64)]
    # float32 sum in index order: accumulate is sequential (np.sum would add pairwise)
    total = np.add.accumulate(e, dtype=np.float32)[-1]
    inv = np.float32(np.float32(1) / np.float32(total * np.float32(p.output_scale)))
    y = fp.round_half_away((e * inv).astype(np.float32)) + p.output_offset
    out[...] = np.clip(y, -128, 127)
