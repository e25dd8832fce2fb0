"""ONNX ops that move data or compute shapes: on activations they become RESHAPE, PAD or
CONCATENATION nodes (or nothing); on constants they are folded, as the ONNX spec defines
them (negative axes counted from the end, Reshape's 0 copying a dim unless allowzero,
Gather's negative indices), each result charged to the --max-memory budget before it is
allocated.
"""

from __future__ import annotations

import math

import numpy as np

from edgecnn.errors import ModelFormatError, UnsupportedOpError

from .builder import Value
from .onnx_model import DTYPES, tensor_array
from .onnx_ops import act, axis_of, const, int_tensor, ints, scalar

MAX_CONST_ITEMS = 1 << 24


def _mixed(op, values):
    acts = [isinstance(v, Value) for v in values]
    if any(acts) and not all(acts):
        raise UnsupportedOpError(f"{op} of activations and constants together")
    return all(acts)


def flatten(ctx, name, ins, attrs):
    x = ins[0]
    shape = x.torch_shape if isinstance(x, Value) else const(x, "input").shape
    rank = len(shape)
    axis = attrs.get("axis", 1)
    if not -rank <= axis <= rank:
        raise ModelFormatError(f"Flatten axis {axis} is out of range for rank {rank}")
    axis = axis + rank if axis < 0 else axis
    if isinstance(x, np.ndarray):  # explicit dims: -1 is ambiguous for an empty tensor
        return x.reshape(math.prod(shape[:axis]), math.prod(shape[axis:]))
    if axis > 1:
        raise UnsupportedOpError(f"Flatten(axis={axis}) of a rank-{rank} tensor; edgecnn "
                                 "flattens everything after the batch (axis 1)")
    return ctx.b.flatten(name, act(x))


def _target(shape, given, allowzero, what="Reshape"):
    target = list(given)
    if target.count(-1) > 1 or any(d < -1 for d in target):
        raise ModelFormatError(f"{what} to {given}: at most one -1 and no other negative dims")
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(shape):
                raise ModelFormatError(f"{what} to {given}: dim {i} copies a dim the input "
                                       f"{tuple(shape)} does not have")
            target[i] = shape[i]
    n = math.prod(shape)
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        if known == 0 or n % known:
            raise ModelFormatError(f"{what} of {tuple(shape)} to {given} does not divide evenly")
        target[target.index(-1)] = n // known
    if math.prod(target) != n:
        raise ModelFormatError(f"cannot {what.lower()} {tuple(shape)} ({n} values) to {given}")
    return target


def reshape(ctx, name, ins, attrs):
    if "shape" in attrs or len(ins) < 2:
        raise ModelFormatError("Reshape needs its shape as the second input (opset 5 and on)")
    x, given = ins[0], int_tensor(ins[1], "shape")
    allowzero = attrs.get("allowzero", 0) if ctx.opset >= 14 else 0
    if isinstance(x, np.ndarray):
        return x.reshape(_target(x.shape, given, allowzero))
    x = act(x)
    return ctx.b.reshape(name, x, _target(x.torch_shape, given, allowzero))


def concat(ctx, name, ins, attrs):
    if "axis" not in attrs:
        raise ModelFormatError("Concat has no axis, which the spec requires")
    if any(v is None for v in ins):
        raise ModelFormatError("Concat has an empty input name")
    if _mixed("Concat", ins):
        return ctx.b.concat(name, list(ins), axis_of(attrs["axis"], len(ins[0].shape)))
    arrays = [const(v, "input") for v in ins]
    rank = arrays[0].ndim
    if rank == 0 or any(a.ndim != rank for a in arrays):
        raise ModelFormatError("Concat of constants of different ranks (or scalars)")
    axis = axis_of(attrs["axis"], rank)
    try:
        return np.concatenate(arrays, axis=axis)
    except ValueError:
        raise ModelFormatError(f"Concat of constants of shapes {[a.shape for a in arrays]} on "
                               f"axis {axis}") from None


def pad(ctx, name, ins, attrs):
    x = act(ins[0])
    if attrs.get("mode", "constant") != "constant":
        raise UnsupportedOpError(f"Pad mode {attrs['mode']!r}; only constant (zero) padding")
    if ctx.opset >= 11:
        if "pads" in attrs or "value" in attrs:
            raise ModelFormatError("has pads/value attributes, which opset 11 moved to inputs")
        pads = int_tensor(ins[1] if len(ins) > 1 else None, "pads")
        value = scalar(ins[2], "constant_value") if len(ins) > 2 and ins[2] is not None else 0.0
        if len(ins) > 3 and ins[3] is not None:
            raise UnsupportedOpError("Pad with an axes input")
    else:
        pads, value = ints(attrs.get("pads"), "pads"), attrs.get("value", 0.0)
    rank = len(x.shape)
    if len(pads) != 2 * rank or min(pads, default=0) < 0:
        raise ModelFormatError(f"Pad pads {pads}; the spec wants {2 * rank} values, here >= 0")
    if value != 0.0 or rank != 4 or any(pads[i] or pads[i + rank] for i in (0, 1)):
        raise UnsupportedOpError(f"Pad {pads} with value {value}; edgecnn pads H and W of an "
                                 "NCHW tensor with zeros")
    return ctx.b.pad(name, x, (pads[2], pads[6], pads[3], pads[7]))


def constant(ctx, name, ins, attrs):
    if len(attrs) != 1:
        raise ModelFormatError(f"Constant has {len(attrs)} value attributes; the spec wants one")
    key, v = next(iter(attrs.items()))
    if key == "value":
        return tensor_array(v, "its value", ctx.path, ctx.budget, ctx.numpy_helper)
    dtype = np.float32 if key.startswith("value_float") else np.int64
    return np.asarray(v, dtype)


