""".tflite flatbuffer -> IR graph: our files and int8 files from TensorFlow's converter.

One subgraph: a DAG of supported builtin ops with one image input and one or more outputs.
Each operator is read by the node class that registers its builtin name
(``edgecnn.ops.TFLITE_READERS``: ``from_tflite``), through the helpers of ``_Reader`` below;
SAME/VALID become explicit IR padding for the op's input shape. Weights come out as numpy
arrays in the file's dtype and layout (conv OHWI, fully connected (O, I)), with their
quantization (per-channel scales, zero points, quantized_dimension). Node names are output
tensor names; a name used twice gets a ``#<tensor index>`` suffix.

Shape arithmetic that Google's converter writes for a dynamic batch (SHAPE -> STRIDED_SLICE ->
PACK -> RESHAPE) is folded here, at batch 1, into constants (``shape_ops``); what remains is
a static RESHAPE. Before any of that, ``validate`` checks the file's structure and every tensor,
buffer, quantization and operator, and refuses a model whose tensors exceed ``max_memory``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .. import ir, ops, shapes
from ..errors import ArchitectureError, InputFileError, ModelFormatError, UnsupportedOpError
from . import metadata, schema, shape_ops, validate
from .validate import DEFAULT_MAX_MEMORY

_NUMPY_TYPES = {"FLOAT32": np.float32, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
                "UINT8": np.uint8, "INT16": np.int16, "FLOAT16": np.float16}
_FUSED = {"NONE": "none", "RELU": "relu", "RELU6": "relu6"}


@dataclass
class TfliteModel:
    path: str
    graph: ir.Graph
    tensor_index: dict[str, int]  # IR activation tensor name -> tensor index in subgraph 0


def load_tflite(path, max_memory: int = DEFAULT_MAX_MEMORY) -> TfliteModel:
    """Read a .tflite file into the IR; raises InputFileError, ModelFormatError or
    UnsupportedOpError with the file, operator and what is supported.

    ``max_memory``: the bytes all tensors of the model may declare together (activations and
    constants, default 4 GiB); a model over it is refused before anything is allocated."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path} is a folder, not a .tflite file") from None
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror}") from None
    return from_flatbuffer(data, path, max_memory)


def from_flatbuffer(data: bytes, path: str = "<bytes>",
                    max_memory: int = DEFAULT_MAX_MEMORY) -> TfliteModel:
    fb = schema.load()
    name = os.path.basename(path)
    if len(data) < 8 or bytes(data[4:8]) != schema.FILE_IDENTIFIER:
        raise ModelFormatError(
            f"{name}: not a .tflite model (no '{schema.FILE_IDENTIFIER.decode()}' file "
            "identifier at byte 4)")
    root = int.from_bytes(bytes(data[:4]), "little")
    if root >= len(data):
        raise ModelFormatError(f"{name}: corrupt or truncated .tflite file (root offset {root} "
                               f"past the end of {len(data)} bytes)")
    data = bytes(data)
    validate.check_structure(fb, data, name)
    try:
        model = fb.ModelT.InitFromPackedBuf(data, 0)
    except Exception as e:  # the generated reader fails in many ways on corrupt input
        raise ModelFormatError(f"{name}: corrupt or truncated .tflite file ({type(e).__name__}: "
                               f"{validate.label(e, 80)})") from None
    reader = _Reader(fb, model, data, path)
    reader.max_memory = max_memory
    validate.check_model(reader, max_memory)
    return reader.read()


