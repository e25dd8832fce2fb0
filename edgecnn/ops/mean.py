"""MEAN over H and W of an NHWC tensor: Google's converter writes global average pooling this
way (GlobalAveragePooling2D, keep_dims true or false). Other axes are refused. LiteRT's
reference MEAN under every rounding but fp32, which runs XNNPACK's (LiteRT's default path
delegates int8 MEAN to it): edgecnn/reference/mean.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir
from ..errors import ArchitectureError, ModelFormatError, UnsupportedOpError
from ..reference import float_ops as F
from ..reference import params as P
from .base import Cost, KernelCall, Op, scalar_quant, view3

SPATIAL = (1, 2)


@dataclass(frozen=True, eq=False)
class Mean(Op):
    name: str
    keep_dims: bool = False
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("MEAN",)
    summary = "over H and W (global average pooling), keep_dims or not"
    tflite_inputs = (2, 2)
    keeps_quant = True  # edgecnn's converter keeps the input's scale (the mean lies within it)

    def out_shape(self, in_shapes):
        x = tuple(in_shapes[0])
        if len(x) != 4:
            raise ArchitectureError(f"{self.name}: MEAN over H and W needs an NHWC tensor, got "
                                    f"shape {x}")
        return (1, 1, 1, x[3]) if self.keep_dims else (1, x[3])

    def run_float(self, xs):
        return F.mean_f32(xs[0], SPATIAL, self.keep_dims)

    def prepare(self, ins, rounding):
        x = ins[0]
        s_in, zp_in = scalar_quant(x, self.name)
        s_out, zp_out = scalar_quant(self.output, self.name)
        try:
            p = P.make_mean_params(x.shape, SPATIAL, s_in, zp_in, s_out, zp_out, rounding)
        except ValueError as e:
            raise ModelFormatError(f"{self.name}: {e}") from None
        return KernelCall("mean_s8", (p,), (view3(x.shape),), (x.shape[3],))

    def emit_c(self, call, c):
        din = c.dims("in", call.in_shapes[0])
        p = call.args[0]
        if c.log is not None and p.policy == P.POLICY_FP32:
            c.log.policies.add(p.policy)  # ec_config.h then compiles the float rescale
        fields = {k: int(getattr(p, k)) for k in ("multiplier", "shift", "input_offset",
                                                  "output_offset", "count", "policy")}
        pp = c.struct("ec_mean_params_t", "params",
                      {**fields, "scale": c.double(p.scale), "bias": c.double(p.bias)})
        return f"ec_mean_s8({c.src(0)}, {din}, {pp}, {c.dst});"

    def cost(self, in_shapes):
        return Cost(mixes_all=True)

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        axes = np.asarray(r.const(op.inputs[1], f"{op.where} axes")).reshape(-1)
        rank = len(x.shape)
        if rank != 4 or sorted({int(a) % 4 for a in axes}) != list(SPATIAL) or \
                any(not -rank <= int(a) < rank for a in axes):
            raise UnsupportedOpError(
                f"{r.file}: {op.where}: MEAN over axes {axes.tolist()} of a rank-{rank} tensor; "
                "edgecnn runs the spatial mean (axes 1 and 2 of NHWC) only")
        keep = bool(op.options(r.fb.ReducerOptionsT).keepDims)
        return cls(op.name, keep_dims=keep, inputs=(x.name,))

    def to_tflite(self, w):
        axes = np.array(SPATIAL, np.int32)
        ai = w.add_tensor(f"{self.name}/axes", axes.shape, "int32", None, axes)
        opts = w.fb.ReducerOptionsT()
        opts.keepDims = bool(self.keep_dims)
        w.add_op(self, "MEAN", 2 if w.quantized(self) else 1,
                 [w.index[self.inputs[0]], ai], "ReducerOptions", opts)
