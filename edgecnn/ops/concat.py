"""CONCATENATION of int8 tensors along one axis (SqueezeNet's Fire, Inception).

The TFLite int8 spec wants inputs and output on one scale and zero point; edgecnn's quantizer
arranges that (``shares_quant``: the union of their calibrated ranges). Files from elsewhere
are run as LiteRT runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import math

import numpy as np

from .. import ir
from ..errors import ArchitectureError, ModelFormatError, UnsupportedOpError
from ..reference import float_ops as F
from ..reference import params as P
from .base import KernelCall, Op, scalar_quant


@dataclass(frozen=True, eq=False)
class Concatenation(Op):
    name: str
    axis: int  # non-negative, into the NHWC shape
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("CONCATENATION",)
    summary = "any axis but the batch; inputs and output on one scale and zero point (the int8 spec; LiteRT refuses others)"
    tflite_inputs = (1, 1000)
    shares_quant = True

    def out_shape(self, in_shapes):
        shapes = [tuple(s) for s in in_shapes]
        rank = len(shapes[0])
        if not 1 <= self.axis < rank:
            raise ArchitectureError(f"{self.name}: concatenation along axis {self.axis} of a "
                                    f"rank-{rank} tensor; edgecnn runs batch 1 and joins along "
                                    "the other axes")
        for s in shapes:
            if len(s) != rank or any(d != e for i, (d, e) in enumerate(zip(s, shapes[0]))
                                     if i != self.axis):
                raise ArchitectureError(
                    f"{self.name}: cannot concatenate shapes "
                    f"{', '.join(str(t) for t in shapes)} on axis {self.axis}: every other axis "
                    "must match")
        out = list(shapes[0])
        out[self.axis] = sum(s[self.axis] for s in shapes)
        return tuple(out)

    def run_float(self, xs):
        return F.concat_f32(xs, self.axis)

    def quantize(self, q):
        return q.with_output(self, q.calibrated(self.output.name))

    def prepare(self, ins, rounding):
        out_q = scalar_quant(self.output, self.name)
        try:
            p = P.make_concat_params([scalar_quant(t, self.name) for t in ins], out_q)
        except ValueError as e:
            raise ModelFormatError(f"{self.name}: {e}") from None
        # without the batch axis: the kernel joins along axis - 1
        return KernelCall("concat_s8", (self.axis - 1, p), tuple(tuple(t.shape[1:]) for t in ins),
                          tuple(self.output.shape[1:]))

    def bind(self, call, kernels):
        fn, axis, p = kernels.concat_s8, *call.args
        return lambda *io: fn(list(io[:-1]), axis, p, io[-1])

    def emit_c(self, call, c):
        axis, p = call.args
        sizes = [math.prod(s[axis:]) for s in call.in_shapes]
        srcs = c.struct_array("const int8_t *const", "inputs",
                              [c.src(i) for i in range(len(call.in_shapes))])
        sn = c.const("copy_sizes", np.array(sizes, np.int32), np.int32)
        pp = c.params("ec_concat_params_t", p)
        return (f"ec_concat_s8({srcs}, {sn}, {pp}, {math.prod(call.out_shape[:axis])}, "
                f"{c.dst});")

    @classmethod
    def from_tflite(cls, r, op):
        opts = op.options(r.fb.ConcatenationOptionsT)
        xs = [r.op_input(op, k) for k in range(len(op.inputs))]
        if r.fused(op, opts) != "none":
            raise UnsupportedOpError(f"{r.file}: {op.where}: a fused activation on "
                                     "CONCATENATION is not supported")
        rank = len(xs[0].shape)
        axis = int(opts.axis)
        if not -rank <= axis < rank:
            r.fail(f"{op.where}: axis {axis} is out of range for rank {rank}")
        return cls(op.name, axis % rank, inputs=tuple(x.name for x in xs))

    def to_tflite(self, w):
        opts = w.fb.ConcatenationOptionsT()
        opts.axis = int(self.axis)
        w.add_op(self, "CONCATENATION", 2 if w.quantized(self) else 1,
                 [w.index[name] for name in self.inputs], "ConcatenationOptions", opts)
