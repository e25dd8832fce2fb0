"""QUANTIZE (float32 -> int8) and DEQUANTIZE (int8 -> float32) at the graph boundary.

QUANTIZE: ``q = round_half_away(float32(x) / float32(scale)) + zp``, clamped (LiteRT divides in
float32). DEQUANTIZE: ``float32(double(scale) * (q - zp))`` (LiteRT's reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .. import ir
from ..errors import ArchitectureError, UnsupportedOpError
from .base import KernelCall, Op, scalar_quant


def _flat(t):
    return (math.prod(t.shape[1:]),)


def _already_int8(node):
    raise UnsupportedOpError(f"{node.name}: {type(node).__name__} belongs to an int8 graph; "
                             "a float graph to quantize has none")


@dataclass(frozen=True, eq=False)
class Quantize(Op):
    """float32 -> int8 at the graph boundary: ``q = round(x / scale) + zp``, clamped."""

    name: str
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("QUANTIZE",)
    summary = "float32 input to int8 (float-input models)"

    def run_float(self, xs):
        return xs[0]

    def quantize(self, q):
        _already_int8(self)

    def prepare(self, ins, rounding):
        s, zp = scalar_quant(self.output, self.name)
        return KernelCall("quantize_s8", (s, zp), (_flat(ins[0]),), _flat(self.output))

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        out = r.act(op.outputs[0], op.where)
        if x.dtype != "float32" or out.dtype != "int8":
            raise UnsupportedOpError(f"{r.file}: {op.where}: QUANTIZE {x.dtype} -> {out.dtype}; "
                                     "edgecnn supports float32 -> int8 only (no requantize)")
        return cls(op.name, inputs=(x.name,))

    def to_tflite(self, w):
        x = w.tensor_of(self.inputs[0])
        if x.dtype != "float32" or self.output.dtype != "int8":
            raise ArchitectureError(f"{self.name}: Quantize goes float32 -> int8, got "
                                    f"{x.dtype} -> {self.output.dtype}")
        w.add_op(self, "QUANTIZE", 1, [w.index[x.name]])  # op_version.cc: int8 output is v1

    def emit_c(self, call, c):
        scale, zp = call.args
        return (f"ec_quantize_s8((const float *)({c.src_raw(0)}), {call.in_shapes[0][0]}, "
                f"(float){c.double(scale)}, {zp}, {c.dst});")


@dataclass(frozen=True, eq=False)
class Dequantize(Op):
    """int8 -> float32: ``(q - zp) * scale``."""

    name: str
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("DEQUANTIZE",)
    summary = "int8 to float32 output (float-output models)"

    def run_float(self, xs):
        return xs[0]

    def quantize(self, q):
        _already_int8(self)

    def prepare(self, ins, rounding):
        s, zp = scalar_quant(ins[0], self.name)
        return KernelCall("dequantize_s8", (s, zp), (_flat(ins[0]),), _flat(self.output))

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        out = r.act(op.outputs[0], op.where)
        if x.dtype != "int8" or out.dtype != "float32":
            raise UnsupportedOpError(f"{r.file}: {op.where}: DEQUANTIZE {x.dtype} -> {out.dtype}; "
                                     "edgecnn supports int8 -> float32 only")
        return cls(op.name, inputs=(x.name,))

    def to_tflite(self, w):
        x = w.tensor_of(self.inputs[0])
        if x.dtype != "int8" or self.output.dtype != "float32":
            raise ArchitectureError(f"{self.name}: Dequantize goes int8 -> float32, got "
                                    f"{x.dtype} -> {self.output.dtype}")
        w.add_op(self, "DEQUANTIZE", 2, [w.index[x.name]])

    def emit_c(self, call, c):
        scale, zp = call.args
        return (f"ec_dequantize_s8({c.src(0)}, {call.in_shapes[0][0]}, (float){c.double(scale)}, "
                f"{zp}, (float *)({c.dst_raw}));")
