"""What every op is: the base class of the node types, and the records they hand around.

One op, one module (edgecnn/ops/<op>.py), one class: like TFLite Micro's one
``TfLiteRegistration`` per op, the class holds everything edgecnn knows about it:

- ``out_shape(in_shapes)``: the shape rule (raises ArchitectureError);
- ``run_float(xs)``: the float run, batched (N, ...), for calibration and the float baseline;
- ``quantize(q)``: the int8 rule (weights, bias, the output's scale and zero point);
- ``prepare(ins, rounding)``: every check and derived number, as a ``KernelCall``;
- ``cost(in_shapes)``: parameters, weight bytes and MACs; ``window`` (kernel, stride, padding,
  dilation) for the receptive field and for TFLite's SAME/VALID padding;
- ``from_tflite(r, op)`` / ``to_tflite(w)``: the .tflite operator(s) it reads and writes;
- ``emit_c(call, c)``: the C statement export-c writes for it.

Subclasses register themselves (``Op.__init_subclass__``); ``edgecnn.ops`` imports every op
module, and every list of supported ops is derived from that registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import numpy as np

from .. import ir
from ..errors import ArchitectureError, ModelFormatError, UnsupportedOpError

_REGISTRY: list = []
ACTIVATION_DISPLAY = {"relu": "ReLU", "relu6": "ReLU6", "tanh": "Tanh", "sigmoid": "Sigmoid"}


@dataclass
class KernelCall:
    """One prepared step: the backend kernel and the parameters prepare derived for it.

    Backends run it as ``kernel(*inputs, *args, out)`` on views of the shapes below (no batch
    dimension), or bind it once through ``bind_<kernel>(*args, *in_shapes, out_shape)``, which
    returns ``run(*inputs, out)`` (weights packed, scratch owned). ``kernel`` None means the
    output is a view of input 0 (a reshape): no kernel runs.
    """

    kernel: Optional[str]
    args: tuple = ()
    in_shapes: tuple = ()
    out_shape: tuple = ()
    inplace: tuple = ()  # indices of inputs the output may share memory with (elementwise ops)


@dataclass(frozen=True)
class Cost:
    """What ``summary`` prints per node besides the window."""

    params: int = 0
    weight_bytes: int = 0
    macs: int = 0
    mixes_all: bool = False  # every output sees the whole input (dense, global mean)


@dataclass(frozen=True)
class Window:
    """A sliding window over H and W: pairs are (h, w), padding (top, bottom, left, right)."""

    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple = (1, 1)


class Op:
    """Base class of the node dataclasses (frozen, eq=False; fields ``name``, ..., ``inputs``,
    ``output``). Defaults here fit the element-wise single-input ops."""

    tflite_ops: ClassVar[tuple] = ()  # builtin operator names ``from_tflite`` reads
    tflite_inputs: ClassVar[tuple] = (1, 1)  # (min, max) operator inputs, for validation
    summary: ClassVar[str] = ""  # one line for the supported-ops table (README, errors)
    fusable: ClassVar[bool] = False  # has an ``activation`` field a following ReLU fuses into
    keeps_quant: ClassVar[bool] = False  # int8 output keeps its input's scale and zero point
    shares_quant: ClassVar[bool] = False  # inputs and output share one quantization (concat)
    pads_with_zero_point: ClassVar[bool] = False  # skipped taps equal padding with real 0.0,
    # so explicit padding can move into a PAD op before it (convolutions, not pools)
    is_view: ClassVar[bool] = False  # the output is the input's bytes seen anew (reshape)
    kind: ClassVar[str] = ""  # short display name; the class name when empty

    @property
    def window(self) -> Optional[Window]:
        """The sliding window of conv- and pool-like ops; None for the others."""
        return None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY.append(cls)

    # --- display ---------------------------------------------------------------------
    def display_name(self) -> str:
        """e.g. "Conv2D+ReLU6" (the fused activation appended)."""
        base = self.kind or type(self).__name__
        act = getattr(self, "activation", "none")
        return base + (f"+{ACTIVATION_DISPLAY.get(act, act)}" if act != "none" else "")

    # --- shape ------------------------------------------------------------------------
    def out_shape(self, in_shapes: list) -> tuple:
        return tuple(in_shapes[0])

    # --- float ------------------------------------------------------------------------
    def run_float(self, xs: list) -> np.ndarray:
        raise UnsupportedOpError(f"{self.name}: {type(self).__name__} has no float run")

    # --- int8 -------------------------------------------------------------------------
    def quantize(self, q: "QuantizeContext") -> "Op":
        """Default: the int8 output keeps the input's quantization (pools, pad, reshape)."""
        return q.with_output(self, q.input(self))

    def prepare(self, ins: list, rounding: str) -> KernelCall:
        raise UnsupportedOpError(f"{self.name}: {type(self).__name__} cannot run in an int8 "
                                 "graph")

    def bind(self, call: KernelCall, kernels) -> Callable:
        """The callable ``run(*inputs, out)`` for this step on a backend module."""
        binder = getattr(kernels, f"bind_{call.kernel}", None)
        if binder is not None:
            return binder(*call.args, *call.in_shapes, call.out_shape)
        fn = getattr(kernels, call.kernel)
        args = call.args
        if len(call.in_shapes) == 1:
            return lambda x, out: fn(x, *args, out)
        return lambda *io: fn(*io[:-1], *args, io[-1])

    # --- summary ----------------------------------------------------------------------
    def cost(self, in_shapes: list) -> Cost:
        return Cost()

    # --- .tflite ----------------------------------------------------------------------
    @classmethod
    def from_tflite(cls, r, op) -> "Op":
        raise UnsupportedOpError(f"{cls.__name__} is not read from .tflite files")

    def to_tflite(self, w) -> None:
        raise UnsupportedOpError(f"{self.name}: {type(self).__name__} cannot be written to "
                                 ".tflite")

    # --- C ----------------------------------------------------------------------------
    def emit_c(self, call: KernelCall, c) -> str:
        raise UnsupportedOpError(f"{self.name}: export-c has no C kernel for "
                                 f"{type(self).__name__}")


