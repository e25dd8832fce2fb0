"""ONNX ops that compute: convolution, pooling, activations, BatchNormalization, dense layers
and Add, each as the ONNX spec defines it (ONNX's defaults, opset-dependent forms), built
through ``builder.GraphBuilder``. An ``Add`` of a constant right after a MatMul, Gemm or Conv
whose output nothing else reads becomes that layer's bias.
"""

from __future__ import annotations

import math

import numpy as np

from edgecnn import ir, shapes
from edgecnn.errors import ModelFormatError, UnsupportedOpError

from .builder import Value
from .onnx_model import label
from .onnx_ops import act, axis_of, const, int_tensor, ints, scalar
from .onnx_shape_ops import SHAPE_HANDLERS


# ---- convolution and pooling --------------------------------------------------------------

def _window(x, attrs, kernel, what):
    strides = ints(attrs.get("strides", [1, 1]), f"{what} strides", 2, 1)
    dilations = ints(attrs.get("dilations", [1, 1]), f"{what} dilations", 2, 1)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        (t, b), (l, r) = (shapes.same_padding(size, k, s, d) for size, k, s, d
                          in zip(x.shape[1:3], kernel, strides, dilations))
        if auto_pad == "SAME_LOWER":  # the odd pixel goes before
            t, b, l, r = b, t, r, l
    elif auto_pad == "VALID":
        t = b = l = r = 0
    elif auto_pad == "NOTSET":
        t, l, b, r = ints(attrs.get("pads", [0, 0, 0, 0]), f"{what} pads", 4, 0)
    else:
        raise ModelFormatError(f"auto_pad {label(auto_pad)}; expected NOTSET, VALID, SAME_UPPER "
                               "or SAME_LOWER")
    return strides, dilations, (t, b, l, r)


def _image(x, op):
    if len(act(x).shape) != 4:
        raise UnsupportedOpError(f"{op} of a rank-{len(x.shape)} tensor; edgecnn runs it on "
                                 "NCHW images")
    return x


def conv(ctx, name, ins, attrs):
    x, w, b = _image(act(ins[0]), "Conv"), const(ins[1], "weight"), ins[2] if len(ins) > 2 else None
    if w.ndim != 4:
        raise UnsupportedOpError(f"a weight of shape {w.shape}; edgecnn runs 2-D convolutions "
                                 "(OIHW weights)")
    if min(w.shape) < 1:
        raise ModelFormatError(f"weight shape {w.shape} has an empty dimension (0 filters?)")
    if "kernel_shape" in attrs and list(attrs["kernel_shape"]) != list(w.shape[2:]):
        raise ModelFormatError(f"kernel_shape {attrs['kernel_shape']} does not match the weight "
                               f"shape {w.shape} (OIHW)")
    strides, dilations, pads = _window(x, attrs, w.shape[2:], "Conv")
    if b is not None:
        b = const(b, "bias")
        if b.shape != (w.shape[0],):
            raise ModelFormatError(f"bias of shape {b.shape}; the spec wants ({w.shape[0]},), one "
                                   "per output channel")
    group = attrs.get("group", 1)
    if group < 1:
        raise ModelFormatError(f"group {group}")
    return ctx.b.conv(name, x, w, b, strides, pads, dilations, group)


def pool(kind):
    def handler(ctx, name, ins, attrs):
        x = _image(act(ins[0]), kind)
        if "kernel_shape" not in attrs:
            raise ModelFormatError("has no kernel_shape, which the spec requires")
        kernel = ints(attrs["kernel_shape"], "kernel_shape", 2, 1)
        strides, dilations, pads = _window(x, attrs, kernel, kind)
        if dilations != [1, 1]:
            raise UnsupportedOpError(f"dilated pooling (dilations {dilations})")
        ceil = bool(attrs.get("ceil_mode", 0))
        if kind == "MaxPool":
            return ctx.b.pool(name, x, "max", kernel, strides, pads, ceil)
        return ctx.b.pool(name, x, "avg", kernel, strides, pads, ceil,
                          bool(attrs.get("count_include_pad", 0)))
    return handler


def global_avg(ctx, name, ins, attrs):
    return ctx.b.global_mean(name, _image(act(ins[0]), "GlobalAveragePool"), keepdims=True)


def global_max(ctx, name, ins, attrs):
    x = _image(act(ins[0]), "GlobalMaxPool")
    return ctx.b.pool(name, x, "max", x.shape[1:3], (1, 1))


