"""IR graph -> .tflite flatbuffer (schema v3), through the flatbuffers object API.

One subgraph; tensor names are the IR tensor names, constants are ``<layer>/weights``,
``<layer>/bias``, ``<layer>/paddings``, ``<layer>/shape``. Int8 graphs follow the TFLite int8
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
_STANDALONE = {"relu": "RELU", "relu6": "RELU6", "tanh": "TANH", "sigmoid": "LOGISTIC"}
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

    def input_of(self, layer) -> ir.Tensor:
        if not layer.inputs or layer.inputs[0] not in self.ir_tensors:
            raise ArchitectureError(
                f"{layer.name}: reads {layer.inputs!r}, which no earlier layer writes")
        return self.ir_tensors[layer.inputs[0]]

    def quantized(self, layer) -> bool:
        return layer.output.dtype == "int8"

    # --- the model --------------------------------------------------------------------

    def build(self):
        fb, graph = self.fb, self.graph
        self.ir_tensors[graph.input.name] = graph.input
        self.add_tensor(graph.input.name, graph.input.shape, graph.input.dtype, graph.input.quant)
        for layer in graph.layers:
            handler = _HANDLERS.get(type(layer))
            if handler is None:
                raise UnsupportedOpError(
                    f"{layer.name}: {type(layer).__name__} cannot be written to .tflite "
                    f"(supported: {', '.join(t.__name__ for t in _HANDLERS)})"
                    + (" ---> HINT: fold BatchNorm into the conv first"
                       if isinstance(layer, ir.BatchNorm) else ""))
            if layer.output is None or layer.output.dtype not in _DTYPES:
                raise ArchitectureError(f"{layer.name}: output tensor missing or not float32/int8")
            x = self.input_of(layer)
            out = layer.output
            self.ir_tensors[out.name] = out
            self.add_tensor(out.name, out.shape, out.dtype, out.quant)
            handler(self, layer, x)

        sub = fb.SubGraphT()
        sub.name = "main"
        sub.tensors = self.tensors
        sub.operators = self.operators
        sub.inputs = [self.index[graph.input.name]]
        sub.outputs = [self.index[graph.output.name]]

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


# --- one handler per layer type -------------------------------------------------------

def _padding_enum(w, layer, x, kernel, dilation=(1, 1)):
    kind = shapes.padding_kind(x.shape[1:3], kernel, layer.stride, layer.padding, dilation)
    if kind == "explicit":
        raise UnsupportedOpError(
            f"{layer.name}: padding {tuple(layer.padding)} (top, bottom, left, right) is neither "
            f"VALID nor SAME for a {x.shape[1]}x{x.shape[2]} input with kernel {tuple(kernel)} "
            f"and stride {tuple(layer.stride)}; TFLite cannot express it. ---> HINT: put an "
            "explicit Pad layer before it (the quantizer does)")
    return getattr(w.fb.Padding, kind.upper())


def _fused(w, layer):
    if layer.activation not in _FUSED:
        raise UnsupportedOpError(
            f"{layer.name}: fused activation '{layer.activation}' is not one of {list(_FUSED)}")
    return getattr(w.fb.ActivationFunctionType, _FUSED[layer.activation])


def _weights(w, layer, x):
    """Add the weight and bias tensors; returns their indices (bias -1 when absent)."""
    quant = w.quantized(layer)
    weight = np.asarray(layer.weight)
    want = np.int8 if quant else np.float32
    if weight.dtype != want:
        raise ArchitectureError(
            f"{layer.name}: weights are {weight.dtype} but a {'int8' if quant else 'float32'} "
            f"graph needs {np.dtype(want).name}")
    if quant and (layer.weight_quant is None or x.quant is None):
        raise ArchitectureError(f"{layer.name}: an int8 layer needs weight_quant and an input "
                                "scale")
    wi = w.add_tensor(f"{layer.name}/weights", weight.shape, weight.dtype.name,
                      layer.weight_quant if quant else None, weight)
    if layer.bias is None:
        return wi, -1
    bias = np.asarray(layer.bias)
    bias_quant = None
    if quant:
        if bias.dtype != np.int32:
            raise ArchitectureError(f"{layer.name}: an int8 layer needs an int32 bias, got "
                                    f"{bias.dtype}")
        s_in = np.float64(x.quant.scale[0])
        s_w = np.asarray(layer.weight_quant.scale, np.float64)
        scale = (s_in * s_w).astype(np.float32)
        bias_quant = ir.QuantParams(scale, np.zeros(scale.shape, np.int64), 0)
    elif bias.dtype != np.float32:
        raise ArchitectureError(f"{layer.name}: a float layer needs a float32 bias")
    bi = w.add_tensor(f"{layer.name}/bias", bias.shape, bias.dtype.name, bias_quant, bias)
    return wi, bi


def _conv(w, layer, x):
    fb = w.fb
    if layer.bias is None and w.quantized(layer):
        # LiteRT's int8 CONV_2D refuses a missing bias (conv.cc: has_bias); zeros are exact
        layer = ir.replace(layer, bias=np.zeros(layer.weight.shape[0], np.int32))
    wi, bi = _weights(w, layer, x)
    opts = fb.Conv2DOptionsT()
    opts.padding = _padding_enum(w, layer, x, layer.weight.shape[1:3], layer.dilation)
    opts.strideH, opts.strideW = (int(s) for s in layer.stride)
    opts.dilationHFactor, opts.dilationWFactor = (int(d) for d in layer.dilation)
    opts.fusedActivationFunction = _fused(w, layer)
    inputs = [w.index[x.name], wi] + ([bi] if bi >= 0 else [])
    w.add_op(layer, "CONV_2D", 3 if w.quantized(layer) else 1, inputs, "Conv2DOptions", opts)


def _fully_connected(w, layer, x):
    fb = w.fb
    wi, bi = _weights(w, layer, x)
    opts = fb.FullyConnectedOptionsT()
    opts.fusedActivationFunction = _fused(w, layer)
    opts.keepNumDims = False
    # op_version.cc: no bias -> 6; int8 -> 4; float -> 1
    version = 6 if bi < 0 else (4 if w.quantized(layer) else 1)
    w.add_op(layer, "FULLY_CONNECTED", version, [w.index[x.name], wi, bi],
             "FullyConnectedOptions", opts)


def _pool(code_name):
    def handler(w, layer, x):
        opts = w.fb.Pool2DOptionsT()
        opts.padding = _padding_enum(w, layer, x, layer.kernel)
        opts.strideH, opts.strideW = (int(s) for s in layer.stride)
        opts.filterHeight, opts.filterWidth = (int(k) for k in layer.kernel)
        opts.fusedActivationFunction = _fused(w, layer)
        w.add_op(layer, code_name, 2 if w.quantized(layer) else 1, [w.index[x.name]],
                 "Pool2DOptions", opts)
    return handler


def _pad(w, layer, x):
    if len(x.shape) != 4:
        raise ArchitectureError(f"{layer.name}: Pad needs an NHWC input, got {x.shape}")
    t, b, l, r = (int(p) for p in layer.padding)
    paddings = np.array([[0, 0], [t, b], [l, r], [0, 0]], np.int32)
    pi = w.add_tensor(f"{layer.name}/paddings", paddings.shape, "int32", None, paddings)
    w.add_op(layer, "PAD", 2 if w.quantized(layer) else 1, [w.index[x.name], pi],
             "PadOptions", w.fb.PadOptionsT())


def _reshape(w, layer, x):
    new_shape = np.array(layer.output.shape, np.int32)
    si = w.add_tensor(f"{layer.name}/shape", new_shape.shape, "int32", None, new_shape)
    opts = w.fb.ReshapeOptionsT()
    opts.newShape = [int(d) for d in new_shape]
    w.add_op(layer, "RESHAPE", 1, [w.index[x.name], si], "ReshapeOptions", opts)


def _softmax(w, layer, x):
    opts = w.fb.SoftmaxOptionsT()
    opts.beta = float(layer.beta)
    w.add_op(layer, "SOFTMAX", 2 if w.quantized(layer) else 1, [w.index[x.name]],
             "SoftmaxOptions", opts)


def _activation(w, layer, x):
    if layer.kind not in _STANDALONE:
        raise UnsupportedOpError(
            f"{layer.name}: activation '{layer.kind}' is not one of {list(_STANDALONE)}")
    w.add_op(layer, _STANDALONE[layer.kind], 2 if w.quantized(layer) else 1, [w.index[x.name]])


def _quantize(w, layer, x):
    if x.dtype != "float32" or layer.output.dtype != "int8":
        raise ArchitectureError(f"{layer.name}: Quantize goes float32 -> int8, got "
                                f"{x.dtype} -> {layer.output.dtype}")
    w.add_op(layer, "QUANTIZE", 1, [w.index[x.name]])  # op_version.cc: int8 output is v1


def _dequantize(w, layer, x):
    if x.dtype != "int8" or layer.output.dtype != "float32":
        raise ArchitectureError(f"{layer.name}: Dequantize goes int8 -> float32, got "
                                f"{x.dtype} -> {layer.output.dtype}")
    w.add_op(layer, "DEQUANTIZE", 2, [w.index[x.name]])


_HANDLERS = {
    ir.Conv2D: _conv,
    ir.FullyConnected: _fully_connected,
    ir.MaxPool2D: _pool("MAX_POOL_2D"),
    ir.AvgPool2D: _pool("AVERAGE_POOL_2D"),
    ir.Pad: _pad,
    ir.Reshape: _reshape,
    ir.Softmax: _softmax,
    ir.Activation: _activation,
    ir.Quantize: _quantize,
    ir.Dequantize: _dequantize,
}
