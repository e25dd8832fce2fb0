"""Reference int8 FULLY_CONNECTED (the spec), matching LiteRT reference_integer_ops::FullyConnected.

x int8 (N,), w int8 (O, N) in [-127, 127], bias int32 (O,), out int8 (O,).
acc[o] = bias[o] + sum_n (x[n] + input_offset) * w[o, n], then ``requantize`` (the model policy
decides the rounding; LiteRT BUILTIN_REF uses ``f64``).
"""

from __future__ import annotations

import numpy as np

from .params import FCParams, Requant
from .quantize import requantize


def fully_connected_s8(x: np.ndarray, w: np.ndarray, bias: np.ndarray, p: FCParams, rq: Requant,
                       out: np.ndarray) -> None:
    acc = w.astype(np.int64) @ (x.astype(np.int64) + p.input_offset) + bias.astype(np.int64)
    requantize(acc, rq, out)
