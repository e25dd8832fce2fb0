"""Checks a .tflite file must pass before edgecnn uses any of it.

Two passes, both before a single tensor is allocated:

1. ``check_structure`` walks the raw flatbuffer with the schema's lazy accessors and charges
   every table, string and vector it would unpack against a budget proportional to the file
   size. Flatbuffers let tables and strings be shared, so a 1 MB file can declare 250 000
   tensors that all point at one 1 MB name: unpacking that would copy 250 GB. Offsets and
   lengths that run past the end of the file fail here too (the accessors raise).
2. ``check_model`` runs on the unpacked ``ModelT``: tensor and buffer indices in range,
   shapes non-negative, constant buffers of exactly ``prod(shape) * itemsize`` bytes, int8
   quantization present, finite, positive and of the per-channel length with one zero point
   per scale (LiteRT refuses a scale without zero point), schema version 3, operators with the
   inputs and outputs their kind needs, no tensor written twice and no cycle, and the bytes
   all tensors declare under ``max_memory``.

Every failure is a one-line ModelFormatError naming the file and the tensor or operator.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError, UnsupportedOpError
from .schema import SCHEMA_VERSION

DEFAULT_MAX_MEMORY = 4 << 30  # bytes of tensors a model may declare (load_tflite(max_memory=))
STRUCTURE_FACTOR = 8  # unpacked items per file byte allowed (plus STRUCTURE_SLACK)
STRUCTURE_SLACK = 1 << 20

ITEMSIZE = {"FLOAT32": 4, "FLOAT16": 2, "FLOAT64": 8, "INT32": 4, "UINT8": 1, "INT64": 8,
            "BOOL": 1, "INT16": 2, "INT8": 1, "UINT32": 4, "UINT64": 8, "UINT16": 2,
            "COMPLEX64": 8, "COMPLEX128": 16, "BFLOAT16": 2}


def _arity() -> dict:
    """(min, max) inputs per supported builtin, from the op classes; -1 marks an omitted
    optional input."""
    from .. import ops
    from . import shape_ops
    table = {name: cls.tflite_inputs for name, cls in ops.TFLITE_READERS.items()}
    table.update(shape_ops.ARITY)
    return table


def label(value, limit=60) -> str:
    """A tensor or operator name from the file, bounded for one-line messages."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[:limit] + "..."


class _Budget:
    def __init__(self, name, size):
        self.name, self.size = name, size
        self.left = STRUCTURE_FACTOR * size + STRUCTURE_SLACK

    def __call__(self, n):
        self.left -= 1 + max(int(n), 0)
        if self.left < 0:
            raise ModelFormatError(
                f"{self.name}: its tables and vectors declare far more data than a {self.size}-byte "
                "file can hold (lengths past the end, or one table shared thousands of times); "
                "the file is corrupt or hostile")


def check_structure(fb, data, name) -> None:
    """Pass 1 (module docstring): bounded walk over everything ModelT would unpack."""
    charge = _Budget(name, len(data))
    try:
        model = fb.Model.GetRootAs(data, 0)
        n_sub = model.SubgraphsLength()
        if n_sub != 1:
            raise UnsupportedOpError(f"{name}: has {n_sub} subgraphs; edgecnn reads models with "
                                     "exactly one (no control flow)")
        for i in range(model.OperatorCodesLength()):
            charge(len(model.OperatorCodes(i).CustomCode() or b""))
        for i in range(model.BuffersLength()):
            charge(1)
            model.Buffers(i).DataLength()
        for i in range(model.MetadataLength()):
            charge(len(model.Metadata(i).Name() or b""))
        charge(model.MetadataBufferLength())
        charge(len(model.Description() or b""))
        for i in range(model.SignatureDefsLength()):
            sig = model.SignatureDefs(i)
            charge(len(sig.SignatureKey() or b""))
            for maps, count in ((sig.Inputs, sig.InputsLength()), (sig.Outputs, sig.OutputsLength())):
                for j in range(count):
                    charge(len(maps(j).Name() or b""))
        for field in ("ExternalBuffersLength", "ExternalBufferGroupsLength"):
            if hasattr(model, field):
                charge(getattr(model, field)())
        sub = model.Subgraphs(0)
        charge(len(sub.Name() or b"") + sub.InputsLength() + sub.OutputsLength())
        for i in range(sub.TensorsLength()):
            _charge_tensor(sub.Tensors(i), charge, name, i)
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            charge(8 + op.InputsLength() + op.OutputsLength() + op.IntermediatesLength()
                   + op.CustomOptionsLength() + op.MutatingVariableInputsLength())
            op.BuiltinOptionsType()
    except (ModelFormatError, UnsupportedOpError):
        raise
    except Exception as e:  # the generated accessors raise struct.error, IndexError, ...
        raise ModelFormatError(f"{name}: corrupt or truncated .tflite file ({type(e).__name__} "
                               f"while reading its tables: {label(e, 80)})") from None


