"""SOFTMAX over the class axis of a (1, N) tensor, int8; output scale 1/256, zero point -128.
LiteRT's reference int8 softmax (gemmlowp fixed point, 5 integer bits for the input
differences) under every rounding but fp32, which runs what LiteRT's default path runs: its
optimized float32 softmax over an expf table (edgecnn/reference/softmax.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir, quant_rules as Q
from ..reference import float_ops as F
from ..reference import params as P
from .base import KernelCall, Op, scalar_quant

FIXED_OUTPUT = (1.0 / 256.0, -128)


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    name: str
    beta: float = 1.0
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("SOFTMAX",)
    summary = "over the class axis of a (1, N) tensor; output 1/256, -128"

    def run_float(self, xs):
        return F.softmax_f32(xs[0], self.beta)

    def quantize(self, q):
        return q.with_output(self, ir.QuantParams.per_tensor(*FIXED_OUTPUT))

    def prepare(self, ins, rounding):
        x = ins[0]
        if len(x.shape) != 2:
            from ..errors import UnsupportedOpError
            raise UnsupportedOpError(f"{self.name}: softmax over a rank-{len(x.shape)} tensor "
                                     "is not supported by edgecnn's runtime (only (1, N) vectors)")
        s_in, _ = scalar_quant(x, self.name)
        s_out, zp_out = scalar_quant(self.output, self.name)
        sp = Q.softmax_params(self.name, s_in, self.beta, x.shape[1], s_out, zp_out)
        if rounding == "fp32":
            return KernelCall("softmax_float_s8",
                              (P.make_softmax_float_params(s_in, self.beta, s_out, zp_out),),
                              ((x.shape[1],),), (self.output.shape[1],))
        return KernelCall("softmax_s8", (sp,), ((x.shape[1],),), (self.output.shape[1],))

    @classmethod
    def from_tflite(cls, r, op):
        return cls(op.name, beta=float(op.options(r.fb.SoftmaxOptionsT).beta),
                   inputs=(r.op_input(op, 0).name,))

    def to_tflite(self, w):
        opts = w.fb.SoftmaxOptionsT()
        opts.beta = float(self.beta)
        w.add_op(self, "SOFTMAX", 2 if w.quantized(self) else 1, [w.index[self.inputs[0]]],
                 "SoftmaxOptions", opts)

    def emit_c(self, call, c):
        n = call.in_shapes[0][0]
        if call.kernel == "softmax_float_s8":
            p = call.args[0]
            if c.log is not None:
                c.log.policies.add(P.POLICY_FP32)  # ec_config.h then compiles the float kernel
            pp = c.struct("ec_softmax_float_params_t", "params", {
                "exps": c.const("exps", p.exps, np.float32),
                "output_scale": c.double(p.output_scale), "output_offset": p.output_offset})
            return f"ec_softmax_float_s8({c.src(0)}, {n}, {pp}, {c.dst});"
        pp = c.params("ec_softmax_params_t", call.args[0])
        return f"ec_softmax_s8({c.src(0)}, {n}, {pp}, {c.dst});"
