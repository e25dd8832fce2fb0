"""ONNX ``.onnx`` -> float IR graph: a chain of nodes becomes ``layers.py`` entries.

The file is parsed with the ``onnx`` package (protobuf only; nothing in it is executed) and
its initializers become NumPy arrays with ``numpy_helper.to_array``. ``HANDLERS`` holds one
small function per ONNX op type, called with the data input (``_Data``: the shape so far,
NHWC, computed only when a handler asks), the op's constant inputs, and its ONNX attributes
as keyword arguments under their ONNX names. ONNX conv weights are OIHW and Gemm/MatMul
flatten C,H,W exactly like PyTorch, so the entries carry PyTorch conventions and
``build_float_graph`` does the layout change. Every constant (BN epsilon, Clip bounds,
Gemm alpha/beta) is read from the node, with ONNX's own defaults where an attribute is absent.

Only chains are imported: each node reads the previous node's output plus constants
(initializers, Constant nodes). Padding must be symmetric (top = bottom, left = right).
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from edgecnn import shapes
from edgecnn.errors import (ArchitectureError, EdgecnnError, ModelFormatError,
                            UnsupportedOpError, UsageError)

from .layers import build_float_graph

_FLOAT32 = 1  # onnx.TensorProto.FLOAT


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise UsageError("reading .onnx files needs the onnx package: pip install onnx "
                         "(or pip install 'edgecnn[onnx]')") from None
    return onnx, numpy_helper


class _Data:
    """The node's data input: the chain's current tensor, its shape built on demand."""

    def __init__(self, entries, input_hwc):
        self._entries, self._hwc, self._shape = entries, input_hwc, None

    @property
    def shape(self) -> tuple[int, ...]:  # NHWC (or (1, N) after a flatten)
        if self._shape is None:
            self._shape = build_float_graph(self._entries, self._hwc).output.shape
        return self._shape


def _ints(v, n=2):
    return [int(i) for i in v] if v is not None else [1] * n


def _padding(x, auto_pad, pads, kernel, strides, dilations):
    """ONNX pads are [top, left, bottom, right]; returns edgecnn's (top, bottom, left, right)."""
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        h, w = x.shape[1:3]
        (t, b), (l, r) = (shapes.same_padding(size, k, s, d) for size, k, s, d
                          in zip((h, w), kernel, strides, dilations))
        if auto_pad == "SAME_LOWER":  # the extra pixel of an odd total goes before
            t, b, l, r = b, t, r, l
    elif auto_pad == "VALID":
        t = b = l = r = 0
    elif auto_pad == "NOTSET":
        t, l, b, r = _ints(pads, 4) if pads is not None else (0, 0, 0, 0)
    else:
        raise UnsupportedOpError(f"auto_pad={auto_pad!r}; expected NOTSET, VALID, SAME_UPPER "
                                 "or SAME_LOWER")
    return [t, b, l, r]


def _conv(x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
          pads=None, strides=None):
    if w.ndim != 4:
        raise UnsupportedOpError(f"a {w.ndim - 2}-D convolution (weight shape {w.shape}); "
                                 "only 2-D convolutions are supported")
    if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
        raise ArchitectureError(f"kernel_shape {list(kernel_shape)} does not match the weight "
                                f"shape {w.shape} (OIHW)")
    strides, dilations = _ints(strides), _ints(dilations)
    return {"type": "conv", "weight": w, "bias": b, "stride": strides, "dilation": dilations,
            "padding": _padding(x, auto_pad, pads, w.shape[2:], strides, dilations),
            "groups": group}


