"""PAD: spatial zero padding of an NHWC tensor; in int8 the pad value is the input zero point
(real 0.0), and the output keeps the input's quantization."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir
from ..errors import ArchitectureError, UnsupportedOpError
from .base import KernelCall, Op, scalar_quant, view3


@dataclass(frozen=True, eq=False)
class Pad(Op):
    name: str
    padding: tuple[int, int, int, int]  # (top, bottom, left, right)
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("PAD",)
    summary = "height and width; the pad value is the zero point"
    tflite_inputs = (2, 3)
    keeps_quant = True

    def out_shape(self, in_shapes):
        x = tuple(in_shapes[0])
        if len(x) != 4:
            raise ArchitectureError(f"{self.name}: padding needs an NHWC tensor, got {x}")
        if min(self.padding) < 0:
            raise ArchitectureError(f"{self.name}: padding {tuple(self.padding)} must be 0 or more")
        t, b, l, r = self.padding
        return (1, x[1] + t + b, x[2] + l + r, x[3])

    def run_float(self, xs):
        t, b, l, r = self.padding
        return np.pad(xs[0], ((0, 0), (t, b), (l, r), (0, 0)))

    def prepare(self, ins, rounding):
        _, zp_in = scalar_quant(ins[0], self.name)
        return KernelCall("pad_s8", (self.padding[0], self.padding[2], zp_in),
                          (view3(ins[0].shape),), view3(self.output.shape))

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        if len(op.inputs) < 2:
            r.fail(f"{op.where}: has no paddings input")
        pads = r.const(op.inputs[1], f"{op.where} paddings")
        if pads.shape != (4, 2) or len(x.shape) != 4:
            raise UnsupportedOpError(f"{r.file}: {op.where}: paddings of shape {pads.shape} on "
                                     f"input {x.shape}; edgecnn pads NHWC tensors only")
        if pads[0].any() or pads[3].any() or (pads < 0).any():
            raise UnsupportedOpError(f"{r.file}: {op.where}: paddings {pads.tolist()} pad the "
                                     "batch or channel axis; edgecnn pads height and width only")
        return cls(op.name, (int(pads[1, 0]), int(pads[1, 1]), int(pads[2, 0]), int(pads[2, 1])),
                   inputs=(x.name,))

    def to_tflite(self, w):
        x = w.tensor_of(self.inputs[0])
        if len(x.shape) != 4:
            raise ArchitectureError(f"{self.name}: Pad needs an NHWC input, got {x.shape}")
        t, b, l, r = (int(p) for p in self.padding)
        paddings = np.array([[0, 0], [t, b], [l, r], [0, 0]], np.int32)
        pi = w.add_tensor(f"{self.name}/paddings", paddings.shape, "int32", None, paddings)
        w.add_op(self, "PAD", 2 if w.quantized(self) else 1, [w.index[x.name], pi],
                 "PadOptions", w.fb.PadOptionsT())

    def emit_c(self, call, c):
        top, left, value = call.args
        din, dout = c.dims("in", call.in_shapes[0]), c.dims("out", call.out_shape)
        return f"ec_pad_s8({c.src(0)}, {din}, {top}, {left}, {value}, {c.dst}, {dout});"
