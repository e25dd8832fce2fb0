"""Test helper: single-op int8 .tflite models (flatbuffers object API) and a LiteRT runner.

A small utility for the kernel cross-checks, not the graph writer (that is edgecnn.tflite).
Tensors are given as ``Spec`` records; buffer 0 is the empty sentinel buffer; operator codes
fill both ``deprecated_builtin_code`` and ``builtin_code``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Optional

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as sch
from ai_edge_litert.interpreter import Interpreter, OpResolverType

_TYPES = {np.dtype(np.int8): sch.TensorType.INT8, np.dtype(np.int32): sch.TensorType.INT32,
          np.dtype(np.float32): sch.TensorType.FLOAT32}
ACTIVATION_CODES = {"none": sch.ActivationFunctionType.NONE,
                    "relu": sch.ActivationFunctionType.RELU,
                    "relu6": sch.ActivationFunctionType.RELU6}


@dataclass
class Spec:
    """One tensor: shape, dtype, quantization (scale may be per channel), optional constant data."""

    shape: tuple
    dtype: type = np.int8
    scale: Optional[object] = None  # float or sequence of floats
    zero_point: Optional[object] = None
    data: Optional[np.ndarray] = None  # constant tensors (weights, bias)
    axis: int = 0


def _quant(spec: Spec):
    if spec.scale is None:
        return None
    q = sch.QuantizationParametersT()
    q.scale = [float(s) for s in np.atleast_1d(np.asarray(spec.scale, np.float32))]
    zp = spec.zero_point if spec.zero_point is not None else 0
    zp = np.broadcast_to(np.atleast_1d(np.asarray(zp, np.int64)), (len(q.scale),))
    q.zeroPoint = [int(z) for z in zp]
    q.quantizedDimension = spec.axis
    return q


def single_op_model(op: str, inputs: list, outputs: list, options_type: int = 0,
                    options=None, version: int = 1) -> bytes:
    """Serialize a model with one operator ``op`` (a BuiltinOperator name)."""
    model = sch.ModelT()
    model.version = 3
    model.description = "edgecnn kernel test"
    code = sch.OperatorCodeT()
    builtin = getattr(sch.BuiltinOperator, op)
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes = [code]
    model.buffers = [sch.BufferT()]  # buffer 0: the empty sentinel
    graph = sch.SubGraphT()
    graph.tensors, graph.inputs = [], []
    op_inputs = []
    for i, spec in enumerate(list(inputs) + list(outputs)):
        t = sch.TensorT()
        t.shape = [int(d) for d in spec.shape]
        t.type = _TYPES[np.dtype(spec.dtype)]
        t.name = f"t{i}"
        t.quantization = _quant(spec)
        if spec.data is not None:
            buf = sch.BufferT()
            buf.data = np.ascontiguousarray(spec.data, dtype=spec.dtype).view(np.uint8).ravel()
            t.buffer = len(model.buffers)
            model.buffers.append(buf)
        elif i < len(inputs):
            graph.inputs.append(i)
        graph.tensors.append(t)
        if i < len(inputs):
            op_inputs.append(i)
    graph.outputs = list(range(len(inputs), len(inputs) + len(outputs)))
    operator = sch.OperatorT()
    operator.opcodeIndex = 0
    operator.inputs = op_inputs
    operator.outputs = graph.outputs
    operator.builtinOptionsType = options_type
    operator.builtinOptions = options
    graph.operators = [operator]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run(model: bytes, *inputs: np.ndarray, reference: bool = True) -> np.ndarray:
    """Run the model in LiteRT (BUILTIN_REF, or the default XNNPACK path) on one set of inputs
    (the graph's non-constant inputs, in order)."""
    fd, path = tempfile.mkstemp(suffix=".tflite")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model)
        kwargs = dict(experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                      experimental_preserve_all_tensors=True) if reference else {}
        interp = Interpreter(model_path=path, num_threads=1, **kwargs)
        interp.allocate_tensors()
        for detail, x in zip(interp.get_input_details(), inputs):
            interp.set_tensor(detail["index"], x)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()
    finally:
        os.unlink(path)


def conv2d_options(stride, dilation, padding: str, activation: str):
    o = sch.Conv2DOptionsT()
    o.padding = sch.Padding.SAME if padding == "same" else sch.Padding.VALID
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.fusedActivationFunction = ACTIVATION_CODES[activation]
    return sch.BuiltinOptions.Conv2DOptions, o


def depthwise_conv2d_options(stride, dilation, padding: str, activation: str,
                             depth_multiplier: int):
    """DEPTHWISE_CONV_2D options. BUILTIN_REF's int8 kernel derives M from the shapes (C*M / C)
    and ignores ``depthMultiplier``; XNNPACK reads it (a wrong non-zero value fails its prepare)
    and so does TFLite Micro (a wrong value gives wrong numbers, silently): write the true M."""
    o = sch.DepthwiseConv2DOptionsT()
    o.padding = sch.Padding.SAME if padding == "same" else sch.Padding.VALID
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.depthMultiplier = depth_multiplier
    o.fusedActivationFunction = ACTIVATION_CODES[activation]
    return sch.BuiltinOptions.DepthwiseConv2DOptions, o


def pool2d_options(kernel, stride, padding: str, activation: str):
    o = sch.Pool2DOptionsT()
    o.padding = sch.Padding.SAME if padding == "same" else sch.Padding.VALID
    o.strideH, o.strideW = stride
    o.filterHeight, o.filterWidth = kernel
    o.fusedActivationFunction = ACTIVATION_CODES[activation]
    return sch.BuiltinOptions.Pool2DOptions, o


def fully_connected_options(activation: str):
    o = sch.FullyConnectedOptionsT()
    o.fusedActivationFunction = ACTIVATION_CODES[activation]
    return sch.BuiltinOptions.FullyConnectedOptions, o


def softmax_options(beta: float):
    o = sch.SoftmaxOptionsT()
    o.beta = beta
    return sch.BuiltinOptions.SoftmaxOptions, o


def add_options(activation: str):
    o = sch.AddOptionsT()
    o.fusedActivationFunction = ACTIVATION_CODES[activation]
    return sch.BuiltinOptions.AddOptions, o


def concatenation_options(axis: int, activation: str = "none"):
    o = sch.ConcatenationOptionsT()
    o.axis = axis
    o.fusedActivationFunction = ACTIVATION_CODES[activation]
    return sch.BuiltinOptions.ConcatenationOptions, o


def reducer_options(keep_dims: bool):
    """MEAN's options; its axes are the second input, a constant int32 tensor."""
    o = sch.ReducerOptionsT()
    o.keepDims = bool(keep_dims)
    return sch.BuiltinOptions.ReducerOptions, o


def same_padding(in_size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding: (output size, padding before); the odd pixel goes after."""
    out = (in_size + stride - 1) // stride
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


def valid_output(in_size: int, k: int, stride: int, dilation: int = 1) -> int:
    return (in_size - ((k - 1) * dilation + 1)) // stride + 1
