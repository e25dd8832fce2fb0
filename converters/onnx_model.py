"""ONNX ``.onnx`` -> float IR graph, defended like a .tflite: every malformed field is one
line naming the file and the node or tensor, before anything of its size is allocated.

The file is parsed with the ``onnx`` package (protobuf; nothing in it is executed) without
loading external data; this module then checks, in order:
- the opset of the default domain is one edgecnn has read the op definitions of
  (``MIN_OPSET``..``MAX_OPSET``; opset-dependent forms are handled as the spec gives them);
- every initializer: a numeric data type, non-negative dims, bytes that match them (raw data
  of exactly ``prod(dims) * itemsize`` bytes, or typed data of exactly ``prod(dims)`` items,
  or external data inside the model's folder), all under ``max_memory``;
- the graph: one float32 image input, nodes in topological order (a node reads only tensors
  written before it: a self-loop or a cycle is refused), every tensor written once, each
  node's attributes of the type the op defines, each node's inputs and outputs counted.

Nodes then go, in order, to the handlers in ``onnx_ops.py`` (one per op type), which build
the graph through ``builder.GraphBuilder`` (ONNX is NCHW with OIHW weights, PyTorch's
conventions) and fold shape arithmetic on constants (Shape, Gather, Unsqueeze, Concat, ...).
Shapes are computed as each node is added, so import is linear in the node count.
"""

from __future__ import annotations

import math
import os

import numpy as np

from edgecnn.errors import (ArchitectureError, EdgecnnError, ModelFormatError,
                            UnsupportedOpError, UsageError)

from .builder import GraphBuilder, Value

MIN_OPSET, MAX_OPSET = 7, 25  # the op definitions read here are the same from 13 to 25
MAX_DIM = 1 << 20
MAX_NODES = 1 << 20
# ONNX TensorProto data types edgecnn reads (the rest: undefined, string, complex, float8,
# int4 ... are refused): code -> (numpy dtype, typed field that may hold the values)
DTYPES = {1: ("<f4", "float_data"), 2: ("u1", "int32_data"), 3: ("i1", "int32_data"),
          4: ("<u2", "int32_data"), 5: ("<i2", "int32_data"), 6: ("<i4", "int32_data"),
          7: ("<i8", "int64_data"), 9: ("?", "int32_data"), 10: ("<f2", "int32_data"),
          11: ("<f8", "double_data"), 12: ("<u4", "uint64_data"), 13: ("<u8", "uint64_data")}
TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data",
                "uint64_data")


def label(value, limit=60) -> str:
    """A name from the file, bounded and on one line, quoted."""
    text = str(value).replace("\n", " ").replace("\r", " ")
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise UsageError("reading .onnx files needs the onnx package: pip install onnx "
                         "(or pip install 'edgecnn[onnx]')") from None
    return onnx, numpy_helper


class Budget:
    def __init__(self, path, max_memory):
        self.path, self.left, self.max = path, max_memory, max_memory

    def take(self, nbytes, what):
        if self.left is None:
            return
        if nbytes > self.left:
            raise ModelFormatError(f"{self.path}: {what} needs {nbytes:,} bytes, which brings "
                                   f"the model over --max-memory {self.max:,}")
        self.left -= nbytes


def tensor_array(t, where, path, budget, numpy_helper) -> np.ndarray:
    """An initializer or Constant value as a NumPy array, checked before it is allocated."""
    dtype = DTYPES.get(t.data_type)
    if dtype is None:
        raise UnsupportedOpError(f"{path}: {where} has ONNX data type {t.data_type} "
                                 "(undefined, string, complex, 8- or 4-bit); edgecnn reads "
                                 "numeric tensors")
    dims = list(t.dims)
    if len(dims) > 8 or any(d < 0 or d > MAX_DIM * 64 for d in dims):
        raise ModelFormatError(f"{path}: {where} has dims {dims[:8]}; each must be 0 or more")
    n = math.prod(dims)
    itemsize = np.dtype(dtype[0]).itemsize
    budget.take(n * itemsize, where)
    if t.HasField("segment"):
        raise UnsupportedOpError(f"{path}: {where} is a segment of a tensor; not supported")
    if t.data_location == 1:  # EXTERNAL
        raw = _external(t, where, path, n * itemsize)
    elif t.HasField("raw_data") or (n and not any(len(getattr(t, f)) for f in TYPED_FIELDS)):
        raw = t.raw_data
        if len(raw) != n * itemsize:
            raise ModelFormatError(f"{path}: {where} declares {n} elements of {itemsize} bytes "
                                   f"({dims}) but holds {len(raw)} bytes of data")
    else:
        used = [f for f in TYPED_FIELDS if len(getattr(t, f))]
        if used and (used != [dtype[1]] or len(getattr(t, dtype[1])) != n):
            got = ", ".join(f"{len(getattr(t, f))} in {f}" for f in used)
            raise ModelFormatError(f"{path}: {where} declares {n} elements ({dims}) of type "
                                   f"{t.data_type} but holds {got}")
        try:
            return np.asarray(numpy_helper.to_array(t)).reshape(dims)
        except (ValueError, TypeError, OverflowError) as e:
            raise ModelFormatError(f"{path}: {where} cannot be decoded ({type(e).__name__})") \
                from None
    return np.frombuffer(raw, dtype[0], n).reshape(dims).copy()


