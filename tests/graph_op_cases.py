"""Shared configurations of the graph-op kernel tests (test_graph_op_kernels*.py): broadcast
forms, quantizations that hit ties and the int8 extremes, concat and MEAN cases."""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("none", "relu", "relu6")
# (shape1, shape2) per broadcast form: same shape, per channel both ways, scalar (rank 1 and
# rank 0), one spatial axis, and a two-way broadcast where each operand repeats on an axis.
BROADCASTS = {
    "same": ((1, 5, 6, 7), (1, 5, 6, 7)),
    "channel_4d": ((1, 5, 6, 7), (1, 1, 1, 7)),
    "channel_1d": ((7,), (1, 5, 6, 7)),
    "scalar": ((1, 4, 3, 9), (1,)),
    "scalar_rank0": ((), (2, 3, 5)),
    "row": ((1, 5, 1, 7), (1, 5, 6, 7)),
    "two_way": ((1, 5, 1, 7), (1, 1, 6, 1)),
}


def add_quant(rng, ties: bool):
    """(s1, zp1, s2, zp2, s_out, zp_out); ``ties``: power-of-two ratios, so the roundings meet
    exact halves; zero points often at the int8 extremes."""
    if ties:
        base = float(rng.uniform(0.01, 0.05))
        s1, s2, s_out = (base * 2.0 ** int(k) for k in rng.integers(-3, 4, size=3))
    else:
        s1, s2 = (float(v) for v in rng.uniform(0.002, 0.2, size=2))
        s_out = float(max(s1, s2) * rng.uniform(0.3, 3.0))
    zp = [int(rng.choice([-128, 127])) if rng.random() < 0.3 else int(rng.integers(-128, 128))
          for _ in range(3)]
    return s1, zp[0], s2, zp[1], s_out, zp[2]


def int8(rng, shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


# Quantizations for the all-pairs test: ties, zero points at the extremes, an input whose
# multiplier underflows to 0 (s2 / (2 s1) < 2^-32), an output scale near the smallest allowed.
ADD_ALL_PAIRS = [(0.05, -128, 0.05, 127, 0.1, 0), (0.02, 127, 0.08, -128, 0.03, -128),
                 (0.0371, 3, 0.0123, -7, 0.0456, 11), (1.0, 0, 1e-10, 5, 0.01, 0),
                 (0.5, -1, 0.25, 1, 0.5 * 2.0 ** -18, 0)]


def concat_case(rng, n_inputs, rank, axis):
    base = [int(v) for v in rng.integers(1, 6, size=rank)]
    shapes = [tuple(int(rng.integers(1, 5)) if k == axis else d for k, d in enumerate(base))
              for _ in range(n_inputs)]
    return [int8(rng, s) for s in shapes]


def mean_quant(rng, equal: bool, ties: bool):
    s_in = 2.0 ** -int(rng.integers(3, 8)) if ties else float(rng.uniform(0.005, 0.2))
    zp_in = int(rng.choice([-128, 127])) if rng.random() < 0.3 else int(rng.integers(-128, 128))
    if equal:
        return s_in, zp_in, s_in, zp_in
    s_out = s_in * 2.0 ** int(rng.integers(-2, 3)) if ties else float(rng.uniform(0.002, 0.3))
    return s_in, zp_in, s_out, int(rng.integers(-128, 128))


MEAN_SHAPES = [(1, 1, 8), (2, 2, 3), (7, 7, 1280), (3, 5, 33), (13, 1, 4), (1, 9, 17), (8, 8, 300)]


def all_sums(h, w):
    """x (h, w, C) whose C = 255 * h * w + 1 channels sum to every value the int8 sum can take."""
    n = h * w
    sums = np.arange(-128 * n, 127 * n + 1)
    base = np.floor_divide(sums, n)
    return (base + (np.arange(n)[:, None] < sums - base * n)).astype(np.int8).reshape(h, w, -1)


MEAN_SWEEPS = [(7, 7, 0.1, 0, 0.1, 0), (3, 5, 0.05, -128, 0.1, 7), (2, 2, 0.0371, 20, 0.0123, -5),
               (1, 1, 0.5, 127, 0.031, -128), (6, 6, 0.0123, -3, 0.0371, 100)]


# H * W * 127 just above 2^31: LiteRT's int32 sum wraps (a wrong mean, reproduced exactly), and
# a zero point that brings sum - zp * count back into range (exact).
MEAN_WRAP = [(4113, 4113, 1, 127, 0.01, 0, 0.01, 0), (4113, 4113, 1, 127, 0.01, 127, 0.02, 3)]
