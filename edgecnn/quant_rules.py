"""Which int8 quantization parameters edgecnn runs, in one place.

Two kinds of rule, each checked once at prepare time with a one-line ModelFormatError that
names the layer and the scale:

1. **What LiteRT refuses.** The checks of LiteRT's Prepare functions (ai-edge-litert 2.3,
   tflite/kernels/), with LiteRT's own wording where it has one:
   - FULLY_CONNECTED per tensor: ``scale_diff / output_scale <= 0.02`` where scale_diff is
     ``|double(s_in) * double(s_w) - s_bias|`` and s_bias the bias tensor's per-tensor scale
     (0 when it has none or several) (kernel_util.cc GetQuantizedConvolutionMultipler).
   - FULLY_CONNECTED per channel: quantized_dimension 0 (fully_connected.cc).
   - CONV_2D needs its bias (conv.cc: has_bias), with zero point 0: checked by the reader.
   - fused RELU/RELU6 clamps: ``round(f / s_out)`` must fit int32 (kernel_util.cc Quantize).
   - SOFTMAX int8: output zero point -128 and scale 1/256 within 0.001/256 (activations.cc);
     ``beta * s_in * 2^26`` must exceed 1, or QuantizeMultiplierGreaterThanOne aborts the
     process (quantization_util.cc).
   - LOGISTIC int8: output scale exactly 1/256 (activations.cc SigmoidPrepare); TANH has no
     output rule in LiteRT's reference path and runs any output scale through its table.
2. **What neither LiteRT nor edgecnn can compute.** Where LiteRT's C++ is undefined, it
   depends on compiler and CPU, so no bit-exact answer exists; edgecnn refuses instead of
   guessing, and everything it accepts is free of overflow in the NumPy reference, the
   Cython kernels and the C firmware (cython_kernels/fixedpoint.h):
   - the int32 accumulator ``bias + sum((x - zp_in) * w)``: its exact range over all int8
     inputs (per channel, from the weights and the bias) must stay inside int32;
   - multiplier shift in [-31, 30]: a left shift of 31 or more (M >= 2^30) is ``1 << 31`` or
     a shift past the width in MultiplyByQuantizedMultiplier, and ``t = 31 - shift`` of the
     single-rounding policy needs shift <= 30;
   - the rescaled value: ``A * M`` (A the largest accumulator magnitude, M the effective
     multiplier of the policy: M0 * 2^(shift - 31) or the f64/fp32 real scale) plus the output
     zero point must fit int32: past it LiteRT's f64 FULLY_CONNECTED casts an out-of-range
     double to int32 and the gemmlowp path adds the zero point with signed overflow; under the
     double policy ``A << left`` must fit int32 too (``x * (1 << left)`` in LiteRT);
   - multipliers that overflow float32 or double (s_in / s_out = inf in RELU).
   - SOFTMAX over more than 4095 values (the Q12.19 sum of exps can wrap int32).
   - TANH/LOGISTIC tables whose ``round(f(x) / s_out) + zp`` leaves int32 (LUTPopulate casts
     it to int32: undefined).

Real models sit far inside these limits (|M| < 100, accumulators below 2^28); a file outside
them is corrupt or hostile.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .errors import ModelFormatError
from .reference import params as P
from .reference.fixedpoint import round_half_away

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_SHIFT = 30  # M0 * 2^(shift - 31): a left shift of 31 is undefined in LiteRT's C++
MAX_RESCALED = (1 << 31) - 256  # |A * M| + |zp| must stay inside int32
SOFTMAX_MAX_LENGTH = 4095  # N * 2^19 (exp(0) in Q12.19) must fit int32


def _fail(name: str, what: str):
    raise ModelFormatError(f"layer {name!r}: {what}")


# ----------------------------------------------------------------------------- accumulators


def accumulator_bound(name: str, w: np.ndarray, bias: Optional[np.ndarray],
                      zp_in: int, out_axis: int = 0) -> np.ndarray:
    """Per output channel, the largest |acc| of ``bias + sum((x - zp_in) * w)`` over all int8
    inputs x; refuses a layer whose accumulator can leave int32.

    Each tap's term lies in [w * (-128 - zp_in), w * (127 - zp_in)] (or reversed for w < 0), a
    range holding 0, so taps skipped at the padding stay inside the bound and every partial
    sum, in any order, lies between the two extremes.
    """
    w = np.moveaxis(np.asarray(w), out_axis, 0)  # output channels first
    w = w.reshape(w.shape[0], -1)  # int8: no int64 copy of AlexNet's 38 M weights
    lo_x, hi_x = -128 - int(zp_in), 127 - int(zp_in)
    pos = np.empty(w.shape[0], np.int64)  # sum of the positive weights, per channel
    step = max(1, (1 << 20) // max(1, w.shape[1]))  # rows per 1 MiB: no weight-sized temporary
    for r in range(0, w.shape[0], step):
        pos[r:r + step] = np.maximum(w[r:r + step], 0).sum(axis=1, dtype=np.int64)
    neg = w.sum(axis=1, dtype=np.int64) - pos
    b = np.zeros(w.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    hi = b + pos * hi_x + neg * lo_x
    lo = b + pos * lo_x + neg * hi_x
    bad = np.flatnonzero((hi > INT32_MAX) | (lo < INT32_MIN))
    if bad.size:
        c = int(bad[0])
        _fail(name, f"the int32 accumulator of output channel {c} can reach "
                    f"[{int(lo[c])}, {int(hi[c])}] (bias {int(b[c])}); LiteRT's int32 sum "
                    "overflows there (undefined), so the bias or weights are corrupt")
    return np.maximum(np.abs(lo), np.abs(hi))


def check_requant(name: str, rq: P.Requant, bound, what: str) -> None:
    """The multipliers of ``rq`` can be applied to accumulators up to ``bound`` (per channel,
    or a scalar) without a shift or an int32 result that C leaves undefined (module doc)."""
    real = np.asarray(rq.real_scale, np.float64)
    if not np.all(np.isfinite(real)):
        _fail(name, f"{what} gives a multiplier that overflows (inf); LiteRT's arithmetic is "
                    "undefined there")
    shift = np.asarray(rq.shift, np.int64)
    if rq.policy in (P.POLICY_DOUBLE, P.POLICY_SINGLE):
        if int(shift.max()) > MAX_SHIFT:
            _fail(name, f"{what} gives the multiplier {float(real.max()):.4g} = M0 * "
                        f"2^{int(shift.max()) - 31}; a left shift of {int(shift.max())} bits is "
                        "undefined in LiteRT's MultiplyByQuantizedMultiplier (at most "
                        f"{MAX_SHIFT}: multipliers below 2^30)")
        effective = np.asarray(rq.multiplier, np.float64) * np.exp2(shift - 31.0)
    else:
        effective = real
    worst, effective, shift = np.broadcast_arrays(np.asarray(bound, np.float64), effective, shift)
    over = worst * effective * (1 + 2.0 ** -20) + 1
    if rq.policy == P.POLICY_DOUBLE:  # x * (1 << left) must fit int32 before the multiply
        over = np.maximum(over, worst * np.exp2(np.maximum(shift, 0)))
    if np.any(over >= MAX_RESCALED):
        c = int(np.argmax(over))
        _fail(name, f"{what} gives the multiplier {float(effective.flat[c]):.4g}; with "
                    f"accumulators up to {int(worst.flat[c])} the rescaled value leaves int32, "
                    "where LiteRT's arithmetic overflows (undefined)")


# ----------------------------------------------------------------------------- checked makers


def activation_range(name: str, activation: str, s_out: float, zp_out: int) -> tuple[int, int]:
    """P.activation_range after LiteRT's check that ``round(f / s_out)`` fits int32."""
    for f in {"relu": (0.0,), "relu6": (0.0, 6.0)}.get(activation, ()):
        with np.errstate(over="ignore", divide="ignore"):
            q = float(np.float32(f) / np.float32(s_out))
        r = float(round_half_away(q)) if math.isfinite(q) else q
        if not -2.0 ** 31 <= r < 2.0 ** 31:  # LiteRT allows r == 2^31 too, then casts: undefined
            _fail(name, f"output scale {s_out:g}: the fused {activation.upper()} bound {f:g} "
                        f"quantizes to {q:g}, outside int32 (LiteRT: "
                        "no_integer_overflow_from_quantization was not true)")
    return P.activation_range(activation, s_out, zp_out)


