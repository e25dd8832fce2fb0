"""Kernel parameter records, computed once at prepare time (DESIGN.md section 3).

The same field names appear in the Cython kernels and in the C firmware structs. Scales are
float32 in the .tflite file; every formula below says in which precision TFLite combines them.

Rounding policies (the ``policy`` code of a Requant; the same numbers as EC_ROUND_* in
cython_kernels/fixedpoint.h):

- ``double`` (0): RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M0), right),
  gemmlowp's two roundings. LiteRT BUILTIN_REF CONV_2D, TFLite Micro, CMSIS-NN.
- ``f64`` (1): round_half_away(double(acc) * real_scale), real_scale = s_in * s_w[c] / s_out in
  double. LiteRT BUILTIN_REF FULLY_CONNECTED (ai-edge-litert 2.x).
- ``single`` (2): (x * M0 + 2^(t-1)) >> t, t = 31 - shift. ruy, TFLITE_SINGLE_ROUNDING.
- ``fp32`` (3): rint(float32(acc) * float32(real_scale)), ties to even; real_scale is then the
  float32 value (s_in * s_w[c]) / s_out computed in float32 as XNNPACK does. XNNPACK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fixedpoint import quantize_multiplier, quantize_multipliers, round_half_away

ROUNDING_POLICIES = ("double", "f64", "single", "fp32")  # index = policy code
POLICY_DOUBLE, POLICY_F64, POLICY_SINGLE, POLICY_FP32 = range(4)
MODEL_POLICIES = ("litert-ref", "double", "single", "fp32")
# What LiteRT BUILTIN_REF (ai-edge-litert 2.3) does per op; tests/test_kernels_litert.py proves it.
# DEPTHWISE_CONV_2D: reference_integer_ops::DepthwiseConvPerChannel calls the same
# MultiplyByQuantizedMultiplier as CONV_2D, with M0/shift from the same
# PopulateConvolutionQuantizationParams (tests/test_depthwise.py proves it against BUILTIN_REF).
LITERT_REF_POLICY = {"conv": "double", "depthwise": "double", "fc": "f64"}

INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True, eq=False)
class Requant:
    """int32 accumulator -> int8, per output channel (last axis)."""

    multiplier: np.ndarray  # int32[C], M0 in [2^30, 2^31) (0 for tiny scales)
    shift: np.ndarray  # int32[C], > 0 is a left shift: M = M0 * 2^(shift - 31)
    real_scale: np.ndarray  # float64[C], the scale the f64 / fp32 policies multiply by
    policy: int  # index into ROUNDING_POLICIES
    output_offset: int  # zero point of the output
    act_min: int
    act_max: int


@dataclass(frozen=True)
class ConvParams:
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    dilation_h: int
    dilation_w: int
    input_offset: int  # -zp_in


@dataclass(frozen=True)
class DepthwiseParams:
    """DEPTHWISE_CONV_2D: output channel oc = ic * depth_multiplier + m reads input channel ic."""

    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    dilation_h: int
    dilation_w: int
    depth_multiplier: int
    input_offset: int  # -zp_in


@dataclass(frozen=True)
class PoolParams:
    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class FCParams:
    input_offset: int  # -zp_in


@dataclass(frozen=True)
class SoftmaxParams:
    """LiteRT reference int8 softmax (gemmlowp fixed point, 5 integer bits for the differences)."""

    input_multiplier: int  # Q31 multiplier of beta * s_in * 2^26
    input_left_shift: int  # >= 0
    diff_min: int  # input differences (x - max) below this give exp = 0 (output -128)


@dataclass(frozen=True, eq=False)
class SoftmaxFloatParams:
    """LiteRT's optimized int8 softmax (optimized_ops::Softmax, the kernel its default resolver
    runs on x86-64: XNNPACK takes no int8 SOFTMAX), in float32 through a 256-entry exp table."""

    exps: np.ndarray  # float32[256]: exps[d] = expf(float32(-beta * s_in) * d), d = max(x) - x
    output_scale: float  # float32 s_out (within 0.001/256 of 1/256)
    output_offset: int  # zp_out (-128)


@dataclass(frozen=True)
class ReluParams:
    """Standalone RELU / RELU6: out = clamp(zp_out + MBQM(x - zp_in, M0, shift))."""

    input_offset: int  # zp_in (subtracted)
    output_offset: int  # zp_out
    multiplier: int
    shift: int
    act_min: int
    act_max: int


def policy_code(name: str) -> int:
    if name not in ROUNDING_POLICIES:
        raise ValueError(f"unknown rounding policy {name!r}; expected one of {ROUNDING_POLICIES}")
    return ROUNDING_POLICIES.index(name)


def resolve_policy(model_policy: str, op: str) -> str:
    """The rounding policy an op uses under a model-level choice (see MODEL_POLICIES)."""
    if op not in LITERT_REF_POLICY:
        raise ValueError(f"unknown op {op!r}; expected one of {sorted(LITERT_REF_POLICY)}")
    if model_policy == "litert-ref":
        return LITERT_REF_POLICY[op]
    policy_code(model_policy)
    return model_policy


def _quantize_f32(f: float, s_out: float, zp_out: int) -> int:
    """TFLite's activation-range quantize: zp + round_half_away(float32(f) / float32(scale))."""
    return int(zp_out) + int(round_half_away(np.float32(f) / np.float32(s_out)))