def _pool(kind):
    def handler(x, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0,
                dilations=None, pads=None, storage_order=0, strides=None):
        if len(kernel_shape) != 2:
            raise UnsupportedOpError(f"{len(kernel_shape)}-D pooling; only 2-D is supported")
        if _ints(dilations) != [1, 1]:
            raise UnsupportedOpError(f"dilated pooling (dilations {list(dilations)})")
        strides = _ints(strides)  # ONNX's default stride is 1, not the kernel
        return {"type": kind, "kernel": list(kernel_shape), "stride": strides,
                "padding": _padding(x, auto_pad, pads, kernel_shape, strides, [1, 1]),
                "ceil_mode": bool(ceil_mode), "count_include_pad": bool(count_include_pad)}
    return handler


def _simple(kind):
    return lambda x: {"type": kind}


def _dropout(x, ratio=None, training_mode=None, *, is_test=1, ratio_attr=None, seed=None):
    if training_mode is not None and bool(training_mode):
        raise UnsupportedOpError("Dropout in training mode; export the model in eval mode")
    return {"type": "dropout"}


def _clip(x, min_input=None, max_input=None, *, min=None, max=None):
    lo = min_input if min_input is not None else min  # opset 11+: inputs; before: attributes
    hi = max_input if max_input is not None else max
    lo = None if lo is None else float(lo)
    hi = None if hi is None or np.isinf(hi) or float(hi) >= 3.4e38 else float(hi)
    if lo == 0.0 and hi == 6.0:
        return {"type": "relu6"}
    if lo == 0.0 and hi is None:
        return {"type": "relu"}
    raise UnsupportedOpError(f"Clip to [{lo}, {hi}]; only [0, 6] (ReLU6) and [0, inf) (ReLU) "
                             "are supported")


def _batchnorm(x, scale, bias, mean, var, *, epsilon=1e-5, momentum=0.9, spatial=1,
               training_mode=0, is_test=1, consumed_inputs=None):
    if training_mode:
        raise UnsupportedOpError("BatchNormalization in training mode; export in eval mode")
    if not spatial:
        raise UnsupportedOpError("BatchNormalization with spatial=0")
    return {"type": "batchnorm", "eps": float(epsilon), "gamma": scale, "beta": bias,
            "mean": mean, "var": var}


def _flatten(x, *, axis=1):
    if axis != 1:
        raise UnsupportedOpError(f"Flatten(axis={axis}); only axis=1 (keep the batch) is supported")
    return {"type": "flatten"}


def _reshape(x, shape_input=None, *, shape=None, allowzero=0):
    target = [int(v) for v in (shape_input if shape_input is not None else shape)]
    n = int(np.prod(x.shape[1:]))
    if len(target) != 2 or target[0] not in (-1, 0, 1) or target[1] not in (-1, n) or \
            target == [-1, -1] or (target[0] == 0 and allowzero):
        raise UnsupportedOpError(
            f"Reshape to {target}; only a flatten to [N, -1] (here [N, {n}]) is supported")
    return {"type": "flatten"}


