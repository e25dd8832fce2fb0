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
