"""Per-layer summary of a float or int8 graph: the lecture's formulas in one place.

For each layer, with F the kernel size, D1 the input channels, K the output channels:

- output shape: ``W2 = (W1 - F + 2P) / S + 1`` (``shapes.conv_output_size``; read from the
  inferred ``layer.output.shape``, so run ``shapes.infer_shapes`` first);
- parameters: conv ``(F*F*D1)*K + K``; fully connected ``I*O + O``; BatchNorm ``4*C``
  (gamma, beta, running mean and variance: what is stored, not only what trains);
- MACs: conv ``OH*OW*K*F*F*D1``; fully connected ``I*O``; pooling and elementwise layers 0;
- receptive field of one output pixel on the model input, per axis (h, w):
  ``r_out = r_in + (k - 1) * dilation * j_in``, ``j_out = j_in * stride``, from r = j = 1.
  Padding moves the field, not its size; the value is not clipped to the image. A flatten
  keeps the field of the values it moves; from the first fully connected layer on (or a
  window sliding over reshaped data) every layer sees the whole input and reports the
  input's (H, W);
- activation bytes: output elements * dtype size (1 for int8, 4 for float32);
- weight bytes: int8 weights 1 byte each, float weights 4; biases 4 bytes each (int32 or
  float32); BatchNorm 4 bytes per value. Quantization scales and zero points are not counted.

Each op gives its parameters, MACs and window (``cost``, ``window`` in edgecnn/ops/). On a
graph the receptive field follows the tensors: a node with several inputs (ADD, concat) takes
the largest field and jump of its inputs.

Totals add parameters, MACs and weight bytes, name the largest activation tensor (the model
input included), and give the activation arena edgecnn's planner lays out for this graph
(edgecnn.memory: the plan the runtime and export-c use), with the node where the most bytes
are alive at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ir
from .errors import ArchitectureError
from .memory import plan_memory
from .passes import merge_zero_point_padding
from .ops import KernelCall
from .text import layer_label, printable


@dataclass(frozen=True)
class LayerSummary:
    name: str
    type: str  # e.g. "Conv2D+ReLU", "MaxPool2D", "Tanh"
    kernel: Optional[tuple[int, int]]  # (h, w); None for layers without a window
    stride: Optional[tuple[int, int]]
    padding: Optional[tuple[int, int, int, int]]  # (top, bottom, left, right)
    dilation: Optional[tuple[int, int]]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: Optional[tuple[int, int]]  # (h, w) on the model input; None: no image input
    activation_bytes: int
    weight_bytes: int

    def to_dict(self) -> dict:
        return {
            "name": self.name, "type": self.type,
            "kernel": _list(self.kernel), "stride": _list(self.stride),
            "padding": _list(self.padding), "dilation": _list(self.dilation),
            "output_shape": list(self.output_shape), "params": self.params, "macs": self.macs,
            "receptive_field": _list(self.receptive_field),
            "activation_bytes": self.activation_bytes, "weight_bytes": self.weight_bytes,
        }


@dataclass(frozen=True)
class Summary:
    name: str
    quantized: bool
    input_shape: tuple[int, ...]
    input_bytes: int
    layers: tuple[LayerSummary, ...]
    total_params: int
    total_macs: int
    total_weight_bytes: int
    largest_activation: str  # tensor name (the input's name if it is the largest)
    largest_activation_bytes: int
    peak_activation_bytes: int  # most activation bytes alive at one node
    peak_layer: str  # the node where that peak occurs ("" for an empty graph)
    arena_bytes: int = 0  # the planner's arena (edgecnn.memory), what the runtime allocates

    def to_dict(self) -> dict:
        """Plain ints, strings and lists, ready for ``json.dumps`` (``--json``)."""
        return {
            "name": self.name, "quantized": self.quantized,
            "input_shape": list(self.input_shape), "input_bytes": self.input_bytes,
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": {
                "params": self.total_params, "macs": self.total_macs,
                "weight_bytes": self.total_weight_bytes,
                "largest_activation": self.largest_activation,
                "largest_activation_bytes": self.largest_activation_bytes,
                "peak_activation_bytes": self.peak_activation_bytes,
                "peak_layer": self.peak_layer,
                "arena_bytes": self.arena_bytes,
            },
        }


def summarize(graph: ir.Graph) -> Summary:
    """Summarize a graph whose shapes are inferred (every ``node.output.shape`` is set)."""
    tensor_bytes = {graph.input.name: _tensor_bytes(graph.input, "model input")}
    shape = {graph.input.name: tuple(graph.input.shape)}
    image = len(graph.input.shape) == 4
    # per tensor: (receptive field, jump, every value sees the whole input, values moved by a reshape)
    field = {graph.input.name: ((1, 1), (1, 1), False, False)}
    rows = []
    for node in graph.nodes:
        if node.output is None or not node.output.shape:
            raise ArchitectureError(
                f"{node.name}: output shape is not set; run shapes.infer_shapes(graph) before "
                f"summarizing")
        in_fields = [field[name] for name in node.inputs]
        rf = tuple(max(f[0][a] for f in in_fields) for a in (0, 1))
        jump = tuple(max(f[1][a] for f in in_fields) for a in (0, 1))
        mixed = any(f[2] for f in in_fields)
        reshaped = any(f[3] for f in in_fields)
        cost = node.cost([shape[name] for name in node.inputs])
        win = node.window
        if node.is_view:
            reshaped = True  # each output value is still one input position
        elif cost.mixes_all or (win is not None and reshaped):
            mixed = True
        elif win is not None:
            rf = tuple(r + (k - 1) * d * j for r, k, d, j in zip(rf, win.kernel, win.dilation, jump))
            jump = tuple(j * s for j, s in zip(jump, win.stride))
        field[node.output.name] = (rf, jump, mixed, reshaped)
        shape[node.output.name] = tuple(node.output.shape)
        out_bytes = _tensor_bytes(node.output, node.name)
        tensor_bytes[node.output.name] = out_bytes
        padding = tuple(node.padding) if hasattr(node, "padding") else None
        rows.append(LayerSummary(
            name=node.name, type=node.display_name(),
            kernel=None if win is None else tuple(win.kernel),
            stride=None if win is None else tuple(win.stride),
            padding=padding, dilation=None if win is None else tuple(win.dilation),
            output_shape=tuple(node.output.shape), params=cost.params, macs=cost.macs,
            activation_bytes=out_bytes, weight_bytes=cost.weight_bytes,
            receptive_field=None if not image else (graph.input.shape[1:3] if mixed else rf)))
    largest = max(graph.tensors(), key=lambda t: tensor_bytes[t.name])
    run = merge_zero_point_padding(graph)  # the graph the runtime runs: no padded copies
    plan = plan_memory(run, [(node, KernelCall(None if node.is_view else "run"))
                             for node in run.nodes])
    peak, peak_layer = _peak_alive(run, plan, tensor_bytes)
    return Summary(
        name=graph.name, quantized=graph.is_quantized, input_shape=tuple(graph.input.shape),
        input_bytes=tensor_bytes[graph.input.name], layers=tuple(rows),
        total_params=sum(r.params for r in rows), total_macs=sum(r.macs for r in rows),
        total_weight_bytes=sum(r.weight_bytes for r in rows),
        largest_activation=largest.name, largest_activation_bytes=tensor_bytes[largest.name],
        peak_activation_bytes=peak, peak_layer=peak_layer, arena_bytes=plan.arena_bytes)


def _peak_alive(graph, plan, tensor_bytes):
    """(most activation bytes alive at one node, that node): the bytes the planner's arena
    must hold at least (the arena can be larger: greedy offsets leave gaps). A sweep over
    lifetimes: each tensor owning bytes adds them at its writer and drops them after its last
    reader."""
    n = len(graph.nodes)
    first, last = {graph.input.name: 0}, {}
    for i, node in enumerate(graph.nodes):
        first.setdefault(plan.root[node.output.name], i)
        for name in node.inputs:
            last[plan.root[name]] = i
    for name in graph.outputs:
        last[plan.root[name]] = n - 1
    delta = [0] * (n + 1)
    for r, f in first.items():
        delta[f] += tensor_bytes[r]
        delta[max(last.get(r, f), f) + 1] -= tensor_bytes[r]
    peak, where, alive = 0, "", 0
    for i, node in enumerate(graph.nodes):
        alive += delta[i]
        if alive > peak:
            peak, where = alive, node.name
    return peak, where


def format_summary(summary: Summary) -> str:
    """A fixed-width text table, one row per layer, then the totals."""
    header = ("layer", "type", "kernel/stride/pad", "output", "params", "MACs", "RF",
              "act bytes", "weight bytes")
    rows = [("input", "Input", "", _shape(summary.input_shape), "", "", "", _n(summary.input_bytes),
             "")]
    for r in summary.layers:
        rows.append((layer_label(r.name, 48), r.type, _window_text(r), _shape(r.output_shape), _n(r.params),
                     _n(r.macs), _pair(r.receptive_field, "x") if r.receptive_field else "",
                     _n(r.activation_bytes), _n(r.weight_bytes)))
    numeric = {4, 5, 7, 8}
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(header))
    kind = "int8" if summary.quantized else "float32"
    out = [f"{printable(summary.name)} ({kind})", rule, line(header), rule] + [line(r) for r in rows] + [rule]
    out += [
        f"parameters:          {_n(summary.total_params)}",
        f"MACs:                {_n(summary.total_macs)}",
        f"weight bytes:        {_n(summary.total_weight_bytes)}",
        f"largest activation:  {_n(summary.largest_activation_bytes)} bytes "
        f"({printable(summary.largest_activation)})",
        f"peak activations:    {_n(summary.peak_activation_bytes)} bytes alive at once "
        f"(at {printable(summary.peak_layer) or '-'})",
        f"activation arena:    {_n(summary.arena_bytes)} bytes (edgecnn's memory plan: the "
        "runtime and export-c allocate this)",
    ]
    return "\n".join(out)


# ---- per-layer arithmetic ----------------------------------------------------------------

def _tensor_bytes(tensor: ir.Tensor, where: str) -> int:
    try:
        itemsize = np.dtype(tensor.dtype).itemsize
    except TypeError as exc:
        raise ArchitectureError(
            f"{where}: tensor {tensor.name!r} has unknown dtype {tensor.dtype!r}; expected "
            f"int8 or float32") from exc
    return math.prod(tensor.shape) * itemsize


# ---- formatting --------------------------------------------------------------------------

def _window_text(r: LayerSummary) -> str:
    parts = []
    if r.kernel is not None:
        parts.append(_pair(r.kernel, "x"))
        parts.append("s" + _pair(r.stride, ","))
    if r.padding is not None:
        parts.append("p" + _padding(r.padding))
    if r.dilation is not None and r.dilation != (1, 1):
        parts.append("d" + _pair(r.dilation, ","))
    return " ".join(parts)


def _pair(values, sep: str) -> str:
    if sep == "x":
        return f"{values[0]}x{values[1]}"
    return str(values[0]) if values[0] == values[1] else f"{values[0]}{sep}{values[1]}"


def _padding(p) -> str:
    return str(p[0]) if len(set(p)) == 1 else ",".join(str(v) for v in p)


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape[1:])


def _n(value: int) -> str:
    return f"{value:,}"


def _list(values):
    return None if values is None else list(values)
