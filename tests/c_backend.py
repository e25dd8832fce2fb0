"""The firmware C kernels (firmware_stubs/ec_*.c) as a kernel backend for the test suite.

The C twins are compiled once on the host (cc -std=c99 -Wall -Wextra -Werror, the flags the
generated Makefile uses) into a shared library and called through ctypes with the names and
signatures of edgecnn.backends.reference, so the same random and hand-written kernel tests run
on "reference", "cython" and "c". The ctypes structs mirror firmware_stubs/ec_kernels.h; the
field lists come from edgecnn/reference/params.py, so a drift breaks these tests loudly.

Prepare-time work that has no C twin (parameter records, the tanh/logistic tables) is done by
the same Python functions export-c uses; only the kernel runs in C.
"""

from __future__ import annotations

import ctypes
import dataclasses
import glob
import hashlib
import os
import subprocess
import tempfile

import numpy as np

from edgecnn.export_c import stubs_dir
from edgecnn.export_c.kernels import (compact_requant, conv_scratch, fast_requant_pairs,
                                      fold_bias, pack_depthwise)
from edgecnn.reference import params as P
from edgecnn.reference.params import make_relu_params
from edgecnn.reference.quantize import activation_lut  # noqa: F401  (prepare time, Python)

NAME = "c"

# ec_requantize is a static inline in fixedpoint.h; this shim exports it for requantize().
_SHIM = r"""
#include "ec_kernels.h"
void ec_test_requantize(const int32_t *acc, int32_t rows, int32_t channels,
                        const ec_requant_t *rq, int8_t *out) {
    int32_t r, c;
    for (r = 0; r < rows; r++)
        for (c = 0; c < channels; c++)
            out[r * channels + c] = ec_requantize_channel(acc[r * channels + c], rq, c);
}
"""


def _sources():
    stubs = stubs_dir()
    return sorted(p for p in glob.glob(str(stubs / "ec_*.c")) if "ec_port" not in p)


def _build() -> ctypes.CDLL:
    stubs = stubs_dir()
    srcs = _sources()
    digest = hashlib.sha256(_SHIM.encode())
    for path in srcs + sorted(glob.glob(str(stubs / "*.h"))):
        with open(path, "rb") as f:
            digest.update(f.read())
    lib = os.path.join(tempfile.gettempdir(), f"edgecnn-ckernels-{digest.hexdigest()[:16]}.so")
    if not os.path.exists(lib):
        work = tempfile.mkdtemp(prefix="edgecnn-ckernels-")
        shim = os.path.join(work, "shim.c")
        with open(shim, "w") as f:
            f.write(_SHIM)
        tmp = os.path.join(work, "lib.so")
        subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC",
                        "-shared", "-I", str(stubs), *srcs, shim, "-lm", "-o", tmp], check=True)
        os.replace(tmp, lib)
    return ctypes.CDLL(lib)


_lib = _build()
_i8p = ctypes.POINTER(ctypes.c_int8)
_i32p = ctypes.POINTER(ctypes.c_int32)
_f64p = ctypes.POINTER(ctypes.c_double)
_f32p = ctypes.POINTER(ctypes.c_float)


def _ctype(field):
    return ctypes.c_float if field.type == "float" else ctypes.c_int32


def _scalar_struct(cls) -> type:
    """A ctypes struct named like the dataclass ``cls``: int32 fields, float32 for its floats."""
    return type(cls.__name__ + "_c", (ctypes.Structure,),
                {"_fields_": [(f.name, _ctype(f)) for f in dataclasses.fields(cls)]})


def _fill(ctype, record):
    return ctype(*(float(getattr(record, f.name)) if _ctype(f) is ctypes.c_float
                   else int(getattr(record, f.name)) for f in dataclasses.fields(record)))


