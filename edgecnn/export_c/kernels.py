"""Kernel choice, weight packing, scratch sizes and C records for the firmware's packed kernels.

Each C kernel in firmware_stubs/ has up to three paths, picked at compile time by the core
(firmware_stubs/ec_simd.h): plain C (host, Cortex-M0/M3), DSP (SMLAD; Cortex-M4/M7/M33) and
Helium (VMLADAV; Cortex-M55). export-c packs one layout per op that every path reads, so a
generated project also builds for another core than the one it was generated for, and sizes each
scratch buffer for the most demanding path (the arena planner places it; plan.py).

| kernel             | packing (once, at export)                                  | scratch      |
|--------------------|------------------------------------------------------------|--------------|
| conv2d_s8          | OHWI + (-K) % 16 zero bytes; bias + input_offset * sum(w)  | see below    |
| depthwise_conv2d_s8| int16 (ceil(C*M / 8), KH * KW, 8), zeros past C*M; bias as | none         |
|                    | for conv, weight sums, both padded to 8; (2 M0, -shift - 1)|              |
| fully_connected_s8 | (O, N) + (-N) % 16 zero bytes; bias as for conv            | none         |
| max/avg_pool_s8    | none (edgecnn/ops/pool.py emits them)                      | none         |

Folding the input zero point into the bias lets the inner loops multiply raw int8 (Helium's
VMLADAV takes int8 x int8 only); conv then reads out-of-image taps as the zero point, which
adds ``-input_offset * w`` that the folded bias takes back, the same as skipping the tap.
Requantization arrays hold one entry when every channel shares it. Under LiteRT's f64 rescale
a layer gets the integer policy f64-int when exact_f64.py proves it equal.

A DSP or Helium path for another op (depthwise, ADD, ...): write it under ``#if EC_PATH_DSP`` /
``EC_PATH_MVE`` in the op's .c file (ec_simd.h has the path macros and shared helpers). If it
wants a packed layout, write the op's ``emit_c`` (edgecnn/ops/) as emit_conv does here (fold the
bias, compact the requant arrays, pad the weights); if it wants scratch, add its size function
to SCRATCH: export-c plans it in the arena (edgecnn/memory.py) and hands its address to
``emit_c`` as ``c.scratch``.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..reference import params as P
from .exact_f64 import POLICY_F64_INT, accumulator_range, integer_rescale

FORMAT_VERSION = 4  # EC_FORMAT_VERSION in firmware_stubs/ec_kernels.h
PATHS = {"c": "plain C99", "dsp": "Armv7E-M DSP (SMLAD)", "mve": "Helium MVE (VMLADAV)"}


MVE_PIXELS = 4  # EC_MVE_PIXELS in firmware_stubs/ec_conv.c


def conv_scratch(args) -> int:
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


class ExportLog:
    """What an export learned while emitting: the rounding policies in use (ec_config.h compiles
    only those) and, per packed layer, the rounding it runs (summary, README)."""

    def __init__(self):
        self.notes, self.policies = [], set()

    def config_header(self) -> str:
        """ec_config.h for the project: only the rounding policies its layers use compile."""
        flags = "".join(f"#define EC_ROUND_{name}_USED {int(code in self.policies)}\n"
                        for name, code in (("F64", P.POLICY_F64), ("SINGLE", P.POLICY_SINGLE),
                                           ("FP32", P.POLICY_FP32), ("F64_INT", POLICY_F64_INT)))
        return ("/* Generated by edgecnn export-c: the rounding policies this model's layers use\n"
                " * besides double (see firmware_stubs/ec_config.h). */\n"
                "#ifndef EDGECNN_CONFIG_H\n#define EDGECNN_CONFIG_H\n\n" + flags +
                "\n#endif /* EDGECNN_CONFIG_H */\n")


def _requant_fields(c, rq: P.Requant) -> str:
    """The layer record's ``.rq`` (arrays of one entry when all channels share them)."""
    if c.log is not None:
        c.log.policies.add(rq.policy)
    rq, per_channel = compact_requant(rq)
    uses_m0 = rq.policy in (P.POLICY_DOUBLE, P.POLICY_SINGLE, POLICY_F64_INT)
    fields = dict(
        multiplier=c.const("multiplier", rq.multiplier, np.int32) if uses_m0 else "0",
        shift=c.const("shift", rq.shift, np.int32) if uses_m0 else "0",
        real_scale="0" if uses_m0 else c.const("real_scale", rq.real_scale, np.float64),
        policy=rq.policy, output_offset=rq.output_offset, act_min=rq.act_min,
        act_max=rq.act_max)
    body = ", ".join(f".{k} = {v}" for k, v in fields.items())
    return f".rq = {{{body}}}, .rq_per_channel = {per_channel}"


def _weights(c, w: np.ndarray, b: np.ndarray) -> str:
    """The weights then the zero bytes the kernels' last loads may reach past the last row:
    16-byte (Helium) and word (DSP) loads over a row of K bytes padded to a multiple of 16
    (of 4) read up to (-K) % 16 bytes beyond it."""
    tail = np.zeros(-int(np.prod(w.shape[1:])) % 16, np.int8)
    wn = c.const("weight", np.concatenate([w.ravel(), tail]), np.int8)
    return f".weight = {wn}, .bias = {c.const('bias', b, np.int32)}"


def _dims(shape) -> str:
    return "{" + ", ".join(str(int(v)) for v in shape) + "}"


def _packed_requant(node, c, w, b, p, rq):
    rq = exact_requant(rq, w, b, p.input_offset)
    if c.log is not None:
        c.log.notes.append((node.name, rounding_note(rq)))
    return rq


