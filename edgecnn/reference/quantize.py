"""Reference element-wise int8 ops: requantize, quantize/dequantize, pad, ReLU/ReLU6, tanh/logistic.

Activations int8 [-128, 127], any shape, C order. Matches LiteRT BUILTIN_REF (ai-edge-litert
2.3): QUANTIZE divides in float32 and rounds ties away from zero,
RELU/RELU6 reference_ops::ReluX (gemmlowp multiplier), TANH/LOGISTIC a 256-entry table built
in float32 with the C library's tanhf/expf (LUTPopulate).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from . import fixedpoint as fp
from .params import (INT8_MAX, INT8_MIN, POLICY_DOUBLE, POLICY_F64, POLICY_FP32, POLICY_SINGLE,
                     ReluParams, Requant)

_libm = ctypes.CDLL(ctypes.util.find_library("m"))
for _name in ("tanhf", "expf"):
    getattr(_libm, _name).restype = ctypes.c_float
    getattr(_libm, _name).argtypes = [ctypes.c_float]


def c_expf(v) -> np.float32:
    """The C library's float32 expf (LiteRT's tables call it; glibc's is not always correctly
    rounded, so no NumPy exp stands in for it)."""
    return np.float32(_libm.expf(float(np.float32(v))))


def scale_acc(acc, rq: Requant) -> np.ndarray:
    """int32 accumulators (channels on the last axis) -> rescaled int64, before offset/clamp."""
    if rq.policy == POLICY_DOUBLE:
        return fp.multiply_by_quantized_multiplier(acc, rq.multiplier, rq.shift)
    if rq.policy == POLICY_SINGLE:
        return fp.multiply_by_quantized_multiplier_single(acc, rq.multiplier, rq.shift)
    if rq.policy == POLICY_F64:
        return fp.scale_f64(acc, rq.real_scale)
    if rq.policy == POLICY_FP32:
        return fp.scale_fp32(acc, rq.real_scale)
    raise ValueError(f"unknown rounding policy code {rq.policy}")


def requantize(acc: np.ndarray, rq: Requant, out: np.ndarray) -> None:
    """out = clamp(output_offset + scale(acc), act_min, act_max), per channel on the last axis."""
    y = scale_acc(acc, rq) + rq.output_offset
    out[...] = np.clip(y, rq.act_min, rq.act_max)


def quantize_s8(x: np.ndarray, scale: float, zero_point: int, out: np.ndarray) -> None:
    """LiteRT QUANTIZE: round_half_away(float32(x) / float32(scale)) + zp, clamped.

    The division is in float32 (a double division misses LiteRT on 7% of near-tie inputs).
    """
    with np.errstate(over="ignore"):  # a value past float32 / scale is +-inf: clamps as LiteRT's
        q = fp.round_half_away(x.astype(np.float32) / np.float32(scale)) + zero_point
    out[...] = np.clip(q, INT8_MIN, INT8_MAX)


def dequantize_s8(x: np.ndarray, scale: float, zero_point: int, out: np.ndarray) -> None:
    """LiteRT reference DEQUANTIZE: float32(double(scale) * (q - zp))."""
    out[...] = (float(np.float32(scale)) * (x.astype(np.float64) - zero_point)).astype(np.float32)


def pad_s8(x: np.ndarray, pad_top: int, pad_left: int, pad_value: int, out: np.ndarray) -> None:
    """Spatial pad of an (H, W, C) tensor into ``out`` (OH, OW, C); the border is pad_value."""
    h, w = x.shape[:2]
    out[...] = pad_value
    out[pad_top:pad_top + h, pad_left:pad_left + w] = x


def relu_s8_params(x: np.ndarray, p: ReluParams, out: np.ndarray) -> None:
    """RELU/RELU6 with prepared params: clamp(zp_out + MBQM(x - zp_in, M0, shift))."""
    y = p.output_offset + fp.multiply_by_quantized_multiplier(
        x.astype(np.int64) - p.input_offset, p.multiplier, p.shift)
    out[...] = np.clip(y, p.act_min, p.act_max)


def activation_lut(kind: str, s_in: float, zp_in: int, s_out: float, zp_out: int) -> np.ndarray:
    """TFLite LUTPopulate<int8_t>: lut[q + 128] = clamp(round(f(s_in * (q - zp_in)) / s_out) + zp).

    All in float32: the dequantized input, f (tanhf, or 1 / (1 + expf(-v))), the product with
    1 / s_out; rounding half away from zero (roundf), then the zero point added in float.
    """
    s_in32, inv_out = np.float32(s_in), np.float32(1.0) / np.float32(s_out)
    table = np.empty(256, np.int8)
    for i, q in enumerate(range(-128, 128)):
        v = np.float32(s_in32 * np.float32(q - zp_in))
        if kind == "tanh":
            t = np.float32(_libm.tanhf(v))
        elif kind == "logistic":
            t = np.float32(1.0) / (np.float32(1.0) + np.float32(_libm.expf(-v)))
        else:
            raise ValueError(f"unknown table activation {kind!r}; expected tanh or logistic")
        r = np.float32(fp.round_half_away(np.float32(t * inv_out)))
        table[i] = int(np.clip(int(np.float32(r + np.float32(zp_out))), INT8_MIN, INT8_MAX))
    return table


def lut_s8(x: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    """out = lut[x + 128] (lut int8[256], indexed by the int8 value offset by 128)."""
    out[...] = lut[x.astype(np.int64) + 128]
