"""Shape arithmetic: the lecture's ``W2 = (W1 - F + 2P) / S + 1`` and TFLite's SAME padding.

Every function here is pure integer arithmetic on NHWC shapes with batch 1.
"""

from __future__ import annotations

import dataclasses
import math

from . import ir
from .errors import ArchitectureError


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


def _spatial(layer, in_shape, kernel, dilation=(1, 1)):
    if len(in_shape) != 4:
        raise ArchitectureError(
            f"{layer.name}: expects an NHWC image tensor but the previous layer gives shape "
            f"{in_shape}")
    _, h, w, _ = in_shape
    if min(*kernel, *layer.stride, *dilation) < 1 or min(layer.padding) < 0:
        raise ArchitectureError(
            f"{layer.name}: kernel {tuple(kernel)}, stride {tuple(layer.stride)} and dilation "
            f"{tuple(dilation)} must be 1 or more and padding {tuple(layer.padding)} 0 or more")
    t, b, l, r = layer.padding
    oh = conv_output_size(h, kernel[0], layer.stride[0], t, b, dilation[0])
    ow = conv_output_size(w, kernel[1], layer.stride[1], l, r, dilation[1])
    if oh < 1 or ow < 1:
        raise ArchitectureError(
            f"{layer.name}: a {kernel[0]}x{kernel[1]} window with stride {layer.stride} and "
            f"padding {layer.padding} does not fit the {h}x{w} input; use a larger input size")
    return oh, ow


def output_shape(layer, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``layer`` produces from ``in_shape``; raises ArchitectureError if it can't."""
    if isinstance(layer, ir.Conv2D):
        c_out, kh, kw, c_in = layer.weight.shape
        if in_shape[-1] != c_in or len(in_shape) != 4:
            raise ArchitectureError(
                f"{layer.name}: weight shape {tuple(layer.weight.shape)} (OHWI) expects {c_in} input "
                f"channels but the previous layer gives shape {tuple(in_shape)}")
        oh, ow = _spatial(layer, in_shape, (kh, kw), layer.dilation)
        return (1, oh, ow, c_out)
    if isinstance(layer, (ir.MaxPool2D, ir.AvgPool2D)):
        oh, ow = _spatial(layer, in_shape, layer.kernel)
        return (1, oh, ow, in_shape[3])
    if isinstance(layer, ir.Pad):
        if len(in_shape) != 4:
            raise ArchitectureError(f"{layer.name}: padding needs an NHWC tensor, got {in_shape}")
        t, b, l, r = layer.padding
        return (1, in_shape[1] + t + b, in_shape[2] + l + r, in_shape[3])
    if isinstance(layer, ir.FullyConnected):
        c_out, c_in = layer.weight.shape
        n = math.prod(in_shape[1:])
        if n != c_in:
            raise ArchitectureError(
                f"{layer.name}: weight shape {tuple(layer.weight.shape)} expects {c_in} inputs but "
                f"the previous layer gives shape {tuple(in_shape)} ({n} values)")
        return (1, c_out)
    if isinstance(layer, ir.Reshape):
        if layer.output is not None and layer.output.shape:
            if math.prod(layer.output.shape) != math.prod(in_shape):
                raise ArchitectureError(
                    f"{layer.name}: cannot reshape {in_shape} to {layer.output.shape}")
            return tuple(layer.output.shape)
        return (1, math.prod(in_shape[1:]))
    if isinstance(layer, ir.BatchNorm):
        if layer.gamma.shape[0] != in_shape[-1]:
            raise ArchitectureError(
                f"{layer.name}: {layer.gamma.shape[0]} channels but the previous layer gives "
                f"shape {in_shape}")
        return tuple(in_shape)
    return tuple(in_shape)  # elementwise: Activation, Softmax, Quantize, Dequantize


def infer_shapes(graph: ir.Graph) -> ir.Graph:
    """Fill every layer's output shape (sequential graphs), checking each layer fits."""
    shape = tuple(graph.input.shape)
    layers = []
    for layer in graph.layers:
        shape = output_shape(layer, shape)
        out = dataclasses.replace(layer.output, shape=shape)
        layers.append(dataclasses.replace(layer, output=out))
    return graph.replace(layers=tuple(layers))