def bias_scale(layer, s_in: float) -> float:
    """The bias scale LiteRT's 0.02 rule reads (``bias->params.scale``): the bias tensor's one
    scale, 0 when it has none or several. A graph built in memory (no bias_quant) gets the
    scale edgecnn's writer gives it: float32(s_in * s_w)."""
    q = getattr(layer, "bias_quant", None)
    if q is None:
        return float(np.float32(np.float64(s_in) * np.float64(layer.weight_quant.scale[0])))
    return float(q.scale[0]) if q.scale.size == 1 else 0.0


def conv_requant(layer, s_in: float, zp_in: int, s_w: np.ndarray, s_out: float, zp_out: int,
                 policy: str, op: str = "conv", out_axis: int = 0) -> P.Requant:
    """CONV_2D (or, with op "depthwise" and out_axis 3, DEPTHWISE_CONV_2D) requantization,
    checked (module doc)."""
    activation_range(layer.name, layer.activation, s_out, zp_out)
    rq = P.make_requant(s_in, s_w, s_out, zp_out, layer.activation, op, policy)
    bound = accumulator_bound(layer.name, layer.weight, layer.bias, zp_in, out_axis)
    check_requant(layer.name, rq, bound, f"input scale {s_in:g} x weight scale "
                                         f"{float(np.max(s_w)):g} / output scale {s_out:g}")
    return rq


