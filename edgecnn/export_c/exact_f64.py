"""LiteRT's double-precision FULLY_CONNECTED rescale (policy f64) as integer arithmetic, proved
exact per layer, so firmware on a core without a double FPU matches LiteRT BUILTIN_REF with no
soft-float.

f64 computes ``f(acc) = round_half_away(fl(acc * S))``: acc an int32, S the double
``s_in * s_w / s_out``, fl() one IEEE double rounding. The firmware policy f64-int computes
``g(acc) = round_half_away(acc * M)`` with ``M = M0 / 2^t`` exactly, in 64-bit integers
(``ec_mbqm_away`` in cython_kernels/fixedpoint.h; M0, t from QuantizeMultiplier(S), 31 bits).
Only ``clamp(y + zp_out, act_min, act_max)`` reaches the output. The proof, per layer:

1. Over the accumulators the layer can produce, ``|acc| <= A`` (bias plus the extreme sums of
   the weights times inputs in [-128, 127]), so ``|fl(acc * S) - acc * M| <= eps`` with
   ``eps = A * (S * 2^-53 + |S - M|)``: fl() is exact to half an ulp, 2^-53 relative (no
   underflow: acc * S is 0 or above 2^-1022), and acc converts to double exactly.
2. Outputs clamp to ``[lo, hi] = [act_min - zp_out, act_max - zp_out]``. For the clamped f and
   g to differ, fl(acc * S) and acc * M must round to different sides of some boundary
   ``k + 1/2`` with ``lo <= k < hi``, which then lies between them, so within ``eps`` of
   ``acc * M``; for every other acc they agree.
3. So every acc in the layer's range with ``|acc * M - (k + 1/2)| <= eps`` for such a k (a few
   per boundary: eps / M is at most about A * 2^-30) is evaluated with both formulas, f with the
   NumPy reference's ``scale_f64`` (the spec), g in int64, and the clamped values must agree.
   The bounds use exact rational arithmetic (fractions.Fraction).

A layer whose check fails (a near-tie: the neighbours M0 +- 1 are tried too) keeps f64 in double
precision; export-c's summary and README name such layers.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from ..reference import params as P
from ..reference.fixedpoint import quantize_multiplier, scale_f64

POLICY_F64_INT = 4  # EC_ROUND_F64_INT in fixedpoint.h: firmware only, never a model policy


def accumulator_range(w: np.ndarray, b: np.ndarray, input_offset: int):
    """Per output channel, the least and greatest ``b + sum (x + input_offset) * w`` over every
    int8 input x: each weight takes its own extreme independently."""
    w64 = w.reshape(w.shape[0], -1).astype(np.int64)
    lo_x, hi_x = -128 + input_offset, 127 + input_offset
    pos = np.where(w64 > 0, w64, 0).sum(axis=1)
    neg = np.where(w64 < 0, w64, 0).sum(axis=1)
    b64 = b.astype(np.int64)
    return b64 + pos * lo_x + neg * hi_x, b64 + pos * hi_x + neg * lo_x


def _g(acc: np.ndarray, m0: int, t: int) -> np.ndarray:
    """ec_mbqm_away: floor((acc * M0 + 2^(t-1) - [acc < 0]) / 2^t), exactly (|acc * M0| < 2^62)."""
    return (acc * m0 + (1 << (t - 1)) - (acc < 0)) >> t


def _near_boundaries(scale: float, m0: int, t: int, lo: int, hi: int, a_min: int,
                     a_max: int) -> np.ndarray:
    """The accumulators of [a_min, a_max] within eps of a boundary k + 1/2, lo <= k < hi (a
    superset: around each boundary's acc = (k + 1/2) / M, every acc within eps / M + 1)."""
    eps = max(abs(a_min), abs(a_max)) * (Fraction(scale) / (1 << 53)
                                         + abs(Fraction(scale) - Fraction(m0, 1 << t)))
    radius = math.ceil(eps * (1 << t) / m0) + 1
    centers = np.array([((2 * k + 1) << (t - 1)) // m0 for k in range(lo, hi)], np.int64)
    accs = (centers[:, None] + np.arange(-radius, radius + 2, dtype=np.int64)).ravel()
    return accs[(accs >= a_min) & (accs <= a_max)]


@functools.lru_cache(maxsize=256)  # a layer exported again (another target) is not rechecked
def _equal_on(scale: float, m0: int, t: int, lo: int, hi: int, a_min: int, a_max: int) -> bool:
    """clamp(f) == clamp(g) on every acc in [a_min, a_max] (steps 1-3 of the module doc)."""
    acc = _near_boundaries(scale, m0, t, lo, hi, a_min, a_max)
    f = np.clip(scale_f64(acc, scale), lo, hi)
    return bool(np.array_equal(f, np.clip(_g(acc, m0, t), lo, hi)))


def integer_rescale(rq: P.Requant, acc_min: np.ndarray, acc_max: np.ndarray):
    """A Requant with policy f64-int equal to ``rq`` (policy f64) on every accumulator in
    ``[acc_min[c], acc_max[c]]``, or None (keep f64). Per-tensor scales (all equal) are checked
    once over the union of the channels' ranges."""
    scales = np.asarray(rq.real_scale, np.float64).ravel()
    if scales.size > 1 and np.all(scales == scales[0]):
        scales = scales[:1]
        acc_min, acc_max = np.array([acc_min.min()]), np.array([acc_max.max()])
    lo, hi = rq.act_min - rq.output_offset, rq.act_max - rq.output_offset
    mults, shifts = [], []
    for c, scale in enumerate(scales.tolist()):
        if not (scale > 0 and math.isfinite(scale)):
            return None
        a_min = int(acc_min[min(c, acc_min.size - 1)])
        a_max = int(acc_max[min(c, acc_max.size - 1)])
        m0, shift = quantize_multiplier(scale)
        t = 31 - shift
        if m0 == 0 or not 1 <= t <= 62:
            return None
        for cand in (m0, m0 - 1, m0 + 1):
            if cand < (1 << 31) and _equal_on(scale, cand, t, lo, hi, a_min, a_max):
                mults.append(cand)
                shifts.append(shift)
                break
        else:
            return None
    return P.Requant(np.array(mults, np.int32), np.array(shifts, np.int32), rq.real_scale,
                     POLICY_F64_INT, rq.output_offset, rq.act_min, rq.act_max)
