"""C text for one prepared step: const arrays (flash), parameter records, the kernel call.

Field names of the records are those of edgecnn/reference/params.py; doubles are written as C99
hex float literals, so every scale reaches the C compiler exactly.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError
from ..reference import params as P

def c_double(v: float) -> str:
    return float(v).hex()  # C99 hex float literal: exact, no decimal round trip


class Constants:
    """const arrays in flash, 4-byte aligned, counted for the flash report."""

    CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t",
              np.dtype(np.float64): "double"}

    def __init__(self):
        self.chunks = []
        self.bytes = 0

    def add(self, name: str, values, dtype) -> str:
        a = np.ascontiguousarray(values, dtype).ravel()
        ctype = self.CTYPES[np.dtype(dtype)]
        fmt = c_double if a.dtype == np.float64 else str
        per_line = 4 if a.dtype == np.float64 else 16
        lines = [", ".join(fmt(v) for v in a[i:i + per_line].tolist())
                 for i in range(0, a.size, per_line)]
        body = ",\n    ".join(lines)
        self.chunks.append(f"static const {ctype} {name}[{a.size}] EC_ALIGN(4) = {{\n"
                           f"    {body}}};\n")
        self.bytes += a.nbytes
        return name

    def text(self) -> str:
        return "".join(self.chunks)


def _struct(ctype: str, name: str, fields: dict) -> str:
    body = ", ".join(f".{k} = {v}" for k, v in fields.items())
    return f"static const {ctype} {name} = {{{body}}};\n"

def _check_accumulator(layer, w: np.ndarray, b: np.ndarray):
    """The C kernels accumulate in int32 as TFLite does: refuse a layer that could overflow."""
    per_out = np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1) * 255
    worst = int((per_out + np.abs(b.astype(np.int64))).max())
    if worst >= 1 << 31:
        raise UnsupportedOpError(f"{layer.name}: the int32 accumulator could reach {worst}; the C "
                                 "kernels accumulate in int32 like TFLite and cannot run it")


def _requant(consts, cname: str, rq: P.Requant, channels: int, lines: list) -> str:
    """Per-tensor arrays (length 1) are broadcast: the C kernels index them per channel."""
    rq = P.Requant(*(np.broadcast_to(a, (channels,)) for a in (rq.multiplier, rq.shift,
                                                                  rq.real_scale)),
                   rq.policy, rq.output_offset, rq.act_min, rq.act_max)
    uses_m0 = rq.policy in (P.POLICY_DOUBLE, P.POLICY_SINGLE)
    fields = {
        "multiplier": (consts.add(f"{cname}_multiplier", rq.multiplier, np.int32)
                       if uses_m0 else "0"),
        "shift": consts.add(f"{cname}_shift", rq.shift, np.int32) if uses_m0 else "0",
        "real_scale": "0" if uses_m0 else consts.add(f"{cname}_real_scale", rq.real_scale,
                                                     np.float64),
        "policy": rq.policy, "output_offset": rq.output_offset, "act_min": rq.act_min,
        "act_max": rq.act_max}
    lines.append(_struct("ec_requant_t", f"{cname}_requant", fields))
    return f"&{cname}_requant"


def _params(ctype: str, cname: str, p, lines: list) -> str:
    lines.append(_struct(ctype, f"{cname}_params", {k: int(getattr(p, k))
                                                    for k in p.__dataclass_fields__}))
    return f"&{cname}_params"


def layer_call(step, kernel, args, consts, layers, src, dst, cn) -> str:
    """The C statement for one step; parameter records go to ``layers``, arrays to ``consts``.
    ``cn`` is the step's identifier prefix (ctext.identifier: edgecnn's own, never a name
    from the model)."""
    layer = step.layer
    i8, o8 = f"(const int8_t *)({src})", f"(int8_t *)({dst})"
    if kernel in ("conv2d_s8", "max_pool_s8", "avg_pool_s8", "pad_s8"):
        for which, shape in (("in", step.in_shape), ("out", step.out_shape)):
            layers.append(_struct("ec_dims_t", f"{cn}_{which}", dict(zip("hwc", shape))))
    if kernel == "conv2d_s8":
        w, b, p, rq = args
        _check_accumulator(layer, w, b)
        wn, bn = consts.add(f"{cn}_weight", w, np.int8), consts.add(f"{cn}_bias", b, np.int32)
        pp, rp = _params("ec_conv_params_t", cn, p, layers), _requant(consts, cn, rq, w.shape[0],
                                                                       layers)
        return (f"ec_conv2d_s8({i8}, &{cn}_in, {wn}, {w.shape[1]}, {w.shape[2]}, {bn}, {pp}, "
                f"{rp}, {o8}, &{cn}_out);")
    if kernel == "fully_connected_s8":
        w, b, p, rq = args
        _check_accumulator(layer, w, b)
        wn, bn = consts.add(f"{cn}_weight", w, np.int8), consts.add(f"{cn}_bias", b, np.int32)
        pp, rp = _params("ec_fc_params_t", cn, p, layers), _requant(consts, cn, rq, w.shape[0],
                                                                       layers)
        return (f"ec_fully_connected_s8({i8}, {w.shape[1]}, {wn}, {bn}, {pp}, {rp}, {o8}, "
                f"{w.shape[0]});")
    if kernel in ("max_pool_s8", "avg_pool_s8"):
        pp = _params("ec_pool_params_t", cn, args[0], layers)
        return f"ec_{kernel}({i8}, &{cn}_in, {pp}, {o8}, &{cn}_out);"
    if kernel == "pad_s8":
        top, left, value = args
        return f"ec_pad_s8({i8}, &{cn}_in, {top}, {left}, {value}, {o8}, &{cn}_out);"
    n = math.prod(step.in_shape)
    if kernel == "softmax_s8":
        pp = _params("ec_softmax_params_t", cn, args[0], layers)
        return f"ec_softmax_s8({i8}, {n}, {pp}, {o8});"
    if kernel == "relu_s8_params":
        pp = _params("ec_relu_params_t", cn, args[0], layers)
        return f"ec_relu_s8_params({i8}, {n}, {pp}, {o8});"
    if kernel == "lut_s8":
        return f"ec_lut_s8({i8}, {n}, {consts.add(f'{cn}_lut', args[0], np.int8)}, {o8});"
    if kernel == "quantize_s8":
        scale, zp = args
        return (f"ec_quantize_s8((const float *)({src}), {n}, (float){c_double(scale)}, {zp}, "
                f"{o8});")
    if kernel == "dequantize_s8":
        scale, zp = args
        return f"ec_dequantize_s8({i8}, {n}, (float){c_double(scale)}, {zp}, (float *)({dst}));"
    raise UnsupportedOpError(f"{layer.name}: export-c has no C kernel for {kernel}")
