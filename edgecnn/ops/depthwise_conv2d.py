"""DEPTHWISE_CONV_2D: each input channel convolved with its own M filters (MobileNet, DS-CNN).

Weights [1, KH, KW, C*M] as in TFLite: output channel c*M + m reads input channel c, with M
the depth multiplier (C*M / C). int8 weights in [-127, 127] with per-channel scales on axis 3
and zero point 0; bias int32 (C*M,) at scale s_in * s_w[c]. Requantization as CONV_2D's
(LiteRT reference_integer_ops::DepthwiseConvPerChannel). Out-of-image taps are skipped, which
equals padding with the input zero point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import ir, quant_rules as Q
from ..errors import ArchitectureError, ModelFormatError
from ..reference import float_ops as F
from ..reference import params as P
from .base import (Cost, KernelCall, Op, Window, int32_bias, scalar_quant, spatial_out, view3,
                   weight_scales)


@dataclass(frozen=True, eq=False)
class DepthwiseConv2D(Op):
    name: str
    weight: np.ndarray  # [1, KH, KW, C*M]; float32, or int8 in [-127, 127]
    bias: Optional[np.ndarray]  # (C*M,) float32, or int32 with scale s_in * s_w[c]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, bottom, left, right), explicit
    dilation: tuple[int, int] = (1, 1)
    activation: str = "none"
    weight_quant: Optional[ir.QuantParams] = None  # int8 graphs: per channel, axis 3
    inputs: tuple[str, ...] = ()
    output: Optional[ir.Tensor] = None
    bias_quant: Optional[ir.QuantParams] = None  # as read from a .tflite (LiteRT's 0.02 rule)

    tflite_ops = ("DEPTHWISE_CONV_2D",)
    summary = "weights [1, KH, KW, C*M], per-channel scales on axis 3, any depth multiplier, stride, dilation, padding; fused ReLU/ReLU6"
    tflite_inputs = (2, 3)
    fusable = True
    pads_with_zero_point = True

    @property
    def window(self):
        return Window(tuple(self.weight.shape[1:3]), tuple(self.stride), tuple(self.padding),
                      tuple(self.dilation))

    def depth_multiplier(self, channels: int) -> int:
        cm = self.weight.shape[3]
        if channels < 1 or cm % channels:
            raise ArchitectureError(
                f"{self.name}: {cm} output channels are not a multiple of the {channels} input "
                "channels (the depth multiplier must be a whole number)")
        return cm // channels

    def out_shape(self, in_shapes):
        x = tuple(in_shapes[0])
        if self.weight.ndim != 4 or self.weight.shape[0] != 1:
            raise ArchitectureError(f"{self.name}: depthwise weights have shape "
                                    f"{tuple(self.weight.shape)}; expected [1, KH, KW, C*M]")
        if len(x) != 4:
            raise ArchitectureError(f"{self.name}: expects an NHWC image tensor but its input "
                                    f"has shape {x}")
        self.depth_multiplier(x[3])
        oh, ow = spatial_out(self, x, self.weight.shape[1:3], self.stride, self.padding,
                            self.dilation)
        return (1, oh, ow, self.weight.shape[3])

    def run_float(self, xs):
        x = xs[0]
        y = F.depthwise_conv2d_f32(x, self.weight[0], self.bias, self.stride, self.padding,
                                   self.dilation, self.depth_multiplier(x.shape[3]))
        return F.activation_f32(y, self.activation)

    def quantize(self, q):
        from ..quantize import quantize_bias, symmetric_weight_quant
        s_in = float(q.input(self).scale[0])
        w_q, w_quant = symmetric_weight_quant(self.weight, per_channel=True, axis=3)
        bias = quantize_bias(self.bias, self.weight.shape[3], s_in, w_quant.scale, self.name)
        return q.with_output(self, q.calibrated(self.output.name), weight=w_q,
                             weight_quant=w_quant, bias=bias, bias_quant=None)

    def prepare(self, ins, rounding):
        x = ins[0]
        w, b, cm = self.weight, self.bias, self.weight.shape[3]
        if w.dtype != np.int8 or b is not None and (b.dtype != np.int32 or b.shape != (cm,)):
            raise ModelFormatError(f"{self.name}: expected int8 weights [1, KH, KW, {cm}] and an "
                                   f"int32 bias ({cm},), got {w.dtype} {tuple(w.shape)} and "
                                   f"{None if b is None else (b.dtype, b.shape)}")
        s_in, zp_in = scalar_quant(x, self.name)
        s_out, zp_out = scalar_quant(self.output, self.name)
        Q.window_geometry(self.name, x.shape[1:3], w.shape[1:3], self.stride, self.dilation,
                          self.padding)
        p = P.DepthwiseParams(stride_h=self.stride[0], stride_w=self.stride[1],
                              pad_top=self.padding[0], pad_left=self.padding[2],
                              dilation_h=self.dilation[0], dilation_w=self.dilation[1],
                              depth_multiplier=self.depth_multiplier(x.shape[3]),
                              input_offset=-zp_in)
        rq = Q.conv_requant(self, s_in, zp_in, weight_scales(self, cm), s_out, zp_out, rounding,
                            op="depthwise", out_axis=3)
        return KernelCall("depthwise_conv2d_s8",
                          (np.ascontiguousarray(w[0]), int32_bias(b, cm), p, rq),
                          (view3(x.shape),), view3(self.output.shape))

    def emit_c(self, call, c):
        w, b, p, rq = call.args
        wn, bn = c.const("weight", w, np.int8), c.const("bias", b, np.int32)
        pp, rp = c.params("ec_depthwise_params_t", p), c.requant(rq, w.shape[2])
        din, dout = c.dims("in", call.in_shapes[0]), c.dims("out", call.out_shape)
        return (f"ec_depthwise_conv2d_s8({c.src(0)}, {din}, {wn}, {w.shape[0]}, {w.shape[1]}, "
                f"{bn}, {pp}, {rp}, {c.dst}, {dout});")

    def cost(self, in_shapes):
        _, kh, kw, cm = self.weight.shape
        n_w, n_b = int(self.weight.size), 0 if self.bias is None else int(self.bias.size)
        itemsize = 1 if self.weight.dtype == np.int8 else 4
        return Cost(params=n_w + n_b, weight_bytes=n_w * itemsize + 4 * n_b,
                    macs=math.prod(self.out_shape(in_shapes)) * kh * kw)

    @classmethod
    def from_tflite(cls, r, op):
        x = r.op_input(op, 0)
        opts = op.options(r.fb.DepthwiseConv2DOptionsT)
        weight, bias, wq, bq = r.weights(op, x, 4, out_axis=3)
        if weight.shape[0] != 1:
            r.fail(f"{op.where}: depthwise weights have shape {weight.shape}; expected "
                   "[1, KH, KW, C*M]")
        stride = (int(opts.strideH), int(opts.strideW))
        dilation = (int(opts.dilationHFactor), int(opts.dilationWFactor))
        padding = r.padding(op, opts, x, weight.shape[1:3], stride, dilation)
        return cls(op.name, weight, bias, stride=stride, padding=padding, dilation=dilation,
                   activation=r.fused(op, opts), weight_quant=wq, bias_quant=bq,
                   inputs=(x.name,))

    def to_tflite(self, w):
        x = w.tensor_of(self.inputs[0])
        node = self
        if self.bias is None:  # written as zeros, as for CONV_2D (exact)
            node = ir.replace(self, bias=np.zeros(self.weight.shape[3], np.int32
                                                  if w.quantized(self) else np.float32))
        wi, bi = w.weights(node, x)
        opts = w.fb.DepthwiseConv2DOptionsT()
        opts.padding = w.padding_enum(self, x, self.weight.shape[1:3], self.dilation)
        opts.strideH, opts.strideW = (int(s) for s in self.stride)
        opts.dilationHFactor, opts.dilationWFactor = (int(d) for d in self.dilation)
        opts.depthMultiplier = self.depth_multiplier(x.shape[3])
        opts.fusedActivationFunction = w.fused(self)
        inputs = [w.index[x.name], wi] + ([bi] if bi >= 0 else [])
        w.add_op(self, "DEPTHWISE_CONV_2D", 3 if w.quantized(self) else 1, inputs,
                 "DepthwiseConv2DOptions", opts)
