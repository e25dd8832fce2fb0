"""Preprocessing for ``.tflite`` files edgecnn did not write, and the float-model check.

- ``resolve_preprocess``: the stored preprocessing with the command line's
  ``--input-size/--color/--resize/--mean/--std/--invert`` over it; for a file that stores
  none (TensorFlow's converter's), the flags alone, the rest taken from the model's input
  shape (size, L or RGB), no resize, mean 0, std 1, no inversion.
- ``set_preprocess``: writes a copy of a ``.tflite`` with that preprocessing (and labels) in
  edgecnn's metadata entry, so ``infer`` needs only the file from then on. Every other byte
  of meaning is kept: the flatbuffer is unpacked and repacked with the same tensors, buffers
  (16-byte aligned, as edgecnn's writer aligns them), operators and other metadata entries.
- ``require_int8``: a float ``.tflite`` given to a command that runs int8 kernels is refused
  with "run edgecnn convert first", from the op output types alone (before the full reader,
  whose checks would fail on some float tensor with a less useful message).
"""

from __future__ import annotations

import dataclasses
import mmap
import os
from typing import Optional, Sequence

import numpy as np

from . import ir
from .errors import InputFileError, ModelFormatError, UnsupportedOpError, UsageError
from .fileio import write_atomic
from .preprocess import _check_preprocess
from .tflite import metadata, schema
from .tflite.reader import from_flatbuffer, load_tflite
from .tflite.validate import DEFAULT_MAX_MEMORY

FLAGS = "--input-size/--color/--resize/--mean/--std/--invert"


def resolve_preprocess(graph: ir.Graph, where: str, input_size: Optional[int] = None,
                       color: Optional[str] = None, resize: Optional[int] = None,
                       mean=None, std=None, invert: Optional[bool] = None
                       ) -> Optional[ir.Preprocess]:
    """The preprocessing to use (module docstring), or None when the file stores none and no
    flag was given."""
    given = {k: v for k, v in dict(color=color, resize=resize, mean=mean, std=std,
                                   invert=invert).items() if v is not None}
    pre = graph.preprocess
    if pre is None:
        if not given and input_size is None:
            return None
        shape = tuple(graph.input.shape)
        if len(shape) != 4 or shape[3] not in (1, 3):
            raise UsageError(f"{where}: input {shape} is not an image (N, H, W, 1 or 3); "
                             "preprocessing flags do not apply, feed arrays with model.run()")
        pre = ir.Preprocess(height=shape[1], width=shape[2], color="L" if shape[3] == 1 else "RGB")
    if input_size is not None and (input_size, input_size) != (pre.height, pre.width):
        raise UsageError(f"{where}: --input-size {input_size}, but the model takes "
                         f"{pre.height}x{pre.width} images")
    if color is not None and (1 if color == "L" else 3) != graph.input.shape[-1]:
        raise UsageError(f"{where}: --color {color}, but the model takes "
                         f"{graph.input.shape[-1]} channel(s)")
    pre = dataclasses.replace(pre, **given)
    _check_preprocess(pre)
    return pre


def require_preprocess(graph: ir.Graph, where: str, **flags) -> ir.Preprocess:
    pre = resolve_preprocess(graph, where, **flags)
    if pre is None:
        raise UsageError(f"{where} stores no preprocessing (it was not written by edgecnn): give "
                         f"{FLAGS}, or store them once with 'edgecnn set-preprocess'")
    return pre


