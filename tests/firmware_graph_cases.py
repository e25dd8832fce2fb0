"""Seeded random DEPTHWISE_CONV_2D, ADD and MEAN cases for tests/test_firmware_kernels.py: each
writes one case into the CaseFile (the format of tests/firmware_kernels.c) packed as export-c
packs it, and returns the NumPy spec's output, or None for a shape with no output.

They reach every path of the firmware kernels: depthwise with depth multiplier 1 (the DSP and
Helium paths) and above (plain C), whole 3x3 windows and clipped ones, dilations, channel
counts off the 4- and 8-lane blocks, the fast policy-double form and every other policy; ADD
with equal shapes, broadcasts along the inner and the outer dimensions, in place, equal input
scales (both operands exact), an output shift of 0 and a multiplier of 0 (the plain C
fallback); MEAN with more than 256 rows (the DSP path's int16 lanes flushed) and a left shift.
"""

from __future__ import annotations

import numpy as np

from edgecnn.export_c.kernels import (compact_requant, exact_requant, fast_requant_pairs,
                                      pack_depthwise)
from edgecnn.reference import add as add_ref
from edgecnn.reference import depthwise_conv as dw_ref
from edgecnn.reference import mean as mean_ref
from edgecnn.reference.params import (DepthwiseParams, broadcast_shape, make_add_params,
                                      make_broadcast, make_mean_params, make_requant)

POLICIES = ("double", "f64", "single", "fp32")
ACTIVATIONS = ("none", "relu", "relu6")
# (H, W, C, M, KH, KW, stride, dilation, pad): DS-CNN's 3x3 on 25x5x64, MobileNet's stride 2,
# a depth multiplier with a 3x3, an 8-lane tail with a 5x5
FIXED_DW = {0: (25, 5, 64, 1, 3, 3, 1, 1, 1), 1: (12, 12, 24, 1, 3, 3, 2, 1, 1),
            2: (7, 6, 5, 2, 3, 3, 1, 1, 1), 3: (9, 9, 13, 1, 5, 5, 1, 1, 2)}