def activation_range(activation: str, s_out: float, zp_out: int) -> tuple[int, int]:
    """Fused activation as an int8 clamp (TFLite CalculateActivationRangeQuantized)."""
    if activation == "none":
        return INT8_MIN, INT8_MAX
    lo = max(INT8_MIN, _quantize_f32(0.0, s_out, zp_out))
    if activation == "relu":
        return lo, INT8_MAX
    if activation == "relu6":
        return lo, min(INT8_MAX, _quantize_f32(6.0, s_out, zp_out))
    raise ValueError(f"unknown activation {activation!r}; expected none, relu or relu6")


def make_requant(s_in: float, s_w, s_out: float, zp_out: int, activation: str, op: str,
                 model_policy: str = "litert-ref") -> Requant:
    """Requantization of conv ("conv"), depthwise conv ("depthwise") or fully connected ("fc")
    outputs.

    M0/shift follow TFLite's Prepare: per channel (and for conv and depthwise always)
    ``double(s_in) * double(s_w[c]) / double(s_out)``; for a per-tensor fully connected
    ``double(float32(s_in * s_w)) / double(s_out)``. ``real_scale`` is what the f64 policy uses
    (``double(s_in) * double(s_w) / double(s_out)``, as the reference FC computes it) or, for
    fp32, the float32 ``s_in * s_w / s_out`` of XNNPACK.
    """
    policy = resolve_policy(model_policy, op)
    s_in32 = np.float32(s_in)
    s_out32 = np.float32(s_out)
    s_w32 = np.atleast_1d(np.asarray(s_w, dtype=np.float32))
    f64 = float(s_in32) * s_w32.astype(np.float64) / float(s_out32)
    if op == "fc" and s_w32.size == 1:
        mult = np.array([float(np.float32(s_in32 * s_w32[0])) / float(s_out32)])
    else:
        mult = f64
    multiplier, shift = quantize_multipliers(mult)
    if policy == "fp32":
        real_scale = ((s_in32 * s_w32) / s_out32).astype(np.float32).astype(np.float64)
    else:
        real_scale = f64
    act_min, act_max = activation_range(activation, s_out, zp_out)
    return Requant(multiplier, shift, real_scale, policy_code(policy), int(zp_out),
                   act_min, act_max)