def _charge_tensor(t, charge, name, i):
    charge(len(t.Name() or b"") + t.ShapeLength() + t.ShapeSignatureLength())
    q = t.Quantization()
    if q is not None:
        charge(q.ScaleLength() + q.ZeroPointLength() + q.MinLength() + q.MaxLength())
        q.DetailsType()
    if t.Sparsity() is not None:
        raise UnsupportedOpError(f"{name}: tensor {i} '{label(t.Name())}' is sparse; edgecnn "
                                 "reads dense tensors only")
    for j in range(t.VariantTensorsLength() if hasattr(t, "VariantTensorsLength") else 0):
        charge(t.VariantTensors(j).ShapeLength())


# ----------------------------------------------------------------------------- pass 2


def check_model(r, max_memory) -> None:
    """Pass 2 on the unpacked model; ``r`` is the reader (tensors, buffers, names, fail)."""
    if r.model.version != SCHEMA_VERSION:  # LiteRT: "schema version N not equal to ... 3"
        r.fail(f"schema version {r.model.version}; LiteRT and edgecnn read version "
               f"{SCHEMA_VERSION} only")
    total, biggest = 0, (0, -1)
    for i, t in enumerate(r.tensors):
        nbytes = _check_tensor(r, i, t)
        total += nbytes
        biggest = max(biggest, (nbytes, i))
    if total > max_memory:
        nbytes, i = biggest
        t = r.tensors[i]
        r.fail(f"tensor '{label(r.names[i])}' {r.shape(t)} {r.type_name(t)} alone needs "
               f"{nbytes} bytes and all tensors {total}, over the memory ceiling of {max_memory} "
               "bytes; refusing before allocating (raise max_memory if the model is real)")
    _check_operators(r)


def _check_tensor(r, i, t) -> int:
    where = f"tensor {i} '{label(r.names[i])}'"
    if t.shape is not None and any(int(d) < 0 for d in t.shape):
        r.fail(f"{where} has a negative dimension in shape {tuple(int(d) for d in t.shape)}")
    shape = r.shape(t)
    kind = r.type_name(t)
    if not 0 <= t.buffer < len(r.buffers):
        r.fail(f"{where} refers to buffer {t.buffer}, but the model has {len(r.buffers)}")
    size = ITEMSIZE.get(kind)
    nbytes = math.prod(shape) * (size or 1)
    raw = r.buffer_bytes(t.buffer, where)
    if raw is not None and len(raw) and size is not None and len(raw) != nbytes:
        r.fail(f"{where} of shape {shape} and type {kind} needs {nbytes} bytes but its "
               f"buffer holds {len(raw)} (buffer {t.buffer})")
    _check_quant(r, where, t, shape, kind)
    return nbytes


