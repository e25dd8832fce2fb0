"""Kernel choice, weight packing, scratch sizes and C records for the firmware's packed kernels.

Each C kernel in firmware_stubs/ has up to three paths, picked at compile time by the core
(firmware_stubs/ec_simd.h): plain C (host, Cortex-M0/M3), DSP (SMLAD; Cortex-M4/M7/M33) and
Helium (VMLADAV; Cortex-M55). export-c packs one layout per op that every path reads, so a
generated project also builds for another core than the one it was generated for, and sizes each
scratch buffer for the most demanding path (the arena planner places it; plan.py).

| kernel             | packing (once, at export)                                  | scratch      |
|--------------------|------------------------------------------------------------|--------------|
| conv2d_s8          | OHWI + (-K) % 16 zero bytes; bias + input_offset * sum(w)  | see below    |
| fully_connected_s8 | (O, N) + (-N) % 16 zero bytes; bias as for conv            | none         |
| max/avg_pool_s8    | none (codegen.py emits them)                               | none         |

Folding the input zero point into the bias lets the inner loops multiply raw int8 (Helium's
VMLADAV takes int8 x int8 only); conv then reads out-of-image taps as the zero point, which
adds ``-input_offset * w`` that the folded bias takes back, the same as skipping the tap.
Requantization arrays hold one entry when every channel shares it. Under LiteRT's f64 rescale
a layer gets the integer policy f64-int when exact_f64.py proves it equal.

A DSP or Helium path for another op (depthwise, ADD, ...): write it under ``#if EC_PATH_DSP`` /
``EC_PATH_MVE`` in the op's .c file; if it wants a packed layout or scratch, add a KernelSpec
to SPECS here (export-c then plans its scratch and emits what ``emit`` returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..reference import params as P
from .exact_f64 import POLICY_F64_INT, accumulator_range, integer_rescale

FORMAT_VERSION = 2  # EC_FORMAT_VERSION in firmware_stubs/ec_kernels.h
PATHS = {"c": "plain C99", "dsp": "Armv7E-M DSP (SMLAD)", "mve": "Helium MVE (VMLADAV)"}


@dataclass(frozen=True)
class KernelSpec:
    scratch: Callable  # (step, args) -> bytes the kernel needs during its step
    emit: Callable  # (Emitter, step, args, src, dst, cn, scratch) -> the C call


MVE_PIXELS = 4  # EC_MVE_PIXELS in firmware_stubs/ec_conv.c


def conv_scratch(step, args) -> int:
    """ec_conv2d_s8: DSP, two interleaved int16 im2col columns plus one int8 column of K4 = K
    rounded up to 4 taps (5 * K4 bytes); Helium, MVE_PIXELS int8 columns of K rounded up to 16;
    plain C none."""
    k = int(np.prod(args[0].shape[1:]))
    return max(5 * (-(-k // 4) * 4), MVE_PIXELS * (-(-k // 16) * 16))


def fold_bias(w: np.ndarray, b: np.ndarray, input_offset: int, where: str) -> np.ndarray:
    """bias + input_offset * sum(w[c]) as int32, after checking the kernels' int32 bound: the
    folded bias (|input_offset| <= 128) plus a running sum of int8 products stays below
    |b| + 256 * sum|w[c]| at every step."""
    w64 = w.reshape(w.shape[0], -1).astype(np.int64)
    b64 = b.astype(np.int64)
    worst = int((np.abs(b64) + 256 * np.abs(w64).sum(axis=1)).max())
    if worst >= 1 << 31:
        raise UnsupportedOpError(f"{where}: the int32 accumulator could reach {worst}; the C "
                                 "kernels accumulate in int32 like TFLite and cannot run it")
    return (b64 + input_offset * w64.sum(axis=1)).astype(np.int32)


def compact_requant(rq: P.Requant) -> tuple[P.Requant, int]:
    """(rq with arrays of length 1 when every channel holds the same values, rq_per_channel)."""
    arrays = [np.asarray(a).ravel() for a in (rq.multiplier, rq.shift, rq.real_scale)]
    if all(a.size == 1 or np.all(a == a[0]) for a in arrays):
        return P.Requant(*(a[:1] for a in arrays), rq.policy, rq.output_offset, rq.act_min,
                         rq.act_max), 0
    n = max(a.size for a in arrays)
    return P.Requant(*(np.broadcast_to(a, (n,)) for a in arrays), rq.policy, rq.output_offset,
                     rq.act_min, rq.act_max), 1


def exact_requant(rq: P.Requant, w, b, input_offset: int) -> P.Requant:
    """Policy f64 becomes f64-int where exact_f64 proves them equal on every accumulator the
    layer can produce; anything else is returned as it is."""
    if rq.policy != P.POLICY_F64:
        return rq
    lo, hi = accumulator_range(w, b, input_offset)
    return integer_rescale(rq, lo, hi) or rq


def rounding_note(rq: P.Requant) -> str:
    return {P.POLICY_DOUBLE: "double", P.POLICY_SINGLE: "single", P.POLICY_FP32: "fp32",
            P.POLICY_F64: "f64 (double-precision float)",
            POLICY_F64_INT: "f64-int (LiteRT's f64, proved equal in integers)"}[rq.policy]


class Emitter:
    """C records for the packed kernels, into codegen's Constants (flash) and layer records;
    ``notes`` collects (layer name, rounding) for the summary and README."""

    def __init__(self, consts, layers: list):
        self.consts, self.layers, self.notes = consts, layers, []
        self.policies = set()

    def call(self, step, kernel: str, args, src: str, dst: str, cn: str, scratch: str):
        """The C statement for a packed kernel, or None when codegen.py emits this one."""
        spec = SPECS.get(kernel)
        return None if spec is None else spec.emit(self, step, args, src, dst, cn, scratch)

    def requant(self, cn: str, rq: P.Requant) -> str:
        self.policies.add(rq.policy)
        rq, per_channel = compact_requant(rq)
        uses_m0 = rq.policy in (P.POLICY_DOUBLE, P.POLICY_SINGLE, POLICY_F64_INT)
        add = self.consts.add
        fields = dict(
            multiplier=add(f"{cn}_multiplier", rq.multiplier, np.int32) if uses_m0 else "0",
            shift=add(f"{cn}_shift", rq.shift, np.int32) if uses_m0 else "0",
            real_scale="0" if uses_m0 else add(f"{cn}_real_scale", rq.real_scale, np.float64),
            policy=rq.policy, output_offset=rq.output_offset, act_min=rq.act_min,
            act_max=rq.act_max)
        body = ", ".join(f".{k} = {v}" for k, v in fields.items())
        return f".rq = {{{body}}}, .rq_per_channel = {per_channel}"

    def weights(self, cn: str, w: np.ndarray, b: np.ndarray) -> str:
        """The weights then the zero bytes the kernels' last loads may reach past the last row:
        16-byte (Helium) and word (DSP) loads over a row of K bytes padded to a multiple of 16
        (of 4) read up to (-K) % 16 bytes beyond it."""
        tail = np.zeros(-int(np.prod(w.shape[1:])) % 16, np.int8)
        wn = self.consts.add(f"{cn}_weight", np.concatenate([w.ravel(), tail]), np.int8)
        return f".weight = {wn}, .bias = {self.consts.add(f'{cn}_bias', b, np.int32)}"


    def config_header(self) -> str:
        """ec_config.h for the project: only the rounding policies its layers use compile."""
        flags = "".join(f"#define EC_ROUND_{name}_USED {int(code in self.policies)}\n"
                        for name, code in (("F64", P.POLICY_F64), ("SINGLE", P.POLICY_SINGLE),
                                           ("FP32", P.POLICY_FP32), ("F64_INT", POLICY_F64_INT)))
        return ("/* Generated by edgecnn export-c: the rounding policies this model's layers use\n"
                " * besides double (see firmware_stubs/ec_config.h). */\n"
                "#ifndef EDGECNN_CONFIG_H\n#define EDGECNN_CONFIG_H\n\n" + flags +
                "\n#endif /* EDGECNN_CONFIG_H */\n")


def _dims(shape) -> str:
    return "{" + ", ".join(str(int(v)) for v in shape) + "}"


def emit_conv(em: Emitter, step, args, src, dst, cn, scratch) -> str:
    w, b, p, rq = args
    where = step.layer.name
    rq = exact_requant(rq, w, b, p.input_offset)
    em.notes.append((where, rounding_note(rq)))
    params = ", ".join(f".{k} = {int(getattr(p, k))}" for k in p.__dataclass_fields__)
    em.layers.append(
        f"static const ec_conv_layer_t {cn}_layer = {{.in = {_dims(step.in_shape)}, "
        f".out = {_dims(step.out_shape)}, .kh = {w.shape[1]}, .kw = {w.shape[2]}, "
        f".p = {{{params}}}, {em.weights(cn, w, fold_bias(w, b, p.input_offset, where))}, "
        f"{em.requant(cn, rq)}}};\n")
    return (f"ec_conv2d_s8(&{cn}_layer, (const int8_t *)({src}), (int8_t *)({dst}), "
            f"(int8_t *)({scratch}));")


def emit_fc(em: Emitter, step, args, src, dst, cn, scratch) -> str:
    w, b, p, rq = args
    where = step.layer.name
    rq = exact_requant(rq, w, b, p.input_offset)
    em.notes.append((where, rounding_note(rq)))
    em.layers.append(
        f"static const ec_fc_layer_t {cn}_layer = {{.n_in = {w.shape[1]}, .n_out = {w.shape[0]}, "
        f"{em.weights(cn, w, fold_bias(w, b, p.input_offset, where))}, {em.requant(cn, rq)}}};\n")
    return f"ec_fully_connected_s8(&{cn}_layer, (const int8_t *)({src}), (int8_t *)({dst}));"


SPECS = {
    "conv2d_s8": KernelSpec(conv_scratch, emit_conv),
    "fully_connected_s8": KernelSpec(lambda step, args: 0, emit_fc),
}


def scratch_bytes(kernel: str, step, args) -> int:
    spec = SPECS.get(kernel)
    return spec.scratch(step, args) if spec is not None else 0
