"""The ops: one module per op, one node class per op (see base.py for what a class holds).

Importing this package registers every op; the tables below are derived from that registry,
so adding an op means adding its module here and nothing else in the core.
"""

from __future__ import annotations

from .base import Cost, KernelCall, Op, QuantizeContext, Window, registry
from .activation import Activation
from .add import Add
from .batchnorm import BatchNorm
from .concat import Concatenation
from .conv2d import Conv2D
from .depthwise_conv2d import DepthwiseConv2D
from .fully_connected import FullyConnected
from .mean import Mean
from .pad import Pad
from .pool import AvgPool2D, MaxPool2D
from .quantize import Dequantize, Quantize
from .reshape import Reshape
from .softmax import Softmax

NODE_TYPES = tuple(registry())

# builtin operator name -> node class that reads it
TFLITE_READERS = {name: cls for cls in NODE_TYPES for name in cls.tflite_ops}
SUPPORTED_TFLITE_OPS = tuple(TFLITE_READERS)


def supported_table() -> str:
    """The supported int8 ops as a Markdown table (README.md's copy is generated from it by
    ``python tools/ops_table.py --write``, and a test keeps the two equal)."""
    rows = ["| .tflite op | edgecnn node | notes |", "|---|---|---|"]
    for cls in NODE_TYPES:
        if cls.tflite_ops:
            rows.append(f"| {', '.join(cls.tflite_ops)} | `{cls.__name__}` | {cls.summary} |")
    return "\n".join(rows)

__all__ = ["Op", "KernelCall", "Cost", "Window", "QuantizeContext", "NODE_TYPES", "TFLITE_READERS",
           "SUPPORTED_TFLITE_OPS"] + [cls.__name__ for cls in NODE_TYPES]
