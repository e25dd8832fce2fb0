"""Fold BatchNorm into the convolution (or dense layer) before it: a pure float pass.

For BN ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` after ``x = W * in + b``:
``W' = W * k`` (k = gamma / sqrt(var + eps) per output channel) and ``b' = (b - mean) * k + beta``.
The arithmetic is done in float64 and stored as float32; ``eps`` is the one the source stored.
"""

from __future__ import annotations

import numpy as np

from . import ir
from .errors import ArchitectureError


def fold_batchnorm(graph: ir.Graph) -> ir.Graph:
    """A graph with every BatchNorm merged into the Conv2D/FullyConnected that feeds it."""
    layers: list = []
    for layer in graph.layers:
        if not isinstance(layer, ir.BatchNorm):
            layers.append(layer)
            continue
        prev = layers[-1] if layers else None
        if not isinstance(prev, (ir.Conv2D, ir.FullyConnected)) or prev.activation != "none":
            kind = type(prev).__name__ if prev is not None else "the model input"
            raise ArchitectureError(
                f"{layer.name}: BatchNorm follows {kind}, not a convolution or dense layer "
                "without activation, so it cannot be folded; edgecnn folds BN only after conv/dense")
        layers[-1] = _fold_one(prev, layer)
    return graph.replace(layers=ir.chain(graph.input, layers))


def _fold_one(layer, bn: ir.BatchNorm):
    c_out = layer.weight.shape[0]
    if bn.gamma.shape != (c_out,):
        raise ArchitectureError(
            f"{bn.name}: {bn.gamma.shape[0]} channels but {layer.name} has {c_out} outputs")
    k = bn.gamma.astype(np.float64) / np.sqrt(bn.var.astype(np.float64) + bn.eps)
    w = layer.weight.astype(np.float64) * k.reshape((-1,) + (1,) * (layer.weight.ndim - 1))
    b = layer.bias.astype(np.float64) if layer.bias is not None else np.zeros(c_out)
    b = (b - bn.mean.astype(np.float64)) * k + bn.beta.astype(np.float64)
    return ir.replace(layer, weight=w.astype(np.float32), bias=b.astype(np.float32))
