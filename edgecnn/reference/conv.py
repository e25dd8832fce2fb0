"""Reference int8 CONV_2D (the spec), matching LiteRT reference_integer_ops::ConvPerChannel.

x int8 (H, W, Cin), w int8 (Cout, KH, KW, Cin) in [-127, 127], bias int32 (Cout,), out int8
(OH, OW, Cout). acc[c] = bias[c] + sum over in-image taps of (x + input_offset) * w: taps outside
the image are skipped, so padding acts as the input zero point. Then ``requantize``.
"""

from __future__ import annotations

import numpy as np

from .params import ConvParams, Requant
from .quantize import requantize


def conv2d_s8(x: np.ndarray, w: np.ndarray, bias: np.ndarray, p: ConvParams, rq: Requant,
              out: np.ndarray) -> None:
    h, wd, _ = x.shape
    oh, ow, cout = out.shape
    _, kh, kw, _ = w.shape
    xs = x.astype(np.int64) + p.input_offset
    ws = w.astype(np.int64)
    acc = np.empty((oh, ow, cout), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            total = bias.astype(np.int64).copy()
            for ky in range(kh):
                iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h
                if not 0 <= iy < h:
                    continue
                for kx in range(kw):
                    ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w
                    if 0 <= ix < wd:
                        total += ws[:, ky, kx, :] @ xs[iy, ix]
            acc[oy, ox] = total
    requantize(acc, rq, out)
