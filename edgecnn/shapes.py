"""Shape arithmetic: the lecture's ``W2 = (W1 - F + 2P) / S + 1`` and TFLite's SAME padding,
and shape inference over a graph (each op's rule is its ``out_shape``).

Every function here is pure integer arithmetic on NHWC shapes with batch 1.
"""

from __future__ import annotations

import dataclasses
import math

from . import ir


def conv_output_size(in_size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    """Output length of a conv/pool window sweep (floor mode): (W1 - F_eff + P) // S + 1."""
    effective = dilation * (kernel - 1) + 1
    return (in_size + pad_before + pad_after - effective) // stride + 1


def same_padding(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite's SAME: output ceil(in / stride), the extra pixel of an odd total goes after."""
    out = math.ceil(in_size / stride)
    effective = dilation * (kernel - 1) + 1
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2, total - total // 2


def padding_kind(in_hw, kernel, stride, padding, dilation=(1, 1)) -> str:
    """'valid', 'same' or 'explicit': how a TFLite op can express ``padding``."""
    if all(p == 0 for p in padding):
        return "valid"
    same = same_padding(in_hw[0], kernel[0], stride[0], dilation[0]) + \
        same_padding(in_hw[1], kernel[1], stride[1], dilation[1])
    return "same" if tuple(padding) == same else "explicit"


def infer_shapes(graph: ir.Graph) -> ir.Graph:
    """Fill every node's output shape from its inputs' (by tensor name), checking each node
    fits; the graph must be a DAG in topological order."""
    graph.check()
    shapes = {graph.input.name: tuple(graph.input.shape)}
    nodes = []
    for node in graph.nodes:
        shape = tuple(node.out_shape([shapes[name] for name in node.inputs]))
        shapes[node.output.name] = shape
        nodes.append(dataclasses.replace(node, output=dataclasses.replace(node.output,
                                                                          shape=shape)))
    return graph.replace(nodes=tuple(nodes))
