"""CONV_2D: int8 per-channel convolution (LiteRT reference_integer_ops::ConvPerChannel).

Weights OHWI (C_out, KH, KW, C_in): float32, or int8 in [-127, 127] with per-output-channel
scales on axis 0 and zero point 0. Bias (C_out,): float32, or int32 at scale s_in * s_w[c].
Padding is explicit (top, bottom, left, right); out-of-image taps are skipped, which equals
padding with the input zero point because (zp - zp) * w = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir, quant_rules as Q
from ..errors import ArchitectureError
from ..reference import float_ops as F
from ..reference import params as P
from .base import (Cost, KernelCall, Op, Window, check_int8_weights, int32_bias, scalar_quant,
                   spatial_out, view3, weight_scales)


@dataclass(frozen=True, eq=False)
class Conv2D(Op):
    name: str
    weight: np.ndarray  # OHWI; float32, or int8 in [-127, 127]
    bias: Optional[np.ndarray]  # (C_out,) float32, or int32 with scale s_in * s_w[c]
    stride: tuple[int, int] = (1, 1)  # (h, w)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, bottom, left, right), explicit
    dilation: tuple[int, int] = (1, 1)
    activation: str = "none"  # fused: one of ir.ACTIVATIONS
    weight_quant: Optional[ir.QuantParams] = None  # int8 graphs: per-channel, axis 0
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None
    bias_quant: Optional[ir.QuantParams] = None  # as read from a .tflite (LiteRT's 0.02 rule)

    tflite_ops = ("CONV_2D",)
    summary = "per-channel int8 weights; any stride, SAME/VALID or explicit padding (as PAD), dilation; fused ReLU/ReLU6"
    tflite_inputs = (2, 3)
    fusable = True
    pads_with_zero_point = True

    @property
    def window(self):
        return Window(tuple(self.weight.shape[1:3]), tuple(self.stride), tuple(self.padding),
                      tuple(self.dilation))

    def out_shape(self, in_shapes):
        x = tuple(in_shapes[0])
        c_out, kh, kw, c_in = self.weight.shape
        if len(x) != 4 or x[-1] != c_in:
            raise ArchitectureError(
                f"{self.name}: weight shape {tuple(self.weight.shape)} (OHWI) expects {c_in} "
                f"input channels but its input has shape {x}")
        oh, ow = spatial_out(self, x, (kh, kw), self.stride, self.padding, self.dilation)
        return (1, oh, ow, c_out)

    def run_float(self, xs):
        y = F.conv2d_f32(xs[0], self.weight, self.bias, self.stride, self.padding, self.dilation)
        return F.activation_f32(y, self.activation)

    def quantize(self, q):
        from ..quantize import quantize_bias, symmetric_weight_quant
        s_in = float(q.input(self).scale[0])
        w_q, w_quant = symmetric_weight_quant(self.weight, per_channel=True)
        bias = quantize_bias(self.bias, self.weight.shape[0], s_in, w_quant.scale, self.name)
        return q.with_output(self, q.calibrated(self.output.name), weight=w_q,
                             weight_quant=w_quant, bias=bias, bias_quant=None)

    def prepare(self, ins, rounding):
        x = ins[0]
        check_int8_weights(self, 4, x.shape[3])
        s_in, zp_in = scalar_quant(x, self.name)
        s_out, zp_out = scalar_quant(self.output, self.name)
        Q.window_geometry(self.name, x.shape[1:3], self.weight.shape[1:3], self.stride,
                          self.dilation, self.padding)
        w = np.ascontiguousarray(self.weight)
        p = P.ConvParams(stride_h=self.stride[0], stride_w=self.stride[1],
                         pad_top=self.padding[0], pad_left=self.padding[2],
                         dilation_h=self.dilation[0], dilation_w=self.dilation[1],
                         input_offset=-zp_in)
        rq = Q.conv_requant(self, s_in, zp_in, weight_scales(self, w.shape[0]), s_out, zp_out,
                            rounding)
        return KernelCall("conv2d_s8", (w, int32_bias(self.bias, w.shape[0]), p, rq),
                          (view3(x.shape),), view3(self.output.shape))

    def cost(self, in_shapes):
        c_out, kh, kw, c_in = self.weight.shape
        n_w, n_b = int(self.weight.size), 0 if self.bias is None else int(self.bias.size)
        itemsize = 1 if self.weight.dtype == np.int8 else 4
        return Cost(params=n_w + n_b, weight_bytes=n_w * itemsize + 4 * n_b,
                    macs=math.prod(self.out_shape(in_shapes)) * kh * kw * c_in)

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        opts = op.options(r.fb.Conv2DOptionsT)
        weight, bias, wq, bq = r.weights(op, x, 4)
        if x.shape[3] != weight.shape[3]:  # a grouped CONV_2D (TF's Conv2D(groups=g))
            weight = _grouped_to_dense(r, op, weight, x.shape[3])
        if x.dtype == "int8":
            r.int8_bias(op, bias, bq)
        stride = (int(opts.strideH), int(opts.strideW))
        dilation = (int(opts.dilationHFactor), int(opts.dilationWFactor))
        padding = r.padding(op, opts, x, weight.shape[1:3], stride, dilation)
        return cls(op.name, weight, bias, stride=stride, padding=padding, dilation=dilation,
                   activation=r.fused(op, opts), weight_quant=wq, bias_quant=bq,
                   inputs=(x.name,))

    def to_tflite(self, w):
        node = self
        if self.bias is None:  # LiteRT's CONV_2D refuses a missing bias (conv.cc: has_bias)
            node = ir.replace(self, bias=np.zeros(self.weight.shape[0], np.int32
                                                  if w.quantized(self) else np.float32))
        x = w.tensor_of(self.inputs[0])
        wi, bi = w.weights(node, x)
        opts = w.fb.Conv2DOptionsT()
        opts.padding = w.padding_enum(self, x, self.weight.shape[1:3], self.dilation)
        opts.strideH, opts.strideW = (int(s) for s in self.stride)
        opts.dilationHFactor, opts.dilationWFactor = (int(d) for d in self.dilation)
        opts.fusedActivationFunction = w.fused(self)
        inputs = [w.index[x.name], wi] + ([bi] if bi >= 0 else [])
        w.add_op(self, "CONV_2D", 3 if w.quantized(self) else 1, inputs, "Conv2DOptions", opts)

    def emit_c(self, call, c):
        from ..export_c.kernels import emit_conv  # packed for the DSP/Helium kernels
        return emit_conv(self, call, c)


def block_diagonal(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped convolution's OHWI weights (C_out, KH, KW, C_in / groups) as one dense
    CONV_2D's (C_out, KH, KW, C_in): output channel o reads input channels of its group
    o // (C_out / groups), and zeros elsewhere. Exact in float and in int8, since a zero weight
    adds nothing to the accumulator (nor to the zero-point term sum(w) * zp_in); per-channel
    scales stay on axis 0. It costs ``groups`` times the MACs and weight bytes."""
    c_out, kh, kw, per_in = weight.shape
    per_out = c_out // groups
    dense = np.zeros((c_out, kh, kw, per_in * groups), weight.dtype)
    for g in range(groups):
        dense[g * per_out:(g + 1) * per_out, :, :, g * per_in:(g + 1) * per_in] = \
            weight[g * per_out:(g + 1) * per_out]
    return dense


def _grouped_to_dense(r, op, weight: np.ndarray, c_in: int) -> np.ndarray:
    """LiteRT's grouped CONV_2D rule (conv.cc): the input's channels are a multiple of the
    filter's, and the groups divide the output channels."""
    c_out, kh, kw, per_in = weight.shape
    groups = c_in // per_in
    if c_in % per_in or c_out % groups:
        r.fail(f"{op.where}: weight shape {weight.shape} (OHWI) does not fit an input with "
               f"{c_in} channels: neither a convolution nor a grouped one (input channels must "
               "be a multiple of the filter's, and the groups must divide the output channels)")
    dense_bytes = c_out * kh * kw * c_in * weight.itemsize
    if dense_bytes > r.max_memory:
        r.fail(f"{op.where}: a grouped convolution ({groups} groups) runs as one dense CONV_2D "
               f"whose weights would need {dense_bytes} bytes, over --max-memory "
               f"{r.max_memory}")
    return block_diagonal(weight, groups)
