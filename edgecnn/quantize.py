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
  logistic outputs are 1/256, -128; tanh outputs 1/128, 0. Each op's rule is its
  ``quantize`` method (edgecnn/ops/); this module holds the shared formulas.
"""

from __future__ import annotations

import numpy as np

from . import ir
from .errors import CalibrationError
from .reference.fixedpoint import round_half_away

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


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


def symmetric_weight_quant(weight: np.ndarray, per_channel: bool, axis: int = 0):
    """int8 weights in [-127, 127] and their scales: one per output channel (on ``axis``: 0
    for conv OHWI, 3 for depthwise [1, KH, KW, C*M]) or one for the tensor."""
    w = weight.astype(np.float64)
    if per_channel:
        max_abs = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
    else:
        max_abs = np.array([np.abs(w).max()])
    scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis if per_channel else 0] = -1
    inv = (1.0 / scale.astype(np.float64)).reshape(shape)
    q = np.clip(round_half_away(w * inv), -127, 127).astype(np.int8)
    quant = ir.QuantParams(scale, np.zeros(scale.shape, np.int64), axis=axis if per_channel else 0)
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


def shared_ranges(graph: ir.Graph, ranges: dict) -> dict:
    """Ranges where tensors that must share one quantization get the union of their ranges.

    An op with ``keeps_quant`` (pools, pad, reshape) gives its output its input's scale, and a
    CONCATENATION needs its inputs and output on one scale (the TFLite int8 spec); so those
    tensors form groups (union-find), and each group's range is the union of its members'.
    For a pool or pad alone this changes nothing: the output range lies inside the input's."""
    parent = {name: name for name in ranges}

    def root(name):
        while parent.setdefault(name, name) != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for node in graph.nodes:
        if node.keeps_quant or node.shares_quant:
            for name in node.inputs:
                parent[root(name)] = root(node.output.name)
    groups: dict = {}
    for name, (lo, hi) in ranges.items():
        g = groups.setdefault(root(name), [lo, hi])
        g[0], g[1] = min(g[0], lo), max(g[1], hi)
    return {name: tuple(groups[root(name)]) for name in ranges}


def quantize_graph(graph: ir.Graph, ranges: dict[str, tuple[float, float]]) -> ir.Graph:
    """The int8 twin of a folded, fused, padding-split float graph with calibrated ranges:
    each op's ``quantize`` rule, in topological order."""
    from .ops import QuantizeContext
    q = QuantizeContext(shared_ranges(graph, ranges), {})
    in_quant = q.calibrated(graph.input.name)
    q.quants[graph.input.name] = in_quant
    nodes = tuple(node.quantize(q) for node in graph.nodes)
    return graph.replace(input=ir.replace(graph.input, dtype="int8", quant=in_quant), nodes=nodes)
