"""Reference int8 ADD: LiteRT 2.3 BUILTIN_REF (reference_integer_ops::Add / BroadcastAdd6DSlow).

x1, x2 int8 of any NumPy-broadcastable shapes (checked at prepare by params.broadcast_shape);
out int8 of the broadcast shape. Per element (AddFunc; every shift <= 0, see AddParams):
  s_i = RDBP(SRDHM((x_i - zp_i) << 20, M_i), -shift_i)        |x_i - zp_i| <= 255: < 2^28
  y   = RDBP(SRDHM(s_1 + s_2, M_out), -shift_out) + zp_out     |s_1 + s_2| <= 255 * 2^20
then the fused activation clamp. The broadcast path runs the very same AddFunc per element.
out may be x1 or x2 (same shape): everything is computed before ``out`` is written.
"""

from __future__ import annotations

import numpy as np

from . import fixedpoint as fp
from .params import AddParams


def _scaled(x: np.ndarray, offset: int, left_shift: int, multiplier: int, shift: int):
    shifted = (x.astype(np.int64) + offset) << left_shift
    return fp.rounding_divide_by_pot(fp.saturating_rounding_doubling_high_mul(shifted, multiplier),
                                     -shift)


def add_s8(x1: np.ndarray, x2: np.ndarray, p: AddParams, out: np.ndarray) -> None:
    s1 = _scaled(x1, p.input1_offset, p.left_shift, p.input1_multiplier, p.input1_shift)
    s2 = _scaled(x2, p.input2_offset, p.left_shift, p.input2_multiplier, p.input2_shift)
    raw = fp.rounding_divide_by_pot(
        fp.saturating_rounding_doubling_high_mul(s1 + s2, p.output_multiplier), -p.output_shift)
    out[...] = np.clip(raw + p.output_offset, p.act_min, p.act_max)
