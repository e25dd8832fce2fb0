"""Build a float IR graph from a framework-neutral list of layer entries (SPEC.json, --arch
lenet5).

Entries are dicts like ``{"type": "conv", "weight": OIHW array, "bias": ..., "stride": 1,
"padding": 2}`` in PyTorch's conventions (``builder.GraphBuilder`` makes them NHWC). By
default each entry reads the one before it; ``"inputs": ["name", ...]`` names the entries
(or ``"input"``, the model input) it reads instead, so residuals and concatenations can be
written. Entries are referred to by ``"id"`` (set when weights are bound) or ``"name"``.

Entry types and their keys (the same keys a --arch SPEC.json uses, minus the arrays):
  conv        filters, kernel, stride=1, padding=0, dilation=1, groups=1, weight, bias
  linear      units, weight, bias (a 4-D input is flattened first, as torch.flatten(x, 1))
  batchnorm   eps (from the source), gamma, beta, mean, var
  maxpool     kernel, stride=kernel, padding=0, ceil_mode=false
  avgpool     kernel, stride=kernel, padding=0, ceil_mode=false, count_include_pad=true
  adaptive_avgpool  output ([h, w]): the identity when the input already has that size, a
              spatial mean for [1, 1], an average pool when the input divides evenly
  add         two inputs, summed (a residual)
  concat      axis=1 (PyTorch's dim: 1 is channels), two or more inputs
  relu, relu6, tanh, sigmoid, softmax, flatten, dropout (dropped), identity (dropped)
"""

from __future__ import annotations

import numpy as np

from edgecnn.errors import ArchitectureError, UnsupportedOpError

from .builder import GraphBuilder, pair

SUPPORTED = ("conv", "linear", "batchnorm", "maxpool", "avgpool", "adaptive_avgpool", "add",
             "concat", "relu", "relu6", "tanh", "sigmoid", "softmax", "flatten", "dropout",
             "identity")


def _layer(b: GraphBuilder, entry, lname, xs):
    kind = entry["type"]
    x = xs[0]
    if kind == "add":
        if len(xs) != 2:
            raise ArchitectureError(f"{lname}: add takes two inputs, got {len(xs)}")
        return b.add_tensors(lname, xs[0], xs[1])
    if kind == "concat":
        return b.concat(lname, xs, int(entry.get("axis", 1)))
    if len(xs) != 1:
        raise ArchitectureError(f"{lname}: {kind} takes one input, got {len(xs)}")
    if kind in ("dropout", "identity"):
        return x
    if kind == "flatten":
        return b.flatten(lname, x)
    if kind == "linear":
        if len(x.shape) == 4:  # an implicit flatten (torch.flatten in forward)
            x = b.flatten(f"{lname}/flatten", x)
        return b.linear(lname, x, entry["weight"], entry.get("bias"))
    if kind == "conv":
        return b.conv(lname, x, np.asarray(entry["weight"], np.float32), entry.get("bias"),
                      entry.get("stride", 1), entry.get("padding", 0), entry.get("dilation", 1),
                      entry.get("groups", 1))
    if kind == "batchnorm":
        return b.batchnorm(lname, x, entry["gamma"], entry["beta"], entry["mean"], entry["var"],
                           entry["eps"])
    if kind in ("maxpool", "avgpool"):
        return b.pool(lname, x, kind[:3], entry["kernel"], entry.get("stride"),
                      entry.get("padding", 0), entry.get("ceil_mode", False),
                      entry.get("count_include_pad", True))
    if kind == "adaptive_avgpool":
        return b.adaptive_avgpool(lname, x, pair(entry["output"], "output_size"))
    if kind in ("relu", "relu6", "tanh", "sigmoid"):
        return b.activation(lname, x, kind)
    if kind == "softmax":
        return b.softmax(lname, x)
    raise UnsupportedOpError(f"{lname}: layer type {kind!r} is not supported; "
                             f"supported: {', '.join(SUPPORTED)}")


def build_float_graph(entries, input_hwc, *, name="model", preprocess=None, labels=(),
                      max_memory=None, source="model"):
    """A shape-checked float ir.Graph (NHWC) from layer entries in execution order."""
    b = GraphBuilder(input_hwc, source=source, max_memory=max_memory)
    values = {"input": b.input_value()}
    prev = values["input"]
    for i, entry in enumerate(entries):
        lname = entry.get("name") or f"{entry['type']}{i}"
        ref = entry.get("id") or lname
        names = entry.get("inputs")
        if names is None:
            xs = [prev]
        else:
            missing = [n for n in names if n not in values]
            if missing:
                raise ArchitectureError(f"{lname}: reads {missing[0]!r}, which no earlier layer "
                                        "is named (name layers with \"name\"; \"input\" is the "
                                        "model input)")
            xs = [values[n] for n in names]
        prev = values[ref] = _layer(b, entry, lname, xs)
    return b.finish([prev], preprocess=preprocess, labels=tuple(labels), name=name)
