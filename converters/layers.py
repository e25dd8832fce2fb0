"""Build a float IR graph from a framework-neutral list of layer entries.

Every importer reduces its source to entries like ``{"type": "conv", "weight": OIHW array,
"bias": ..., "stride": 1, "padding": 2}`` (PyTorch conventions: weights OIHW, dense weights
(out, in) over a C,H,W flatten) and calls ``build_float_graph``. This is the one place
where layouts change: OIHW -> OHWI, and the first dense layer after a flatten has its input
columns permuted from PyTorch's C,H,W order to edgecnn's H,W,C order.

Entry types and their keys (the same keys a --arch SPEC.json uses, minus the arrays):
  conv        filters, kernel, stride=1, padding=0, dilation=1, groups=1, weight, bias
  linear      units, weight, bias
  batchnorm   eps (from the source), gamma, beta, mean, var
  maxpool     kernel, stride=kernel, padding=0, ceil_mode=false
  avgpool     kernel, stride=kernel, padding=0, ceil_mode=false, count_include_pad=true
  adaptive_avgpool  output ([h, w]): the identity when the input already has that size, an
              average pool when the input divides evenly, an error otherwise
  relu, relu6, tanh, sigmoid, softmax, flatten, dropout (dropped), identity (dropped)
"""

from __future__ import annotations

import numpy as np

from edgecnn import ir, ops, shapes
from edgecnn.errors import ArchitectureError, UnsupportedOpError

SUPPORTED = ("conv", "linear", "batchnorm", "maxpool", "avgpool", "adaptive_avgpool", "relu",
             "relu6", "tanh", "sigmoid", "softmax", "flatten", "dropout", "identity")