def make_softmax_params(s_in: float, beta: float) -> SoftmaxParams:
    """TFLite PreprocessSoftmaxScaling + CalculateInputRadius with 5 integer bits."""
    integer_bits = 5
    real = min(float(np.float32(beta)) * float(np.float32(s_in)) * float(1 << (31 - integer_bits)),
               float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier(real)
    radius = ((1 << integer_bits) - 1) * float(1 << (31 - integer_bits)) / float(1 << left_shift)
    return SoftmaxParams(int(multiplier), int(left_shift), -int(math.floor(radius)))


def make_softmax_float_params(s_in: float, beta: float, s_out: float,
                              zp_out: int) -> SoftmaxFloatParams:
    """LiteRT SoftmaxPrepare (kGenericOptimized) and PopulateSoftmaxLookupTable: scale =
    float32(-s_in * beta), table entry for a difference d = expf(scale * d) in float32, with the
    C library's expf (the one LiteRT calls: glibc's on Linux)."""
    from .quantize import c_expf
    scale = np.float32(-np.float32(s_in) * np.float32(beta))
    exps = np.array([c_expf(np.float32(scale * np.float32(d))) for d in range(256)], np.float32)
    return SoftmaxFloatParams(exps, float(np.float32(s_out)), int(zp_out))


def make_relu_params(s_in: float, zp_in: int, s_out: float, zp_out: int,
                     six: bool = False) -> ReluParams:
    """TFLite ReluPrepare/QuantizedReluX: M = float32(s_in / s_out); bounds via roundf(f / s)."""
    multiplier, shift = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
    act_min = max(INT8_MIN, _quantize_f32(0.0, s_out, zp_out))
    act_max = min(INT8_MAX, _quantize_f32(6.0, s_out, zp_out)) if six else INT8_MAX
    return ReluParams(int(zp_in), int(zp_out), int(multiplier), int(shift), act_min, act_max)


# ---------------------------------------------------------------------------------------------
# Graph ops: ADD, CONCATENATION, MEAN (LiteRT 2.3 BUILTIN_REF: add.cc, concatenation.cc,
# reduce.cc; tests/test_graph_op_kernels_litert.py proves each formula against the interpreter).

ADD_LEFT_SHIFT = 20  # int8 ADD: |x - zp| <= 255, so (x - zp) << 20 < 2^28 fits int32
MAX_BROADCAST_DIMS = 8  # LiteRT's broadcast loop (BroadcastBinaryOpSimple) handles rank <= 8


@dataclass(frozen=True)
class AddParams:
    """int8 ADD (reference_integer_ops::AddFunc): both inputs to a common fixed point, then out.

    s_i = RDBP(SRDHM((x_i + input_i_offset) << left_shift, input_i_multiplier), -input_i_shift)
    out = clamp(RDBP(SRDHM(s_1 + s_2, output_multiplier), -output_shift) + output_offset)
    (every shift <= 0: QuantizeMultiplierSmallerThanOneExp).
    """

    left_shift: int
    input1_offset: int  # -zp1
    input2_offset: int  # -zp2
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    output_offset: int  # zp_out
    act_min: int
    act_max: int


@dataclass(frozen=True)
class Broadcast:
    """How ADD walks two NumPy-broadcast operands: dimensions of equal broadcast pattern fused
    (as LiteRT's BroadcastBinaryOpSimple does), outermost first; strides in elements, 0 where
    that operand repeats. The last dimension is the inner run: strides (1, 1), (0, 1) or (1, 0)."""

    rank: int
    size: tuple
    stride1: tuple
    stride2: tuple


@dataclass(frozen=True)
class ConcatParams:
    """int8 CONCATENATION is a plain copy: LiteRT's Prepare refuses an int8 input whose scale or
    zero point differs from the output's, so there is never anything to rescale."""

    inputs_count: int


@dataclass(frozen=True)
class MeanParams:
    """int8 MEAN over H, W. Policy double (LiteRT BUILTIN_REF, reference_ops::QuantizedMeanOrSum):
    out = clamp(MBQM(int32(sum + input_offset * count), multiplier, shift) + output_offset)
    with the sum wrapping in int32 and 1/count folded into multiplier/shift. Policy fp32
    (XNNPACK's qs8 mean: reduce-nd's int32 sum, then its int32 -> qs8 convert):
    out = clamp(rint(float32(float32(sum) * scale) + bias)), every operation in float32."""

    multiplier: int
    shift: int
    input_offset: int  # -zp_in
    output_offset: int  # zp_out
    count: int  # H * W, the reduced elements per output
    policy: int  # POLICY_DOUBLE or POLICY_FP32
    scale: float  # fp32: float32(float32(s_in / s_out) * float32(1 / count))
    bias: float  # fp32: float32(zp_out - float32(float32(count * zp_in) * scale))


def _check_quant(op: str, **quant) -> None:
    """Scales (names ending in _scale) positive and finite in float32; zero points int8."""
    for name, v in quant.items():
        if name.endswith("scale"):
            if not (np.isfinite(v) and abs(v) <= np.finfo(np.float32).max and np.float32(v) > 0):
                raise ValueError(f"{op}: {name} {v!r} is not a positive finite float32")
        elif not INT8_MIN <= int(v) <= INT8_MAX:
            raise ValueError(f"{op}: {name} {v} is outside int8 [-128, 127]")


def make_add_params(s1: float, zp1: int, s2: float, zp2: int, s_out: float, zp_out: int,
                    activation: str) -> AddParams:
    """LiteRT add.cc Prepare for int8: every product and quotient in double, from the float32
    scales; QuantizeMultiplierSmallerThanOneExp aborts LiteRT on a multiplier >= 1, so a
    too-small output scale (s_out <= max(s1, s2) / 2^19) is refused here."""
    _check_quant("ADD", input1_scale=s1, input2_scale=s2, output_scale=s_out, input1_zero_point=zp1,
                 input2_zero_point=zp2, output_zero_point=zp_out)
    f1, f2, fo = (float(np.float32(s)) for s in (s1, s2, s_out))
    twice_max = 2.0 * max(f1, f2)
    m1, sh1 = quantize_multiplier(f1 / twice_max)  # <= 0.5: the larger input gets exactly 2^30, 0
    m2, sh2 = quantize_multiplier(f2 / twice_max)
    real_out = twice_max / (float(1 << ADD_LEFT_SHIFT) * fo)
    mo, sho = quantize_multiplier(real_out)
    if not real_out < 1.0 or sho > 0:
        raise ValueError(f"ADD: output scale {fo:g} is too small for input scales {f1:g} and "
                         f"{f2:g} (LiteRT needs 2 * max(s1, s2) / (2^20 * s_out) < 1)")
    act_min, act_max = activation_range(activation, s_out, zp_out)
    return AddParams(ADD_LEFT_SHIFT, -int(zp1), -int(zp2), int(m1), int(sh1), int(m2), int(sh2),
                     int(mo), int(sho), int(zp_out), act_min, act_max)


def broadcast_shape(shape1, shape2) -> tuple:
    """NumPy broadcasting as LiteRT's CalculateShapeForBroadcast checks it (rank <= 8)."""
    shape1, shape2 = tuple(int(d) for d in shape1), tuple(int(d) for d in shape2)
    rank = max(len(shape1), len(shape2))
    if rank > MAX_BROADCAST_DIMS:
        raise ValueError(f"ADD: shapes {shape1} and {shape2} have {rank} dimensions; LiteRT "
                         f"broadcasts at most {MAX_BROADCAST_DIMS}")
    if min(shape1 + shape2, default=1) < 1:
        raise ValueError(f"ADD: shapes {shape1} and {shape2} have an empty dimension")
    a = (1,) * (rank - len(shape1)) + shape1
    b = (1,) * (rank - len(shape2)) + shape2
    if any(d1 != d2 and 1 not in (d1, d2) for d1, d2 in zip(a, b)):
        raise ValueError(f"ADD: shapes {shape1} and {shape2} do not broadcast (each dimension "
                         f"must be equal, or 1 in one of them)")
    return tuple(max(d1, d2) for d1, d2 in zip(a, b))


def make_broadcast(shape1, shape2) -> Broadcast:
    """The fused walk of ``broadcast_shape(shape1, shape2)`` (see Broadcast)."""
    out = broadcast_shape(shape1, shape2)
    rank = len(out)
    a = (1,) * (rank - len(shape1)) + tuple(int(d) for d in shape1)
    b = (1,) * (rank - len(shape2)) + tuple(int(d) for d in shape2)
    dims = []  # [size, full1, full2], outermost first, size-1 output dims dropped
    for d, d1, d2 in zip(out, a, b):
        if d == 1:
            continue
        pattern = (d1 == d, d2 == d)
        if dims and (dims[-1][1], dims[-1][2]) == pattern:
            dims[-1][0] *= d
        else:
            dims.append([d, *pattern])
    if not dims:
        dims = [[1, True, True]]
    size, stride1, stride2 = [], [], []
    acc1 = acc2 = 1
    for d, full1, full2 in reversed(dims):
        size.insert(0, d)
        stride1.insert(0, acc1 if full1 else 0)
        stride2.insert(0, acc2 if full2 else 0)
        acc1 *= d if full1 else 1
        acc2 *= d if full2 else 1
    return Broadcast(len(size), tuple(size), tuple(stride1), tuple(stride2))


def concat_shape(shapes, axis: int) -> tuple:
    """LiteRT concatenation.cc Prepare: equal ranks (>= 1), every dimension but ``axis`` equal;
    a negative axis counts from the end. Returns the output shape."""
    shapes = [tuple(int(d) for d in s) for s in shapes]
    if not shapes:
        raise ValueError("CONCATENATION: no inputs")
    rank = len(shapes[0])
    if rank == 0:
        raise ValueError("CONCATENATION: scalar inputs (LiteRT joins scalars only when constant)")
    if not -rank <= axis < rank:
        raise ValueError(f"CONCATENATION: axis {axis} is out of range for rank {rank}")
    axis %= rank
    for i, s in enumerate(shapes[1:], 1):
        if len(s) != rank or any(d != d0 for k, (d, d0) in enumerate(zip(s, shapes[0]))
                                 if k != axis):
            raise ValueError(f"CONCATENATION: input {i} has shape {s} but input 0 has "
                             f"{shapes[0]}; all dimensions except axis {axis} must be equal")
    return tuple(sum(s[k] for s in shapes) if k == axis else shapes[0][k] for k in range(rank))


def make_concat_params(in_quants, out_quant) -> ConcatParams:
    """``in_quants``: (scale, zero point) per input; ``out_quant``: the output's. LiteRT compares
    the float32 scales and the zero points exactly and refuses any difference for int8."""
    in_quants = list(in_quants)
    if not in_quants:
        raise ValueError("CONCATENATION: no inputs")
    s_out, zp_out = np.float32(out_quant[0]), int(out_quant[1])
    for i, (s, zp) in enumerate(in_quants):
        if np.float32(s) != s_out or int(zp) != zp_out:
            raise ValueError(f"CONCATENATION: input {i} has scale {float(np.float32(s)):g} and "
                             f"zero point {int(zp)} but the output has {float(s_out):g} and "
                             f"{zp_out}; LiteRT's int8 CONCATENATION needs them equal")
    return ConcatParams(len(in_quants))


def mean_shape(in_shape, axes, keep_dims: bool) -> tuple:
    """Output shape of MEAN over H, W of an NHWC tensor; anything else is refused."""
    in_shape = tuple(int(d) for d in in_shape)
    rank = len(in_shape)
    if rank != 4:
        raise ValueError(f"MEAN: input shape {in_shape} is not NHWC; edgecnn runs MEAN over "
                         f"H and W of a 4-D tensor only")
    axes = list(axes)
    if any(not -rank <= a < rank for a in axes):
        raise ValueError(f"MEAN: axes {axes} are out of range for rank {rank}")
    if sorted({a % rank for a in axes}) != [1, 2]:
        raise ValueError(f"MEAN: axes {axes} reduce {sorted({a % rank for a in axes})}; edgecnn "
                         f"runs MEAN over H and W (axes 1 and 2) of NHWC only")
    n, _, _, c = in_shape
    return (n, 1, 1, c) if keep_dims else (n, c)


def make_mean_params(in_shape, axes, s_in: float, zp_in: int, s_out: float,
                     zp_out: int, model_policy: str = "litert-ref") -> MeanParams:
    """reduce.cc PrepareMeanOrSum: QuantizeMultiplier(double(s_in) / double(s_out)); then
    QuantizedMeanOrSum folds 1/count in: shift = min(floor(log2 count), 32, 31 + shift0),
    multiplier = (M0 << shift) // count (truncating), shift0 - shift. The same for keep_dims
    on or off and for equal or different quantization (BUILTIN_REF has no special case).

    ``model_policy`` "fp32" selects XNNPACK's arithmetic (LiteRT's default path delegates int8
    MEAN to it): xnn_init_qs8_reduce_scalar_params takes float32 s_in / s_out, reshape
    multiplies it by float32 1 / count, and folds the input zero point into the convert's float
    output zero point (bias); every other policy runs the reference's."""
    mean_shape(in_shape, axes, True)
    if model_policy not in MODEL_POLICIES:
        raise ValueError(f"unknown rounding {model_policy!r}; expected one of {MODEL_POLICIES}")
    _check_quant("MEAN", input_scale=s_in, output_scale=s_out, input_zero_point=zp_in,
                 output_zero_point=zp_out)
    m0, shift0 = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    count = int(in_shape[1]) * int(in_shape[2])
    shift = min(count.bit_length() - 1, 32, 31 + shift0)
    f32 = np.float32
    scale = f32(f32(f32(s_in) / f32(s_out)) * f32(f32(1.0) / f32(count)))
    bias = f32(f32(zp_out) - f32(f32(count * int(zp_in)) * scale))
    policy = POLICY_FP32 if model_policy == "fp32" else POLICY_DOUBLE
    return MeanParams(int((m0 << shift) // count), int(shift0 - shift), -int(zp_in), int(zp_out),
                      count, policy, float(scale), float(bias))
