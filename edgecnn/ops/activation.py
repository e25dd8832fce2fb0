"""Standalone RELU, RELU6, TANH and LOGISTIC, int8, as LiteRT runs them.

RELU/RELU6 rescale to the output quantization and clamp (reference_ops::ReluX with a gemmlowp
multiplier M = float32(s_in / s_out)); TANH and LOGISTIC read a 256-entry table built once at
prepare time (LiteRT's LUTPopulate), and have fixed output quantizations: tanh 1/128 and 0,
logistic 1/256 and -128.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir, quant_rules as Q
from ..errors import UnsupportedOpError
from ..reference import float_ops as F
from ..reference.quantize import activation_lut
from .base import ACTIVATION_DISPLAY, KernelCall, Op, scalar_quant

TFLITE_NAMES = {"relu": "RELU", "relu6": "RELU6", "tanh": "TANH", "sigmoid": "LOGISTIC"}
FIXED_OUTPUT = {"tanh": (1.0 / 128.0, 0), "sigmoid": (1.0 / 256.0, -128)}


@dataclass(frozen=True, eq=False)
class Activation(Op):
    name: str
    kind: str  # one of ir.STANDALONE_ACTIVATIONS
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = tuple(TFLITE_NAMES.values())
    summary = "standalone; TANH and LOGISTIC through a 256-entry table built at load"

    def display_name(self):
        return ACTIVATION_DISPLAY.get(self.kind, self.kind)

    def run_float(self, xs):
        return F.activation_f32(xs[0], self.kind)

    def quantize(self, q):
        fixed = FIXED_OUTPUT.get(self.kind)
        quant = (ir.QuantParams.per_tensor(*fixed) if fixed
                 else q.calibrated(self.output.name))
        return q.with_output(self, quant)

    def prepare(self, ins, rounding):
        s_in, zp_in = scalar_quant(ins[0], self.name)
        s_out, zp_out = scalar_quant(self.output, self.name)
        shape = (math.prod(ins[0].shape[1:]),)
        if self.kind in ("relu", "relu6"):
            rp = Q.relu_params(self.name, s_in, zp_in, s_out, zp_out, six=self.kind == "relu6")
            return KernelCall("relu_s8_params", (rp,), (shape,), shape, inplace=(0,))
        # the table for the output quantization the model gives (LiteRT's reference path:
        # any for TANH, scale 1/256 for LOGISTIC)
        Q.lut_output(self.name, self.kind, s_in, zp_in, s_out, zp_out)
        lut = activation_lut("tanh" if self.kind == "tanh" else "logistic", s_in, zp_in, s_out,
                             zp_out)
        return KernelCall("lut_s8", (lut,), (shape,), shape, inplace=(0,))

    @classmethod
    def from_tflite(cls, r, op):
        kind = {v: k for k, v in TFLITE_NAMES.items()}[op.code]
        return cls(op.name, kind, inputs=(r.op_input(op, 0).name,))

    def to_tflite(self, w):
        if self.kind not in TFLITE_NAMES:
            raise UnsupportedOpError(f"{self.name}: activation '{self.kind}' is not one of "
                                     f"{list(TFLITE_NAMES)}")
        w.add_op(self, TFLITE_NAMES[self.kind], 2 if w.quantized(self) else 1,
                 [w.index[self.inputs[0]]])

    def emit_c(self, call, c):
        n = call.in_shapes[0][0]
        if call.kernel == "relu_s8_params":
            pp = c.params("ec_relu_params_t", call.args[0])
            return f"ec_relu_s8_params({c.src(0)}, {n}, {pp}, {c.dst});"
        return f"ec_lut_s8({c.src(0)}, {n}, {c.const('lut', call.args[0], np.int8)}, {c.dst});"