def require_int8(path, max_memory: int = DEFAULT_MAX_MEMORY) -> None:
    """Refuse a float model before the int8 reader sees it."""
    path = os.fspath(path)
    if not os.path.isfile(path) or os.path.getsize(path) < 8:
        return  # the reader reports a missing, empty or truncated file with its own message
    fb = schema.load()
    get_root = getattr(fb.Model, "GetRootAs", None) or fb.Model.GetRootAsModel
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if bytes(data[4:8]) != schema.FILE_IDENTIFIER:
            return  # not a .tflite: the reader says so
        try:
            model = get_root(data, 0)
            sub = model.Subgraphs(0)
            ops = [sub.Operators(k) for k in range(sub.OperatorsLength())]
            types = {sub.Tensors(op.Outputs(0)).Type() for op in ops if op.OutputsLength()
                     and _opcode(model, op) != fb.BuiltinOperator.DEQUANTIZE}
        except Exception:  # corrupt: the reader's validation gives the precise message
            return
    if types and types <= {fb.TensorType.FLOAT32, fb.TensorType.FLOAT16}:
        raise UnsupportedOpError(f"{path}: this is a float model: run `edgecnn convert "
                                 f"{os.path.basename(path)} --calib DIR` first")


def _opcode(model, op) -> int:
    code = model.OperatorCodes(op.OpcodeIndex())
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def set_preprocess(model_path, output, preprocess: ir.Preprocess,
                   labels: Sequence[str] = (), force: bool = False,
                   max_memory: int = DEFAULT_MAX_MEMORY) -> ir.Graph:
    """Write ``output``: ``model_path`` with ``preprocess`` and ``labels`` (kept from the file
    when empty) in its metadata. Refuses to overwrite an existing file unless ``force``."""
    model_path, output = os.fspath(model_path), os.fspath(output)
    if os.path.exists(output) and not force:
        raise InputFileError(f"{output} exists; pass --force to overwrite it")
    graph = load_tflite(model_path, max_memory).graph
    labels = tuple(labels) or graph.labels
    classes = graph.output.shape[-1]
    if labels and len(labels) != classes:
        raise UsageError(f"--labels gives {len(labels)} labels but the model has {classes} "
                         f"classes; give one label per line, {classes} lines")
    _check_preprocess(preprocess)
    with open(model_path, "rb") as f:
        data = f.read()
    new = _with_metadata(data, metadata.encode(graph.replace(preprocess=preprocess,
                                                             labels=labels)), model_path)
    written = from_flatbuffer(new, output, max_memory).graph  # the copy must read back
    if written.preprocess != preprocess or written.labels != labels:
        raise ModelFormatError(f"{output}: the metadata did not read back as written")
    write_atomic(output, new, force=force)
    return written


def _with_metadata(data: bytes, payload: bytes, where: str) -> bytes:
    """The flatbuffer with edgecnn's metadata entry set to ``payload`` (module docstring)."""
    import flatbuffers

    from .tflite.writer import _aligned_buffer_class

    fb = schema.load()
    model = fb.ModelT.InitFromPackedBuf(data, 0)
    buffers = list(model.buffers or [])
    if any(b.offset > 1 for b in buffers):
        raise UnsupportedOpError(f"{where}: keeps its weights after the flatbuffer (a model over "
                                 "2 GB); set-preprocess cannot rewrite it")
    aligned = _aligned_buffer_class(fb)
    for b in buffers:
        b.__class__ = aligned  # same fields; Pack aligns the data to 16 bytes
    payload_array = np.frombuffer(payload, np.uint8)
    entries = [m for m in (model.metadata or []) if _name(m.name) != metadata.NAME]
    old = [m.buffer for m in (model.metadata or []) if _name(m.name) == metadata.NAME]
    used = {t.buffer for sg in (model.subgraphs or []) for t in (sg.tensors or [])}
    used |= {m.buffer for m in entries}
    entry = fb.MetadataT()
    entry.name = metadata.NAME
    if old and 0 < old[0] < len(buffers) and old[0] not in used:
        entry.buffer = old[0]  # our own earlier entry: replace its bytes in place
    else:
        buffers.append(aligned())
        entry.buffer = len(buffers) - 1
    buffers[entry.buffer].data = payload_array
    model.buffers = buffers
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(data) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=schema.FILE_IDENTIFIER)
    return bytes(builder.Output())


def _name(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
