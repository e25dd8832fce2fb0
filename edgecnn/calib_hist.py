"""Activation histograms for calibration, and the MSE-optimal int8 range over one.

The histogram (``Histogram``) has ``BINS`` bins on each side of zero, all of width ``w``, a
power of two, with bin ``k`` holding ``[k*w, (k+1)*w)`` (mirrored for negatives), plus an exact
count of zeros (ReLU outputs are mostly exact zeros, which int8 represents exactly). ``w``
is the smallest power of two with ``max|x| < BINS * w``; when a batch goes past that, ``w``
doubles and pairs of bins merge. Dividing by a power of two is exact in floating point, so
``floor(x / 2w) == floor(floor(x / w) / 2)`` and the merged counts equal counting at the
final width directly: the histogram depends only on the values seen, never on the batch
order or size.

The MSE search (``mse_range``) picks the ``(lo, hi)`` that minimises the expected squared
error of int8 quantization over the histogram, treating each bin as uniform over its width:

- int8 levels are ``s * j`` for ``j`` in ``[-128 - zp, 127 - zp]`` with the quantizer's own
  ``s = (hi - lo) / 255`` and ``zp = round(-128 - lo / s)`` (quantize.activation_quant);
- inside ``[lo_q - s/2, hi_q + s/2]`` the error is the rounding sawtooth ``x - s*round(x/s)``,
  whose square integrates to ``s^3 / 12`` per period (``_sawtooth_integral``);
- outside, values clip to the end level ``lo_q`` or ``hi_q``: ``(x - hi_q)^2`` integrates in
  closed form.

So the cost of a range is exact for piecewise-uniform data, smooth in the range, and costs
O(bins) per candidate. Candidates shrink each end from the observed extreme in steps of
0.5% of it down to 2%, one end at a time (the other fixed), for ``ROUNDS`` alternations.
"""

from __future__ import annotations

import math

import numpy as np

from .quantize import activation_quant

BINS = 1024  # per side; the MSE search resolves ranges to 1/BINS of the observed extreme
CANDIDATE_FRACTIONS = np.linspace(0.02, 1.0, 197)  # of the observed extreme, 0.5% steps
ROUNDS = 3


