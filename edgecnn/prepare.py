"""Prepare an int8 graph once: every check, every derived quantity, every buffer.

For each layer this computes the kernel parameters (multipliers and shifts from the stored
scales, activation clamps, offsets) and binds them, with the weights, into a ``Step`` whose
``run(x, out)`` calls one kernel and checks nothing. Kernels see activations without the
batch dimension: (H, W, C) for images, (N,) for vectors, always C-contiguous.

Memory: with ``preserve_all=False`` activations live in two int8 arenas used in turn
(layer i writes the arena layer i-1 did not), sized by the largest tensor; a reshape is a
view of its input. ``preserve_all=True`` gives every tensor its own buffer, for verify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import ir, quant_rules as Q, shapes
from .errors import ArchitectureError, ModelFormatError, UnsupportedOpError
from .reference import params as P


@dataclass
class Step:
    layer: object
    run: Callable[[np.ndarray, np.ndarray], None]  # (input view, output view) -> None
    in_shape: tuple  # the view the kernel wants of its input
    out_shape: tuple  # the view the kernel wants of its output
    view_only: bool = False  # a reshape: output aliases input


def _scalar_quant(t: ir.Tensor, where: str) -> tuple[float, int]:
    q = t.quant
    if t.dtype != "int8":  # an int8 kernel would write int8 into a float32 buffer
        raise ModelFormatError(f"{where}: tensor {t.name!r} is {t.dtype}; this op runs on int8 "
                               "input and output")
    if q is None or q.scale.size != 1:
        raise ModelFormatError(f"{where}: tensor {t.name!r} needs per-tensor int8 quantization "
                               "(one scale and zero point)")
    scale, zp = q.scalar()
    if not (np.isfinite(scale) and scale > 0) or not -128 <= zp <= 127:
        raise ModelFormatError(f"{where}: tensor {t.name!r} has scale {scale} and zero point {zp}; "
                               "int8 needs a finite positive scale and a zero point in [-128, 127]")
    return scale, zp


def _weight_scales(layer, c_out: int) -> np.ndarray:
    q = layer.weight_quant
    if q is None:
        raise ModelFormatError(f"{layer.name}: int8 weights without quantization parameters")
    if q.scale.size not in (1, c_out) or np.any(q.zero_point != 0):
        raise ModelFormatError(f"{layer.name}: weight quantization must be symmetric (zero point 0) "
                               f"with 1 or {c_out} scales, got {q.scale.size}")
    if not np.all(np.isfinite(q.scale)) or np.any(q.scale <= 0):
        raise ModelFormatError(f"{layer.name}: weight scales must be finite and positive")
    return q.scale.astype(np.float32)


def _check_weights(layer, want_ndim: int, c_in: int):
    w, b = layer.weight, layer.bias
    if w.dtype != np.int8 or w.ndim != want_ndim or w.shape[-1] != c_in:
        raise ModelFormatError(
            f"{layer.name}: expected int8 weights of rank {want_ndim} with {c_in} inputs, got "
            f"{w.dtype} {tuple(w.shape)}")
    if b is not None and (b.dtype != np.int32 or b.shape != (w.shape[0],)):
        raise ModelFormatError(f"{layer.name}: expected an int32 bias of shape ({w.shape[0]},), got "
                               f"{b.dtype} {tuple(b.shape)}")


def _bias(layer) -> np.ndarray:
    c_out = layer.weight.shape[0]
    b = layer.bias if layer.bias is not None else np.zeros(c_out, np.int32)
    return np.ascontiguousarray(b, np.int32)


def _prepare_layer(layer, x: ir.Tensor, K, rounding: str) -> Step:
    y = layer.output
    name = layer.name
    out3 = tuple(y.shape[1:])
    in3 = tuple(x.shape[1:])
    if isinstance(layer, ir.Quantize):
        s, zp = _scalar_quant(y, name)
        return Step(layer, lambda a, o: K.quantize_s8(a, s, zp, o), in3, out3)
    if isinstance(layer, ir.Dequantize):
        s, zp = _scalar_quant(x, name)
        return Step(layer, lambda a, o: K.dequantize_s8(a, s, zp, o), in3, out3)
    if isinstance(layer, ir.Reshape):
        Q.reshape_quant(name, x, y)
        return Step(layer, None, in3, out3, view_only=True)
    s_in, zp_in = _scalar_quant(x, name)
    s_out, zp_out = _scalar_quant(y, name)
    if isinstance(layer, ir.Conv2D):
        _check_weights(layer, 4, x.shape[3])
        Q.window_geometry(name, x.shape[1:3], layer.weight.shape[1:3], layer.stride,
                          layer.dilation, layer.padding)
        w = np.ascontiguousarray(layer.weight)
        p = P.ConvParams(stride_h=layer.stride[0], stride_w=layer.stride[1],
                         pad_top=layer.padding[0], pad_left=layer.padding[2],
                         dilation_h=layer.dilation[0], dilation_w=layer.dilation[1],
                         input_offset=-zp_in)
        rq = Q.conv_requant(layer, s_in, zp_in, _weight_scales(layer, w.shape[0]), s_out, zp_out,
                            rounding)
        b = _bias(layer)
        bind = getattr(K, "bind_conv2d", None)  # a backend may pack weights once, here
        if bind is not None:
            return Step(layer, bind(w, b, p, rq, in3, out3), in3, out3)
        return Step(layer, lambda a, o: K.conv2d_s8(a, w, b, p, rq, o), in3, out3)
    if isinstance(layer, ir.FullyConnected):
        n_in = math.prod(x.shape[1:])
        _check_weights(layer, 2, n_in)
        w = np.ascontiguousarray(layer.weight)
        p = P.FCParams(input_offset=-zp_in)
        rq = Q.fc_requant(layer, s_in, zp_in, _weight_scales(layer, w.shape[0]), s_out, zp_out,
                          rounding)
        b = _bias(layer)
        bind = getattr(K, "bind_fully_connected", None)
        if bind is not None:
            return Step(layer, bind(w, b, p, rq), (n_in,), (w.shape[0],))
        return Step(layer, lambda a, o: K.fully_connected_s8(a, w, b, p, rq, o), (n_in,),
                    (w.shape[0],))
    if isinstance(layer, (ir.MaxPool2D, ir.AvgPool2D)):
        if (s_in, zp_in) != (s_out, zp_out):
            raise ModelFormatError(f"{name}: int8 pooling needs the output scale and zero point to "
                                   f"equal the input's ({s_in}, {zp_in}), got ({s_out}, {zp_out})")
        Q.window_geometry(name, x.shape[1:3], layer.kernel, layer.stride, (1, 1), layer.padding)
        lo, hi = Q.activation_range(name, layer.activation, s_out, zp_out)
        p = P.PoolParams(filter_h=layer.kernel[0], filter_w=layer.kernel[1],
                         stride_h=layer.stride[0], stride_w=layer.stride[1],
                         pad_top=layer.padding[0], pad_left=layer.padding[2],
                         act_min=lo, act_max=hi)
        is_max = isinstance(layer, ir.MaxPool2D)
        bind = getattr(K, "bind_max_pool" if is_max else "bind_avg_pool", None)
        if bind is not None:
            return Step(layer, bind(p, in3, out3), in3, out3)
        fn = K.max_pool_s8 if is_max else K.avg_pool_s8
        return Step(layer, lambda a, o: fn(a, p, o), in3, out3)
    if isinstance(layer, ir.Pad):
        top, left = layer.padding[0], layer.padding[2]
        return Step(layer, lambda a, o: K.pad_s8(a, top, left, zp_in, o), in3, out3)
    if isinstance(layer, ir.Softmax):
        if len(x.shape) != 2:
            _unsupported(name, f"softmax over a rank-{len(x.shape)} tensor (only (1, N) vectors)")
        sp = Q.softmax_params(name, s_in, layer.beta, x.shape[1], s_out, zp_out)
        return Step(layer, lambda a, o: K.softmax_s8(a, sp, o), (x.shape[1],), (y.shape[1],))
    if isinstance(layer, ir.Activation):
        return _prepare_activation(layer, K, s_in, zp_in, s_out, zp_out, in3, out3)
    return _unsupported(name, f"{type(layer).__name__} in an int8 graph")


def _prepare_activation(layer, K, s_in, zp_in, s_out, zp_out, in3, out3) -> Step:
    """Standalone activations as LiteRT runs them: RELU/RELU6 rescale to the output
    quantization and clamp; TANH/LOGISTIC read a 256-entry table built once here for the
    output quantization the model gives (LiteRT's reference path: any for TANH, scale 1/256
    for LOGISTIC)."""
    flat_in, flat_out = (math.prod(in3),), (math.prod(out3),)
    if layer.kind in ("relu", "relu6"):
        rp = Q.relu_params(layer.name, s_in, zp_in, s_out, zp_out, six=layer.kind == "relu6")
        return Step(layer, lambda a, o: K.relu_s8_params(a, rp, o), flat_in, flat_out)
    Q.lut_output(layer.name, layer.kind, s_in, zp_in, s_out, zp_out)
    lut = K.activation_lut("tanh" if layer.kind == "tanh" else "logistic", s_in, zp_in, s_out,
                           zp_out)
    return Step(layer, lambda a, o: K.lut_s8(a, lut, o), flat_in, flat_out)


def _unsupported(name, what):
    raise UnsupportedOpError(f"{name}: {what} is not supported by edgecnn's runtime")


@dataclass
class Plan:
    graph: ir.Graph
    steps: list
    buffers: dict  # tensor name -> ndarray with the tensor's full shape (batch 1)
    arena_bytes: int


def _dtype(t: ir.Tensor):
    if t.dtype not in ("int8", "float32"):
        raise ModelFormatError(f"tensor {t.name!r}: dtype {t.dtype}; edgecnn runs int8 and float32")
    return np.int8 if t.dtype == "int8" else np.float32


def prepare(graph: ir.Graph, kernels, rounding: str = "litert-ref", preserve_all: bool = False) -> Plan:
    """Check ``graph`` and bind every layer to ``kernels`` (a backend module)."""
    if rounding not in P.MODEL_POLICIES:
        raise UnsupportedOpError(f"rounding {rounding!r}: use one of {', '.join(P.MODEL_POLICIES)}")
    _check_batch_one(graph.input)
    tensors = {graph.input.name: graph.input}
    steps = []
    for layer in graph.layers:
        if len(layer.inputs) != 1 or layer.inputs[0] not in tensors:
            raise ModelFormatError(f"{layer.name}: reads {layer.inputs}, which no earlier layer writes")
        x = tensors[layer.inputs[0]]
        try:
            want = shapes.output_shape(layer, tuple(x.shape))
        except ArchitectureError as e:
            raise ModelFormatError(str(e)) from None
        if tuple(layer.output.shape) != tuple(want):  # kernels trust these shapes blindly
            raise ModelFormatError(
                f"{layer.name}: output {layer.output.name!r} declares shape "
                f"{tuple(layer.output.shape)} but the layer computes {tuple(want)} from "
                f"{tuple(x.shape)}")
        steps.append(_prepare_layer(layer, x, kernels, rounding))
        tensors[layer.output.name] = layer.output
    buffers, arena = _plan_buffers(graph, steps, preserve_all)
    return Plan(graph, steps, buffers, arena)


def _check_batch_one(x: ir.Tensor) -> None:
    """Kernels see one image (H, W, C) or vector (N,): the input's batch must be 1 (every
    later shape follows from it, checked layer by layer)."""
    if len(x.shape) < 2 or x.shape[0] != 1:
        raise UnsupportedOpError(f"input {x.name!r} has shape {tuple(x.shape)}; edgecnn runs "
                                 "batch 1: re-export the model with batch size 1")


def _plan_buffers(graph, steps, preserve_all):
    """Ping-pong arenas for int8 activations (or one buffer each when preserving all)."""
    int8_sizes = [math.prod(t.shape) for t in graph.tensors() if t.dtype == "int8"]
    arena_size = max(int8_sizes, default=0)
    arenas = [np.zeros(arena_size, np.int8), np.zeros(arena_size, np.int8)]
    buffers, which = {}, {}

    def fresh(t, side):
        if preserve_all or t.dtype != "int8":
            return np.zeros(t.shape, _dtype(t))
        return arenas[side][:math.prod(t.shape)].reshape(t.shape)

    buffers[graph.input.name] = fresh(graph.input, 0)
    which[graph.input.name] = 0
    for step in steps:
        layer = step.layer
        src = layer.inputs[0]
        if step.view_only:
            buffers[layer.output.name] = buffers[src].reshape(layer.output.shape)
            which[layer.output.name] = which[src]
            continue
        side = 1 - which[src]
        buffers[layer.output.name] = fresh(layer.output, side)
        which[layer.output.name] = side
    arena_bytes = sum(b.nbytes for b in buffers.values()) if preserve_all else 2 * arena_size
    return buffers, arena_bytes
