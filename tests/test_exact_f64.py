"""export-c's integer form of LiteRT's double-precision FC rescale (edgecnn/export_c/exact_f64.py):
whenever it claims f64-int equals f64 on a layer's accumulators, an exhaustive check over every
accumulator that reaches an unclamped output agrees; near-ties that break the 31-bit multiplier
are caught (another multiplier, or f64 kept)."""

from __future__ import annotations

import math

import numpy as np

from edgecnn.export_c.exact_f64 import POLICY_F64_INT, _g, integer_rescale
from edgecnn.reference import params as P
from edgecnn.reference.fixedpoint import quantize_multiplier, scale_f64


def _requant(scale, zp=0, lo=-128, hi=127):
    return P.Requant(np.zeros(1, np.int32), np.zeros(1, np.int32), np.array([scale]),
                     P.POLICY_F64, zp, lo, hi)


def _exhaustive(rq_int, scale, a_min, a_max):
    """clamp(f) == clamp(g) on every acc whose f is not saturated, and at both saturating ends."""
    lo, hi = rq_int.act_min - rq_int.output_offset, rq_int.act_max - rq_int.output_offset
    start = max(a_min, math.floor((lo - 1) / scale) - 2)
    stop = min(a_max, math.ceil((hi + 1) / scale) + 2)
    acc = np.arange(start, stop + 1, dtype=np.int64)
    m0, t = int(rq_int.multiplier[0]), 31 - int(rq_int.shift[0])
    f, g = np.clip(scale_f64(acc, scale), lo, hi), np.clip(_g(acc, m0, t), lo, hi)
    bad = np.flatnonzero(f != g)
    assert bad.size == 0, f"scale {scale!r}: acc {acc[bad[0]]} gives {f[bad[0]]} vs {g[bad[0]]}"


def test_integer_form_agrees_exhaustively_where_it_is_claimed():
    rng = np.random.default_rng(11)
    claimed = 0
    for _ in range(60):
        scale = float(rng.uniform(2e-3, 5e-2))
        zp = int(rng.integers(-128, 100))
        lo = max(-128, zp) if rng.integers(2) else -128
        rq = _requant(scale, zp, lo, 127)
        a_min, a_max = int(rng.integers(-(1 << 24), 0)), int(rng.integers(0, 1 << 24))
        got = integer_rescale(rq, np.array([a_min]), np.array([a_max]))
        if got is not None:
            assert got.policy == POLICY_F64_INT
            _exhaustive(got, scale, a_min, a_max)
            claimed += 1
    assert claimed >= 50  # the proof goes through for nearly every layer


def test_a_near_tie_is_caught():
    """Scales for which QuantizeMultiplier's M0 rounds some tie the other way than double
    arithmetic does: the check must notice (a neighbouring M0 that is exact, or no claim)."""
    rng = np.random.default_rng(5)
    found = 0
    while found < 20:
        acc0, k = int(rng.integers(1001, 200001)) | 1, int(rng.integers(0, 120))
        scale = (k + 0.5) / acc0  # acc0 * scale lands on (or within an ulp of) k + 1/2
        m0, shift = quantize_multiplier(scale)
        acc = np.array([acc0], np.int64)
        if scale_f64(acc, scale)[0] == _g(acc, m0, 31 - shift)[0]:
            continue
        found += 1
        got = integer_rescale(_requant(scale), np.array([0]), np.array([acc0 + 10]))
        if got is not None:
            assert int(got.multiplier[0]) != m0
            _exhaustive(got, scale, 0, acc0 + 10)