def _external(t, where, path, nbytes) -> bytes:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    target = os.path.realpath(os.path.join(folder, location))
    if not location or os.path.isabs(location) or ".." in location.replace("\\", "/").split("/") \
            or not target.startswith(folder + os.sep):
        raise ModelFormatError(f"{path}: {where} names external data {label(location)} outside "
                               "the model's folder")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else nbytes
    except ValueError:
        raise ModelFormatError(f"{path}: {where} has a malformed external data offset or "
                               "length") from None
    if length != nbytes or offset < 0:
        raise ModelFormatError(f"{path}: {where} declares {length} bytes of external data at "
                               f"offset {offset}; its dims need {nbytes}")
    try:
        with open(target, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset + nbytes > size:
                raise ModelFormatError(f"{path}: {where}: external file {label(location)} holds "
                                       f"{size} bytes; the tensor needs {nbytes} at {offset}")
            f.seek(offset)
            return f.read(nbytes)
    except OSError as e:
        raise ModelFormatError(f"{path}: {where}: cannot read external data {label(location)} "
                               f"({e.strerror or e})") from None


def _opset(model, path) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelFormatError(f"{path}: imports no opset of the default ONNX domain")
    v = max(versions)
    if not MIN_OPSET <= v <= MAX_OPSET:
        raise UnsupportedOpError(f"{path}: uses ONNX opset {v}; edgecnn reads opsets "
                                 f"{MIN_OPSET} to {MAX_OPSET} (re-export with "
                                 f"opset_version={min(max(v, 13), 17)})")
    return v


def _input_hwc(vi, input_size, path):
    t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    if t is None or t.elem_type != 1:
        raise UnsupportedOpError(f"{path}: input {label(vi.name)} is not a float32 tensor; "
                                 "edgecnn imports float32 models")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if any(d is not None and not 0 < d <= MAX_DIM for d in dims):
        raise ModelFormatError(f"{path}: input {label(vi.name)} has dims {dims}")
    if dims and dims[0] not in (None, 1):
        raise UnsupportedOpError(f"{path}: input {label(vi.name)} has a fixed batch of "
                                 f"{dims[0]}; export with batch 1 (or a dynamic batch)")
    if len(dims) == 2 and dims[1]:
        return (1, 1, dims[1]), 2
    if len(dims) != 4 or not dims[1]:
        shown = ["?" if d is None else d for d in dims]
        raise UnsupportedOpError(f"{path}: input {label(vi.name)} has shape {shown}; expected "
                                 "NCHW with a fixed channel count")
    h, w = dims[2:]
    if input_size is not None:
        if (h and h != input_size) or (w and w != input_size):
            raise ArchitectureError(f"{path}: the model's input is fixed at {h}x{w}; drop "
                                    f"--input-size {input_size}")
        return (input_size, input_size, dims[1]), 4
    if not (h and w):
        raise ArchitectureError(f"{path}: input {label(vi.name)} has a dynamic height or width; "
                                "pass --input-size")
    return (h, w, dims[1]), 4


def load_onnx(path: str, input_size: int | None = None, max_memory=None, **graph_kwargs):
    """A float ir.Graph (NHWC, BN not yet folded) from an ONNX model."""
    onnx, numpy_helper = _onnx()
    try:
        model = onnx.load(path, load_external_data=False)
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except Exception as e:  # protobuf's DecodeError, RecursionError on deep nesting, ...
        raise ModelFormatError(f"{path} is not a readable ONNX model "
                               f"({type(e).__name__}: {str(e)[:120]})") from None
    opset = _opset(model, path)
    g = model.graph
    if g.sparse_initializer:
        raise UnsupportedOpError(f"{path}: sparse initializers are not supported")
    if len(g.node) > MAX_NODES:
        raise ModelFormatError(f"{path}: {len(g.node)} nodes; edgecnn reads up to {MAX_NODES}")
    budget = Budget(path, max_memory)
    values: dict = {}
    for t in g.initializer:
        if t.name in values:
            raise ModelFormatError(f"{path}: initializer {label(t.name)} is defined twice")
        values[t.name] = tensor_array(t, f"initializer {label(t.name)}", path, budget,
                                      numpy_helper)
    inputs = [i for i in g.input if i.name not in values]
    if len(inputs) != 1 or not inputs[0].name:
        raise UnsupportedOpError(f"{path}: the graph has {len(inputs)} inputs "
                                 f"({', '.join(label(i.name) for i in inputs[:4])}); edgecnn "
                                 "imports models with one image input")
    hwc, rank = _input_hwc(inputs[0], input_size, path)
    b = GraphBuilder(hwc, source=path, max_memory=max_memory)
    values[inputs[0].name] = x = b.input_value()
    if rank == 2:  # a (N, features) input: the graph's (1, 1, 1, F) seen flat
        values[inputs[0].name] = b.flatten("input/flat", x)
    from .onnx_ops import Context, run_node
    ctx = Context(b, opset, path, budget, numpy_helper, _consumers(g))
    for i, node in enumerate(g.node):
        run_node(ctx, node, i, values)
    outputs = []
    for o in g.output:
        v = values.get(o.name)
        if not isinstance(v, Value):
            raise ArchitectureError(f"{path}: graph output {label(o.name)} is "
                                    f"{'not written by any node' if v is None else 'a constant'}")
        outputs.append(v)
    if not outputs:
        raise ArchitectureError(f"{path}: the graph names no output")
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        return b.finish(outputs, name=name, **graph_kwargs)
    except EdgecnnError as e:
        if str(e).startswith(path):
            raise
        raise type(e)(f"{path}: {e}") from None


def _consumers(g) -> dict:
    """Tensor name -> how many node inputs and graph outputs read it."""
    count: dict = {}
    for node in g.node:
        for name in node.input:
            if name:
                count[name] = count.get(name, 0) + 1
    for o in g.output:
        count[o.name] = count.get(o.name, 0) + 1
    return count
