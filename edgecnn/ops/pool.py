"""MAX_POOL_2D and AVERAGE_POOL_2D, int8 (LiteRT reference_integer_ops MaxPool / AveragePool).

The int8 output keeps the input's scale and zero point. Out-of-image taps are skipped: the max
is over in-image taps (raw int8 max), the average divides by the number of valid taps and rounds
half away from zero. A fused activation is a clamp of the (unchanged) quantization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import ir, quant_rules as Q
from ..errors import ModelFormatError, UnsupportedOpError
from ..reference import float_ops as F
from ..reference import params as P
from .base import KernelCall, Op, Window, scalar_quant, spatial_out, view3


class _Pool(Op):
    """Fields (in the dataclasses below): name, kernel, stride, padding, activation, inputs,
    output."""

    fusable = True
    keeps_quant = True
    code = ""  # TFLite builtin name
    kernel_name = ""

    def out_shape(self, in_shapes):
        oh, ow = spatial_out(self, in_shapes[0], self.kernel, self.stride, self.padding)
        return (1, oh, ow, in_shapes[0][3])

    def quantize(self, q):
        if self.activation != "none":
            raise UnsupportedOpError(
                f"{self.name}: a fused activation on a pool would change its output range; "
                "int8 pools keep their input's scale (apply ReLU before pooling)")
        return q.with_output(self, q.input(self))

    def prepare(self, ins, rounding):
        x = ins[0]
        s_in, zp_in = scalar_quant(x, self.name)
        s_out, zp_out = scalar_quant(self.output, self.name)
        if (s_in, zp_in) != (s_out, zp_out):
            raise ModelFormatError(f"{self.name}: int8 pooling needs the output scale and zero "
                                   f"point to equal the input's ({s_in}, {zp_in}), got "
                                   f"({s_out}, {zp_out})")
        Q.window_geometry(self.name, x.shape[1:3], self.kernel, self.stride, (1, 1),
                          self.padding)
        lo, hi = Q.activation_range(self.name, self.activation, s_out, zp_out)
        p = P.PoolParams(filter_h=self.kernel[0], filter_w=self.kernel[1],
                         stride_h=self.stride[0], stride_w=self.stride[1],
                         pad_top=self.padding[0], pad_left=self.padding[2], act_min=lo, act_max=hi)
        return KernelCall(self.kernel_name, (p,), (view3(x.shape),), view3(self.output.shape))

    @property
    def window(self):
        return Window(tuple(self.kernel), tuple(self.stride), tuple(self.padding))

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        opts = op.options(r.fb.Pool2DOptionsT)
        kernel = (int(opts.filterHeight), int(opts.filterWidth))
        stride = (int(opts.strideH), int(opts.strideW))
        return cls(op.name, kernel, stride, padding=r.padding(op, opts, x, kernel, stride),
                   activation=r.fused(op, opts), inputs=(x.name,))

    def to_tflite(self, w):
        x = w.tensor_of(self.inputs[0])
        opts = w.fb.Pool2DOptionsT()
        opts.padding = w.padding_enum(self, x, self.kernel)
        opts.strideH, opts.strideW = (int(s) for s in self.stride)
        opts.filterHeight, opts.filterWidth = (int(k) for k in self.kernel)
        opts.fusedActivationFunction = w.fused(self)
        w.add_op(self, self.code, 2 if w.quantized(self) else 1, [w.index[x.name]],
                 "Pool2DOptions", opts)

    def emit_c(self, call, c):
        pp = c.params("ec_pool_params_t", call.args[0])
        din, dout = c.dims("in", call.in_shapes[0]), c.dims("out", call.out_shape)
        return f"ec_{self.kernel_name}({c.src(0)}, {din}, {pp}, {c.dst}, {dout});"


@dataclass(frozen=True, eq=False)
class MaxPool2D(_Pool):
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # out-of-image taps are skipped
    activation: str = "none"
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("MAX_POOL_2D",)
    summary = "any window, stride, SAME/VALID padding (skipped taps); keeps the input's scale"
    code = "MAX_POOL_2D"
    kernel_name = "max_pool_s8"

    def run_float(self, xs):
        return F.activation_f32(F.max_pool_f32(xs[0], self.kernel, self.stride, self.padding),
                                self.activation)


@dataclass(frozen=True, eq=False)
class AvgPool2D(_Pool):
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # divides by the number of valid taps
    activation: str = "none"
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None

    tflite_ops = ("AVERAGE_POOL_2D",)
    summary = ("divides by the valid taps, rounds half away from zero; keeps the input's "
               "scale")
    code = "AVERAGE_POOL_2D"
    kernel_name = "avg_pool_s8"

    def run_float(self, xs):
        return F.activation_f32(F.avg_pool_f32(xs[0], self.kernel, self.stride, self.padding),
                                self.activation)
