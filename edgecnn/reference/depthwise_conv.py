"""Reference int8 DEPTHWISE_CONV_2D (the spec), matching LiteRT
reference_integer_ops::DepthwiseConvPerChannel.

x int8 (H, W, C), w int8 (KH, KW, C*M) (TFLite's [1, KH, KW, C*M] without the leading 1;
per-channel scales on the last axis), bias int32 (C*M,) or None, out int8 (OH, OW, C*M).
Output channel oc = ic * M + m reads input channel ic only. acc[oc] = bias[oc] + sum over
in-image taps of (x[iy, ix, oc // M] + input_offset) * w[ky, kx, oc]: taps outside the image are
skipped, so padding acts as the input zero point. Then ``requantize`` (the policy of ``rq``).
|x + input_offset| <= 255 and |w| <= 128, so a tap adds at most 32640 and an int32 accumulator
holds 2^16 taps: the contract is |acc| < 2^31, as for CONV_2D.
"""

from __future__ import annotations

import numpy as np

from .params import DepthwiseParams, Requant
from .quantize import requantize


def depth_multiplier_of(in_channels: int, filter_channels: int) -> int:
    """M = C*M / C, as LiteRT's ComputeDepthMultiplier derives it; ValueError if it does not
    divide (LiteRT's int8 kernel ignores the options' depthMultiplier and uses this)."""
    if in_channels < 1 or filter_channels < 1 or filter_channels % in_channels:
        raise ValueError(f"depthwise filter has {filter_channels} output channels, not a "
                         f"multiple of the {in_channels} input channels (depth multiplier does "
                         f"not divide)")
    return filter_channels // in_channels


def check_depthwise(x_shape, w_shape, bias_shape, p: DepthwiseParams, out_shape) -> None:
    """The shape and parameter contract of every depthwise kernel twin; ValueError otherwise.

    Prepare calls it once (and wraps the message with the layer's name); the compiled kernels
    check nothing per call beyond their bound shapes.
    """
    if len(x_shape) != 3 or len(w_shape) != 3 or len(out_shape) != 3:
        raise ValueError(f"depthwise expects x (H, W, C), w (KH, KW, C*M) and out (OH, OW, C*M); "
                         f"got x {tuple(x_shape)}, w {tuple(w_shape)}, out {tuple(out_shape)}")
    if min(p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.depth_multiplier) < 1:
        raise ValueError(f"depthwise strides, dilations and depth multiplier must be >= 1: {p}")
    if min(p.pad_top, p.pad_left) < 0:
        raise ValueError(f"depthwise padding must be >= 0: {p}")
    if min(*x_shape, *w_shape, *out_shape) < 1:
        raise ValueError(f"depthwise shapes must be non-empty: x {tuple(x_shape)}, "
                         f"w {tuple(w_shape)}, out {tuple(out_shape)}")
    cm = x_shape[2] * p.depth_multiplier
    if w_shape[2] != cm or out_shape[2] != cm:
        raise ValueError(f"depthwise: input channels {x_shape[2]} x depth multiplier "
                         f"{p.depth_multiplier} = {cm}, but the filter has {w_shape[2]} and the "
                         f"output {out_shape[2]} channels")
    if bias_shape is not None and tuple(bias_shape) != (cm,):
        raise ValueError(f"depthwise bias shape {tuple(bias_shape)}, expected ({cm},)")


def depthwise_conv2d_s8(x: np.ndarray, w: np.ndarray, bias, p: DepthwiseParams, rq: Requant,
                        out: np.ndarray) -> None:
    check_depthwise(x.shape, w.shape, None if bias is None else bias.shape, p, out.shape)
    h, wd, _ = x.shape
    oh, ow, cm = out.shape
    kh, kw, _ = w.shape
    # Input channel ic repeated M times: channel oc of xs is input channel oc // M.
    xs = np.repeat(x.astype(np.int64) + p.input_offset, p.depth_multiplier, axis=2)
    ws = w.astype(np.int64)
    acc = np.zeros((oh, ow, cm), np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    oys, oxs = np.arange(oh), np.arange(ow)
    for ky in range(kh):
        iy = oys * p.stride_h - p.pad_top + ky * p.dilation_h
        rows = (iy >= 0) & (iy < h)  # output rows whose tap row is in the image
        for kx in range(kw):
            ix = oxs * p.stride_w - p.pad_left + kx * p.dilation_w
            cols = (ix >= 0) & (ix < wd)
            acc[np.ix_(rows, cols)] += xs[np.ix_(iy[rows], ix[cols])] * ws[ky, kx]
    requantize(acc, rq, out)