def reduce_mean(ctx, name, ins, attrs):
    x = act(ins[0])
    if ctx.opset >= 18:
        axes = int_tensor(ins[1], "axes") if len(ins) > 1 and ins[1] is not None else None
        if "axes" in attrs:
            raise ModelFormatError("has an axes attribute, which opset 18 moved to an input")
    else:
        axes = attrs.get("axes")
        if len(ins) > 1:
            raise ModelFormatError(f"has an axes input, which opset {ctx.opset} does not have")
    rank = len(x.shape)
    if not axes:
        if attrs.get("noop_with_empty_axes", 0) and ctx.opset >= 18:
            return x
        axes = list(range(rank))
    norm = sorted(axis_of(a, rank, "ReduceMean axis") for a in axes)
    if len(set(norm)) != len(norm):
        raise ModelFormatError(f"ReduceMean axes {axes} repeat an axis")
    if rank != 4 or norm != [2, 3]:
        raise UnsupportedOpError(f"ReduceMean over axes {axes} of a rank-{rank} tensor; edgecnn "
                                 "runs the spatial mean (axes [2, 3] of NCHW)")
    return ctx.b.global_mean(name, x, bool(attrs.get("keepdims", 1)))


# ---- activations --------------------------------------------------------------------------

def activation(kind):
    return lambda ctx, name, ins, attrs: ctx.b.activation(name, act(ins[0]), kind)


def clip(ctx, name, ins, attrs):
    x = act(ins[0])
    if ctx.opset >= 11:
        if "min" in attrs or "max" in attrs:
            raise ModelFormatError("has min/max attributes, which opset 11 moved to inputs")
        lo = scalar(ins[1], "min") if len(ins) > 1 and ins[1] is not None else None
        hi = scalar(ins[2], "max") if len(ins) > 2 and ins[2] is not None else None
    else:
        if len(ins) > 1:
            raise ModelFormatError(f"has min/max inputs, which opset {ctx.opset} does not have")
        lo, hi = attrs.get("min"), attrs.get("max")
    hi = None if hi is None or hi >= 3.4e38 else hi
    if lo == 0.0 and hi == 6.0:
        return ctx.b.activation(name, x, "relu6")
    if lo == 0.0 and hi is None:
        return ctx.b.activation(name, x, "relu")
    raise UnsupportedOpError(f"Clip to [{lo}, {hi}]; only [0, 6] (ReLU6) and [0, inf) (ReLU) "
                             "are supported")


def batchnorm(ctx, name, ins, attrs):
    if attrs.get("training_mode", 0):
        raise UnsupportedOpError("BatchNormalization in training mode; export in eval mode")
    if ctx.opset < 9 and not attrs.get("spatial", 1):
        raise UnsupportedOpError("BatchNormalization with spatial=0")
    x = act(ins[0])
    arrays = [const(v, what) for v, what in zip(ins[1:], ("scale", "B", "mean", "var"))]
    c = x.torch_shape[1] if len(x.shape) > 1 else 0
    for a, what in zip(arrays, ("scale", "B", "mean", "var")):
        if a.shape != (c,) or a.dtype.kind != "f":
            raise ModelFormatError(f"BatchNormalization {what} of shape {a.shape} for {c} "
                                   "channels; the spec wants one float per channel")
    return ctx.b.batchnorm(name, x, *arrays, attrs.get("epsilon", 1e-5))


def softmax(ctx, name, ins, attrs):
    x = act(ins[0])
    default = -1 if ctx.opset >= 13 else 1
    return ctx.b.softmax(name, x, axis_of(attrs.get("axis", default), len(x.shape)))


def passthrough(ctx, name, ins, attrs):
    return ins[0]


def dropout(ctx, name, ins, attrs):
    if len(ins) > 2 and ins[2] is not None and scalar(ins[2], "training_mode"):
        raise UnsupportedOpError("Dropout in training mode; export the model in eval mode")
    return ins[0] if isinstance(ins[0], np.ndarray) else act(ins[0])


# ---- dense and arithmetic -----------------------------------------------------------------