def registry() -> list:
    """Every node class (the dataclasses; shared bases like pool's are left out), in the order
    their modules were imported."""
    import dataclasses
    return [cls for cls in _REGISTRY if dataclasses.is_dataclass(cls)]


# ---- shared checks and helpers (prepare time) --------------------------------------------

def scalar_quant(t: ir.Tensor, where: str) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor int8 activation, validated."""
    q = t.quant
    if t.dtype != "int8":  # an int8 kernel would write int8 into a float32 buffer
        raise ModelFormatError(f"{where}: tensor {t.name!r} is {t.dtype}; this op runs on int8 "
                               "input and output")
    if q is None or q.scale.size != 1:
        raise ModelFormatError(f"{where}: tensor {t.name!r} needs per-tensor int8 quantization "
                               "(one scale and zero point)")
    scale, zp = q.scalar()
    if not (np.isfinite(scale) and scale > 0) or not -128 <= zp <= 127:
        raise ModelFormatError(f"{where}: tensor {t.name!r} has scale {scale} and zero point {zp}; "
                               "int8 needs a finite positive scale and a zero point in [-128, 127]")
    return scale, zp


def weight_scales(node, c_out: int) -> np.ndarray:
    """The symmetric weight scales (1 or ``c_out`` of them), validated."""
    q = node.weight_quant
    if q is None:
        raise ModelFormatError(f"{node.name}: int8 weights without quantization parameters")
    if q.scale.size not in (1, c_out) or np.any(q.zero_point != 0):
        raise ModelFormatError(f"{node.name}: weight quantization must be symmetric (zero point 0) "
                               f"with 1 or {c_out} scales, got {q.scale.size}")
    if not np.all(np.isfinite(q.scale)) or np.any(q.scale <= 0):
        raise ModelFormatError(f"{node.name}: weight scales must be finite and positive")
    return q.scale.astype(np.float32)


def check_int8_weights(node, want_ndim: int, c_in: int) -> None:
    w, b = node.weight, node.bias
    if w.dtype != np.int8 or w.ndim != want_ndim or w.shape[-1] != c_in:
        raise ModelFormatError(
            f"{node.name}: expected int8 weights of rank {want_ndim} with {c_in} inputs, got "
            f"{w.dtype} {tuple(w.shape)}")
    n_out = w.shape[0] if want_ndim != 3 else w.shape[-1]
    if b is not None and (b.dtype != np.int32 or b.shape != (n_out,)):
        raise ModelFormatError(f"{node.name}: expected an int32 bias of shape ({n_out},), got "
                               f"{b.dtype} {tuple(b.shape)}")


def int32_bias(bias, n_out: int) -> np.ndarray:
    b = bias if bias is not None else np.zeros(n_out, np.int32)
    return np.ascontiguousarray(b, np.int32)


def view3(shape: tuple) -> tuple:
    """The kernel's view of an activation: (H, W, C) for images, (N,) for vectors."""
    return tuple(shape[1:])


def flat(shape: tuple) -> tuple:
    return (math.prod(shape[1:]),)


def spatial_out(node, in_shape, kernel, stride, padding, dilation=(1, 1)) -> tuple[int, int]:
    """(OH, OW) of a window op, with every parameter checked (W2 = (W1 - F + P) / S + 1)."""
    from ..shapes import conv_output_size
    if len(in_shape) != 4:
        raise ArchitectureError(f"{node.name}: expects an NHWC image tensor but its input has "
                                f"shape {tuple(in_shape)}")
    _, h, w, _ = in_shape
    if min(*kernel, *stride, *dilation) < 1 or min(padding) < 0:
        raise ArchitectureError(
            f"{node.name}: kernel {tuple(kernel)}, stride {tuple(stride)} and dilation "
            f"{tuple(dilation)} must be 1 or more and padding {tuple(padding)} 0 or more")
    t, b, l, r = padding
    oh = conv_output_size(h, kernel[0], stride[0], t, b, dilation[0])
    ow = conv_output_size(w, kernel[1], stride[1], l, r, dilation[1])
    if oh < 1 or ow < 1:
        raise ArchitectureError(
            f"{node.name}: a {kernel[0]}x{kernel[1]} window with stride {tuple(stride)} and "
            f"padding {tuple(padding)} does not fit the {h}x{w} input; use a larger input size")
    return oh, ow


# ---- quantization context -----------------------------------------------------------------

class QuantizeContext:
    """What an op's ``quantize`` sees: the int8 quantization of tensors already quantized, and
    the calibrated range of any tensor (DESIGN.md section 3 for the formulas)."""

    def __init__(self, ranges: dict, quants: dict):
        self.ranges = ranges
        self.quants = quants  # tensor name -> QuantParams, filled in topological order

    def input(self, node, i: int = 0) -> ir.QuantParams:
        return self.quants[node.inputs[i]]

    def calibrated(self, name: str) -> ir.QuantParams:
        from ..errors import CalibrationError
        from ..quantize import activation_quant
        if name not in self.ranges:
            raise CalibrationError(f"tensor {name!r} has no calibration range")
        return activation_quant(*self.ranges[name])

    def with_output(self, node, quant: ir.QuantParams, **changes) -> "Op":
        """``node`` with an int8 output of quantization ``quant`` (and other fields changed)."""
        self.quants[node.output.name] = quant
        out = ir.replace(node.output, dtype="int8", quant=quant)
        return ir.replace(node, output=out, **changes)
