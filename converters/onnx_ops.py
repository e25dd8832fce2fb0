"""One handler per ONNX op type (tinygrad's layout: ONNX names, ONNX defaults).

``run_node`` checks a node against ``SCHEMA`` (inputs, outputs, attributes and their types),
then calls its handler with the input values: builder ``Value``s for activations (NCHW in
ONNX's view, NHWC in the graph) and NumPy arrays for constants. The handlers live in
``onnx_layers.py`` (ops that compute) and ``onnx_shape_ops.py`` (ops that move data or fold
shape arithmetic on constants: the Shape/Gather/Unsqueeze/Concat/Reshape chain that
``torch.onnx.export`` writes for ``x.view(x.size(0), -1)`` folds to a flatten at batch 1).
The argument helpers below are shared by both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgecnn.errors import ArchitectureError, EdgecnnError, ModelFormatError, \
    UnsupportedOpError

from .builder import Value
from .onnx_model import MAX_DIM, label

I, F, S, INTS, FLOATS, T = "i", "f", "s", "ints", "floats", "t"
_ATTR_TYPES = {I: 2, F: 1, S: 3, INTS: 7, FLOATS: 6, T: 4}
_POOL = {"auto_pad": S, "ceil_mode": I, "dilations": INTS, "kernel_shape": INTS, "pads": INTS,
         "strides": INTS}
# op -> (min inputs, max inputs, max outputs, {attribute: type})
SCHEMA = {
    "Conv": (2, 3, 1, {"auto_pad": S, "dilations": INTS, "group": I, "kernel_shape": INTS,
                       "pads": INTS, "strides": INTS}),
    "MaxPool": (1, 1, 2, dict(_POOL, storage_order=I)),
    "AveragePool": (1, 1, 1, dict(_POOL, count_include_pad=I)),
    "GlobalAveragePool": (1, 1, 1, {}), "GlobalMaxPool": (1, 1, 1, {}),
    "ReduceMean": (1, 2, 1, {"axes": INTS, "keepdims": I, "noop_with_empty_axes": I}),
    "Relu": (1, 1, 1, {}), "Sigmoid": (1, 1, 1, {}), "Tanh": (1, 1, 1, {}),
    "Clip": (1, 3, 1, {"min": F, "max": F}),
    "BatchNormalization": (5, 5, 5, {"epsilon": F, "momentum": F, "spatial": I, "is_test": I,
                                     "training_mode": I, "consumed_inputs": INTS}),
    "Gemm": (2, 3, 1, {"alpha": F, "beta": F, "transA": I, "transB": I, "broadcast": I}),
    "MatMul": (2, 2, 1, {}),
    "Add": (2, 2, 1, {}), "Sub": (2, 2, 1, {}), "Mul": (2, 2, 1, {}), "Div": (2, 2, 1, {}),
    "Flatten": (1, 1, 1, {"axis": I}),
    "Reshape": (1, 2, 1, {"shape": INTS, "allowzero": I}),
    "Softmax": (1, 1, 1, {"axis": I}),
    "Dropout": (1, 3, 2, {"ratio": F, "is_test": I, "seed": I}),
    "Identity": (1, 1, 1, {}),
    "Concat": (1, 1 << 16, 1, {"axis": I}),
    "Pad": (1, 4, 1, {"mode": S, "pads": INTS, "value": F}),
    "Constant": (0, 0, 1, {"value": T, "value_float": F, "value_floats": FLOATS,
                           "value_int": I, "value_ints": INTS}),
    "Shape": (1, 1, 1, {"start": I, "end": I}),
    "Gather": (2, 2, 1, {"axis": I}),
    "Unsqueeze": (1, 2, 1, {"axes": INTS}), "Squeeze": (1, 2, 1, {"axes": INTS}),
    "Cast": (1, 1, 1, {"to": I, "saturate": I}),
    "Slice": (1, 5, 1, {"starts": INTS, "ends": INTS, "axes": INTS}),
    "ConstantOfShape": (1, 1, 1, {"value": T}),
}


@dataclass
class Context:
    b: object  # GraphBuilder
    opset: int
    path: str
    budget: object
    numpy_helper: object
    consumers: dict
    index: dict = field(default_factory=dict)  # graph tensor name -> position in b.nodes


def _attributes(node, where, kinds) -> dict:
    out = {}
    for a in node.attribute:
        kind = kinds.get(a.name)
        if kind is None:
            raise UnsupportedOpError(f"{where}: attribute {label(a.name)} is not one "
                                     f"{node.op_type} has in the ONNX spec edgecnn reads")
        if a.ref_attr_name or a.name in out:
            raise ModelFormatError(f"{where}: attribute {label(a.name)} is repeated or refers "
                                   "to a function attribute")
        if a.type != _ATTR_TYPES[kind]:
            raise ModelFormatError(f"{where}: attribute {label(a.name)} has type {a.type}; the "
                                   f"spec makes it {kind}")
        if kind == S:
            try:
                out[a.name] = a.s.decode("utf-8")
            except UnicodeDecodeError:
                raise ModelFormatError(f"{where}: attribute {label(a.name)} is not UTF-8 "
                                       "text") from None
        else:
            out[a.name] = {I: a.i, F: a.f, INTS: list(a.ints), FLOATS: list(a.floats),
                           T: a.t}[kind]
    return out


def run_node(ctx: Context, node, i: int, values: dict) -> None:
    op = node.op_type
    name = node.name or f"{op.lower() or 'node'}{i}"
    where = f"{ctx.path}: node {label(name)} ({label(op)[1:-1]})"
    if node.domain not in ("", "ai.onnx") or op not in SCHEMA:
        dom = f" of domain {label(node.domain)}" if node.domain not in ("", "ai.onnx") else ""
        raise UnsupportedOpError(f"{where}: ONNX op {label(op)}{dom} is not supported; "
                                 f"supported: {', '.join(sorted(SCHEMA))}")
    lo, hi, max_out, kinds = SCHEMA[op]
    outs = list(node.output)
    if not outs or not outs[0]:
        raise ModelFormatError(f"{where}: has no output")
    if not lo <= len(node.input) <= hi or len(outs) > max_out:
        raise ModelFormatError(f"{where}: has {len(node.input)} inputs and {len(outs)} outputs;"
                               f" {op} takes {lo} to {hi} inputs and up to {max_out} outputs")
    ins = []
    for n in node.input:
        if n and n not in values:
            raise ArchitectureError(f"{where}: reads {label(n)}, which no earlier node writes "
                                    "(a self-loop, a cycle, or nodes out of order)")
        ins.append(values[n] if n else None)
    for o in outs:
        if o and (o in values or outs.count(o) > 1):
            raise ModelFormatError(f"{where}: writes {label(o)}, which is already written")
    attrs = _attributes(node, where, kinds)
    before = len(ctx.b.nodes)
    from .onnx_layers import HANDLERS
    try:
        result = HANDLERS[op](ctx, name, ins, attrs)
    except EdgecnnError as e:
        raise type(e)(f"{where}: {e}") from None
    result = result if isinstance(result, list) else [result]
    for k, o in enumerate(outs):
        if k < len(result):
            values[o] = result[k]
        elif o and ctx.consumers.get(o):
            raise UnsupportedOpError(f"{where}: output {k} ({label(o)}) is read, and edgecnn "
                                     "computes only the first output of this op")
    for k in range(before, len(ctx.b.nodes)):
        ctx.index[ctx.b.nodes[k].name] = k
    for o, v in zip(outs, result):
        if isinstance(v, np.ndarray):
            ctx.budget.take(v.nbytes, f"the constant {label(o)}")


# ---- argument helpers ---------------------------------------------------------------------

def act(v, what="input") -> Value:
    if not isinstance(v, Value):
        raise UnsupportedOpError(f"its {what} is {'missing' if v is None else 'a constant'}; "
                                 "edgecnn runs this op on activations")
    return v


def const(v, what) -> np.ndarray:
    if not isinstance(v, np.ndarray):
        raise UnsupportedOpError(f"its {what} is {'missing' if v is None else 'computed'}; "
                                 "edgecnn needs a constant (an initializer or Constant)")
    return v


def ints(v, what, n=None, low=None):
    v = [int(x) for x in v] if isinstance(v, (list, np.ndarray)) else v
    if not isinstance(v, list) or (n is not None and len(v) != n) or \
            (low is not None and any(x < low for x in v)):
        raise ModelFormatError(f"{what} is {v!r}; expected {n or 'a list of'} integers"
                               f"{f' of at least {low}' if low is not None else ''}")
    if any(abs(x) > MAX_DIM for x in v):
        raise ModelFormatError(f"{what} {v} is out of range")
    return v


def scalar(v, what) -> float:
    a = const(v, what)
    if a.size != 1 or a.dtype.kind not in "fiub":
        raise ModelFormatError(f"its {what} has shape {a.shape}; expected one number")
    return float(a.reshape(-1)[0])


def axis_of(axis, rank, what="axis") -> int:
    if not -rank <= axis < rank:
        raise ModelFormatError(f"{what} {axis} is out of range for a rank-{rank} tensor")
    return axis % rank


def int_tensor(v, what) -> list:
    a = const(v, what)
    if a.dtype.kind not in "iu" or a.ndim > 1:
        raise ModelFormatError(f"its {what} is a {a.dtype} tensor of shape {a.shape}; expected "
                               "a 1-D integer tensor")
    return ints(a.reshape(-1), what)
