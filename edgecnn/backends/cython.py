"""The cython backend: thin wrappers over the compiled kernels in edgecnn._kernels.

The runtime binds a prepared step through ``bind_<kernel>(*args, *in_shapes, out_shape)`` where
one exists (conv2d_s8, depthwise_conv2d_s8, fully_connected_s8, max_pool_s8,
avg_pool_s8, add_s8, softmax_s8): weights packed once for
the SIMD path chosen at run time (kernel_isa(); force_isa() pins one), the input zero point
folded into the bias, scratch owned by the bound callable.

Same names and signatures as edgecnn.backends.reference. Arrays go straight through: the
caller passes C-contiguous arrays of the right dtypes and shapes (checked once at prepare
time, not here). Every kernel writes into ``out`` and returns None; none allocates, except that
relu/relu6/tanh/logistic given raw quantization parameters derive their small parameter
records first (prepare-time work; use relu_s8_params / lut_s8 with prepared data in hot paths).
"""

from __future__ import annotations

import math

import numpy as np

from .._kernels import conv as _conv
from .._kernels import depthwise as _dw
from .._kernels import elementwise as _ew
from .._kernels import fully_connected as _fc
from .._kernels import graph_ops as _graph
from .._kernels import pool as _pool
from ..reference.depthwise_conv import check_depthwise
from ..reference.params import (AddParams, ConcatParams, ConvParams, DepthwiseParams, FCParams,
                                MeanParams, PoolParams, ReluParams, Requant, SoftmaxFloatParams,
                                SoftmaxParams, make_broadcast, make_relu_params)

NAME = "cython"

__all__ = ["set_num_threads", "kernel_isa", "supported_isas", "amx_missing", "force_isa", "bind_conv2d_s8",
           "bind_depthwise_conv2d_s8", "bind_fully_connected_s8", "bind_max_pool_s8",
           "bind_avg_pool_s8", "conv2d_s8", "depthwise_conv2d_s8", "fully_connected_s8",
           "max_pool_s8", "avg_pool_s8",
           "pad_s8", "requantize", "softmax_s8", "bind_softmax_s8", "softmax_float_s8",
           "bind_softmax_float_s8", "quantize_s8",
           "dequantize_s8", "relu_s8",
           "relu6_s8", "tanh_s8", "logistic_s8", "lut_s8", "relu_s8_params", "activation_lut",
           "bind_add_s8", "add_s8", "concat_s8", "mean_s8"]

_LUT_KINDS = {"tanh": 0, "logistic": 1}
_threads = 1


def set_num_threads(n: int) -> None:
    """Threads for conv (blocks of output pixels), depthwise conv (blocks of output rows),
    fully connected (blocks of outputs) and ADD (blocks of its output).

    The bound kernels (bind_*) use edgecnn's worker pool (cython_kernels/threadpool.h): the
    caller works too and never waits for a worker that has not started, and layers under 10^6
    multiply-adds stay on the caller. The plain conv2d_s8 / fully_connected_s8 use OpenMP.
    One by default.
    """
    global _threads
    _threads = max(1, int(n))
    _conv.set_num_threads(_threads)
    _dw.set_num_threads(_threads)
    _fc.set_num_threads(_threads)
    _graph.set_num_threads(_threads)


def kernel_isa() -> str:
    """The SIMD path new bindings use: avx512amx, avx512vnni, avx2, neon-sdot, neon or generic."""
    return _conv.kernel_isa()


def supported_isas() -> list:
    """Every path this CPU can run (tests force each in turn)."""
    return _conv.supported_isas()


def amx_missing() -> str:
    """Why the AMX-INT8 path (avx512amx) is not offered on this machine, "" when it is: the
    CPU (CPUID), the OS (XCR0 tile state) or Linux's tile permission (arch_prctl)."""
    return _conv.amx_missing()


def force_isa(name: str) -> None:
    """Pin the path of later bind_* calls ("auto" = the best this CPU runs).

    Raises ValueError for an unknown name or a path this CPU cannot run. Plans bound earlier
    keep the path they were packed for.
    """
    _conv.force_isa(name)
    _dw.force_isa(name)
    _fc.force_isa(name)
    _graph.force_isa(name)


def bind_conv2d_s8(w, bias, p: ConvParams, rq: Requant, in_shape3, out_shape3):
    """Pack ``w`` (Cout, KH, KW, Cin) once for the current path; returns run(x, out)."""
    return _conv.BoundConv(np.ascontiguousarray(w, np.int8), np.asarray(bias, np.int32),
                           p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dilation_h,
                           p.dilation_w, p.input_offset, rq.multiplier, rq.shift,
                           rq.real_scale, rq.policy, rq.output_offset, rq.act_min, rq.act_max,
                           tuple(in_shape3), tuple(out_shape3))