def pair(v, what: str = "value") -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ArchitectureError(f"expected a {what} of one or two integers, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _padding4(v) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from one int, an (h, w) pair, or four explicit values."""
    if isinstance(v, (list, tuple)) and len(v) == 4:
        return tuple(int(p) for p in v)
    ph, pw = pair(v, "padding")
    return (ph, ph, pw, pw)


def _ceil_extra(size, k, s, pb, pa):
    """Extra trailing padding PyTorch's ceil_mode adds (its last window must start in-bounds)."""
    out_floor = shapes.conv_output_size(size, k, s, pb, pa)
    out_ceil = -(-(size + pb + pa - k) // s) + 1
    if (out_ceil - 1) * s >= size + pb:
        out_ceil -= 1
    return (out_ceil - out_floor) * s if out_ceil > out_floor else 0


def _pool(entry, name, shape):
    kernel = pair(entry["kernel"], "kernel_size")
    stride = pair(entry.get("stride") or entry["kernel"], "stride")
    padding = _padding4(entry.get("padding", 0))
    if entry.get("ceil_mode"):
        t, b, l, r = padding
        b += _ceil_extra(shape[1], kernel[0], stride[0], t, b)
        r += _ceil_extra(shape[2], kernel[1], stride[1], l, r)
        padding = (t, b, l, r)
    if entry["type"] == "maxpool":
        return ops.MaxPool2D(name, kernel, stride, padding)
    if any(padding) and entry.get("count_include_pad", True):
        raise UnsupportedOpError(
            f"{name}: average pooling with padding and count_include_pad=True divides by padded "
            "taps, which TFLite's AVERAGE_POOL_2D cannot express; use count_include_pad=False")
    return ops.AvgPool2D(name, kernel, stride, padding)


def _adaptive(entry, name, shape):
    oh, ow = pair(entry["output"], "output_size")
    h, w = shape[1], shape[2]
    if (h, w) == (oh, ow):
        return None
    if h % oh or w % ow:
        raise UnsupportedOpError(
            f"{name}: adaptive average pooling from {h}x{w} to {oh}x{ow} has uneven windows; "
            "choose an input size whose feature map is a multiple of the output size")
    return ops.AvgPool2D(name, (h // oh, w // ow), (h // oh, w // ow))


def _conv(entry, name, shape):
    if int(entry.get("groups", 1)) != 1:
        raise UnsupportedOpError(f"{name}: grouped/depthwise convolution (groups="
                                 f"{entry['groups']}) is not supported yet")
    w = np.asarray(entry["weight"], np.float32)
    if w.ndim != 4 or w.shape[1] != shape[3]:
        raise ArchitectureError(
            f"{name}: weight shape {tuple(w.shape)} (OIHW) expects {w.shape[1] if w.ndim == 4 else '?'}"
            f" input channels but the previous layer gives {shape[3]}")
    bias = entry.get("bias")
    return ops.Conv2D(name, np.ascontiguousarray(w.transpose(0, 2, 3, 1)),
                     None if bias is None else np.asarray(bias, np.float32),
                     stride=pair(entry.get("stride", 1), "stride"),
                     padding=_padding4(entry.get("padding", 0)),
                     dilation=pair(entry.get("dilation", 1), "dilation"))


def _linear(entry, name, shape, chw_flatten_from):
    w = np.asarray(entry["weight"], np.float32)
    n_in = int(np.prod(shape[1:]))
    if w.ndim != 2 or w.shape[1] != n_in:
        raise ArchitectureError(
            f"{name}: weight shape {tuple(w.shape)} expects {w.shape[-1]} inputs but the previous "
            f"layer gives {n_in} ({'x'.join(map(str, shape[1:]))})")
    if chw_flatten_from is not None:  # PyTorch flattened C,H,W; edgecnn flattens H,W,C
        _, h, wd, c = chw_flatten_from
        w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    bias = entry.get("bias")
    return ops.FullyConnected(name, np.ascontiguousarray(w),
                             None if bias is None else np.asarray(bias, np.float32))


class _Chain:
    """Nodes wired one after another as they are built: each reads the previous output,
    its shape computed at once (so each layer's errors name it), names made unique."""

    def __init__(self, graph_input: ir.Tensor):
        self.input, self.nodes = graph_input, []
        self.prev, self.shape, self.used = graph_input.name, graph_input.shape, {graph_input.name}

    def add(self, node) -> None:
        name = node.name
        if name in self.used:  # e.g. a BatchNorm found in the weights under its conv's name
            name = next(f"{node.name}#{k}" for k in range(1, len(self.used) + 2)
                        if f"{node.name}#{k}" not in self.used)
        self.used.add(name)
        node = ir.replace(node, name=name, inputs=(self.prev,),
                          output=ir.Tensor(name, (), "float32"))
        self.shape = tuple(node.out_shape([self.shape]))
        self.nodes.append(ir.replace(node, output=ir.replace(node.output, shape=self.shape)))
        self.prev = name


def build_float_graph(entries, input_hwc, *, name="model", preprocess=None, labels=()):
    """A shape-checked float ir.Graph (NHWC) from layer entries in execution order."""
    h, w, c = input_hwc
    chain = _Chain(ir.Tensor("input", (1, h, w, c), "float32"))
    chw_source = None  # the 4-D shape a pending flatten came from
    for i, entry in enumerate(entries):
        kind = entry["type"]
        lname = entry.get("name") or f"{kind}{i}"
        shape = chain.shape
        if kind in ("dropout", "identity"):
            continue
        if kind == "flatten":
            if len(shape) == 4:
                chw_source = shape if shape[1] * shape[2] > 1 and shape[3] > 1 else None
                layer = ops.Reshape(lname)
            else:
                continue
        elif kind == "linear":
            if len(shape) == 4:  # an implicit flatten (torch.flatten in forward)
                chw_source = shape if shape[1] * shape[2] > 1 and shape[3] > 1 else None
                chain.add(ops.Reshape(f"{lname}/flatten"))
            layer = _linear(entry, lname, chain.shape, chw_source)
            chw_source = None
        elif kind == "conv":
            layer = _conv(entry, lname, shape)
        elif kind == "batchnorm":
            layer = ops.BatchNorm(lname, *(np.asarray(entry[k], np.float32)
                                         for k in ("gamma", "beta", "mean", "var")),
                                 eps=float(entry["eps"]))
        elif kind in ("maxpool", "avgpool"):
            layer = _pool(entry, lname, shape)
        elif kind == "adaptive_avgpool":
            layer = _adaptive(entry, lname, shape)
            if layer is None:
                continue
        elif kind in ("relu", "relu6", "tanh", "sigmoid"):
            layer = ops.Activation(lname, kind)
        elif kind == "softmax":
            layer = ops.Softmax(lname)
        else:
            raise UnsupportedOpError(f"{lname}: layer type {kind!r} is not supported; "
                                     f"supported: {', '.join(SUPPORTED)}")
        chain.add(layer)
    return ir.Graph(chain.input, tuple(chain.nodes), (chain.prev,), preprocess=preprocess,
                    labels=tuple(labels), name=name).check()