def fc_requant(layer, s_in: float, zp_in: int, s_w: np.ndarray, s_out: float, zp_out: int,
               policy: str) -> P.Requant:
    """FULLY_CONNECTED requantization, checked: LiteRT's per-tensor bias-scale rule and
    per-channel axis, then the arithmetic ranges (module doc)."""
    name = layer.name
    if s_w.size > 1 and layer.weight_quant.axis != 0:
        _fail(name, f"weights quantized per channel along axis {layer.weight_quant.axis}; "
                    "LiteRT needs axis 0 (quantized_dimension != 0)")
    if s_w.size == 1 and layer.bias is not None:
        product = float(np.float32(s_in)) * float(s_w[0])
        diff = abs(product - bias_scale(layer, s_in))
        if not diff / float(np.float32(s_out)) <= 0.02:
            _fail(name, f"bias scale {bias_scale(layer, s_in):g} differs from input scale x "
                        f"weight scale {product:g} by {diff:g}, over 0.02 of the output scale "
                        f"{s_out:g} (LiteRT: scale_diff / output_scale <= 0.02 was not true)")
    with np.errstate(over="ignore"):
        product32 = np.float32(s_in) * s_w.astype(np.float32)
    if s_w.size == 1 and not np.isfinite(product32).all():
        _fail(name, f"input scale {s_in:g} x weight scale {float(s_w[0]):g} overflows float32; "
                    "LiteRT's multiplier is undefined there")
    activation_range(name, layer.activation, s_out, zp_out)
    with np.errstate(over="ignore"):
        rq = P.make_requant(s_in, s_w, s_out, zp_out, layer.activation, "fc", policy)
    bound = accumulator_bound(name, layer.weight, layer.bias, zp_in)
    check_requant(name, rq, bound, f"input scale {s_in:g} x weight scale "
                                   f"{float(np.max(s_w)):g} / output scale {s_out:g}")
    return rq


def relu_params(name: str, s_in: float, zp_in: int, s_out: float, zp_out: int,
                six: bool) -> P.ReluParams:
    """Standalone RELU/RELU6 (LiteRT ReluPrepare, QuantizedReluX), checked."""
    with np.errstate(over="ignore"):
        ratio = float(np.float32(s_in) / np.float32(s_out))
    if not math.isfinite(ratio):
        _fail(name, f"input scale {s_in:g} / output scale {s_out:g} overflows float32; LiteRT's "
                    "multiplier is undefined there")
    activation_range(name, "relu6" if six else "relu", s_out, zp_out)
    p = P.make_relu_params(s_in, zp_in, s_out, zp_out, six)
    rq = P.Requant(np.array([p.multiplier]), np.array([p.shift]), np.array([ratio]),
                   P.POLICY_DOUBLE, zp_out, p.act_min, p.act_max)
    check_requant(name, rq, max(127 - zp_in, zp_in + 128),
                  f"input scale {s_in:g} / output scale {s_out:g}")
    return p


def softmax_params(name: str, s_in: float, beta: float, n: int, s_out: float,
                   zp_out: int) -> P.SoftmaxParams:
    """SOFTMAX int8 (LiteRT SoftmaxPrepare, reference path), checked."""
    near = abs(np.float32(s_out) - np.float32(1 / 256)) <= np.float32(0.001 / 256)
    if zp_out != -128 or not near:
        _fail(name, f"int8 softmax output must have scale 1/256 and zero point -128 (LiteRT), "
                    f"got {s_out:g} and {zp_out}")
    real = float(np.float32(beta)) * float(np.float32(s_in)) * float(1 << 26)
    if not real > 1.0:
        _fail(name, f"beta {beta:g} x input scale {s_in:g} x 2^26 = {real:g} is not above 1; "
                    "LiteRT aborts there (QuantizeMultiplierGreaterThanOne)")
    if n > SOFTMAX_MAX_LENGTH:
        _fail(name, f"softmax over {n} values: the Q12.19 sum of exps of LiteRT's int8 softmax "
                    f"can overflow int32 past {SOFTMAX_MAX_LENGTH} values")
    return P.make_softmax_params(s_in, beta)