def shape(ctx, name, ins, attrs):
    x = ins[0]
    dims = list(x.torch_shape) if isinstance(x, Value) else list(const(x, "input").shape)
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.asarray(dims[slice(start, end)], np.int64)


def gather(ctx, name, ins, attrs):
    data, idx = const(ins[0], "data"), const(ins[1], "indices")
    if data.ndim == 0 or idx.dtype.kind not in "iu":
        raise ModelFormatError(f"Gather of a rank-{data.ndim} tensor with {idx.dtype} indices")
    axis = axis_of(attrs.get("axis", 0), data.ndim)
    n = data.shape[axis]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ModelFormatError(f"Gather index out of range for a dim of {n}")
    if idx.size * data.size // max(n, 1) > MAX_CONST_ITEMS:
        raise ModelFormatError("Gather result too large")
    return np.asarray(np.take(data, idx.astype(np.int64), axis=axis))


def _axes(ctx, ins, attrs, op, required):
    if ctx.opset >= 13:
        if "axes" in attrs:
            raise ModelFormatError(f"{op} has an axes attribute, which opset 13 moved to an input")
        return int_tensor(ins[1], "axes") if len(ins) > 1 and ins[1] is not None else None
    if len(ins) > 1:
        raise ModelFormatError(f"{op} has an axes input, which opset {ctx.opset} does not have")
    axes = attrs.get("axes")
    if axes is None and required:
        raise ModelFormatError(f"{op} has no axes")
    return axes


def _reshaped(ctx, name, x, new_shape):
    if isinstance(x, np.ndarray):
        return x.reshape(new_shape)
    return ctx.b.reshape(name, act(x), new_shape)


def unsqueeze(ctx, name, ins, attrs):
    x = ins[0]
    old = list(x.torch_shape if isinstance(x, Value) else const(x, "data").shape)
    axes = _axes(ctx, ins, attrs, "Unsqueeze", True)
    if axes is None:
        raise ModelFormatError("Unsqueeze has no axes")
    rank = len(old) + len(axes)
    norm = sorted(axis_of(a, rank, "Unsqueeze axis") for a in axes)
    if len(set(norm)) != len(norm) or rank > 8:
        raise ModelFormatError(f"Unsqueeze axes {axes} repeat an axis or make rank {rank}")
    for a in norm:
        old.insert(a, 1)
    return _reshaped(ctx, name, x, old)


def squeeze(ctx, name, ins, attrs):
    x = ins[0]
    old = list(x.torch_shape if isinstance(x, Value) else const(x, "data").shape)
    axes = _axes(ctx, ins, attrs, "Squeeze", False)
    norm = [i for i, d in enumerate(old) if d == 1] if axes is None else \
        sorted({axis_of(a, len(old), "Squeeze axis") for a in axes})
    if any(old[a] != 1 for a in norm):
        raise ModelFormatError(f"Squeeze axes {axes} of shape {old}: a squeezed dim is not 1")
    if isinstance(x, Value) and 0 in norm:
        raise UnsupportedOpError("Squeeze of the batch dim of an activation")
    return _reshaped(ctx, name, x, [d for i, d in enumerate(old) if i not in norm])


def cast(ctx, name, ins, attrs):
    to = attrs.get("to")
    if to not in DTYPES:
        raise UnsupportedOpError(f"Cast to ONNX type {to}; edgecnn casts to numeric types")
    if isinstance(ins[0], Value):
        if to != 1:
            raise UnsupportedOpError(f"Cast of an activation to ONNX type {to}; edgecnn runs "
                                     "float32 graphs")
        return ins[0]
    with np.errstate(all="ignore"):
        return const(ins[0], "input").astype(DTYPES[to][0])


def slice_(ctx, name, ins, attrs):
    data = const(ins[0], "data")
    if ctx.opset >= 10:
        starts, ends = int_tensor(ins[1] if len(ins) > 1 else None, "starts"), \
            int_tensor(ins[2] if len(ins) > 2 else None, "ends")
        axes = int_tensor(ins[3], "axes") if len(ins) > 3 and ins[3] is not None else None
        steps = int_tensor(ins[4], "steps") if len(ins) > 4 and ins[4] is not None else None
    else:
        starts, ends = ints(attrs.get("starts"), "starts"), ints(attrs.get("ends"), "ends")
        axes, steps = attrs.get("axes"), None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps or \
            data.ndim == 0:
        raise ModelFormatError("Slice starts, ends, axes and steps differ in length, or a step "
                               "is 0")
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[axis_of(a, data.ndim, "Slice axis")] = slice(s, e, st)
    return data[tuple(index)].copy()


def constant_of_shape(ctx, name, ins, attrs):
    dims = int_tensor(ins[0], "shape")
    if any(d < 0 for d in dims) or math.prod(dims) > MAX_CONST_ITEMS:
        raise ModelFormatError(f"ConstantOfShape {dims}: dims must be >= 0 and the result "
                               f"under {MAX_CONST_ITEMS} values")
    value = np.zeros(1, np.float32)
    if "value" in attrs:
        value = tensor_array(attrs["value"], "its value", ctx.path, ctx.budget, ctx.numpy_helper)
        if value.size != 1:
            raise ModelFormatError("ConstantOfShape value must hold one element")
    return np.full(dims, value.reshape(-1)[0], value.dtype)


def identity(ctx, name, ins, attrs):
    return ins[0]


SHAPE_HANDLERS = {
    "Flatten": flatten, "Reshape": reshape, "Concat": concat, "Pad": pad,
    "Constant": constant, "Shape": shape, "Gather": gather, "Unsqueeze": unsqueeze,
    "Squeeze": squeeze, "Cast": cast, "Slice": slice_, "ConstantOfShape": constant_of_shape,
    "Identity": identity,
}