class Dims(ctypes.Structure):
    _fields_ = [("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class RequantC(ctypes.Structure):
    _fields_ = [("multiplier", _i32p), ("shift", _i32p), ("real_scale", _f64p),
                ("policy", ctypes.c_int32), ("output_offset", ctypes.c_int32),
                ("act_min", ctypes.c_int32), ("act_max", ctypes.c_int32)]


ConvC, DepthwiseC, PoolC, SoftmaxC, ReluC, AddC, ConcatC, MeanC = (
    _scalar_struct(c) for c in (P.ConvParams, P.DepthwiseParams, P.PoolParams, P.SoftmaxParams,
                             P.ReluParams, P.AddParams, P.ConcatParams, P.MeanParams))


class BroadcastC(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int32)] + [
        (name, ctypes.c_int32 * P.MAX_BROADCAST_DIMS) for name in ("size", "stride1", "stride2")]


class ConvLayerC(ctypes.Structure):
    _fields_ = [("in_", Dims), ("out", Dims), ("kh", ctypes.c_int32), ("kw", ctypes.c_int32),
                ("p", ConvC), ("weight", _i8p), ("bias", _i32p), ("rq", RequantC),
                ("rq_per_channel", ctypes.c_int32)]


class DwLayerC(ctypes.Structure):
    _fields_ = [("in_", Dims), ("out", Dims), ("kh", ctypes.c_int32), ("kw", ctypes.c_int32),
                ("p", DepthwiseC), ("weight", ctypes.POINTER(ctypes.c_int16)), ("bias", _i32p),
                ("wsum", _i32p), ("rq2", _i32p), ("rq", RequantC),
                ("rq_per_channel", ctypes.c_int32)]


class FCLayerC(ctypes.Structure):
    _fields_ = [("n_in", ctypes.c_int32), ("n_out", ctypes.c_int32), ("weight", _i8p),
                ("bias", _i32p), ("rq", RequantC), ("rq_per_channel", ctypes.c_int32)]


def _ptr(a: np.ndarray, ptype):
    assert a.flags.c_contiguous, "kernels take C-contiguous arrays"
    return a.ctypes.data_as(ptype)


def _dims(shape3) -> Dims:
    h, w, c = shape3
    return Dims(h, w, c)


def _requant(rq: P.Requant, channels: int):
    """The C record plus the arrays it points to (kept alive by the caller); ``channels`` entries
    per array (1 for a per-tensor record)."""
    arrays = [np.ascontiguousarray(np.broadcast_to(a, (channels,)), dt) for a, dt in
              ((rq.multiplier, np.int32), (rq.shift, np.int32), (rq.real_scale, np.float64))]
    rec = RequantC(_ptr(arrays[0], _i32p), _ptr(arrays[1], _i32p), _ptr(arrays[2], _f64p),
                   rq.policy, rq.output_offset, rq.act_min, rq.act_max)
    return rec, arrays


def _packed(w, bias, input_offset: int, rq: P.Requant):
    """Weights, folded bias and requant record packed as export-c packs them (kernels.py)."""
    wp = np.concatenate([np.ascontiguousarray(w, np.int8).ravel(),
                         np.zeros(-int(np.prod(w.shape[1:])) % 16, np.int8)])
    b = fold_bias(w, np.asarray(bias, np.int32), input_offset, "c_backend")
    rq, per_channel = compact_requant(rq)
    rec, keep = _requant(rq, np.asarray(rq.multiplier).size)
    return wp, b, rec, per_channel, keep


def conv2d_s8(x, w, bias, p: P.ConvParams, rq: P.Requant, out) -> None:
    wp, b, rec, per_channel, keep = _packed(w, bias, p.input_offset, rq)
    layer = ConvLayerC(_dims(x.shape), _dims(out.shape), w.shape[1], w.shape[2],
                       _fill(ConvC, p), _ptr(wp, _i8p), _ptr(b, _i32p), rec, per_channel)
    scratch = np.zeros(conv_scratch((w,)), np.int8)  # the host runs the plain C path
    _lib.ec_conv2d_s8(ctypes.byref(layer), _ptr(x, _i8p), _ptr(out, _i8p),
                      _ptr(scratch, _i8p))


def depthwise_conv2d_s8(x, w, bias, p: P.DepthwiseParams, rq: P.Requant, out) -> None:
    cm = w.shape[2]
    b = np.zeros(cm, np.int32) if bias is None else np.ascontiguousarray(bias, np.int32)
    weight, folded, wsum = pack_depthwise(np.ascontiguousarray(w, np.int8), b, p.input_offset,
                                          "c_backend")
    pairs = fast_requant_pairs(rq, cm)
    rq, per_channel = compact_requant(rq)
    rec, keep = _requant(rq, np.asarray(rq.multiplier).size)
    layer = DwLayerC(_dims(x.shape), _dims(out.shape), w.shape[0], w.shape[1],
                     _fill(DepthwiseC, p), _ptr(weight, ctypes.POINTER(ctypes.c_int16)),
                     _ptr(folded, _i32p), _ptr(wsum, _i32p),
                     None if pairs is None else _ptr(pairs, _i32p), rec, per_channel)
    _lib.ec_depthwise_conv2d_s8(ctypes.byref(layer), _ptr(x, _i8p), _ptr(out, _i8p))


def fully_connected_s8(x, w, bias, p: P.FCParams, rq: P.Requant, out) -> None:
    wp, b, rec, per_channel, keep = _packed(w, bias, p.input_offset, rq)
    layer = FCLayerC(w.shape[1], w.shape[0], _ptr(wp, _i8p), _ptr(b, _i32p), rec, per_channel)
    _lib.ec_fully_connected_s8(ctypes.byref(layer), _ptr(x, _i8p), _ptr(out, _i8p))


def max_pool_s8(x, p: P.PoolParams, out) -> None:
    _lib.ec_max_pool_s8(_ptr(x, _i8p), ctypes.byref(_dims(x.shape)),
                        ctypes.byref(_fill(PoolC, p)), _ptr(out, _i8p),
                        ctypes.byref(_dims(out.shape)))


def avg_pool_s8(x, p: P.PoolParams, out) -> None:
    _lib.ec_avg_pool_s8(_ptr(x, _i8p), ctypes.byref(_dims(x.shape)),
                        ctypes.byref(_fill(PoolC, p)), _ptr(out, _i8p),
                        ctypes.byref(_dims(out.shape)))


def pad_s8(x, pad_top: int, pad_left: int, pad_value: int, out) -> None:
    _lib.ec_pad_s8(_ptr(x, _i8p), ctypes.byref(_dims(x.shape)), pad_top, pad_left, pad_value,
                   _ptr(out, _i8p), ctypes.byref(_dims(out.shape)))


def requantize(acc, rq: P.Requant, out) -> None:
    c = acc.shape[-1] if acc.ndim else 1
    a = np.ascontiguousarray(acc, np.int32).reshape(-1, c)
    rec, keep = _requant(rq, c)
    o = np.empty(a.shape, np.int8)
    _lib.ec_test_requantize(_ptr(a, _i32p), a.shape[0], c, ctypes.byref(rec), _ptr(o, _i8p))
    out[...] = o.reshape(out.shape)


def softmax_s8(x, p: P.SoftmaxParams, out) -> None:
    _lib.ec_softmax_s8(_ptr(x, _i8p), x.size, ctypes.byref(_fill(SoftmaxC, p)), _ptr(out, _i8p))


class SoftmaxFloatC(ctypes.Structure):
    _fields_ = [("exps", _f32p), ("output_scale", ctypes.c_float),
                ("output_offset", ctypes.c_int32)]


def softmax_float_s8(x, p: P.SoftmaxFloatParams, out) -> None:
    exps = np.ascontiguousarray(p.exps, np.float32)
    rec = SoftmaxFloatC(_ptr(exps, _f32p), p.output_scale, p.output_offset)
    _lib.ec_softmax_float_s8(_ptr(x, _i8p), x.size, ctypes.byref(rec), _ptr(out, _i8p))


def quantize_s8(x, scale: float, zero_point: int, out) -> None:
    xf = np.ascontiguousarray(x, np.float32)
    _lib.ec_quantize_s8(_ptr(xf, _f32p), xf.size, ctypes.c_float(float(np.float32(scale))),
                        int(zero_point), _ptr(out, _i8p))


def dequantize_s8(x, scale: float, zero_point: int, out) -> None:
    _lib.ec_dequantize_s8(_ptr(x, _i8p), x.size, ctypes.c_float(float(np.float32(scale))),
                          int(zero_point), _ptr(out, _f32p))


def relu_s8_params(x, p: P.ReluParams, out) -> None:
    _lib.ec_relu_s8_params(_ptr(x, _i8p), x.size, ctypes.byref(_fill(ReluC, p)),
                           _ptr(out, _i8p))


def relu_s8(x, s_in, zp_in, s_out, zp_out, out) -> None:
    relu_s8_params(x, make_relu_params(s_in, zp_in, s_out, zp_out, six=False), out)


def relu6_s8(x, s_in, zp_in, s_out, zp_out, out) -> None:
    relu_s8_params(x, make_relu_params(s_in, zp_in, s_out, zp_out, six=True), out)


def lut_s8(x, lut, out) -> None:
    table = np.ascontiguousarray(lut, np.int8)
    _lib.ec_lut_s8(_ptr(x, _i8p), x.size, _ptr(table, _i8p), _ptr(out, _i8p))


def tanh_s8(x, s_in, zp_in, out) -> None:
    lut_s8(x, activation_lut("tanh", s_in, zp_in, 1.0 / 128, 0), out)


def logistic_s8(x, s_in, zp_in, out) -> None:
    lut_s8(x, activation_lut("logistic", s_in, zp_in, 1.0 / 256, -128), out)


def _broadcast(b: P.Broadcast) -> BroadcastC:
    pad = (0,) * (P.MAX_BROADCAST_DIMS - b.rank)
    arrays = (ctypes.c_int32 * P.MAX_BROADCAST_DIMS)
    return BroadcastC(b.rank, arrays(*b.size, *pad), arrays(*b.stride1, *pad),
                      arrays(*b.stride2, *pad))


def add_s8(x1, x2, p: P.AddParams, out) -> None:
    b = _broadcast(P.make_broadcast(x1.shape, x2.shape))
    _lib.ec_add_s8(_ptr(x1, _i8p), _ptr(x2, _i8p), ctypes.byref(b), ctypes.byref(_fill(AddC, p)),
                   _ptr(out, _i8p))


def bind_add_s8(p: P.AddParams, shape1, shape2, out_shape=None):
    def run(x1, x2, out) -> None:
        add_s8(x1, x2, p, out)
    return run


def concat_s8(inputs, axis: int, p: P.ConcatParams, out) -> None:
    ptrs = (_i8p * len(inputs))(*(_ptr(x, _i8p) for x in inputs))
    copies = (ctypes.c_int32 * len(inputs))(*(int(np.prod(x.shape[axis:])) for x in inputs))
    _lib.ec_concat_s8(ptrs, copies, ctypes.byref(_fill(ConcatC, p)),
                      int(np.prod(out.shape[:axis])), _ptr(out, _i8p))


def mean_s8(x, p: P.MeanParams, out) -> None:
    _lib.ec_mean_s8(_ptr(x, _i8p), ctypes.byref(_dims(x.shape)), ctypes.byref(_fill(MeanC, p)),
                    _ptr(out, _i8p))


def kernel_isa() -> str:
    return "c"