def gemm(ctx, name, ins, attrs):
    x, w = act(ins[0]), const(ins[1], "B")
    if attrs.get("transA", 0):
        raise UnsupportedOpError("Gemm with transA=1")
    if w.ndim != 2:
        raise ModelFormatError(f"Gemm B of shape {w.shape}; expected 2-D")
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise ModelFormatError(f"Gemm alpha {alpha} and beta {beta} must be finite")
    with np.errstate(all="ignore"):  # NaN/inf weights are refused, with the layer, at import
        weight = (w if attrs.get("transB", 0) else w.T) * np.float32(alpha)
    bias = None
    if len(ins) > 2 and ins[2] is not None:
        c = const(ins[2], "C")
        n = weight.shape[0]
        if c.ndim > 2 or c.shape[-1:] not in ((), (1,), (n,)) or (c.ndim == 2 and c.shape[0] != 1):
            raise ModelFormatError(f"Gemm C of shape {c.shape} does not broadcast to (1, {n})")
        bias = np.broadcast_to(c.astype(np.float32) * np.float32(beta),
                               (1, n)).reshape(-1).copy()
    return ctx.b.linear(name, x, weight, bias)


def matmul(ctx, name, ins, attrs):
    x, w = act(ins[0]), const(ins[1], "B")
    if w.ndim != 2:
        raise UnsupportedOpError(f"MatMul by a constant of shape {w.shape}; only a 2-D weight "
                                 "is supported")
    return ctx.b.linear(name, x, w.T, None)


def _fold_bias(ctx, name, x: Value, c: np.ndarray):
    """``x + c`` as the bias of the dense layer or conv that writes x, if nothing else reads x."""
    k = ctx.index.get(x.name)
    node = ctx.b.nodes[k] if k is not None else None
    kind = type(node).__name__
    if k is None or kind not in ("Conv2D", "DepthwiseConv2D", "FullyConnected") or \
            ctx.consumers.get(x.name, 0) > 1:
        raise UnsupportedOpError("Add of a constant is supported only as the bias of the MatMul, "
                                 "Gemm or Conv right before it")
    n = node.output.shape[-1]
    shape = tuple(c.shape)
    ok = (1,) * len(shape) == shape or (kind == "FullyConnected" and shape in ((n,), (1, n))) \
        or (kind != "FullyConnected" and shape in ((n, 1, 1), (1, n, 1, 1)))
    if not ok or c.dtype.kind != "f":
        raise ModelFormatError(f"Add of a constant of shape {shape} to an output of shape "
                               f"{x.torch_shape}: not a bias (one value, or one per channel)")
    b = np.broadcast_to(c.astype(np.float32).reshape(-1), (n,))
    old = node.bias if node.bias is not None else np.zeros(n, np.float32)
    ctx.b.nodes[k] = ir.replace(node, bias=(old + b).astype(np.float32))
    return x


def _binary(op, fn):
    def handler(ctx, name, ins, attrs):
        a, b = ins
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return _fold_arith(op, fn, a, b)
        if op == "Add" and isinstance(a, Value) and isinstance(b, Value):
            return ctx.b.add_tensors(name, a, b)
        if op == "Add" and isinstance(a, Value) != isinstance(b, Value):
            x, c = (a, b) if isinstance(a, Value) else (b, a)
            return _fold_bias(ctx, name, act(x), const(c, "addend"))
        raise UnsupportedOpError(f"{op} with an activation; edgecnn runs Add of two activations "
                                 "(a residual) and folds arithmetic on constants")
    return handler


def _fold_arith(op, fn, a, b):
    try:
        out = fn(a, b)
    except (ValueError, FloatingPointError, ZeroDivisionError) as e:
        raise ModelFormatError(f"{op} of constants of shapes {a.shape} and {b.shape} fails "
                               f"({type(e).__name__})") from None
    return np.asarray(out, dtype=np.result_type(a, b))


def _int_div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise ZeroDivisionError
        return np.trunc(a / b).astype(np.result_type(a, b))  # ONNX Div truncates integers
    with np.errstate(all="ignore"):
        return a / b


HANDLERS = {
    "Conv": conv, "MaxPool": pool("MaxPool"), "AveragePool": pool("AveragePool"),
    "GlobalAveragePool": global_avg, "GlobalMaxPool": global_max, "ReduceMean": reduce_mean,
    "Relu": activation("relu"), "Sigmoid": activation("sigmoid"), "Tanh": activation("tanh"),
    "Clip": clip, "BatchNormalization": batchnorm, "Softmax": softmax, "Dropout": dropout,
    "Gemm": gemm, "MatMul": matmul,
    "Add": _binary("Add", np.add), "Sub": _binary("Sub", np.subtract),
    "Mul": _binary("Mul", np.multiply), "Div": _binary("Div", _int_div),
    **SHAPE_HANDLERS,
}
