"""Float against int8, tensor by tensor: which layers cost the accuracy.

Tensors are matched **by name**. ``edgecnn convert`` names every int8 tensor after the tensor
of the float graph it quantizes (the graph after ``prepare_float_graph``: BatchNorm folded,
ReLU/ReLU6 fused, explicit padding split into PAD), so against edgecnn's float graph of the
same source every tensor matches. Against the source as written (a float ``.tflite`` run in
LiteRT) folded and fused layers are separate ops: ``float_aliases`` follows each int8 name
forward through the BatchNorm/ReLU/ReLU6 ops that ``prepare_float_graph`` removed, so a fused
conv+ReLU is compared with the float ReLU's output, never with the pre-activation. Tensors
without a counterpart (QUANTIZE/DEQUANTIZE at the boundary, a PAD the float file does not
have, a file converted by another tool) are listed as unmatched with the reason.

Per matched tensor and image, with ``f`` the float values and ``d`` the int8 values
dequantized (``(q - zp) * scale``, float64), ``STATS`` accumulates sums; over all images:

- SQNR (dB) = ``10 log10(sum f^2 / sum (f - d)^2)`` (ONNX Runtime's qdq_loss_debug);
- cosine = ``sum f d / sqrt(sum f^2 * sum d^2)``;
- relative L2 = ``sqrt(sum (f - d)^2 / sum f^2)`` (stedgeai's L2R); RMSE, MAE;
- max abs error, also in LSB of the int8 tensor (``/ scale``).

Error accumulates along the graph, so the last tensors always look worst; the layer that
*adds* the most is the one with the largest SQNR drop from its input tensor. Both are flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ir, ops

STATS = ("sum_ff", "sum_dd", "sum_fd", "sum_ee", "sum_abs_e", "max_abs_e", "count")
_REMOVED_BY_PREPARE = (ops.BatchNorm,)


@dataclass(frozen=True)
class Match:
    """An int8 tensor and where its float twin is found."""

    name: str  # the int8 tensor
    float_name: str  # the float tensor holding the same quantity
    op: str
    input_name: Optional[str]  # the tensor the producing op reads (for the SQNR drop)
    shape: tuple
    scale: float  # 1.0 for a float32 tensor of the int8 model
    zero_point: int


@dataclass
class LayerRow:
    name: str
    op: str
    shape: tuple
    float_name: str
    sqnr_db: Optional[float]  # None: the int8 values equal the float ones exactly
    cosine: float
    rel_l2: float
    rmse: float
    mae: float
    max_abs_err: float
    max_err_lsb: float
    drop_db: Optional[float] = None  # SQNR of the input tensor minus this one's
    flags: tuple = ()

    def to_dict(self) -> dict:
        return {"tensor": self.name, "op": self.op, "shape": list(self.shape),
                "float_tensor": self.float_name, "sqnr_db": self.sqnr_db, "cosine": self.cosine,
                "rel_l2": self.rel_l2, "rmse": self.rmse, "mae": self.mae,
                "max_abs_err": self.max_abs_err, "max_err_lsb": self.max_err_lsb,
                "sqnr_drop_db": self.drop_db, "flags": list(self.flags)}


def op_label(node) -> str:
    return "input" if node is None else node.display_name()


def float_aliases(raw: ir.Graph, prepared_names: set) -> dict:
    """For each tensor of ``raw`` (a float graph as its file states it) that survives
    ``prepare_float_graph``: the raw tensor holding the prepared tensor's value. A name whose
    single consumer was folded or fused away (BatchNorm, ReLU, ReLU6 no longer in the prepared
    graph) moves forward to that consumer's output, repeatedly."""
    alias = {}
    for t in raw.tensors():
        if t.name not in prepared_names:
            continue
        name = t.name
        while True:
            nxt = raw.consumers(name)
            if len(nxt) != 1 or nxt[0].output.name in prepared_names:
                break
            layer = nxt[0]
            fused = isinstance(layer, ops.Activation) and layer.kind in ("relu", "relu6")
            if not (fused or isinstance(layer, _REMOVED_BY_PREPARE)):
                break
            name = layer.output.name
        alias[t.name] = name
    return alias