def bind_depthwise_conv2d_s8(w, bias, p: DepthwiseParams, rq: Requant, in_shape3, out_shape3):
    """Widen ``w`` (KH, KW, C*M) once for the current path and fold the input zero point into
    ``bias`` (C*M,) or None; returns run(x, out). ValueError on shapes that do not fit."""
    check_depthwise(tuple(in_shape3), np.shape(w), None if bias is None else np.shape(bias), p,
                    tuple(out_shape3))
    return _dw.BoundDepthwise(np.ascontiguousarray(w, np.int8),
                              None if bias is None else np.asarray(bias, np.int32),
                              p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dilation_h,
                              p.dilation_w, p.depth_multiplier, p.input_offset, rq.multiplier,
                              rq.shift, rq.real_scale, rq.policy, rq.output_offset, rq.act_min,
                              rq.act_max, tuple(in_shape3), tuple(out_shape3))


def bind_fully_connected_s8(w, bias, p: FCParams, rq: Requant, in_shape=None, out_shape=None):
    """Bind ``w`` (O, N) (kept as is, streamed once per call); returns run(x, out)."""
    return _fc.BoundFC(np.ascontiguousarray(w, np.int8), _conv.requant_arrays, p.input_offset,
                       rq.multiplier, rq.shift, rq.real_scale, rq.policy, rq.output_offset,
                       rq.act_min, rq.act_max, np.asarray(bias, np.int32))


def bind_max_pool_s8(p: PoolParams, in_shape3, out_shape3):
    """Bind a max pool to its shapes (scratch row owned by the callable); returns run(x, out)."""
    return _pool.BoundMaxPool(*_pool_args(p), tuple(in_shape3), tuple(out_shape3))


def bind_avg_pool_s8(p: PoolParams, in_shape3, out_shape3):
    """Bind an average pool to its shapes (int32 scratch row); returns run(x, out)."""
    return _pool.BoundAvgPool(*_pool_args(p), tuple(in_shape3), tuple(out_shape3))


def _pool_args(p: PoolParams):
    return (p.filter_h, p.filter_w, p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.act_min,
            p.act_max)


def conv2d_s8(x, w, bias, p: ConvParams, rq: Requant, out) -> None:
    _conv.conv2d_s8(x, w, bias, p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dilation_h,
                    p.dilation_w, p.input_offset, rq.multiplier, rq.shift, rq.real_scale,
                    rq.policy, rq.output_offset, rq.act_min, rq.act_max, out, _threads)


def depthwise_conv2d_s8(x, w, bias, p: DepthwiseParams, rq: Requant, out) -> None:
    """Bind and run in one call (allocates); prepared models use bind_depthwise_conv2d_s8."""
    bind_depthwise_conv2d_s8(w, bias, p, rq, x.shape, out.shape)(x, out)


def fully_connected_s8(x, w, bias, p: FCParams, rq: Requant, out) -> None:
    _fc.fully_connected_s8(x, w, bias, p.input_offset, rq.multiplier, rq.shift, rq.real_scale,
                           rq.policy, rq.output_offset, rq.act_min, rq.act_max, out, _threads)


def max_pool_s8(x, p: PoolParams, out) -> None:
    _pool.max_pool_s8(x, p.filter_h, p.filter_w, p.stride_h, p.stride_w, p.pad_top, p.pad_left,
                      p.act_min, p.act_max, out)


def avg_pool_s8(x, p: PoolParams, out) -> None:
    _pool.avg_pool_s8(x, p.filter_h, p.filter_w, p.stride_h, p.stride_w, p.pad_top, p.pad_left,
                      p.act_min, p.act_max, out)


def pad_s8(x, pad_top: int, pad_left: int, pad_value: int, out) -> None:
    _ew.pad_s8(x, pad_top, pad_left, pad_value, out)


def requantize(acc, rq: Requant, out) -> None:
    c = acc.shape[-1] if acc.ndim else 1
    _ew.requantize(acc.reshape(-1, c), rq.multiplier, rq.shift, rq.real_scale, rq.policy,
                   rq.output_offset, rq.act_min, rq.act_max, out.reshape(-1, c))


def softmax_s8(x, p: SoftmaxParams, out) -> None:
    _ew.softmax_s8(x, p.input_multiplier, p.input_left_shift, p.diff_min, out)


