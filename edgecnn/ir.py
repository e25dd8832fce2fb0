"""The one IR for float and int8 graphs.

Layout: activations are NHWC with batch 1 (shape ``(1, H, W, C)``, or ``(1, N)`` after a
flatten). Conv weights are OHWI ``(C_out, KH, KW, C_in)`` as in TFLite; fully connected
weights are ``(C_out, C_in)``. A float graph holds float32 weights and biases; an int8 graph
holds int8 weights in [-127, 127] (zero point 0, per-channel scales on axis 0) and int32
biases with scale ``s_in * s_w[c]``, and every activation tensor carries its scale and
zero point (DESIGN.md section 3).

A graph is an ordered tuple of layers. Each layer names the tensors it reads (``inputs``)
and owns the tensor it writes (``output``); graphs are sequential today, and the names keep
the door open to a DAG (ADD, concat) without changing the layer classes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

ACTIVATIONS = ("none", "relu", "relu6")  # activations that fuse into conv / fully connected
STANDALONE_ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid")


@dataclass(frozen=True, eq=False)
class QuantParams:
    """``real = (q - zero_point) * scale``; per tensor (length 1) or per channel on ``axis``."""

    scale: np.ndarray  # float32, shape (1,) or (C,)
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int = 0

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> "QuantParams":
        return QuantParams(np.array([scale], np.float32), np.array([zero_point], np.int64))

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def scalar(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantization."""
        return float(self.scale[0]), int(self.zero_point[0])


@dataclass(frozen=True, eq=False)
class Tensor:
    """An activation flowing between layers. Shapes include the batch dimension (1)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32" | "int8"
    quant: Optional[QuantParams] = None


@dataclass(frozen=True, eq=False)
class Conv2D:
    name: str
    weight: np.ndarray  # OHWI; float32, or int8 in [-127, 127]
    bias: Optional[np.ndarray]  # (C_out,) float32, or int32 with scale s_in * s_w[c]
    stride: tuple[int, int] = (1, 1)  # (h, w)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, bottom, left, right), explicit
    dilation: tuple[int, int] = (1, 1)
    activation: str = "none"  # fused: one of ACTIVATIONS
    weight_quant: Optional[QuantParams] = None  # int8 graphs: per-channel, axis 0
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None
    bias_quant: Optional[QuantParams] = None  # as read from a .tflite (LiteRT's 0.02 rule)


@dataclass(frozen=True, eq=False)
class FullyConnected:
    name: str
    weight: np.ndarray  # (C_out, C_in); input is flattened NHWC (row-major H, W, C)
    bias: Optional[np.ndarray]
    activation: str = "none"
    weight_quant: Optional[QuantParams] = None  # per tensor or per channel (axis 0)
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None
    bias_quant: Optional[QuantParams] = None  # as read from a .tflite (LiteRT's 0.02 rule)


@dataclass(frozen=True, eq=False)
class MaxPool2D:
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # out-of-image taps are skipped
    activation: str = "none"
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class AvgPool2D:
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # divides by the number of valid taps
    activation: str = "none"
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class Pad:
    """Spatial zero padding; in int8 the pad value is the input zero point (real 0.0)."""

    name: str
    padding: tuple[int, int, int, int]  # (top, bottom, left, right)
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class Reshape:
    """Flatten or reshape; the new shape is ``output.shape``. Row-major NHWC order."""

    name: str
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class Activation:
    name: str
    kind: str  # one of STANDALONE_ACTIVATIONS
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class Softmax:
    name: str
    beta: float = 1.0
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """Float graphs only: ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` per channel.

    ``eps`` comes from the source model (1e-5 in PyTorch, 1e-3 in Keras); fold.py removes it.
    """

    name: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class Quantize:
    """float32 -> int8 at the graph boundary: ``q = round(x / scale) + zp``, clamped."""

    name: str
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


@dataclass(frozen=True, eq=False)
class Dequantize:
    """int8 -> float32: ``(q - zp) * scale``."""

    name: str
    inputs: tuple[str, ...] = ()
    output: Optional[Tensor] = None


Layer = Union[Conv2D, FullyConnected, MaxPool2D, AvgPool2D, Pad, Reshape, Activation, Softmax,
              BatchNorm, Quantize, Dequantize]
LAYER_TYPES = (Conv2D, FullyConnected, MaxPool2D, AvgPool2D, Pad, Reshape, Activation, Softmax,
               BatchNorm, Quantize, Dequantize)


@dataclass(frozen=True)
class Preprocess:
    """How ``infer`` turns an image file into the model input (stored in the .tflite metadata).

    Pixels are read as ``color`` ("L" or "RGB"), resized so the shorter side is ``resize``
    (or straight to ``(height, width)`` when resize is 0), center-cropped to
    ``(height, width)``, scaled to [0, 1], optionally inverted (``1 - x``), then normalized
    per channel: ``(x - mean[c]) / std[c]``.
    """

    height: int
    width: int
    color: str = "L"  # "L" (1 channel) or "RGB" (3 channels)
    resize: int = 0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    invert: bool = False

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3


@dataclass(frozen=True, eq=False)
class Graph:
    input: Tensor
    layers: tuple  # tuple[Layer, ...] in execution order
    preprocess: Optional[Preprocess] = None
    labels: tuple[str, ...] = ()
    name: str = "model"

    @property
    def output(self) -> Tensor:
        return self.layers[-1].output if self.layers else self.input

    @property
    def is_quantized(self) -> bool:
        return any(getattr(layer, "weight_quant", None) is not None for layer in self.layers) or (
            self.input.dtype == "int8")

    def tensors(self) -> list[Tensor]:
        """Every activation tensor, input first, in execution order."""
        return [self.input] + [layer.output for layer in self.layers]

    def replace(self, **changes) -> "Graph":
        return dataclasses.replace(self, **changes)


def replace(layer, **changes):
    """A copy of a frozen layer with some fields changed."""
    return dataclasses.replace(layer, **changes)


def chain(input_tensor: Tensor, layers) -> tuple:
    """Wire a sequential list of layers: each reads the tensor the previous one wrote.

    Layers whose ``output`` is None get a placeholder tensor named after the layer; shapes
    are filled by ``shapes.infer_shapes``.
    """
    wired = []
    prev = input_tensor.name
    for layer in layers:
        out = layer.output or Tensor(layer.name, (), input_tensor.dtype)
        layer = dataclasses.replace(layer, inputs=(prev,), output=out)
        wired.append(layer)
        prev = out.name
    return tuple(wired)
