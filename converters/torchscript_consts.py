"""TorchScript ops and builtins that fold constants: integer and float arithmetic, comparisons
(refused on tensors: that would be control flow on a tensor's values), shapes and ranks of
activations (static at batch 1), lists, ``range``, ``int``/``float``, ``annotate``,
``unchecked_cast`` and ``ops.prim.*``. Handlers take the interpreter first, as in
``torchscript_ops.py``.
"""

from __future__ import annotations

import numpy as np

from .builder import Value

MAX_RANGE = 1 << 16


def is_act(v) -> bool:
    return isinstance(v, Value)


def _scalar(it, v, op):
    if is_act(v) or isinstance(v, np.ndarray):
        it.refuse(f"torch.{op} on tensors; edgecnn adds activations (ADD) and folds arithmetic "
                  "on constants only")
    return v


def _fold(it, op, fn, *args):
    args = [_scalar(it, a, op) for a in args]
    try:
        out = fn(*args)
    except (TypeError, ZeroDivisionError, OverflowError, ValueError):
        it.refuse(f"torch.{op} on {', '.join(type(a).__name__ for a in args)}")
    if isinstance(out, int) and abs(out) > 1 << 62:
        it.refuse(f"torch.{op} overflows int64")
    return out


def _binary(op, fn):
    return lambda it, a, b, *rest: _fold(it, op, fn, a, b)


def _compare(op, fn):
    def handler(it, a, b):
        for v in (a, b):
            if is_act(v) or isinstance(v, np.ndarray):
                it.refuse(f"torch.{op} compares tensors: control flow that depends on a "
                          "tensor's values (data-dependent)")
        try:
            return fn(a, b)
        except TypeError:
            it.refuse(f"torch.{op} of {type(a).__name__} and {type(b).__name__}")
    return handler


def _size(it, self, dim=None):
    if is_act(self):
        shape = list(self.torch_shape)
    elif isinstance(self, np.ndarray):
        shape = list(self.shape)
    else:
        it.refuse(f"torch.size of a {type(self).__name__}")
    if dim is None:
        return shape
    if not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
        it.refuse(f"torch.size(dim={dim!r}) of a rank-{len(shape)} tensor")
    return shape[dim]


def _dim(it, self):
    return len(_size(it, self))


def _len(it, v):
    if isinstance(v, (list, tuple, str, dict)):
        return len(v)
    if is_act(v):
        return v.torch_shape[0]
    it.refuse(f"len() of a {type(v).__name__}")


def _range(it, *args):
    if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool)
                                          for a in args):
        it.refuse(f"range{tuple(args)!r}: edgecnn unrolls loops over constant ranges")
    r = range(*args) if args[-1] != 0 or len(args) < 3 else None
    if r is None or len(r) > MAX_RANGE:
        it.refuse(f"range{tuple(args)} is not a loop edgecnn unrolls")
    return r


def _raise(it, message="", cls=None, *rest):
    it.refuse(f"the model raises {cls or 'an exception'} here "
              f"({str(message)[:80]!r}) for this input")


def _getattr(it, obj, name, *default):
    return it.attribute(obj, name, it.node)


def _append(it, lst, v):
    if not isinstance(lst, list):
        it.refuse("torch.append to something other than a list")
    if len(lst) >= MAX_RANGE:
        it.refuse("a list grows past 65536 items")
    lst.append(v)
    return lst


def _getitem(it, v, i):
    return it.subscript(v, i, it.node)


def _to_int(it, v):
    if isinstance(v, (int, float, bool)):
        return int(v)
    it.refuse(f"int() of a {type(v).__name__}")


def _to_float(it, v):
    if isinstance(v, (int, float, bool)):
        return float(v)
    it.refuse(f"float() of a {type(v).__name__}")


def _type_passthrough(it, typ, value=None):
    return value


CONSTANT_OPS = {
    "sub": _binary("sub", lambda a, b: a - b), "mul": _binary("mul", lambda a, b: a * b),
    "floordiv": _binary("floordiv", lambda a, b: a // b),
    "remainder": _binary("remainder", lambda a, b: a % b),
    "div": _binary("div", lambda a, b: a / b),
    "neg": lambda it, a: _fold(it, "neg", lambda v: -v, a),
    "eq": _compare("eq", lambda a, b: a == b), "ne": _compare("ne", lambda a, b: a != b),
    "lt": _compare("lt", lambda a, b: a < b), "le": _compare("le", lambda a, b: a <= b),
    "gt": _compare("gt", lambda a, b: a > b), "ge": _compare("ge", lambda a, b: a >= b),
    "__is__": _compare("__is__", lambda a, b: a is b if a is None or b is None else a == b),
    "__isnot__": _compare("__isnot__",
                          lambda a, b: not (a is b if a is None or b is None else a == b)),
    "__not__": lambda it, a: not _scalar(it, a, "__not__"),
    "size": _size, "dim": _dim, "len": _len,
    "format": lambda it, fmt, *args: str(fmt),
    "warn": lambda it, *args, **kwargs: None,
    "device": lambda it, name, *args: str(name),
    "list": lambda it, v: list(v) if isinstance(v, (list, tuple)) else it.refuse("list()"),
    "append": _append, "__getitem__": _getitem,
    "__range_length": lambda it, lo, hi, step: _fold(
        it, "__range_length", lambda a, b, c: max(0, -(-(b - a) // c)), lo, hi, step),
    "__derive_index": lambda it, i, start, step: _fold(
        it, "__derive_index", lambda a, b, c: b + a * c, i, start, step),
}
PRIM = {
    "NumToTensor": lambda it, v: _scalar(it, v, "NumToTensor"),
    "RaiseException": _raise,
    "unchecked_unwrap_optional": lambda it, v: v,
}
BUILTINS = {
    "annotate": _type_passthrough, "unchecked_cast": _type_passthrough,
    "uninitialized": lambda it, typ: None,
    "int": _to_int, "float": _to_float, "bool": lambda it, v: bool(_scalar(it, v, "bool")),
    "len": _len, "range": _range, "getattr": _getattr,
}
