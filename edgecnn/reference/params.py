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


def make_relu_params(s_in: float, zp_in: int, s_out: float, zp_out: int,
                     six: bool = False) -> ReluParams:
    """TFLite ReluPrepare/QuantizedReluX: M = float32(s_in / s_out); bounds via roundf(f / s)."""
    multiplier, shift = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
    act_min = max(INT8_MIN, _quantize_f32(0.0, s_out, zp_out))
    act_max = min(INT8_MAX, _quantize_f32(6.0, s_out, zp_out)) if six else INT8_MAX
    return ReluParams(int(zp_in), int(zp_out), int(multiplier), int(shift), act_min, act_max)
