"""Run a float IR graph in NumPy: the calibration engine and the float baseline.

Batched: the input is (N, H, W, C) float32, already preprocessed. An optional observer is
called with (tensor_name, array) for the input and every layer output, which is how
calibration collects ranges without the runtime knowing about statistics.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from . import ir
from .errors import UnsupportedOpError
from .reference import float_ops as F


def _run_layer(layer, x: np.ndarray) -> np.ndarray:
    if isinstance(layer, ir.Conv2D):
        y = F.conv2d_f32(x, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation)
        return F.activation_f32(y, layer.activation)
    if isinstance(layer, ir.FullyConnected):
        return F.activation_f32(F.fully_connected_f32(x, layer.weight, layer.bias), layer.activation)
    if isinstance(layer, ir.MaxPool2D):
        return F.activation_f32(F.max_pool_f32(x, layer.kernel, layer.stride, layer.padding),
                                layer.activation)
    if isinstance(layer, ir.AvgPool2D):
        return F.activation_f32(F.avg_pool_f32(x, layer.kernel, layer.stride, layer.padding),
                                layer.activation)
    if isinstance(layer, ir.Pad):
        t, b, l, r = layer.padding
        return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    if isinstance(layer, ir.Reshape):
        return x.reshape((x.shape[0],) + tuple(layer.output.shape[1:]))
    if isinstance(layer, ir.Activation):
        return F.activation_f32(x, layer.kind)
    if isinstance(layer, ir.Softmax):
        return F.softmax_f32(x, layer.beta)
    if isinstance(layer, ir.BatchNorm):
        return F.batchnorm_f32(x, layer.gamma, layer.beta, layer.mean, layer.var, layer.eps)
    raise UnsupportedOpError(
        f"{layer.name}: {type(layer).__name__} has no float implementation; the float runtime "
        "runs Conv2D, FullyConnected, pools, Pad, Reshape, activations, Softmax and BatchNorm")


def run_float(graph: ir.Graph, x: np.ndarray,
              observer: Optional[Callable[[str, np.ndarray], None]] = None) -> np.ndarray:
    """Run ``graph`` on a batch ``x`` (N, H, W, C) float32 and return the last output."""
    x = np.asarray(x, np.float32)
    if observer is not None:
        observer(graph.input.name, x)
    for layer in graph.layers:
        x = _run_layer(layer, x).astype(np.float32, copy=False)
        if observer is not None:
            observer(layer.output.name, x)
    return x