def match_tensors(int8: ir.Graph, float_shapes: dict, alias: Optional[dict] = None):
    """``(matches, unmatched)``: every int8 tensor paired by name with a float tensor of the
    same shape (``float_shapes``: float name -> shape; ``alias``: int8 name -> float name
    where they differ), or listed as ``(name, reason)``."""
    matches, unmatched = [], []
    for t in int8.tensors():
        layer = int8.producer(t.name)
        fname = (alias or {}).get(t.name, t.name)
        if isinstance(layer, (ops.Quantize, ops.Dequantize)):
            unmatched.append((t.name, f"{type(layer).__name__.upper()} at the model boundary "
                                      "(int8 only)"))
        elif fname not in float_shapes:
            unmatched.append((t.name, "no float tensor of that name (was the model converted "
                                      "from this source by edgecnn?)"))
        elif tuple(float_shapes[fname]) != tuple(t.shape):
            unmatched.append((t.name, f"float tensor {fname!r} has shape "
                                      f"{tuple(float_shapes[fname])}, int8 {tuple(t.shape)}"))
        else:
            scale, zp = t.quant.scalar() if t.dtype == "int8" and t.quant else (1.0, 0)
            matches.append(Match(t.name, fname, op_label(layer),
                                 layer.inputs[0] if layer is not None and layer.inputs else None,
                                 tuple(t.shape), scale, zp))
    return matches, unmatched


def dequantize(m: Match, values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype == np.int8:
        return (v.astype(np.float64) - m.zero_point) * np.float64(m.scale)
    return v.astype(np.float64)


def item_stats(f: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The STATS of one image of one tensor (float64 sums, so order-stable per image)."""
    f = np.asarray(f, np.float64).ravel()
    d = np.asarray(d, np.float64).ravel()
    e = f - d
    return np.array([f @ f, d @ d, f @ d, e @ e, np.abs(e).sum(),
                     np.abs(e).max() if e.size else 0.0, e.size])


def reduce_stats(per_item: np.ndarray) -> np.ndarray:
    """(images, tensors, STATS) -> (tensors, STATS): sums, and the max of max_abs_e."""
    total = per_item.sum(axis=0)
    total[:, STATS.index("max_abs_e")] = per_item[:, :, STATS.index("max_abs_e")].max(axis=0)
    return total


def _sqnr(ff: float, ee: float) -> Optional[float]:
    if ee == 0.0:
        return None
    if ff == 0.0:
        return -math.inf
    return 10.0 * math.log10(ff / ee)


def rows_from_stats(matches, totals: np.ndarray) -> list:
    """Report rows from reduced STATS, with the worst tensor and the largest drop flagged."""
    rows = []
    sqnr_of = {}
    for m, s in zip(matches, totals):
        ff, dd, fd, ee, ae, mx, n = (float(v) for v in s)
        sqnr = _sqnr(ff, ee)
        sqnr_of[m.name] = sqnr
        cosine = fd / math.sqrt(ff * dd) if ff > 0 and dd > 0 else float(ff == dd)
        rows.append(LayerRow(m.name, m.op, m.shape, m.float_name, sqnr, cosine,
                             math.sqrt(ee / ff) if ff > 0 else (0.0 if ee == 0 else math.inf),
                             math.sqrt(ee / n) if n else 0.0, ae / n if n else 0.0, mx,
                             mx / m.scale if m.scale else 0.0))
    for m, row in zip(matches, rows):
        if m.input_name in sqnr_of:  # a drop needs finite SQNRs on both sides
            there, here = sqnr_of[m.input_name], row.sqnr_db
            if there is not None and here is not None and not math.isinf(there + here):
                row.drop_db = there - here
    finite = [r for r in rows if r.sqnr_db is not None]
    if finite:
        worst = min(finite, key=lambda r: r.sqnr_db)
        worst.flags += ("worst SQNR",)
    drops = [r for r in rows if r.drop_db is not None]
    if drops:
        top = max(drops, key=lambda r: r.drop_db)
        if top.drop_db > 0:
            top.flags += ("largest drop",)
    return rows


def format_rows(rows, unmatched) -> str:
    lines = [f"{'tensor':<26} {'op':<22} {'shape':<18} {'SQNR dB':>8} {'drop':>6} {'cosine':>9} "
             f"{'rel L2':>8} {'max err':>9} {'(LSB)':>6}"]
    for r in rows:
        sqnr = "exact" if r.sqnr_db is None else f"{r.sqnr_db:8.2f}"
        drop = "" if r.drop_db is None else f"{r.drop_db:6.2f}"
        flag = ("  <- " + ", ".join(r.flags)) if r.flags else ""
        lines.append(f"{r.name[:26]:<26} {r.op[:22]:<22} {str(r.shape):<18} {sqnr:>8} {drop:>6} "
                     f"{r.cosine:9.6f} {r.rel_l2:8.4f} {r.max_abs_err:9.4g} {r.max_err_lsb:6.1f}"
                     f"{flag}")
    for name, reason in unmatched:
        lines.append(f"{name[:26]:<26} not compared: {reason}")
    return "\n".join(lines)
