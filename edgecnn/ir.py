"""The one IR for float and int8 models: a DAG of named tensors.

Layout: activations are NHWC with batch 1 (``(1, H, W, C)``, or ``(1, N)`` after a flatten).
A float graph holds float32 weights and biases; an int8 graph holds int8 weights in
[-127, 127] (zero point 0, per-channel scales) and int32 biases with scale ``s_in * s_w[c]``,
and every activation tensor carries its scale and zero point (DESIGN.md section 3).

A graph has one input tensor, nodes in topological order and one or more output tensor names.
Each node (an op from ``edgecnn.ops``: one module per op holds its node class and everything
about it) names the tensors it reads (``inputs``) and owns the tensor it writes (``output``).
Every walker goes by tensor name: ``graph.tensor(name)``, ``graph.producer(name)``,
``graph.consumers(name)``; nothing assumes that the previous node is the producer.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import ArchitectureError

ACTIVATIONS = ("none", "relu", "relu6")  # activations that fuse into an op (TFLite fused act.)
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

    def same_as(self, other: Optional["QuantParams"]) -> bool:
        return (other is not None and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


@dataclass(frozen=True, eq=False)
class Tensor:
    """An activation flowing between nodes. Shapes include the batch dimension (1)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32" | "int8"
    quant: Optional[QuantParams] = None


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
        """Input channels: 1 for "L", 3 for "RGB"."""
        return 1 if self.color == "L" else 3


@dataclass(frozen=True, eq=False)
class Graph:
    input: Tensor
    nodes: tuple  # op nodes (edgecnn.ops) in topological order
    outputs: tuple[str, ...]  # names of the output tensors, in order
    preprocess: Optional[Preprocess] = None
    labels: tuple[str, ...] = ()
    name: str = "model"

    @functools.cached_property
    def _index(self):
        """(tensor by name, producer node by tensor name, consumer nodes by tensor name)."""
        tensors, producer, consumers = {self.input.name: self.input}, {}, {}
        for node in self.nodes:
            for name in node.inputs:
                consumers.setdefault(name, []).append(node)
            if node.output is not None:
                tensors[node.output.name] = node.output
                producer[node.output.name] = node
        return tensors, producer, consumers

    def tensor(self, name: str) -> Tensor:
        try:
            return self._index[0][name]
        except KeyError:
            raise ArchitectureError(f"no tensor named {name!r} in the graph") from None

    def has_tensor(self, name: str) -> bool:
        return name in self._index[0]

    def tensors(self) -> list[Tensor]:
        """Every activation tensor: the input first, then each node's output in order."""
        return [self.input] + [node.output for node in self.nodes]

    def producer(self, name: str):
        """The node that writes tensor ``name`` (None for the graph input)."""
        return self._index[1].get(name)

    def consumers(self, name: str) -> list:
        """The nodes that read tensor ``name``, in topological order."""
        return list(self._index[2].get(name, ()))

    def uses(self, name: str) -> int:
        """How many readers tensor ``name`` has, the graph's outputs counting as readers."""
        return len(self._index[2].get(name, ())) + self.outputs.count(name)

    @property
    def output(self) -> Tensor:
        """The output tensor of a single-output graph."""
        if len(self.outputs) != 1:
            raise ArchitectureError(f"{self.name} has {len(self.outputs)} outputs "
                                    f"({', '.join(self.outputs)}); name the one you want")
        return self.tensor(self.outputs[0])

    def output_tensors(self) -> list[Tensor]:
        return [self.tensor(n) for n in self.outputs]

    @property
    def is_quantized(self) -> bool:
        return self.input.dtype == "int8" or any(
            getattr(node, "weight_quant", None) is not None for node in self.nodes)

    def replace(self, **changes) -> "Graph":
        return dataclasses.replace(self, **changes)

    def check(self, where: str = "") -> "Graph":
        """Raise ArchitectureError unless the nodes form a DAG in topological order: unique
        tensor names, every input written before it is read, every output exists."""
        prefix = f"{where}: " if where else ""
        seen = {self.input.name}
        for node in self.nodes:
            if node.output is None:
                raise ArchitectureError(f"{prefix}{node.name}: has no output tensor")
            for name in node.inputs:
                if name not in seen:
                    raise ArchitectureError(
                        f"{prefix}{node.name}: reads tensor {name!r}, which no earlier node "
                        "writes (a dangling name, a cycle, or nodes out of order)")
            if node.output.name in seen:
                raise ArchitectureError(f"{prefix}{node.name}: writes tensor "
                                        f"{node.output.name!r}, which is already written")
            seen.add(node.output.name)
        if not self.outputs:
            raise ArchitectureError(f"{prefix}the graph names no output tensor")
        for name in self.outputs:
            if name not in seen:
                raise ArchitectureError(f"{prefix}graph output {name!r} is not a tensor of "
                                        "the graph")
        return self


def replace(node, **changes):
    """A copy of a frozen node with some fields changed."""
    return dataclasses.replace(node, **changes)


def sequential(input_tensor: Tensor, nodes, **graph_fields) -> Graph:
    """A chain: each node reads the tensor the previous one wrote; the last one is the output.

    Nodes whose ``output`` is None get a placeholder tensor named after the node; shapes
    are filled by ``shapes.infer_shapes``.
    """
    wired = []
    prev = input_tensor.name
    for node in nodes:
        out = node.output or Tensor(node.name, (), input_tensor.dtype)
        node = dataclasses.replace(node, inputs=(prev,), output=out)
        wired.append(node)
        prev = out.name
    return Graph(input_tensor, tuple(wired), (prev,), **graph_fields)