def depthwise_case(rng, i, cases):
    if i in FIXED_DW:
        h, w, c, m, kh, kw, s, d, pad = FIXED_DW[i]
        sh = sw = s
        dh = dw = d
        pt = pl = pad
    else:
        h, w = (int(v) for v in rng.integers(1, 10, size=2))
        c = int(rng.integers(1, 21))
        m = (1, 1, 1, 2, 3)[i % 5]
        kh, kw = (3, 3) if i % 3 == 0 else (int(v) for v in rng.integers(1, 6, size=2))
        sh, sw, dh, dw = (int(v) for v in rng.integers(1, 3, size=4))
        pt, pl = (int(v) for v in rng.integers(0, 3, size=2))
    oh = (h + 2 * pt - (kh - 1) * dh - 1) // sh + 1
    ow = (w + 2 * pl - (kw - 1) * dw - 1) // sw + 1
    if oh < 1 or ow < 1:
        return None
    cm = c * m
    ties = i % 3 == 2
    spread = 4 if ties else 127
    policy, activation = POLICIES[i % 4], ACTIVATIONS[i % 3]
    zp_in = int(rng.integers(-128, 128))
    x = np.clip(zp_in + rng.integers(-spread, spread + 1, size=(h, w, c)), -128, 127)
    x = x.astype(np.int8)
    wt = rng.integers(-spread, spread + 1, size=(kh, kw, cm)).astype(np.int8)
    bias = (rng.integers(-20000, 20000, size=cm) // (300 if ties else 1)).astype(np.int32)
    s_in = float(rng.uniform(0.005, 0.1))
    s_w = rng.uniform(0.002, 0.02, size=cm if i % 2 else 1).astype(np.float32)
    mult = (float(rng.uniform(0.6, 3.0)) if i % 7 == 3 else float(rng.uniform(0.002, 0.45))) \
        if ties else 40 / (5350 * np.sqrt(kh * kw))
    rq = make_requant(s_in, s_w, float(s_in * s_w.mean() / mult), int(rng.integers(-100, 100)),
                      activation, "depthwise", policy)
    p = DepthwiseParams(sh, sw, pt, pl, dh, dw, m, -zp_in)
    expected = np.empty((oh, ow, cm), np.int8)
    dw_ref.depthwise_conv2d_s8(x, wt, bias, p, rq, expected)
    rq = exact_requant(rq, wt.reshape(-1, cm).T, bias, p.input_offset)
    weight, folded, wsum = pack_depthwise(wt, bias, p.input_offset, "case")
    pairs = fast_requant_pairs(rq, cm)
    packed, per_channel = compact_requant(rq)
    cases.ints(5, h, w, c, oh, ow, cm, kh, kw, sh, sw, pt, pl, dh, dw, m, p.input_offset)
    cases.requant(packed, per_channel)
    for a in (weight, folded, wsum):
        cases.array(a)
    cases.array(np.zeros(0, np.int32) if pairs is None else pairs)
    cases.array(x)
    return expected


def _add_shapes(rng, i):
    """(shape1, shape2): equal (ResNet-8's (8, 8, 64) first), or broadcast ones."""
    if i == 0:
        return (8, 8, 64), (8, 8, 64)
    rank = int(rng.integers(1, 5))
    full = tuple(int(v) for v in rng.integers(1, 7, size=rank))
    if i % 3 == 1:
        return full, full
    a, b = list(full), list(full)
    for d in range(rank):
        r = rng.integers(0, 3)
        if r == 1:
            a[d] = 1
        elif r == 2:
            b[d] = 1
    return tuple(a), tuple(b[int(rng.integers(0, rank)):])


def add_case(rng, i, cases):
    shape1, shape2 = _add_shapes(rng, i)
    out_shape = broadcast_shape(shape1, shape2)
    zp1, zp2, zpo = (int(v) for v in rng.integers(-128, 128, size=3))
    s1, s2 = (float(v) for v in rng.uniform(0.005, 0.2, size=2))
    s_out = float(rng.uniform(0.01, 0.4))
    if i == 4:  # output shift 0: 2 * max(s1, s2) / (2^20 * s_out) in [0.5, 1)
        s_out = 1.5 * max(s1, s2) / (1 << 19)
    if i == 5:  # the second scale 2^-40 of the first: its multiplier is 0 (plain C)
        s2 = s1 * 2.0 ** -40
    if i % 6 == 1:  # equal scales: both operands exact
        s2 = s1
    p = make_add_params(s1, zp1, s2, zp2, s_out, zpo, ACTIVATIONS[i % 3])
    x1 = rng.integers(-128, 128, size=shape1).astype(np.int8)
    x2 = rng.integers(-128, 128, size=shape2).astype(np.int8)
    expected = np.empty(out_shape, np.int8)
    add_ref.add_s8(x1, x2, p, expected)
    b = make_broadcast(shape1, shape2)
    inplace = (i % 4 if i % 4 < 3 else 0) if shape1 == shape2 else 0
    cases.ints(6, b.rank, *b.size, *b.stride1, *b.stride2,
               *(getattr(p, f) for f in p.__dataclass_fields__), inplace)
    cases.array(x1)
    cases.array(x2)
    return expected


def mean_case(rng, i, cases):
    h, w = (20, 20) if i == 0 else (int(v) for v in rng.integers(1, 13, size=2))
    c = int(rng.integers(1, 41))
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, size=2))
    s_in = float(rng.uniform(0.01, 0.1))
    s_out = s_in * (float(rng.uniform(0.5, 2.0)) if i != 1 else 0.02)  # i = 1: a left shift
    rounding = "fp32" if i % 3 == 2 else "litert-ref"  # XNNPACK's float rescale every third
    p = make_mean_params((1, h, w, c), [1, 2], s_in, zp_in, s_out, zp_out, rounding)
    x = rng.integers(-128, 128, size=(h, w, c)).astype(np.int8)
    expected = np.empty(c, np.int8)
    mean_ref.mean_s8(x, p, expected)
    cases.ints(7, h, w, c, p.multiplier, p.shift, p.input_offset, p.output_offset, p.count,
               p.policy, *np.array([p.scale, p.bias], np.float32).view(np.int32))
    cases.array(x)
    return expected
