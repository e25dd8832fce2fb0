"""Fixed-point helpers shared by the quantizer, the reference kernels and prepare.

TFLite rounds half away from zero (std::round); NumPy's np.round rounds half to even.
Quantization code calls ``round_half_away`` by name and never bare np.round.
"""

from __future__ import annotations

import math

import numpy as np


def round_half_away(x):
    """Round to nearest, ties away from zero (C's round()); works on scalars and arrays."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real = M0 * 2^(shift - 31)``, M0 in [2^30, 2^31).

    Returns (M0, shift); shift > 0 means a left shift. Multipliers below 2^-31 become (0, 0).
    """
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)  # real = q * 2^shift, q in [0.5, 1)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multipliers(real_multipliers) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of ``quantize_multiplier``: int32 multipliers and int32 shifts."""
    pairs = [quantize_multiplier(float(m)) for m in np.asarray(real_multipliers, np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int64)
    shift = np.array([p[1] for p in pairs], dtype=np.int64)
    return mult.astype(np.int32), shift.astype(np.int32)


# ---------------------------------------------------------------------------------------------
# gemmlowp / TFLite fixed-point primitives on int32 values (NumPy, int64 internally).
# Every function takes scalars or arrays and returns int64 arrays holding int32 values; the C
# twins live in cython_kernels/fixedpoint.h under the same names with an ``ec_`` prefix.

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _i64(x):
    return np.asarray(x, dtype=np.int64)


def _trunc_div_pot(x, e: int):
    """C's ``x / 2^e`` on int64: quotient truncated toward zero."""
    x = _i64(x)
    return np.where(x >= 0, x >> e, -((-x) >> e))


def wrap_int32(x):
    """Two's-complement wrap to int32 (what C's int32 arithmetic does on x86)."""
    return (_i64(x) + (1 << 31)) % (1 << 32) - (1 << 31)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties away from zero."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    out = _trunc_div_pot(ab + nudge, 31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, out)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def saturating_rounding_multiply_by_pot(x, exponent: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT: x * 2^exponent (saturating) or rounded x / 2^-e."""
    if exponent <= 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    x = _i64(x)
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """Policy ``double``: TFLite MultiplyByQuantizedMultiplier (two roundings, gemmlowp)."""
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(wrap_int32(_i64(x) << left), multiplier), right)


def multiply_by_quantized_multiplier_single(x, multiplier, shift):
    """Policy ``single``: ``(x * M0 + 2^(t-1)) >> t`` with ``t = 31 - shift`` (one rounding)."""
    t = 31 - _i64(shift)
    return (_i64(x) * _i64(multiplier) + (np.int64(1) << (t - 1))) >> t


def scale_f64(x, real_scale):
    """Policy ``f64``: ``round_half_away(double(x) * real_scale)`` (LiteRT reference FC)."""
    y = _i64(x).astype(np.float64) * np.asarray(real_scale, np.float64)
    whole = np.trunc(y)  # y - whole is exact, so ties are seen exactly (C's round())
    return (whole + np.sign(y) * (np.abs(y - whole) >= 0.5)).astype(np.int64)


def scale_fp32(x, real_scale):
    """Policy ``fp32``: ``float32(x) * float32(scale)`` rounded half to even (XNNPACK)."""
    prod = _i64(x).astype(np.float32) * np.asarray(real_scale, np.float64).astype(np.float32)
    return np.rint(prod).astype(np.int64)  # rint: ties to even, the float32 product exactly
