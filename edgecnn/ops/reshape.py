"""RESHAPE: flatten or reshape, row-major NHWC order; the new shape is ``output.shape``.

No kernel runs: the output is a view of the input's bytes (the memory planner aliases them).
That is only right when input and output share one quantization, which prepare checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir
from ..errors import ArchitectureError
from .base import KernelCall, Op


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    name: str
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("RESHAPE",)
    summary = "a view of its input (no copy); the dynamic-batch SHAPE/STRIDED_SLICE/PACK arithmetic before it folds at read time"
    tflite_inputs = (1, 2)
    keeps_quant = True
    is_view = True

    def out_shape(self, in_shapes):
        x = tuple(in_shapes[0])
        if self.output is not None and self.output.shape:
            if math.prod(self.output.shape) != math.prod(x):
                raise ArchitectureError(f"{self.name}: cannot reshape {x} to {self.output.shape}")
            return tuple(self.output.shape)
        return (1, math.prod(x[1:]))

    def run_float(self, xs):
        return xs[0].reshape((xs[0].shape[0],) + tuple(self.output.shape[1:]))

    def prepare(self, ins, rounding):
        from .. import quant_rules as Q
        x = ins[0]
        Q.reshape_quant(self.name, x, self.output)
        return KernelCall(None, (), (x.shape,), self.output.shape)

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        r.reshape_target(op, x, r.act(op.outputs[0], op.where))
        return cls(op.name, inputs=(x.name,))

    def to_tflite(self, w):
        x = w.tensor_of(self.inputs[0])
        new_shape = np.array(self.output.shape, np.int32)
        si = w.add_tensor(f"{self.name}/shape", new_shape.shape, "int32", None, new_shape)
        opts = w.fb.ReshapeOptionsT()
        opts.newShape = [int(d) for d in new_shape]
        w.add_op(self, "RESHAPE", 1, [w.index[x.name], si], "ReshapeOptions", opts)