def _gemm(x, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
    if transA:
        raise UnsupportedOpError("Gemm with transA=1")
    weight = (b if transB else b.T) * np.float32(alpha)  # (out, in), as nn.Linear
    bias = None
    if c is not None:
        bias = np.broadcast_to(np.asarray(c, np.float32) * np.float32(beta),
                               (1, weight.shape[0])).reshape(-1).copy()
    return {"type": "linear", "weight": weight, "bias": bias}


def _matmul(x, b):
    if b.ndim != 2:
        raise UnsupportedOpError(f"MatMul by a {b.ndim}-D constant; only a 2-D weight is supported")
    return {"type": "linear", "weight": b.T, "bias": None}


def _add(x, b):
    return {"type": "bias_add", "bias": b}  # folded into the preceding Gemm/MatMul/Conv


def _global_avgpool(x):
    return {"type": "adaptive_avgpool", "output": [1, 1]}


def _reduce_mean(x, axes_input=None, *, axes=None, keepdims=1, noop_with_empty_axes=0):
    axes = axes_input if axes_input is not None else axes
    if len(x.shape) != 4 or axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
        raise UnsupportedOpError(f"ReduceMean over axes {None if axes is None else list(axes)}; "
                                 "only the spatial mean (axes [2, 3]) is supported")
    pool = {"type": "adaptive_avgpool", "output": [1, 1]}
    return pool if keepdims else [pool, {"type": "flatten"}]


def _softmax(x, *, axis=-1):
    if len(x.shape) != 2 or axis not in (1, -1):
        raise UnsupportedOpError(f"Softmax over axis {axis} of a {len(x.shape)}-D tensor; only "
                                 "the class axis of a flattened [N, classes] tensor is supported")
    return {"type": "softmax"}


HANDLERS = {
    "Conv": _conv,
    "Relu": _simple("relu"),
    "Clip": _clip,
    "Tanh": _simple("tanh"),
    "Sigmoid": _simple("sigmoid"),
    "MaxPool": _pool("maxpool"),
    "AveragePool": _pool("avgpool"),
    "GlobalAveragePool": _global_avgpool,
    "ReduceMean": _reduce_mean,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "BatchNormalization": _batchnorm,
    "Softmax": _softmax,
    "Dropout": _dropout,
    "Identity": _simple("identity"),
}
_COMMUTATIVE = ("Add",)
_ATTRIBUTE_ALIASES = {("Dropout", "ratio"): "ratio_attr"}  # opset < 12: ratio was an attribute


def _attribute(a, numpy_helper):
    from onnx import helper
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [i.decode() if isinstance(i, bytes) else i for i in v]
    if hasattr(v, "dims"):  # a TensorProto
        return numpy_helper.to_array(v)
    return v


def _array(t, numpy_helper):
    a = numpy_helper.to_array(t)
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def _constant(node, numpy_helper):
    a = node.attribute[0]  # the spec allows exactly one
    if a.name == "value":
        return _array(a.t, numpy_helper)
    if a.name in ("value_float", "value_floats"):
        return np.asarray(_attribute(a, numpy_helper), np.float32)
    if a.name in ("value_int", "value_ints"):
        return np.asarray(_attribute(a, numpy_helper), np.int64)
    raise UnsupportedOpError(f"Constant with {a.name}")


def _input_hwc(value_info, input_size, source):
    t = value_info.type.tensor_type
    if t.elem_type != _FLOAT32:
        raise UnsupportedOpError(f"{source}: input {value_info.name!r} has ONNX element type "
                                 f"{t.elem_type}; edgecnn imports float32 models")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if len(dims) == 2 and dims[1]:
        return (1, 1, dims[1])
    if len(dims) != 4 or not dims[1]:
        shown = ["?" if d is None else d for d in dims]
        raise UnsupportedOpError(f"{source}: input {value_info.name!r} has shape {shown}; "
                                 "expected NCHW with a fixed channel count")
    h, w = dims[2:]
    if input_size is not None:
        if (h and h != input_size) or (w and w != input_size):
            raise ArchitectureError(f"{source}: the model's input is fixed at {h}x{w}; drop "
                                    f"--input-size {input_size}")
        return (input_size, input_size, dims[1])
    if not (h and w):
        raise ArchitectureError(f"{source}: input {value_info.name!r} has a dynamic height or "
                                "width; pass --input-size")
    return (h, w, dims[1])


def _check_attributes(handler, op, attrs):
    params = inspect.signature(handler).parameters
    unknown = [k for k in attrs
               if k not in params or params[k].kind != inspect.Parameter.KEYWORD_ONLY]
    if unknown:
        raise UnsupportedOpError(f"attribute {', '.join(unknown)} of {op} is not supported")


def _node_entries(node, data, consts, entries, input_hwc, numpy_helper):
    """The node's layer entries; ``data`` names its one non-constant input."""
    handler = HANDLERS[node.op_type]
    args = [consts[n] if n else None for n in node.input if n != data]
    while args and args[-1] is None:
        args.pop()
    attrs = {_ATTRIBUTE_ALIASES.get((node.op_type, a.name), a.name): _attribute(a, numpy_helper)
             for a in node.attribute}
    _check_attributes(handler, node.op_type, attrs)
    out = handler(_Data(entries, input_hwc), *args, **attrs)
    return out if isinstance(out, list) else [out]


def _append(entries, new, name):
    for i, entry in enumerate(new):
        entry["name"] = name if len(new) == 1 else f"{name}/{i}"
        if entry["type"] != "bias_add":
            entries.append(entry)
            continue
        prev = next((e for e in reversed(entries)
                     if e["type"] not in ("dropout", "identity")), None)
        if prev is None or prev["type"] not in ("linear", "conv"):
            raise UnsupportedOpError("Add of a constant is supported only as the bias of the "
                                     "MatMul, Gemm or Conv right before it")
        n_out = prev["weight"].shape[0]
        b = np.asarray(entry["bias"], np.float32)
        if b.size != n_out:
            raise ArchitectureError(f"bias of shape {b.shape} for a layer with {n_out} outputs")
        b = b.reshape(-1)
        prev["bias"] = b if prev["bias"] is None else np.asarray(prev["bias"], np.float32) + b


def load_onnx(path: str, input_size: int | None = None, **graph_kwargs):
    """A float ir.Graph (NHWC, BN not yet folded) from an ONNX model whose nodes form a chain."""
    onnx, numpy_helper = _onnx()
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf's DecodeError, missing external data, ...
        raise ModelFormatError(f"{path} is not a readable ONNX model "
                               f"({type(e).__name__}: {e})") from None
    g = model.graph
    consts = {t.name: _array(t, numpy_helper) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise UnsupportedOpError(f"{path}: the graph has {len(inputs)} inputs "
                                 f"({', '.join(i.name for i in inputs)}); edgecnn imports models "
                                 "with one image input")
    hwc = _input_hwc(inputs[0], input_size, path)
    current, entries = inputs[0].name, []
    for i, node in enumerate(g.node):
        name = node.name or f"{node.op_type.lower()}{i}"
        where = f"{path}: node {name!r} ({node.op_type})"
        if node.domain not in ("", "ai.onnx") or node.op_type not in (*HANDLERS, "Constant"):
            raise UnsupportedOpError(
                f"{path}: node {name!r} is an ONNX {node.op_type}"
                f"{' (domain ' + node.domain + ')' if node.domain else ''}, which edgecnn does "
                f"not import; supported ops: Constant, {', '.join(HANDLERS)}")
        try:
            if node.op_type == "Constant":
                consts[node.output[0]] = _constant(node, numpy_helper)
                continue
            if node.op_type == "Identity" and node.input[0] in consts:
                consts[node.output[0]] = consts[node.input[0]]
                continue
            data = [k for k, n in enumerate(node.input) if n and n not in consts]
            position_ok = data == [0] or (data == [1] and node.op_type in _COMMUTATIVE)
            if not position_ok or node.input[data[0]] != current:
                raise ArchitectureError(
                    f"reads {', '.join(repr(node.input[k]) for k in data) or 'only constants'} "
                    f"where a chain would read {current!r} (the previous node's output); edgecnn "
                    "imports chains of layers, without branches, skip connections or shape "
                    "arithmetic; export with a fixed batch size, constant folding and nn.Flatten")
            new = _node_entries(node, current, consts, entries, hwc, numpy_helper)
            _append(entries, new, name)
        except EdgecnnError as e:
            raise type(e)(f"{where}: {e}") from None
        current = node.output[0]
    outputs = [o.name for o in g.output]
    if outputs != [current]:
        raise ArchitectureError(f"{path}: graph outputs {outputs}; edgecnn imports one output, "
                                f"the last node's ({current!r})")
    if not any(e["type"] in ("conv", "linear") for e in entries):
        raise ArchitectureError(f"{path}: the graph holds no Conv, Gemm or MatMul node")
    name = os.path.splitext(os.path.basename(path))[0]
    return build_float_graph(entries, hwc, name=name, **graph_kwargs)
