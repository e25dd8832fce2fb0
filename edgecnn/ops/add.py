"""ADD: the element-wise sum of two int8 tensors, each with its own scale (ResNet's residual).

LiteRT's int8 reference rescales both inputs to a common fixed point before adding
(left shift 20, input multipliers s_i / (2 max(s1, s2)), output multiplier
2 max(s1, s2) / (2^20 s_out)), then applies the fused activation clamp. Shapes are equal or
broadcast (numpy rules, as LiteRT's BroadcastAdd).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir
from ..errors import ArchitectureError, ModelFormatError
from ..reference import float_ops as F
from ..reference import params as P
from .base import KernelCall, Op, scalar_quant


@dataclass(frozen=True, eq=False)
class Add(Op):
    name: str
    activation: str = "none"
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("ADD",)
    summary = "two int8 inputs with their own scales, NumPy broadcasting (same shape, per channel, scalar); fused ReLU/ReLU6; may write in place"
    tflite_inputs = (2, 2)
    fusable = True

    def out_shape(self, in_shapes):
        a, b = (tuple(s) for s in in_shapes)
        if len(a) != len(b):
            raise ArchitectureError(f"{self.name}: ADD of shapes {a} and {b}: the ranks differ")
        try:
            return tuple(np.broadcast_shapes(a, b))
        except ValueError:
            raise ArchitectureError(f"{self.name}: ADD of shapes {a} and {b}, which do not "
                                    "broadcast (each axis must be equal or 1)") from None

    def run_float(self, xs):
        return F.activation_f32(F.add_f32(xs[0], xs[1]), self.activation)

    def quantize(self, q):
        return q.with_output(self, q.calibrated(self.output.name))

    def prepare(self, ins, rounding):
        (s1, zp1), (s2, zp2) = (scalar_quant(t, self.name) for t in ins)
        s_out, zp_out = scalar_quant(self.output, self.name)
        try:
            p = P.make_add_params(s1, zp1, s2, zp2, s_out, zp_out, self.activation)
        except ValueError as e:
            raise ModelFormatError(f"{self.name}: {e}") from None
        # kernels see the shapes without the batch axis; equal shapes may compute in place
        return KernelCall("add_s8", (p,), tuple(tuple(t.shape[1:]) for t in ins),
                          tuple(self.output.shape[1:]), inplace=(0, 1))

    def emit_c(self, call, c):
        b = P.make_broadcast(*call.in_shapes)
        arrays = {k: "{" + ", ".join(str(int(v)) for v in getattr(b, k)) + "}"
                  for k in ("size", "stride1", "stride2")}
        bp = c.struct("ec_broadcast_t", "broadcast", dict(rank=int(b.rank), **arrays))
        pp = c.params("ec_add_params_t", call.args[0])
        return f"ec_add_s8({c.src(0)}, {c.src(1)}, {bp}, {pp}, {c.dst});"

    @classmethod
    def from_tflite(cls, r, op):
        opts = op.options(r.fb.AddOptionsT)
        a, b = r.op_input(op, 0), r.op_input(op, 1)
        return cls(op.name, activation=r.fused(op, opts), inputs=(a.name, b.name))

    def to_tflite(self, w):
        opts = w.fb.AddOptionsT()
        opts.fusedActivationFunction = w.fused(self)
        w.add_op(self, "ADD", 2 if w.quantized(self) else 1,
                 [w.index[name] for name in self.inputs], "AddOptions", opts)
