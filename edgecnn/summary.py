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

Totals add parameters, MACs and weight bytes, name the largest activation tensor (the model
input included), and give the peak activation memory of a simple ping-pong plan: the largest
``input bytes + output bytes`` of any one layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ir
from .errors import ArchitectureError
from .text import printable

_ACTIVATION_NAMES = {"relu": "ReLU", "relu6": "ReLU6", "tanh": "Tanh", "sigmoid": "Sigmoid"}


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
    peak_activation_bytes: int  # ping-pong plan: max over layers of input + output bytes
    peak_layer: str  # the layer where that peak occurs ("" for an empty graph)

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
            },
        }


def summarize(graph: ir.Graph) -> Summary:
    """Summarize a graph whose shapes are inferred (every ``layer.output.shape`` is set)."""
    tensor_bytes = {graph.input.name: _tensor_bytes(graph.input, "model input")}
    input_hw = tuple(graph.input.shape[1:3]) if len(graph.input.shape) == 4 else None
    rf, jump, mixed, reshaped = (1, 1), (1, 1), False, False
    rows = []
    peak, peak_layer = 0, ""
    for layer in graph.layers:
        if layer.output is None or not layer.output.shape:
            raise ArchitectureError(
                f"{layer.name}: output shape is not set; run shapes.infer_shapes(graph) before "
                f"summarizing")
        kernel, stride, padding, dilation = _window(layer)
        if isinstance(layer, ir.Reshape):
            reshaped = True  # each output value is still one input position
        elif isinstance(layer, ir.FullyConnected) or (kernel is not None and reshaped):
            mixed = True
        elif kernel is not None:
            rf = tuple(r + (k - 1) * d * j for r, k, d, j in zip(rf, kernel, dilation, jump))
            jump = tuple(j * s for j, s in zip(jump, stride))
        out_bytes = _tensor_bytes(layer.output, layer.name)
        in_bytes = sum(tensor_bytes.get(name, 0) for name in layer.inputs)
        if in_bytes + out_bytes > peak:
            peak, peak_layer = in_bytes + out_bytes, layer.name
        tensor_bytes[layer.output.name] = out_bytes
        params, weight_bytes = _params(layer)
        rows.append(LayerSummary(
            name=layer.name, type=_type_name(layer), kernel=kernel, stride=stride,
            padding=padding, dilation=dilation, output_shape=tuple(layer.output.shape),
            params=params, macs=_macs(layer), activation_bytes=out_bytes,
            weight_bytes=weight_bytes,
            receptive_field=None if input_hw is None else (input_hw if mixed else rf)))
    largest = max(graph.tensors(), key=lambda t: tensor_bytes[t.name])
    return Summary(
        name=graph.name, quantized=graph.is_quantized, input_shape=tuple(graph.input.shape),
        input_bytes=tensor_bytes[graph.input.name], layers=tuple(rows),
        total_params=sum(r.params for r in rows), total_macs=sum(r.macs for r in rows),
        total_weight_bytes=sum(r.weight_bytes for r in rows),
        largest_activation=largest.name, largest_activation_bytes=tensor_bytes[largest.name],
        peak_activation_bytes=peak, peak_layer=peak_layer)


def format_summary(summary: Summary) -> str:
    """A fixed-width text table, one row per layer, then the totals."""
    header = ("layer", "type", "kernel/stride/pad", "output", "params", "MACs", "RF",
              "act bytes", "weight bytes")
    rows = [("input", "Input", "", _shape(summary.input_shape), "", "", "", _n(summary.input_bytes),
             "")]
    for r in summary.layers:
        rows.append((printable(r.name), r.type, _window_text(r), _shape(r.output_shape), _n(r.params),
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
        f"peak activations:    {_n(summary.peak_activation_bytes)} bytes "
        f"(ping-pong input + output at {printable(summary.peak_layer) or '-'})",
    ]
    return "\n".join(out)


# ---- per-layer arithmetic ----------------------------------------------------------------

def _window(layer):
    """(kernel, stride, padding, dilation) of windowed layers; Nones otherwise."""
    if isinstance(layer, ir.Conv2D):
        _, kh, kw, _ = layer.weight.shape
        return (kh, kw), tuple(layer.stride), tuple(layer.padding), tuple(layer.dilation)
    if isinstance(layer, (ir.MaxPool2D, ir.AvgPool2D)):
        return tuple(layer.kernel), tuple(layer.stride), tuple(layer.padding), (1, 1)
    if isinstance(layer, ir.Pad):
        return None, None, tuple(layer.padding), None
    return None, None, None, None


def _params(layer) -> tuple[int, int]:
    """(parameter count, bytes they take in this graph's dtype)."""
    if isinstance(layer, (ir.Conv2D, ir.FullyConnected)):
        weight_size = 1 if np.dtype(layer.weight.dtype) == np.int8 else 4
        n_bias = 0 if layer.bias is None else int(layer.bias.size)
        n_weight = int(layer.weight.size)
        return n_weight + n_bias, n_weight * weight_size + n_bias * 4
    if isinstance(layer, ir.BatchNorm):
        n = 4 * int(layer.gamma.size)
        return n, 4 * n
    return 0, 0


def _macs(layer) -> int:
    if isinstance(layer, ir.Conv2D):
        _, kh, kw, c_in = layer.weight.shape
        return math.prod(layer.output.shape) * kh * kw * c_in
    if isinstance(layer, ir.FullyConnected):
        return int(layer.weight.size)
    return 0


def _type_name(layer) -> str:
    if isinstance(layer, ir.Activation):
        return _ACTIVATION_NAMES.get(layer.kind, layer.kind)
    name = type(layer).__name__
    activation = getattr(layer, "activation", "none")
    return name if activation == "none" else f"{name}+{_ACTIVATION_NAMES.get(activation, activation)}"


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
