"""Quantize a calibrated float graph to int8 per the TFLite int8 spec (DESIGN.md section 3).

- Activations: int8 [-128, 127], asymmetric, per tensor. The calibrated range is widened to
  include 0, ``scale = (max - min) / 255`` (stored as float32) and
  ``zp = round_half_away(-128 - min / scale)`` clamped to [-128, 127].
- Conv2D weights: int8 [-127, 127], symmetric, per output channel (axis 0):
  ``scale_c = max|w_c| / 127``, ``q = round_half_away(w * (1 / scale_c))``.
- FullyConnected weights: the same, per tensor (what TensorFlow's converter emits, and what
  every TFLite runtime, TFLite Micro included, runs).
- Bias: int32, ``scale = s_in * s_w[c]``, zero point 0, ``q = round_half_away(b / scale)``.
- Max/avg pool, pad and reshape keep their input's scale and zero point; softmax and
  logistic outputs are 1/256, -128; tanh outputs 1/128, 0.
"""

from __future__ import annotations

import numpy as np

from . import ir
from .errors import CalibrationError, UnsupportedOpError
from .reference.fixedpoint import round_half_away

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_FIXED_OUTPUT = {
    "softmax": (1.0 / 256.0, -128),
    "sigmoid": (1.0 / 256.0, -128),
    "tanh": (1.0 / 128.0, 0),
}


def activation_quant(lo: float, hi: float) -> ir.QuantParams:
    """Asymmetric int8 parameters for a real range, widened so that 0.0 is exact."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise CalibrationError(f"calibration range [{lo}, {hi}] is not finite")
    if hi - lo < 1e-8:  # a dead tensor (always 0): any scale is exact; keep one that is sane
        hi = lo + 1.0
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(round_half_away(INT8_MIN - lo / float(scale)), INT8_MIN, INT8_MAX))
    return ir.QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def symmetric_weight_quant(weight: np.ndarray, per_channel: bool):
    """int8 weights in [-127, 127] and their scales (per output channel on axis 0, or one)."""
    w = weight.astype(np.float64)
    if per_channel:
        max_abs = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    else:
        max_abs = np.array([np.abs(w).max()])
    scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
    inv = (1.0 / scale.astype(np.float64)).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(round_half_away(w * inv), -127, 127).astype(np.int8)
    quant = ir.QuantParams(scale, np.zeros(scale.shape, np.int64), axis=0)
    return q, quant


def quantize_bias(bias, c_out: int, s_in: float, s_w: np.ndarray, layer_name: str) -> np.ndarray:
    bias_scale = (np.float64(s_in) * s_w.astype(np.float64)) * np.ones(c_out)
    b = np.zeros(c_out) if bias is None else bias.astype(np.float64)
    q = round_half_away(b / bias_scale)
    if np.any(q < INT32_MIN) or np.any(q > INT32_MAX):
        raise CalibrationError(
            f"{layer_name}: bias does not fit int32 at scale s_in*s_w; the weights or the "
            "calibration range are degenerate (check the calibration images)")
    return q.astype(np.int32)


def quantize_graph(graph: ir.Graph, ranges: dict[str, tuple[float, float]]) -> ir.Graph:
    """The int8 twin of a folded, fused, padding-split float graph with calibrated ranges."""

    def calibrated(name: str) -> ir.QuantParams:
        if name not in ranges:
            raise CalibrationError(f"tensor {name!r} has no calibration range")
        return activation_quant(*ranges[name])

    in_quant = calibrated(graph.input.name)
    new_input = ir.replace(graph.input, dtype="int8", quant=in_quant)
    quants = {graph.input.name: in_quant}
    layers = []
    for layer in graph.layers:
        q_in = quants[layer.inputs[0]]
        s_in = float(q_in.scale[0])
        changes: dict = {}
        if isinstance(layer, (ir.Conv2D, ir.FullyConnected)):
            per_channel = isinstance(layer, ir.Conv2D)
            w_q, w_quant = symmetric_weight_quant(layer.weight, per_channel)
            changes.update(weight=w_q, weight_quant=w_quant,
                           bias=quantize_bias(layer.bias, layer.weight.shape[0], s_in,
                                              w_quant.scale, layer.name))
            q_out = calibrated(layer.output.name)
        elif isinstance(layer, (ir.MaxPool2D, ir.AvgPool2D, ir.Pad, ir.Reshape)):
            if getattr(layer, "activation", "none") != "none":
                raise UnsupportedOpError(
                    f"{layer.name}: a fused activation on a pool would change its output range; "
                    "int8 pools keep their input's scale (apply ReLU before pooling)")
            q_out = q_in
        elif isinstance(layer, ir.Softmax):
            q_out = ir.QuantParams.per_tensor(*_FIXED_OUTPUT["softmax"])
        elif isinstance(layer, ir.Activation):
            fixed = _FIXED_OUTPUT.get(layer.kind)
            q_out = ir.QuantParams.per_tensor(*fixed) if fixed else calibrated(layer.output.name)
        else:
            raise UnsupportedOpError(
                f"{layer.name}: {type(layer).__name__} cannot be quantized (fold BatchNorm first)")
        quants[layer.output.name] = q_out
        changes["output"] = ir.replace(layer.output, dtype="int8", quant=q_out)
        layers.append(ir.replace(layer, **changes))
    return graph.replace(input=new_input, layers=tuple(layers))