class _Reader:
    def __init__(self, fb, model, data, path):
        self.fb, self.model, self.data, self.path = fb, model, data, path
        self.file = os.path.basename(path)
        self.type_names = schema.enum_names(fb.TensorType)
        self.op_names = schema.enum_names(fb.BuiltinOperator)
        self.buffers = model.buffers or []
        subgraphs = model.subgraphs or []
        if len(subgraphs) != 1:
            raise UnsupportedOpError(
                f"{self.file}: has {len(subgraphs)} subgraphs; edgecnn reads models with exactly "
                "one (no control flow)")
        self.sub = subgraphs[0]
        self.tensors = self.sub.tensors or []
        self.names = self._unique_names()
        self.acts: dict[int, ir.Tensor] = {}
        self.by_name: dict[str, ir.Tensor] = {}  # the same tensors by (unique) name
        self.folded: dict[int, np.ndarray] = {}  # constants computed from shape arithmetic

    # --- tensors ----------------------------------------------------------------------

    def _unique_names(self) -> list[str]:
        raw = [_text(t.name) or f"tensor#{i}" for i, t in enumerate(self.tensors)]
        seen: dict[str, int] = {}
        for n in raw:
            seen[n] = seen.get(n, 0) + 1
        return [n if seen[n] == 1 else f"{n}#{i}" for i, n in enumerate(raw)]

    def fail(self, msg):
        raise ModelFormatError(f"{self.file}: {msg}")

    def tensor(self, i: int, where: str):
        if not isinstance(i, (int, np.integer)) or not 0 <= i < len(self.tensors):
            self.fail(f"{where} refers to tensor {i}, but the subgraph has {len(self.tensors)}")
        return self.tensors[i]

    def type_name(self, t) -> str:
        return self.type_names.get(t.type, f"type {t.type}")

    def shape(self, t) -> tuple[int, ...]:
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        if any(d < 0 for d in shape):
            self.fail(f"tensor '{_text(t.name)}' has a negative dimension in shape {shape}")
        return shape

    def quant(self, t):
        q = t.quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return None
        scale = np.asarray(q.scale, np.float32).reshape(-1)
        zp = (np.zeros(scale.shape, np.int64) if q.zeroPoint is None or len(q.zeroPoint) == 0
              else np.asarray(q.zeroPoint, np.int64).reshape(-1))
        if zp.shape != scale.shape:
            self.fail(f"tensor '{_text(t.name)}' has {scale.size} scales but {zp.size} zero points")
        return ir.QuantParams(scale, zp, int(q.quantizedDimension))

    def const(self, i: int, where: str) -> np.ndarray:
        """A constant tensor's data, as a numpy array of the file's dtype and shape."""
        if i in self.folded:
            return self.folded[i]
        t = self.tensor(i, where)
        dtype = _NUMPY_TYPES.get(self.type_name(t))
        if dtype is None:
            raise UnsupportedOpError(f"{self.file}: {where}: {self.type_name(t)} constants are "
                                     "not supported")
        raw = self.buffer_bytes(t.buffer, where)
        shape = self.shape(t)
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if raw is None or len(raw) == 0:
            raise UnsupportedOpError(f"{self.file}: {where}: tensor '{_text(t.name)}' is not a "
                                     "constant (no data); edgecnn needs constant weights")
        if len(raw) != expected:
            self.fail(f"{where}: tensor '{_text(t.name)}' of shape {shape} and type "
                      f"{self.type_name(t)} needs {expected} bytes but its buffer holds {len(raw)}")
        array = np.frombuffer(raw, dtype).reshape(shape)
        # int8 weights stay read-only views of the file bytes (no copy: AlexNet's 58 MB of dense
        # weights exist once); wider types are copied so they are aligned for the kernels.
        return array if array.itemsize == 1 else array.copy()

    def buffer_bytes(self, b: int, where: str):
        if not 0 <= b < len(self.buffers):
            self.fail(f"{where} refers to buffer {b}, but the model has {len(self.buffers)}")
        buf = self.buffers[b]
        if buf.offset > 1:  # data stored after the flatbuffer (models over 2 GB)
            end = buf.offset + buf.size
            if end > len(self.data):
                self.fail(f"buffer {b} runs past the end of the file (truncated?)")
            return memoryview(self.data)[buf.offset:end]  # no copy: many tensors may share it
        return buf.data if buf.data is not None else None

    def act(self, i: int, where: str) -> ir.Tensor:
        """The IR activation tensor for tflite tensor ``i``."""
        if i in self.acts:
            return self.acts[i]
        t = self.tensor(i, where)
        kind = self.type_name(t)
        if kind not in ("FLOAT32", "INT8"):
            raise UnsupportedOpError(
                f"{self.file}: {where}: tensor '{self.names[i]}' is {kind}; edgecnn runs float32 "
                "and int8 activations only (uint8 is the deprecated quantization scheme)")
        quant = self.quant(t)
        if quant is not None and quant.per_channel:
            raise UnsupportedOpError(f"{self.file}: {where}: activation '{self.names[i]}' is "
                                     "quantized per channel; edgecnn expects per-tensor")
        self.acts[i] = ir.Tensor(self.names[i], self.shape(t), kind.lower(), quant)
        self.by_name[self.names[i]] = self.acts[i]
        return self.acts[i]

    # --- the graph --------------------------------------------------------------------

    def op_name(self, op, k: int) -> str:
        codes = self.model.operatorCodes or []
        if not 0 <= op.opcodeIndex < len(codes):
            self.fail(f"operator {k} uses opcode {op.opcodeIndex}, but the model has {len(codes)}")
        oc = codes[op.opcodeIndex]
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code == self.fb.BuiltinOperator.CUSTOM:
            return f"CUSTOM({_text(oc.customCode)})"
        return self.op_names.get(code, f"builtin {code}")

    def is_const(self, i: int) -> bool:
        if i in self.folded:
            return True
        raw = self.buffer_bytes(self.tensor(i, "an operator").buffer, "an operator")
        return raw is not None and len(raw) > 0

    def op_input(self, op: "_Op", k: int) -> ir.Tensor:
        """Input ``k`` of ``op`` as an activation tensor the graph has already produced."""
        if k >= len(op.inputs) or op.inputs[k] < 0:
            self.fail(f"{op.where}: input {k} is missing")
        i = op.inputs[k]
        if self.is_const(i):
            raise UnsupportedOpError(
                f"{self.file}: {op.where}: input {k} '{validate.label(self.names[i])}' is a "
                "constant; edgecnn reads this op with an activation there")
        if i not in self.acts:
            self.fail(f"{op.where} reads tensor '{validate.label(self.names[i])}' before any "
                      "operator writes it (not the model input, not a constant)")
        return self.acts[i]

    def read(self) -> TfliteModel:
        sub = self.sub
        ins = [int(i) for i in (sub.inputs if sub.inputs is not None else [])]
        outs = [int(i) for i in (sub.outputs if sub.outputs is not None else [])]
        if len(ins) != 1 or not outs:
            raise UnsupportedOpError(f"{self.file}: has {len(ins)} inputs and {len(outs)} "
                                     "outputs; edgecnn reads models with one input and one or "
                                     "more outputs")
        graph_input = self.act(ins[0], "the model input")
        nodes = []
        for k, raw_op in enumerate(sub.operators or []):
            name = self.op_name(raw_op, k)
            op = _Op(raw_op, [int(i) for i in (raw_op.inputs if raw_op.inputs is not None else [])],
                     [int(i) for i in (raw_op.outputs if raw_op.outputs is not None else [])],
                     f"operator {k} ({name})", name)
            if name in shape_ops.FOLDERS:
                shape_ops.fold(self, op)
                continue
            cls = ops.TFLITE_READERS.get(name)
            if cls is None:
                raise UnsupportedOpError(
                    f"{self.file}: operator {k} is {name}, which edgecnn does not support "
                    f"(supported: {', '.join(ops.SUPPORTED_TFLITE_OPS)})")
            if len(op.outputs) != 1:
                raise UnsupportedOpError(f"{self.file}: {op.where} has {len(op.outputs)} outputs; "
                                         "edgecnn supports one")
            out = self.act(op.outputs[0], op.where)
            op.name = out.name
            node = cls.from_tflite(self, op)
            node = ir.replace(node, name=out.name, output=out)
            self.check_output_shape(node, op)
            nodes.append(node)
        for i in outs:
            if i not in self.acts:
                self.fail(f"model output '{validate.label(self.names[i])}' is not written by any "
                          "operator edgecnn runs")
        meta = self.metadata()
        if meta and meta.preprocess:
            self.check_preprocess(meta.preprocess, graph_input)
        graph = ir.Graph(
            input=graph_input, nodes=tuple(nodes), outputs=tuple(self.acts[i].name for i in outs),
            preprocess=meta.preprocess if meta else None,
            labels=meta.labels if meta else (),
            name=(meta.graph_name if meta and meta.graph_name else
                  os.path.splitext(self.file)[0] or "model"))
        index = {t.name: i for i, t in self.acts.items()}
        return TfliteModel(self.path, graph, index)

    def check_output_shape(self, node, op):
        """The declared output shape must be the one the inputs and the op's parameters give:
        kernels size their loops from the weights and the output buffer, so a model declaring
        fewer output channels than its weights would have them write past the buffer."""
        in_shapes = [self.by_name[name].shape for name in node.inputs]
        try:
            want = tuple(node.out_shape(in_shapes))
        except ArchitectureError as e:
            self.fail(f"{op.where}: {e}")
        out = node.output
        if want != tuple(out.shape):
            self.fail(f"{op.where}: declares output '{validate.label(out.name)}' of shape "
                      f"{out.shape}, but its inputs {', '.join(str(s) for s in in_shapes)} and "
                      f"its parameters give {want}")

    # --- helpers for the ops' from_tflite ----------------------------------------------

    def fused(self, op: "_Op", opts) -> str:
        """The fused activation as an IR name ("none", "relu", "relu6")."""
        name = schema.enum_names(self.fb.ActivationFunctionType).get(opts.fusedActivationFunction)
        if name not in _FUSED:
            raise UnsupportedOpError(f"{self.file}: {op.where}: fused activation {name} is not "
                                     f"supported (supported: {', '.join(_FUSED)})")
        return _FUSED[name]

    def padding(self, op: "_Op", opts, x: ir.Tensor, kernel, stride, dilation=(1, 1)) -> tuple:
        """SAME/VALID as explicit (top, bottom, left, right) for input ``x``."""
        for what, pair in (("kernel", tuple(kernel)), ("stride", stride), ("dilation", dilation)):
            if any(v < 1 for v in pair):
                self.fail(f"{op.where}: {what} {pair} must be 1 or more")
        if len(x.shape) != 4:
            self.fail(f"{op.where}: input '{validate.label(x.name)}' has shape {x.shape}; "
                      "expected NHWC")
        if opts.padding == self.fb.Padding.VALID:
            return (0, 0, 0, 0)
        if opts.padding == self.fb.Padding.SAME:
            return shapes.same_padding(x.shape[1], kernel[0], stride[0], dilation[0]) + \
                shapes.same_padding(x.shape[2], kernel[1], stride[1], dilation[1])
        raise UnsupportedOpError(f"{self.file}: {op.where}: padding type {opts.padding} is not "
                                 "SAME or VALID")

    def weights(self, op: "_Op", x: ir.Tensor, rank: int, out_axis: int = 0):
        """(weight, bias or None, weight quantization, bias quantization) of a conv-like op:
        inputs 1 and 2; the bias has one value per output channel (``weight.shape[out_axis]``).
        Quantizations are None in a float model; LiteRT reads an int8 model's bias without
        quantization as scale 0, and so does this."""
        if len(op.inputs) < 2:
            self.fail(f"{op.where}: has no weight input")
        weight = self.const(op.inputs[1], f"{op.where} weights")
        if weight.ndim != rank or 0 in weight.shape:
            self.fail(f"{op.where}: weights have shape {weight.shape}; expected rank {rank}, "
                      "no empty axis")
        want = np.int8 if x.dtype == "int8" else np.float32
        if weight.dtype != want:
            raise UnsupportedOpError(
                f"{self.file}: {op.where}: {weight.dtype} weights on a {x.dtype} input (hybrid "
                "or int4 quantization) are not supported; edgecnn reads full-int8 or float models")
        wq = self.quant(self.tensor(op.inputs[1], op.where)) if x.dtype == "int8" else None
        if x.dtype == "int8" and wq is None:
            self.fail(f"{op.where}: int8 weights without quantization parameters")
        bias = bias_quant = None
        n_out = weight.shape[out_axis]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias = self.const(op.inputs[2], f"{op.where} bias")
            want_bias = np.int32 if x.dtype == "int8" else np.float32
            if bias.dtype != want_bias or bias.shape != (n_out,):
                raise UnsupportedOpError(
                    f"{self.file}: {op.where}: bias is {bias.dtype} {bias.shape}; expected "
                    f"{np.dtype(want_bias).name} ({n_out},)")
            if x.dtype == "int8":
                bias_quant = self.quant(self.tensor(op.inputs[2], op.where)) or ir.QuantParams(
                    np.zeros(1, np.float32), np.zeros(1, np.int64))
        return weight, bias, wq, bias_quant

    def int8_bias(self, op: "_Op", bias, bias_quant) -> None:
        """LiteRT's int8 CONV_2D needs its bias (conv.cc: has_bias; an index of -1 is
        'optional but expected'), with zero point 0. A float conv without bias is only read
        to be converted, where zeros are exact."""
        if bias is None:
            self.fail(f"{op.where}: has no bias; LiteRT's CONV_2D needs one (give zeros)")
        if bias_quant is not None and bias_quant.scale.size == 1 and \
                int(bias_quant.zero_point[0]) != 0:
            self.fail(f"{op.where}: bias zero point {int(bias_quant.zero_point[0])}; int32 "
                      "biases need 0")

    def reshape_target(self, op: "_Op", x: ir.Tensor, out: ir.Tensor) -> None:
        """LiteRT resizes a RESHAPE output to its shape input (a 1-D int32 constant, folded
        shape arithmetic included) or, without one, to the newShape option, one -1 resolved
        from the input size (reshape.cc); edgecnn takes the declared output shape, so the two
        must agree."""
        shape = None
        if len(op.inputs) > 1 and op.inputs[1] >= 0:
            shape = np.asarray(self.const(op.inputs[1], f"{op.where} shape"))
            shape = shape if shape.dtype.kind in "iu" and shape.ndim == 1 else None
        if shape is None:
            opts = op.op.builtinOptions
            shape = getattr(opts, "newShape", None) if isinstance(
                opts, self.fb.ReshapeOptionsT) else None
        if shape is None:
            self.fail(f"{op.where}: has neither a shape input nor a newShape option")
        shape = [int(d) for d in shape]
        size = math.prod(x.shape)
        known = math.prod(d for d in shape if d != -1)
        if shape.count(-1) == 1 and known > 0 and size % known == 0:
            shape = [size // known if d == -1 else d for d in shape]
        if tuple(shape) != tuple(out.shape) or any(d < 0 for d in shape):
            self.fail(f"{op.where}: its shape input {validate.label(shape, 80)} does not "
                      f"resolve to the declared output shape {tuple(out.shape)} of {size} "
                      "elements")

    def check_preprocess(self, pre, x):
        """The stored image size and colour must give the input tensor's (1, H, W, C)."""
        want = (1, pre.height, pre.width, {"L": 1, "RGB": 3}.get(pre.color))
        if tuple(x.shape) != want:
            self.fail(f"the '{metadata.NAME}' metadata preprocesses images to {pre.height}x"
                      f"{pre.width} {validate.label(pre.color, 10)}, but the input "
                      f"'{validate.label(x.name)}' is {tuple(x.shape)}; the metadata is corrupt")

    def metadata(self):
        for entry in self.model.metadata or []:
            if _text(entry.name) == metadata.NAME:
                raw = self.buffer_bytes(entry.buffer, f"metadata '{metadata.NAME}'")
                try:
                    return metadata.decode(bytes(raw) if raw is not None else b"", self.file)
                except (RecursionError, ValueError) as e:  # JSON nested too deep, huge ints
                    self.fail(f"the '{metadata.NAME}' metadata is not valid JSON "
                              f"({type(e).__name__}: {validate.label(e, 80)})")
        return None


@dataclass
class _Op:
    op: object  # OperatorT
    inputs: list  # tensor indices (-1: an omitted optional input)
    outputs: list
    where: str  # "operator 3 (CONV_2D)", for messages
    code: str  # the builtin name
    name: str = ""  # the node name (its output tensor's name), set before from_tflite

    def options(self, cls):
        opts = self.op.builtinOptions
        return opts if isinstance(opts, cls) else cls()


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


SUPPORTED_OPS = ops.SUPPORTED_TFLITE_OPS