def bind_softmax_s8(p: SoftmaxParams, in_shape, out_shape):
    """Bind a softmax over ``in_shape`` (N,) (its 256 exps computed once); returns run(x, out)."""
    return _ew.BoundSoftmax(p.input_multiplier, p.input_left_shift, p.diff_min,
                            int(np.prod(in_shape)))


def softmax_float_s8(x, p: SoftmaxFloatParams, out) -> None:
    _ew.softmax_float_s8(x, p.exps, p.output_scale, p.output_offset, out)


def bind_softmax_float_s8(p: SoftmaxFloatParams, in_shape, out_shape):
    """Bind LiteRT's float softmax over ``in_shape`` (N,); returns run(x, out)."""
    return _ew.BoundSoftmaxFloat(p.exps, p.output_scale, p.output_offset, int(np.prod(in_shape)))


def quantize_s8(x, scale: float, zero_point: int, out) -> None:
    _ew.quantize_s8(x.reshape(-1), float(np.float32(scale)), zero_point, out.reshape(-1))


def dequantize_s8(x, scale: float, zero_point: int, out) -> None:
    _ew.dequantize_s8(x.reshape(-1), float(np.float32(scale)), zero_point, out.reshape(-1))


def relu_s8_params(x, p: ReluParams, out) -> None:
    _ew.relu_s8(x.reshape(-1), p.input_offset, p.output_offset, p.multiplier, p.shift,
                p.act_min, p.act_max, out.reshape(-1))


def relu_s8(x, s_in: float, zp_in: int, s_out: float, zp_out: int, out) -> None:
    relu_s8_params(x, make_relu_params(s_in, zp_in, s_out, zp_out, six=False), out)


def relu6_s8(x, s_in: float, zp_in: int, s_out: float, zp_out: int, out) -> None:
    relu_s8_params(x, make_relu_params(s_in, zp_in, s_out, zp_out, six=True), out)


def activation_lut(kind: str, s_in: float, zp_in: int, s_out: float, zp_out: int) -> np.ndarray:
    """The int8[256] tanh / logistic table (prepare time; LiteRT's LUTPopulate)."""
    if kind not in _LUT_KINDS:
        raise ValueError(f"unknown table activation {kind!r}; expected tanh or logistic")
    table = np.empty(256, np.int8)
    _ew.activation_lut(_LUT_KINDS[kind], s_in, zp_in, s_out, zp_out, table)
    return table


def lut_s8(x, lut, out) -> None:
    _ew.lut_s8(x.reshape(-1), lut, out.reshape(-1))


def tanh_s8(x, s_in: float, zp_in: int, out) -> None:
    """int8 TANH; output quantization fixed by TFLite: scale 1/128, zero point 0."""
    lut_s8(x, activation_lut("tanh", s_in, zp_in, 1.0 / 128, 0), out)


def logistic_s8(x, s_in: float, zp_in: int, out) -> None:
    """int8 LOGISTIC; output quantization fixed by TFLite: scale 1/256, zero point -128."""
    lut_s8(x, activation_lut("logistic", s_in, zp_in, 1.0 / 256, -128), out)


def bind_add_s8(p: AddParams, shape1, shape2, out_shape=None):
    """Bind an int8 ADD to its operand shapes (broadcast walk and ISA path chosen once);
    returns run(x1, x2, out), out of the broadcast shape and allowed to be x1 or x2."""
    b = make_broadcast(shape1, shape2)
    bound = _graph.BoundAdd(p.left_shift, p.input1_offset, p.input2_offset, p.input1_multiplier,
                            p.input1_shift, p.input2_multiplier, p.input2_shift,
                            p.output_multiplier, p.output_shift, p.output_offset, p.act_min,
                            p.act_max, b.size, b.stride1, b.stride2)

    def run(x1, x2, out) -> None:
        bound(x1.reshape(-1), x2.reshape(-1), out.reshape(-1))

    run.isa = bound.isa
    return run


def add_s8(x1, x2, p: AddParams, out) -> None:
    bind_add_s8(p, x1.shape, x2.shape)(x1, x2, out)


def concat_s8(inputs, axis: int, p: ConcatParams, out) -> None:
    """Join along ``axis`` (0 <= axis < rank): each input is outer runs of its trailing block."""
    _graph.concat_s8([x.reshape(-1) for x in inputs], [math.prod(x.shape[axis:]) for x in inputs],
                     math.prod(out.shape[:axis]), out.reshape(-1))


def mean_s8(x, p: MeanParams, out) -> None:
    _graph.mean_s8(x, p.multiplier, p.shift, p.input_offset, p.output_offset, p.policy, p.scale,
                   p.bias, out)
