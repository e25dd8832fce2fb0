"""FULLY_CONNECTED: int8 dense layer (LiteRT reference FullyConnected, int8).

Weights (C_out, C_in) over the input flattened row-major (NHWC: H, W, C), int8 in [-127, 127]
with one scale (what TensorFlow's converter emits and every TFLite runtime runs) or one per
output channel; bias int32 at scale s_in * s_w. LiteRT 2.x BUILTIN_REF rescales in double
(policy f64, reference/params.py); TFLite Micro and CMSIS-NN use gemmlowp's double rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir, quant_rules as Q
from ..errors import ArchitectureError, UnsupportedOpError
from ..reference import float_ops as F
from ..reference import params as P
from .base import (Cost, KernelCall, Op, check_int8_weights, int32_bias, scalar_quant,
                   weight_scales)


@dataclass(frozen=True, eq=False)
class FullyConnected(Op):
    name: str
    weight: np.ndarray  # (C_out, C_in); the input is flattened NHWC (row-major H, W, C)
    bias: Optional[np.ndarray]
    activation: str = "none"
    weight_quant: Optional[ir.QuantParams] = None  # per tensor or per channel (axis 0)
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None
    bias_quant: Optional[ir.QuantParams] = None  # as read from a .tflite (LiteRT's 0.02 rule)

    tflite_ops = ("FULLY_CONNECTED",)
    summary = "per-tensor or per-channel int8 weights; fused ReLU/ReLU6"
    tflite_inputs = (2, 3)
    fusable = True

    def out_shape(self, in_shapes):
        x = tuple(in_shapes[0])
        c_out, c_in = self.weight.shape
        n = math.prod(x[1:])
        if n != c_in:
            raise ArchitectureError(
                f"{self.name}: weight shape {tuple(self.weight.shape)} expects {c_in} inputs "
                f"but its input has shape {x} ({n} values)")
        return (1, c_out)

    def run_float(self, xs):
        return F.activation_f32(F.fully_connected_f32(xs[0], self.weight, self.bias),
                                self.activation)

    def quantize(self, q):
        from ..quantize import quantize_bias, symmetric_weight_quant
        s_in = float(q.input(self).scale[0])
        w_q, w_quant = symmetric_weight_quant(self.weight, per_channel=False)
        bias = quantize_bias(self.bias, self.weight.shape[0], s_in, w_quant.scale, self.name)
        return q.with_output(self, q.calibrated(self.output.name), weight=w_q,
                             weight_quant=w_quant, bias=bias, bias_quant=None)

    def prepare(self, ins, rounding):
        x = ins[0]
        n_in = math.prod(x.shape[1:])
        check_int8_weights(self, 2, n_in)
        s_in, zp_in = scalar_quant(x, self.name)
        s_out, zp_out = scalar_quant(self.output, self.name)
        w = np.ascontiguousarray(self.weight)
        rq = Q.fc_requant(self, s_in, zp_in, weight_scales(self, w.shape[0]), s_out, zp_out,
                          rounding)
        return KernelCall("fully_connected_s8",
                          (w, int32_bias(self.bias, w.shape[0]), P.FCParams(-zp_in), rq),
                          ((n_in,),), (w.shape[0],))

    def cost(self, in_shapes):
        n_w, n_b = int(self.weight.size), 0 if self.bias is None else int(self.bias.size)
        itemsize = 1 if self.weight.dtype == np.int8 else 4
        return Cost(params=n_w + n_b, weight_bytes=n_w * itemsize + 4 * n_b, macs=n_w,
                    mixes_all=True)

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        opts = op.options(r.fb.FullyConnectedOptionsT)
        if opts.weightsFormat != r.fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
            raise UnsupportedOpError(f"{r.file}: {op.where}: shuffled weight formats are not "
                                     "supported")
        out = r.act(op.outputs[0], op.where)
        if opts.keepNumDims and len(out.shape) != 2:
            raise UnsupportedOpError(f"{r.file}: {op.where}: keep_num_dims with output shape "
                                     f"{out.shape} is not supported")
        weight, bias, wq, bq = r.weights(op, x, 2)
        return cls(op.name, weight, bias, activation=r.fused(op, opts), weight_quant=wq,
                   bias_quant=bq, inputs=(x.name,))

    def to_tflite(self, w):
        x = w.tensor_of(self.inputs[0])
        wi, bi = w.weights(self, x)
        opts = w.fb.FullyConnectedOptionsT()
        opts.fusedActivationFunction = w.fused(self)
        opts.keepNumDims = False
        # op_version.cc: no bias -> 6; int8 -> 4; float -> 1
        version = 6 if bi < 0 else (4 if w.quantized(self) else 1)
        w.add_op(self, "FULLY_CONNECTED", version, [w.index[x.name], wi, bi],
                 "FullyConnectedOptions", opts)

    def emit_c(self, call, c):
        from ..export_c.kernels import emit_fc  # packed for the DSP/Helium kernels
        return emit_fc(self, call, c)
