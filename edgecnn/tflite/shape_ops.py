"""Shape arithmetic folded at read time: SHAPE, STRIDED_SLICE and PACK on constants.

Google's converter writes a Flatten on a dynamic batch as SHAPE(x) -> STRIDED_SLICE (take the
batch) -> PACK(batch, -1) -> RESHAPE(x, shape). edgecnn runs batch 1, where every shape is
static, so these ops compute constants: they are evaluated here on small int arrays and leave
no node behind; the RESHAPE then reads a constant shape like any other. Only what that pattern
needs is taken: 1-D slices without ellipsis or new axes, packs of constants.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError

FOLDERS = ("SHAPE", "STRIDED_SLICE", "PACK")
ARITY = {"SHAPE": (1, 1), "STRIDED_SLICE": (4, 4), "PACK": (1, 64)}
MAX_ELEMENTS = 64  # shape vectors are tiny; anything larger is not shape arithmetic


def _const(r, op, k):
    i = op.inputs[k] if k < len(op.inputs) else -1
    if i < 0 or not r.is_const(i):
        raise UnsupportedOpError(f"{r.file}: {op.where}: input {k} is not a constant; edgecnn "
                                 "folds shape arithmetic on constants only")
    value = np.asarray(r.const(i, op.where))
    if value.size > MAX_ELEMENTS or value.dtype.kind not in "iu":
        raise UnsupportedOpError(f"{r.file}: {op.where}: input {k} is {value.dtype} of "
                                 f"{value.size} values; shape arithmetic takes small int vectors")
    return value.astype(np.int64)


def _shape(r, op):
    x = r.op_input(op, 0)
    return np.array(x.shape, np.int64)


def _strided_slice(r, op):
    x, begin, end, strides = (_const(r, op, k) for k in range(4))
    o = op.options(r.fb.StridedSliceOptionsT)
    if x.ndim != 1 or begin.shape != (1,) or end.shape != (1,) or strides.shape != (1,):
        raise UnsupportedOpError(f"{r.file}: {op.where}: edgecnn folds 1-D strided slices only")
    if o.ellipsisMask or o.newAxisMask or int(strides[0]) == 0:
        raise UnsupportedOpError(f"{r.file}: {op.where}: a strided slice with ellipsis or new "
                                 "axis masks, or stride 0, is not folded")
    b = None if o.beginMask & 1 else int(begin[0])
    e = None if o.endMask & 1 else int(end[0])
    if o.shrinkAxisMask & 1:  # one element, as a scalar
        return np.array(x[b if b is not None else 0])
    return x[b:e:int(strides[0])]


def _pack(r, op):
    o = op.options(r.fb.PackOptionsT)
    values = [_const(r, op, k) for k in range(len(op.inputs))]
    if not values or len({v.shape for v in values}) != 1:
        raise UnsupportedOpError(f"{r.file}: {op.where}: PACK needs constant inputs of one shape")
    axis = int(o.axis)
    if not -values[0].ndim - 1 <= axis <= values[0].ndim:
        r.fail(f"{op.where}: PACK axis {axis} is out of range")
    return np.stack(values, axis=axis)


_EVAL = {"SHAPE": _shape, "STRIDED_SLICE": _strided_slice, "PACK": _pack}


def fold(r, op) -> None:
    """Evaluate ``op`` (one of FOLDERS) and record its output as a constant of the reader."""
    if len(op.outputs) != 1:
        r.fail(f"{op.where}: has {len(op.outputs)} outputs; expected 1")
    value = np.asarray(_EVAL[op.code](r, op))
    out = op.outputs[0]
    t = r.tensor(out, op.where)
    declared = r.shape(t)
    if declared and tuple(declared) != value.shape:
        r.fail(f"{op.where}: declares output shape {declared}, but its constant inputs give "
               f"{value.shape}")
    dtype = {"INT32": np.int32, "INT64": np.int64}.get(r.type_name(t))
    if dtype is None:
        raise UnsupportedOpError(f"{r.file}: {op.where}: output of type {r.type_name(t)}; shape "
                                 "arithmetic yields INT32 or INT64")
    r.folded[out] = value.astype(dtype)
