"""Fold BatchNorm into the convolution (or dense layer) before it: a pure float pass.

For BN ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` after ``x = W * in + b``:
``W' = W * k`` (k = gamma / sqrt(var + eps) per output channel) and ``b' = (b - mean) * k + beta``.
The arithmetic is done in float64 and stored as float32; ``eps`` is the one the source stored.

A BN folds only into a producer whose output it alone reads: a conv whose output also feeds a
skip connection keeps its own output, and the BN then becomes its own op, a 1x1 depthwise
convolution with weights k and bias beta - mean * k (exact in float; TFLite has no BN op).
"""

from __future__ import annotations

import numpy as np

from . import ir, ops
from .errors import ArchitectureError

_FOLDS_INTO = ("Conv2D", "DepthwiseConv2D", "FullyConnected")


def fold_batchnorm(graph: ir.Graph) -> ir.Graph:
    """A graph with every BatchNorm merged into its producer, or made a 1x1 depthwise conv."""
    nodes: list = []
    position: dict = {}  # tensor name -> index in ``nodes`` of the node that writes it
    for node in graph.nodes:
        if isinstance(node, ops.BatchNorm):
            src = node.inputs[0]
            k = position.get(src)
            prev = nodes[k] if k is not None else None
            if (prev is not None and type(prev).__name__ in _FOLDS_INTO
                    and prev.activation == "none" and graph.uses(src) == 1):
                nodes[k] = _fold_into(prev, node)
                position[node.output.name] = k
                continue
            node = _as_depthwise(node, graph, src)
        position[node.output.name] = len(nodes)
        nodes.append(node)
    return graph.replace(nodes=tuple(nodes))


def _scale_shift(bn):
    k = bn.gamma.astype(np.float64) / np.sqrt(bn.var.astype(np.float64) + bn.eps)
    return k, bn.beta.astype(np.float64) - bn.mean.astype(np.float64) * k


def _fold_into(node, bn):
    """``node`` computing ``bn(node(x))``; its output becomes the BN's output tensor."""
    depthwise = type(node).__name__ == "DepthwiseConv2D"
    c_out = node.weight.shape[-1] if depthwise else node.weight.shape[0]
    if bn.gamma.shape != (c_out,):
        raise ArchitectureError(
            f"{bn.name}: {bn.gamma.shape[0]} channels but {node.name} has {c_out} outputs")
    k, shift = _scale_shift(bn)
    axis_shape = (1, 1, 1, -1) if depthwise else (-1,) + (1,) * (node.weight.ndim - 1)
    w = node.weight.astype(np.float64) * k.reshape(axis_shape)
    b = node.bias.astype(np.float64) if node.bias is not None else np.zeros(c_out)
    b = b * k + shift
    return ir.replace(node, weight=w.astype(np.float32), bias=b.astype(np.float32),
                      output=bn.output)


def _as_depthwise(bn, graph: ir.Graph, src: str):
    x = graph.tensor(src)
    if not hasattr(ops, "DepthwiseConv2D") or len(x.shape) != 4:
        prev = graph.producer(src)
        kind = type(prev).__name__ if prev is not None else "the model input"
        raise ArchitectureError(
            f"{bn.name}: BatchNorm follows {kind} (or a tensor other layers also read), so it "
            "cannot be folded; edgecnn folds BN into the conv or dense layer that feeds only it")
    k, shift = _scale_shift(bn)
    return ops.DepthwiseConv2D(bn.name, k.astype(np.float32).reshape(1, 1, 1, -1),
                               shift.astype(np.float32), inputs=bn.inputs, output=bn.output)
