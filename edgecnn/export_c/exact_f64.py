"""LiteRT's double-precision FULLY_CONNECTED rescale (policy f64) as integer arithmetic, proved
exact per layer, so firmware on a core without a double FPU matches LiteRT BUILTIN_REF with no
soft-float.

f64 computes ``y = round_half_away(fl(acc * S))``: acc an int32, S the double
``s_in * s_w / s_out``, fl() one IEEE double rounding. The firmware policy f64-int computes
``g(acc) = round_half_away(acc * M0 / 2^t)`` exactly in 64-bit integers (``ec_mbqm_away`` in
cython_kernels/fixedpoint.h), with ``M0 * 2^-t`` the nearest 31-bit approximation of S. The two
can differ only where ``acc * S`` lies within about ``|acc * S| * 2^-31`` of a half-integer, which
no general bound rules out, so each layer is checked exhaustively:

- Only ``clamp(y + zp_out, act_min, act_max)`` reaches the output. With ``lo = act_min - zp_out``
  and ``hi = act_max - zp_out``, every acc at or below ``A0 = floor((lo - 1) / S)`` gives
  ``f(acc) <= f(A0) <= lo`` and the same for g, because both are monotonic in acc (an IEEE
  product with a positive constant and round-half-away are monotonic, and so is the exact
  rational rounding); likewise above ``A1 = ceil((hi + 1) / S)``. ``f, g <= lo`` at A0 (``>= hi``
  at A1) is evaluated, not assumed, wherever the layer's accumulators reach past it.
- Inside ``[A0, A1]`` (about 257 / S values) intersected with the accumulators the layer can
  produce at all (bias + the extreme sums of the weights times inputs in [-128, 127]), every
  acc is evaluated with both formulas: f with the NumPy reference's ``scale_f64`` (the spec),
  g in int64.

A layer whose check would evaluate more than ``MAX_CHECKED`` accumulators, or that fails it (a
near-tie; the neighbours M0 +- 1 are tried too), keeps f64 in double precision; export-c's summary
and README name such layers.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..reference import params as P
from ..reference.fixedpoint import quantize_multiplier, scale_f64

POLICY_F64_INT = 4  # EC_ROUND_F64_INT in fixedpoint.h: firmware only, never a model policy
MAX_CHECKED = 1 << 25  # accumulators evaluated per layer (about 1 s of NumPy)
_CHUNK = 1 << 20


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


@functools.lru_cache(maxsize=256)  # a layer exported again (another target) is not rechecked
def _equal_on(scale: float, m0: int, t: int, lo: int, hi: int, a_min: int, a_max: int) -> bool:
    """clamp(f) == clamp(g) on every acc in [a_min, a_max]: evaluated inside [A0, A1], and both
    at or beyond the clamp at A0 (A1) where the range reaches past it."""
    a0, a1 = math.floor((lo - 1) / scale), math.ceil((hi + 1) / scale)
    if a0 > a_min:
        end = np.array([a0], np.int64)
        if not (scale_f64(end, scale)[0] <= lo and _g(end, m0, t)[0] <= lo):
            return False
    if a1 < a_max:
        end = np.array([a1], np.int64)
        if not (scale_f64(end, scale)[0] >= hi and _g(end, m0, t)[0] >= hi):
            return False
    start, stop = max(a0, a_min), min(a1, a_max)
    for first in range(start, stop + 1, _CHUNK):
        acc = np.arange(first, min(first + _CHUNK, stop + 1), dtype=np.int64)
        f = np.clip(scale_f64(acc, scale), lo, hi)
        if not np.array_equal(f, np.clip(_g(acc, m0, t), lo, hi)):
            return False
    return True


def integer_rescale(rq: P.Requant, acc_min: np.ndarray, acc_max: np.ndarray):
    """A Requant with policy f64-int equal to ``rq`` (policy f64) on every accumulator in
    ``[acc_min[c], acc_max[c]]``, or None (keep f64). Per-tensor scales (all equal) are checked
    once over the union of the channels' ranges."""
    scales = np.asarray(rq.real_scale, np.float64).ravel()
    if scales.size > 1 and np.all(scales == scales[0]):
        scales = scales[:1]
        acc_min, acc_max = np.array([acc_min.min()]), np.array([acc_max.max()])
    lo, hi = rq.act_min - rq.output_offset, rq.act_max - rq.output_offset
    budget = MAX_CHECKED
    mults, shifts = [], []
    for c, scale in enumerate(scales.tolist()):
        if not (scale > 0 and math.isfinite(scale)):
            return None
        a_min = int(acc_min[min(c, acc_min.size - 1)])
        a_max = int(acc_max[min(c, acc_max.size - 1)])
        width = min(math.ceil((hi + 1) / scale), a_max) - max(math.floor((lo - 1) / scale), a_min)
        budget -= max(width, 0)
        if budget < 0:
            return None
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