class Histogram:
    """Counts of one tensor's values on a power-of-two grid (module docstring)."""

    def __init__(self):
        self.width = 0.0  # 0 until a nonzero value arrives
        self.neg = np.zeros(BINS, np.int64)  # neg[k]: values in (-(k+1)w, -kw]
        self.pos = np.zeros(BINS, np.int64)  # pos[k]: values in [kw, (k+1)w), x != 0
        self.zeros = 0
        self.min = math.inf
        self.max = -math.inf

    @property
    def count(self) -> int:
        return int(self.neg.sum() + self.pos.sum() + self.zeros)

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).ravel()
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            x = x[np.isfinite(x)]  # a NaN/inf activation has no int8 range; calibrate.py reports it
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        nonzero = x[x != 0]
        self.zeros += x.size - nonzero.size
        if nonzero.size == 0:
            return
        self._grow_to(float(np.abs(nonzero).max()))
        k = np.floor(np.abs(nonzero) / self.width).astype(np.int64)
        self.pos += np.bincount(k[nonzero > 0], minlength=BINS)
        self.neg += np.bincount(k[nonzero < 0], minlength=BINS)

    def _grow_to(self, peak: float) -> None:
        """Double the width (merging bin pairs) until ``peak < BINS * width``."""
        if self.width == 0.0:
            self.width = 2.0 ** (math.floor(math.log2(peak / BINS)) - 1)
        while peak >= BINS * self.width:
            self.width *= 2.0
            for side in (self.neg, self.pos):
                merged = side[0::2] + side[1::2]
                side[:] = 0
                side[:BINS // 2] = merged

    def to_dict(self, merge: int = 16) -> dict:
        """A coarser copy for reports: ``merge`` neighbouring bins summed (exact, same grid)."""
        neg = self.neg.reshape(-1, merge).sum(axis=1)
        pos = self.pos.reshape(-1, merge).sum(axis=1)
        last_pos = int(np.flatnonzero(pos).max()) + 1 if pos.any() else 0
        last_neg = int(np.flatnonzero(neg).max()) + 1 if neg.any() else 0
        return {"width": self.width * merge, "zeros": int(self.zeros),
                "neg": [int(v) for v in neg[:last_neg]], "pos": [int(v) for v in pos[:last_pos]],
                "min": self.min, "max": self.max}


def _sawtooth_integral(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``G(t) = integral from -s/2 to t of (u - s*round(u/s))^2 du``: ``m`` whole periods of
    ``s^3/12`` plus the part of the current one (``r`` is the offset from its level)."""
    m = np.floor(t / s + 0.5)
    r = t - m * s
    half = s / 2.0
    return m * (s * s * s) / 12.0 + (r * r * r + half * half * half) / 3.0


def _clip_integral(a, b, level):
    """``integral from a to b of (x - level)^2 dx`` for a <= b."""
    hi, lo = b - level, a - level
    return (hi * hi * hi - lo * lo * lo) / 3.0


def range_error(lo, hi, left: np.ndarray, right: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Expected squared error summed over bins ``[left, right)`` holding ``counts`` uniform
    values, quantized with the int8 parameters of each candidate range (arrays ``lo``, ``hi``
    broadcast against the bins along a new leading axis)."""
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)[:, None]
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)[:, None]
    s = (hi - lo) / 255.0
    zp = np.clip(np.floor(-128.0 - lo / s + 0.5), -128, 127)  # ties never matter at this scale
    lo_q, hi_q = (-128.0 - zp) * s, (127.0 - zp) * s
    low_edge, high_edge = lo_q - s / 2, hi_q + s / 2  # where rounding gives way to clipping
    a = np.broadcast_to(left, s.shape[:1] + left.shape)
    b = np.broadcast_to(right, a.shape)
    inner_a, inner_b = np.clip(a, low_edge, high_edge), np.clip(b, low_edge, high_edge)
    total = _sawtooth_integral(inner_b, s) - _sawtooth_integral(inner_a, s)
    total += _clip_integral(np.minimum(a, low_edge), np.minimum(b, low_edge), lo_q)
    total += _clip_integral(np.maximum(a, high_edge), np.maximum(b, high_edge), hi_q)
    return (total * (counts / (right - left))).sum(axis=1)


def mse_range(h: Histogram) -> tuple[float, float]:
    """The (lo, hi) minimising the int8 quantization MSE over ``h`` (module docstring)."""
    if h.width == 0.0:  # only zeros (or nothing): any range is exact
        return (min(h.min, 0.0) if h.count else 0.0, max(h.max, 0.0) if h.count else 0.0)
    k = np.arange(BINS, dtype=np.float64)
    keep_pos, keep_neg = h.pos > 0, h.neg > 0
    left = np.concatenate([-(k[keep_neg] + 1) * h.width, k[keep_pos] * h.width])
    right = np.concatenate([-k[keep_neg] * h.width, (k[keep_pos] + 1) * h.width])
    counts = np.concatenate([h.neg[keep_neg], h.pos[keep_pos]]).astype(np.float64)
    lo, hi = min(h.min, 0.0), max(h.max, 0.0)
    lo_cands, hi_cands = lo * CANDIDATE_FRACTIONS, hi * CANDIDATE_FRACTIONS
    for _ in range(ROUNDS):
        if hi > 0:
            hi = float(hi_cands[np.argmin(range_error(np.full(hi_cands.shape, lo), hi_cands,
                                                      left, right, counts))])
        if lo < 0:
            lo = float(lo_cands[np.argmin(range_error(lo_cands, np.full(lo_cands.shape, hi),
                                                      left, right, counts))])
    return lo, hi


def quantized_range(lo: float, hi: float) -> tuple[float, float]:
    """The real range int8 covers once the quantizer has widened ``[lo, hi]`` to include 0."""
    q = activation_quant(lo, hi)
    scale, zp = q.scalar()
    return (-128 - zp) * scale, (127 - zp) * scale
