"""Reference int8 MEAN over H and W, x int8 (H, W, C) -> out int8 (C,) (keep_dims only changes
the output's shape). Two arithmetics, chosen by MeanParams.policy:

POLICY_DOUBLE: LiteRT 2.3 BUILTIN_REF (reference_ops::QuantizedMeanOrSum). BUILTIN_REF takes the
generic path for every keep_dims and every quantization, never reference_integer_ops::Mean:
  sum  = sum of x over H, W in int32 (wrapping, as LiteRT's temp_sum; exact for H*W < 2^24)
  y    = MBQM(int32(sum - zp_in * count), multiplier, shift) + zp_out, clamped to int8
with 1/count folded into multiplier and shift at prepare time (params.make_mean_params) and
MBQM gemmlowp's two roundings (a left shift first when shift > 0, wrapping like LiteRT's).

POLICY_FP32 (--rounding fp32): XNNPACK's qs8 MEAN, which LiteRT's default path delegates to
(reduce-nd's int32 sum of the raw int8 values, then its reference int32 -> qs8 convert):
  y    = rint(float32(float32(sum) * scale) + bias), clamped to int8
two float32 roundings (product, then sum; never one fused multiply-add), rint ties to even;
float32(sum) is exact below 2^24 (H*W < 2^17) and rounds to nearest-even past it, as XNNPACK's.
"""

from __future__ import annotations

import numpy as np

from . import fixedpoint as fp
from .params import INT8_MAX, INT8_MIN, POLICY_FP32, MeanParams


def mean_s8(x: np.ndarray, p: MeanParams, out: np.ndarray) -> None:
    total = fp.wrap_int32(x.sum(axis=(0, 1), dtype=np.int64))
    if p.policy == POLICY_FP32:
        f32 = np.float32
        y = np.rint((total.astype(f32) * f32(p.scale)).astype(f32) + f32(p.bias))
        out[...] = np.clip(y, INT8_MIN, INT8_MAX)
        return
    shifted = fp.wrap_int32(total + np.int64(p.input_offset) * p.count)
    y = fp.multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_offset
    out[...] = np.clip(y, INT8_MIN, INT8_MAX)
