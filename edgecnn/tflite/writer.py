"""IR graph -> .tflite flatbuffer (schema v3), through the flatbuffers object API.

One subgraph; each node writes its own operator (``to_tflite``) through the helpers of
``_ModelWriter``. Tensor names are the IR tensor names, constants are ``<node>/weights``,
``<node>/bias``, ``<node>/paddings``, ``<node>/shape``. Int8 graphs follow the TFLite int8
spec: conv weights OHWI int8 per channel on axis 0, biases int32 with scale s_in * s_w[c] and
zero point 0. Op versions are the ones TensorFlow's converter picks for the same signature
(tensorflow/lite/tools/versioning/op_version.cc). Buffer 0 is the empty sentinel; constant
buffers are 16-byte aligned.
"""

from __future__ import annotations

import os

import numpy as np

from .. import __version__, ir, shapes
from ..errors import ArchitectureError, InputFileError, UnsupportedOpError
from ..fileio import write_atomic
from . import metadata, schema

_DTYPES = {"float32": "FLOAT32", "int8": "INT8", "int32": "INT32"}
_FUSED = {"none": "NONE", "relu": "RELU", "relu6": "RELU6"}
BUFFER_ALIGNMENT = 16


def write_tflite(graph: ir.Graph, path, *, force: bool = False) -> None:
    """Write ``graph`` to ``path`` atomically (temp file in the same folder, then rename),
    with mode ``0666 & ~umask`` like any other new file (fileio.write_atomic)."""
    path = os.fspath(path)
    if os.path.exists(path) and not force:
        raise InputFileError(f"{os.path.basename(path)} exists; pass --force to overwrite")
    write_atomic(path, to_flatbuffer(graph), force=True)


def to_flatbuffer(graph: ir.Graph) -> bytes:
    """The .tflite bytes of ``graph``."""
    import flatbuffers

    fb = schema.load()
    w = _ModelWriter(fb, graph)
    model = w.build()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=schema.FILE_IDENTIFIER)
    return bytes(builder.Output())


def _aligned_buffer_class(fb):
    class AlignedBufferT(fb.BufferT):
        """A BufferT whose data vector starts on a BUFFER_ALIGNMENT boundary."""

        def Pack(self, builder):
            if self.data is None or len(self.data) == 0:
                return super().Pack(builder)
            payload = np.ascontiguousarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            vector = builder.EndVector()
            fb.BufferStart(builder)
            fb.BufferAddData(builder, vector)
            return fb.BufferEnd(builder)

    return AlignedBufferT


