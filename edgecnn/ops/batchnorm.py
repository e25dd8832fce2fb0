"""BatchNorm: float graphs only, ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` per channel.

``eps`` comes from the source model (1e-5 in PyTorch, 1e-3 in Keras). edgecnn/fold.py merges
it into the conv or dense layer that feeds it, or, where that layer's output has other readers,
rewrites it as a 1x1 depthwise convolution; no BatchNorm reaches an int8 graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir
from ..errors import ArchitectureError, UnsupportedOpError
from ..reference import float_ops as F
from .base import Cost, Op


@dataclass(frozen=True, eq=False)
class BatchNorm(Op):
    name: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    def out_shape(self, in_shapes):
        x = tuple(in_shapes[0])
        if self.gamma.shape[0] != x[-1]:
            raise ArchitectureError(f"{self.name}: {self.gamma.shape[0]} channels but its input "
                                    f"has shape {x}")
        return x

    def run_float(self, xs):
        return F.batchnorm_f32(xs[0], self.gamma, self.beta, self.mean, self.var, self.eps)

    def quantize(self, q):
        raise UnsupportedOpError(f"{self.name}: BatchNorm cannot be quantized; fold it first")

    def cost(self, in_shapes):
        n = 4 * int(self.gamma.size)  # gamma, beta, running mean and variance: what is stored
        return Cost(params=n, weight_bytes=4 * n)

    def to_tflite(self, w):
        raise UnsupportedOpError(f"{self.name}: BatchNorm cannot be written to .tflite "
                                 "---> HINT: fold BatchNorm into the conv first")