def _check_quant(r, where, t, shape, kind):
    q = t.quantization
    with np.errstate(invalid="ignore"):  # signaling NaNs in the file: reported below, not warned
        scale = None if q is None or q.scale is None else np.asarray(q.scale, np.float64).reshape(-1)
    if scale is None or scale.size == 0:
        # constants are reported by the operator that reads them (naming it); activations here
        raw = r.buffer_bytes(t.buffer, where)
        if kind == "INT8" and (raw is None or len(raw) == 0):
            r.fail(f"{where} is an INT8 activation without quantization parameters (scale, "
                   "zero point)")
        return
    if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        bad = scale[~(np.isfinite(scale) & (scale > 0))][0]
        r.fail(f"{where} has quantization scale {bad}; scales must be finite and positive")
    zp = None if q.zeroPoint is None else np.asarray(q.zeroPoint, np.int64).reshape(-1)
    if zp is None or zp.size != scale.size:  # LiteRT: "non-null scale but null zero_point"
        r.fail(f"{where} has {scale.size} scales but {0 if zp is None else zp.size} zero points")
    if kind == "INT8" and zp is not None and zp.size and (zp.min() < -128 or zp.max() > 127):
        r.fail(f"{where} has zero point {int(zp[(zp < -128) | (zp > 127)][0])} outside int8")
    if scale.size > 1:
        axis = int(q.quantizedDimension)
        if not 0 <= axis < len(shape):
            r.fail(f"{where} is quantized per channel along axis {axis}, but has shape {shape}")
        if shape[axis] != scale.size:
            r.fail(f"{where} has {scale.size} per-channel scales for {shape[axis]} channels "
                   f"(axis {axis} of shape {shape})")


def _check_operators(r):
    n = len(r.tensors)
    sub = r.sub
    for what, ids in (("input", sub.inputs), ("output", sub.outputs)):
        for i in (ids if ids is not None else []):
            if not 0 <= int(i) < n:
                r.fail(f"model {what} refers to tensor {int(i)}, but the subgraph has {n}")
    producer = {int(i): "the model input" for i in (sub.inputs if sub.inputs is not None else [])}
    readers = []
    arity = _arity()
    for k, op in enumerate(sub.operators or []):
        name = r.op_name(op, k)
        where = f"operator {k} ({name})"
        ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        for i in ins:
            if not -1 <= i < n:
                r.fail(f"{where} reads tensor {i}, but the subgraph has {n}")
        for i in outs:
            if not 0 <= i < n:
                r.fail(f"{where} writes tensor {i}, but the subgraph has {n}")
        if name in arity:
            lo, hi = arity[name]
            if not lo <= len(ins) <= hi or (ins and ins[0] < 0) or len(outs) != 1:
                r.fail(f"{where} has {len(ins)} inputs and {len(outs)} outputs; {name} needs "
                       f"{lo if lo == hi else f'{lo} to {hi}'} inputs (the first one present) and 1 output")
        for i in outs:
            if i in producer:
                r.fail(f"{where} writes tensor '{label(r.names[i])}', already written by "
                       f"{producer[i]}")
            raw = r.buffer_bytes(r.tensors[i].buffer, where)
            if raw is not None and len(raw):
                r.fail(f"{where} writes tensor '{label(r.names[i])}', which is a constant")
            producer[i] = where
        readers.append((k, where, [i for i in ins if i >= 0]))
    _check_acyclic(r, producer, readers)


def _check_acyclic(r, producer, readers):
    """Every operator can run after the operators that write its inputs (Kahn's algorithm)."""
    writes = {}
    for k, op in enumerate(r.sub.operators or []):
        for i in (op.outputs if op.outputs is not None else []):
            writes[int(i)] = k
    indegree, users = {}, {}
    for k, _, ins in readers:
        deps = {writes[i] for i in ins if i in writes}
        indegree[k] = len(deps)
        for d in deps:
            users.setdefault(d, []).append(k)
    ready = [k for k, d in indegree.items() if d == 0]
    while ready:
        k = ready.pop()
        for u in users.get(k, ()):
            indegree[u] -= 1
            if indegree[u] == 0:
                ready.append(u)
    stuck = [(k, where) for k, where, _ in readers if indegree[k] > 0]
    if stuck:
        k, where = stuck[0]
        r.fail(f"{where} is part of a cycle: it reads a tensor that depends on its own output")