def lut_output(name: str, kind: str, s_in: float, zp_in: int, s_out: float,
               zp_out: int) -> None:
    """TANH/LOGISTIC int8 (LiteRT TanhPrepare/SigmoidPrepare, reference path): logistic needs
    the output scale 1/256 exactly; every table entry ``round(f(x) / s_out) + zp`` must fit
    int32 (the cast in LUTPopulate)."""
    if kind == "sigmoid" and float(np.float32(s_out)) != 1.0 / 256:
        _fail(name, f"int8 logistic output scale must be 1/256 exactly (LiteRT: "
                    f"output->params.scale == 1. / 256), got {s_out:g}")
    q = np.arange(-128, 128, dtype=np.float32) - np.float32(zp_in)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        v = np.float32(s_in) * q
        f = np.tanh(v) if kind == "tanh" else np.float32(1) / (np.float32(1) + np.exp(-v))
        r = np.round(f.astype(np.float32) * (np.float32(1) / np.float32(s_out))) + zp_out
    if not (np.all(np.isfinite(r)) and np.all(np.abs(r) < 2.0 ** 31 - 256)):
        _fail(name, f"output scale {s_out:g}: the {kind} table's values leave int32 "
                    "(LiteRT's LUTPopulate casts them to int32: undefined)")


def reshape_quant(name: str, x, y) -> None:
    """RESHAPE copies bytes (LiteRT reshape.cc: memcpy, no requantization), so int8 input and
    output must share scale and zero point (the TFLite int8 spec), or every value would
    change meaning; LiteRT runs such a file and gets those changed values."""
    if x.dtype != "int8" and y.dtype != "int8":
        return
    same = (x.quant is not None and y.quant is not None and x.dtype == y.dtype
            and np.array_equal(x.quant.scale, y.quant.scale)
            and np.array_equal(x.quant.zero_point, y.quant.zero_point))
    if not same:
        def q(t):
            if t.quant is None:
                return "none"
            scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
            return f"{t.dtype} scale {scale:g} zero point {zp}"
        _fail(name, f"RESHAPE changes the quantization ({q(x)} -> {q(y)}); it copies bytes, so "
                    "the TFLite int8 spec requires both to be equal: re-export the model")


# ----------------------------------------------------------------------------- window geometry

MAX_EXTENT = 1 << 24  # padded input sides, kernels, strides and dilations the kernels index
PADDED_AREA_FACTOR, PADDED_AREA_SLACK = 16, 1 << 20  # padded input pixels allowed


def window_geometry(name: str, in_hw, kernel, stride, dilation, padding) -> None:
    """CONV_2D and pooling index their input in int32 (C firmware, Cython): ``oy * stride -
    pad_top + ky * dilation``. With the padded input side, the stride and the dilated kernel
    all below 2^24, every such index stays below 2^26. A dilation of 2^31 - 1 with SAME
    padding (pad 2^30, found by fuzz/tflite_struct.py) otherwise overflows the index and the
    kernels read far outside the input."""
    top, bottom, left, right = (int(p) for p in padding)
    for axis, size, k, s, d, lo, hi in (("height", in_hw[0], kernel[0], stride[0], dilation[0],
                                         top, bottom),
                                        ("width", in_hw[1], kernel[1], stride[1], dilation[1],
                                         left, right)):
        if int(d) > 32767:  # ai-edge-litert 2.3 conv.cc:403 (depthwise_conv.cc:122 on main)
            _fail(name, f"dilation {d} along the {axis}: LiteRT needs at most 32767 "
                        f"(dilation_{axis}_factor <= INT16_MAX was not true)")
        padded, extent = int(size) + lo + hi, (int(k) - 1) * int(d) + 1
        if max(padded, extent, int(s)) >= MAX_EXTENT:
            _fail(name, f"{axis}: kernel {k} with dilation {d}, stride {s} and padding "
                        f"({lo}, {hi}) on {size} pixels spans {max(padded, extent)}; edgecnn's "
                        f"kernels index up to {MAX_EXTENT} (the model is corrupt)")
    # The Cython conv copies the input into a padded buffer once per call: a 100 KB model with
    # a dilation of 32767 under SAME padding would make that copy gigabytes. Real paddings add
    # a few pixels a side (16x the area of a 1x1 input padded to 3x3 and more is allowed).
    area = (int(in_hw[0]) + top + bottom) * (int(in_hw[1]) + left + right)
    if area > PADDED_AREA_FACTOR * int(in_hw[0]) * int(in_hw[1]) + PADDED_AREA_SLACK:
        _fail(name, f"padding ({top}, {bottom}, {left}, {right}) grows the {in_hw[0]}x{in_hw[1]} "
                    f"input to {area} pixels, over {PADDED_AREA_FACTOR}x its area plus "
                    f"{PADDED_AREA_SLACK}; the model is corrupt or hostile")
