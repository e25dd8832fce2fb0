"""C text for one prepared step: const arrays (flash), parameter records, the kernel call.

Field names of the records are those of edgecnn/reference/params.py; doubles are written as C99
hex float literals, so every scale reaches the C compiler exactly.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError


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


def _params(ctype: str, cname: str, p, lines: list) -> str:
    lines.append(_struct(ctype, f"{cname}_params", {k: int(getattr(p, k))
                                                    for k in p.__dataclass_fields__}))
    return f"&{cname}_params"


def layer_call(step, kernel, args, consts, layers, src, dst, cn) -> str:
    """The C statement for one step; parameter records go to ``layers``, arrays to ``consts``.
    Conv and fully connected are packed and emitted by kernels.py (Emitter.call).
    ``cn`` is the step's identifier prefix (ctext.identifier: edgecnn's own, never a name
    from the model)."""
    layer = step.layer
    i8, o8 = f"(const int8_t *)({src})", f"(int8_t *)({dst})"
    if kernel in ("max_pool_s8", "avg_pool_s8", "pad_s8"):
        for which, shape in (("in", step.in_shape), ("out", step.out_shape)):
            layers.append(_struct("ec_dims_t", f"{cn}_{which}", dict(zip("hwc", shape))))
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