def emit_conv(node, call, c) -> str:
    """ops/conv2d.py's C: the packed layer record and the ec_conv2d_s8 call."""
    w, b, p, rq = call.args
    rq = _packed_requant(node, c, w, b, p, rq)
    params = ", ".join(f".{k} = {int(getattr(p, k))}" for k in p.__dataclass_fields__)
    c.records.append(
        f"static const ec_conv_layer_t {c.prefix}_layer = {{.in = {_dims(call.in_shapes[0])}, "
        f".out = {_dims(call.out_shape)}, .kh = {w.shape[1]}, .kw = {w.shape[2]}, "
        f".p = {{{params}}}, {_weights(c, w, fold_bias(w, b, p.input_offset, node.name))}, "
        f"{_requant_fields(c, rq)}}};\n")
    return f"ec_conv2d_s8(&{c.prefix}_layer, {c.src(0)}, {c.dst}, (int8_t *)({c.scratch}));"


def pack_depthwise(w: np.ndarray, b: np.ndarray, input_offset: int, where: str):
    """(weights, bias, wsum) of ec_dw_layer_t from w (KH, KW, C*M): int16 blocks of 8 output
    channels, each the KH * KW taps of its 8 channels (zeros past C*M), so the DSP path loads 2
    channels per word and Helium 8 per vector, tap after tap; the bias folded as for conv (the
    accumulator bound checked there) and each channel's weight sum (bias - input_offset * wsum
    is the unfolded bias, for windows that skip out-of-image taps), padded to 8 a block."""
    kh, kw, cm = w.shape
    blocks = -(-cm // 8)
    taps = np.zeros((kh * kw, 8 * blocks), np.int16)
    taps[:, :cm] = w.reshape(kh * kw, cm)
    bias = np.zeros(8 * blocks, np.int32)
    bias[:cm] = fold_bias(taps[:, :cm].T, b, input_offset, where)
    wsum = taps.astype(np.int32).sum(axis=0, dtype=np.int32)
    return taps.reshape(kh * kw, blocks, 8).transpose(1, 0, 2).copy(), bias, wsum


def fast_requant_pairs(rq: P.Requant, channels: int):
    """ec_dw_layer_t.rq2: under policy double with every multiplier below 0.5 (M0 >= 2^30,
    shift <= -1: ec_rq_right_ok), per channel (2 * M0 as int32, -shift - 1), padded with zero
    pairs to a multiple of 8 channels (Helium reads a block's 8 pairs at once); None for any
    other requantization."""
    m0 = np.broadcast_to(np.asarray(rq.multiplier, np.int64).ravel(), (channels,))
    shift = np.broadcast_to(np.asarray(rq.shift, np.int64).ravel(), (channels,))
    if rq.policy != P.POLICY_DOUBLE or np.any(m0 < 1 << 30) or np.any(shift > -1):
        return None
    pairs = np.zeros((-(-channels // 8) * 8, 2), np.int64)
    pairs[:channels, 0] = (2 * m0) - (1 << 32)  # 2 * M0 >= 2^31, as the int32 SMMLAR reads it
    pairs[:channels, 1] = -shift - 1
    return pairs.astype(np.int32)


def emit_depthwise(node, call, c) -> str:
    """ops/depthwise_conv2d.py's C: the packed layer record and the ec_depthwise_conv2d_s8 call."""
    w, b, p, rq = call.args
    rq = _packed_requant(node, c, w.reshape(-1, w.shape[2]).T, b, p, rq)
    weight, bias, wsum = pack_depthwise(w, b, p.input_offset, node.name)
    pairs = fast_requant_pairs(rq, w.shape[2])
    params = ", ".join(f".{k} = {int(getattr(p, k))}" for k in p.__dataclass_fields__)
    c.records.append(
        f"static const ec_dw_layer_t {c.prefix}_layer = {{.in = {_dims(call.in_shapes[0])}, "
        f".out = {_dims(call.out_shape)}, .kh = {w.shape[0]}, .kw = {w.shape[1]}, "
        f".p = {{{params}}}, .weight = {c.const('weight', weight, np.int16)}, "
        f".bias = {c.const('bias', bias, np.int32)}, .wsum = {c.const('wsum', wsum, np.int32)}, "
        f".rq2 = {'0' if pairs is None else c.const('rq2', pairs, np.int32)}, "
        f"{_requant_fields(c, rq)}}};\n")
    return f"ec_depthwise_conv2d_s8(&{c.prefix}_layer, {c.src(0)}, {c.dst});"


def emit_fc(node, call, c) -> str:
    """ops/fully_connected.py's C: the packed layer record and the call."""
    w, b, p, rq = call.args
    rq = _packed_requant(node, c, w, b, p, rq)
    c.records.append(
        f"static const ec_fc_layer_t {c.prefix}_layer = {{.n_in = {w.shape[1]}, "
        f".n_out = {w.shape[0]}, {_weights(c, w, fold_bias(w, b, p.input_offset, node.name))}, "
        f"{_requant_fields(c, rq)}}};\n")
    return f"ec_fully_connected_s8(&{c.prefix}_layer, {c.src(0)}, {c.dst});"


SCRATCH = {"conv2d_s8": conv_scratch}  # kernel -> (args) -> bytes during its step


def scratch_bytes(call) -> int:
    """Bytes of arena scratch the step's kernel needs (0 for most)."""
    size = SCRATCH.get(call.kernel)
    return size(call.args) if size is not None else 0