class _ModelWriter:
    def __init__(self, fb, graph: ir.Graph):
        self.fb = fb
        self.graph = graph
        self.op = fb.BuiltinOperator
        self.buffer_class = _aligned_buffer_class(fb)
        self.buffers = [fb.BufferT()]  # buffer 0: the empty sentinel TFLite requires
        self.tensors = []
        self.index: dict[str, int] = {}  # tensor name -> index
        self.ir_tensors: dict[str, ir.Tensor] = {}
        self.opcodes = []
        self.opcode_index: dict[tuple[int, int], int] = {}
        self.operators = []

    # --- building blocks -------------------------------------------------------------

    def add_tensor(self, name, shape, dtype, quant=None, data=None) -> int:
        fb = self.fb
        if name in self.index:
            raise ArchitectureError(
                f"tensor name '{name}' is used twice; every layer output needs a unique name")
        t = fb.TensorT()
        t.name = name
        t.shape = [int(d) for d in shape]
        t.type = getattr(fb.TensorType, _DTYPES[dtype])
        if quant is not None:
            q = fb.QuantizationParametersT()
            q.scale = [float(s) for s in np.asarray(quant.scale, np.float32)]
            q.zeroPoint = [int(z) for z in quant.zero_point]
            q.quantizedDimension = int(quant.axis)
            t.quantization = q
        if data is not None:
            buf = self.buffer_class()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        self.index[name] = len(self.tensors) - 1
        return self.index[name]

    def add_op(self, layer, code_name, version, inputs, options_name=None, options=None):
        fb = self.fb
        code = getattr(self.op, code_name)
        key = (code, version)
        if key not in self.opcode_index:
            oc = fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            self.opcodes.append(oc)
            self.opcode_index[key] = len(self.opcodes) - 1
        op = fb.OperatorT()
        op.opcodeIndex = self.opcode_index[key]
        op.inputs = list(inputs)
        op.outputs = [self.index[layer.output.name]]
        if options_name is not None:
            op.builtinOptionsType = getattr(fb.BuiltinOptions, options_name)
            op.builtinOptions = options
        self.operators.append(op)

    def tensor_of(self, name: str) -> ir.Tensor:
        """The IR tensor ``name``, which an earlier node (or the input) must have written."""
        if name not in self.ir_tensors:
            raise ArchitectureError(f"tensor {name!r} is read before any node writes it")
        return self.ir_tensors[name]

    def quantized(self, node) -> bool:
        return node.output.dtype == "int8"

    # --- helpers for the ops' to_tflite -------------------------------------------------

    def padding_enum(self, node, x, kernel, dilation=(1, 1)):
        kind = shapes.padding_kind(x.shape[1:3], kernel, node.stride, node.padding, dilation)
        if kind == "explicit":
            raise UnsupportedOpError(
                f"{node.name}: padding {tuple(node.padding)} (top, bottom, left, right) is "
                f"neither VALID nor SAME for a {x.shape[1]}x{x.shape[2]} input with kernel "
                f"{tuple(kernel)} and stride {tuple(node.stride)}; TFLite cannot express it. "
                "---> HINT: put an explicit Pad node before it (the quantizer does)")
        return getattr(self.fb.Padding, kind.upper())

    def fused(self, node):
        if node.activation not in _FUSED:
            raise UnsupportedOpError(f"{node.name}: fused activation '{node.activation}' is not "
                                     f"one of {list(_FUSED)}")
        return getattr(self.fb.ActivationFunctionType, _FUSED[node.activation])

    def weights(self, node, x, out_axis: int = 0):
        """Add the weight and bias tensors of a conv-like node; returns their indices (bias
        -1 when absent). An int8 bias gets scale s_in * s_w[c] and zero point 0."""
        quant = self.quantized(node)
        weight = np.asarray(node.weight)
        want = np.int8 if quant else np.float32
        if weight.dtype != want:
            raise ArchitectureError(
                f"{node.name}: weights are {weight.dtype} but a {'int8' if quant else 'float32'}"
                f" graph needs {np.dtype(want).name}")
        if quant and (node.weight_quant is None or x.quant is None):
            raise ArchitectureError(f"{node.name}: an int8 node needs weight_quant and an input "
                                    "scale")
        wi = self.add_tensor(f"{node.name}/weights", weight.shape, weight.dtype.name,
                             node.weight_quant if quant else None, weight)
        if node.bias is None:
            return wi, -1
        bias = np.asarray(node.bias)
        bias_quant = None
        if quant:
            if bias.dtype != np.int32:
                raise ArchitectureError(f"{node.name}: an int8 node needs an int32 bias, got "
                                        f"{bias.dtype}")
            s_in = np.float64(x.quant.scale[0])
            s_w = np.asarray(node.weight_quant.scale, np.float64)
            scale = (s_in * s_w).astype(np.float32)
            bias_quant = ir.QuantParams(scale, np.zeros(scale.shape, np.int64), 0)
        elif bias.dtype != np.float32:
            raise ArchitectureError(f"{node.name}: a float node needs a float32 bias")
        bi = self.add_tensor(f"{node.name}/bias", bias.shape, bias.dtype.name, bias_quant, bias)
        return wi, bi

    # --- the model --------------------------------------------------------------------

    def build(self):
        fb, graph = self.fb, self.graph
        graph.check()
        self.ir_tensors[graph.input.name] = graph.input
        self.add_tensor(graph.input.name, graph.input.shape, graph.input.dtype, graph.input.quant)
        for node in graph.nodes:
            out = node.output
            if out.dtype not in _DTYPES:
                raise ArchitectureError(f"{node.name}: output tensor is {out.dtype}, not "
                                        "float32/int8")
            for name in node.inputs:
                self.tensor_of(name)
            self.ir_tensors[out.name] = out
            self.add_tensor(out.name, out.shape, out.dtype, out.quant)
            node.to_tflite(self)

        sub = fb.SubGraphT()
        sub.name = "main"
        sub.tensors = self.tensors
        sub.operators = self.operators
        sub.inputs = [self.index[graph.input.name]]
        sub.outputs = [self.index[name] for name in graph.outputs]

        meta_buffer = self.buffer_class()
        meta_buffer.data = np.frombuffer(metadata.encode(graph), np.uint8)
        self.buffers.append(meta_buffer)
        entry = fb.MetadataT()
        entry.name = metadata.NAME
        entry.buffer = len(self.buffers) - 1

        model = fb.ModelT()
        model.version = schema.SCHEMA_VERSION
        model.description = f"edgecnn {__version__}: {graph.name}"
        model.operatorCodes = self.opcodes
        model.subgraphs = [sub]
        model.buffers = self.buffers
        model.metadata = [entry]
        return model
