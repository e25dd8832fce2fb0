"""Reference int8 MAX_POOL_2D / AVERAGE_POOL_2D (the spec), matching LiteRT reference_integer_ops.

x int8 (H, W, C), out int8 (OH, OW, C); output scale and zero point equal the input's.
Only in-image taps count: max pool takes the raw int8 max; average pool divides the int32 sum
by the number of valid taps, rounding half away from zero. Both clamp to [act_min, act_max].
"""

from __future__ import annotations

import numpy as np

from .params import PoolParams


def _windows(x: np.ndarray, p: PoolParams, oh: int, ow: int):
    h, w = x.shape[:2]
    for oy in range(oh):
        y0 = oy * p.stride_h - p.pad_top
        ys = slice(max(y0, 0), min(y0 + p.filter_h, h))
        for ox in range(ow):
            x0 = ox * p.stride_w - p.pad_left
            yield oy, ox, x[ys, max(x0, 0):min(x0 + p.filter_w, w)]


def max_pool_s8(x: np.ndarray, p: PoolParams, out: np.ndarray) -> None:
    oh, ow, _ = out.shape
    for oy, ox, win in _windows(x, p, oh, ow):
        out[oy, ox] = np.clip(win.max(axis=(0, 1)), p.act_min, p.act_max)


def avg_pool_s8(x: np.ndarray, p: PoolParams, out: np.ndarray) -> None:
    oh, ow, _ = out.shape
    for oy, ox, win in _windows(x, p, oh, ow):
        total = win.astype(np.int64).sum(axis=(0, 1))
        count = win.shape[0] * win.shape[1]
        # (|s| + count/2) / count with the sign put back: ties away from zero, as TFLite does
        avg = np.sign(total) * ((np.abs(total) + count // 2) // count)
        out[oy, ox] = np.clip(avg, p.act_min, p.act_max)
