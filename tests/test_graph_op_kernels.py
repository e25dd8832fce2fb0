"""int8 ADD, CONCATENATION and MEAN on every backend (reference, cython, the firmware's C)
against the NumPy spec bit for bit: seeded random configurations, every (x1, x2) pair of ADD,
every sum of MEAN, every ISA path of the Cython ADD; hand-checkable cases; the makers' refusals
that need no LiteRT (tests/test_graph_op_kernels_litert.py proves the spec against LiteRT)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import edgecnn.backends.reference as spec
from edgecnn.backends import cython as K
from edgecnn.reference.float_ops import add_f32, concat_f32, mean_f32
from edgecnn.reference.params import (ConcatParams, broadcast_shape, concat_shape,
                                      make_add_params, make_concat_params, make_mean_params,
                                      mean_shape)
from exact import assert_exact
from graph_op_cases import (ACTIVATIONS, ADD_ALL_PAIRS, BROADCASTS, MEAN_SHAPES, MEAN_SWEEPS,
                            MEAN_WRAP, add_quant, all_sums, concat_case, int8,
                            mean_quant)


# ---------------------------------------------------------------- every backend vs the spec


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("form", list(BROADCASTS))
def test_add_random(backend, form, activation):
    rng = np.random.default_rng([1, list(BROADCASTS).index(form), ACTIVATIONS.index(activation)])
    for i in range(6):
        shape1, shape2 = BROADCASTS[form][::-1] if i % 2 else BROADCASTS[form]
        s1, zp1, s2, zp2, s_out, zp_out = add_quant(rng, ties=i % 3 == 2)
        p = make_add_params(s1, zp1, s2, zp2, s_out, zp_out, activation)
        x1, x2 = int8(rng, shape1), int8(rng, shape2)
        out_shape = broadcast_shape(shape1, shape2)
        out, expected = np.empty(out_shape, np.int8), np.empty(out_shape, np.int8)
        backend.add_s8(x1, x2, p, out)
        spec.add_s8(x1, x2, p, expected)
        assert_exact(out, expected, f"add {form} case {i}: {p}")


@pytest.mark.parametrize("case", range(len(ADD_ALL_PAIRS)))
def test_add_all_int8_pairs(backend, case):
    """All 65536 (x1, x2) pairs, as a two-way broadcast (256, 1) + (1, 256) and flat."""
    p = make_add_params(*ADD_ALL_PAIRS[case], "relu" if case == 2 else "none")
    values = np.arange(-128, 128, dtype=np.int8)
    x1, x2 = values[:, None], values[None, :]
    expected = np.empty((256, 256), np.int8)
    spec.add_s8(x1, x2, p, expected)
    out = np.empty((256, 256), np.int8)
    backend.add_s8(x1, x2, p, out)
    assert_exact(out, expected, f"add all pairs, broadcast, {p}")
    flat1, flat2 = (np.ascontiguousarray(a).reshape(-1) for a in np.broadcast_arrays(x1, x2))
    backend.add_s8(flat1, flat2, p, out.reshape(-1))
    assert_exact(out, expected, f"add all pairs, flat, {p}")


def test_add_in_place(backend):
    """out may be x1 or x2 (same shape as out): the ADD an arena planner runs in place."""
    rng = np.random.default_rng(3)
    p = make_add_params(0.03, -5, 0.07, 20, 0.08, -3, "relu")
    for shape2 in [(3, 40, 70), (70,)]:
        x1, x2 = int8(rng, (3, 40, 70)), int8(rng, shape2)
        expected = np.empty(x1.shape, np.int8)
        spec.add_s8(x1, x2, p, expected)
        a, b = x1.copy(), x2.copy()
        backend.add_s8(a, b, p, a)
        assert_exact(a, expected, f"add into x1, x2 {shape2}")
        if shape2 == x1.shape:
            backend.add_s8(x1, b, p, b)
            assert_exact(b, expected, "add into x2")


@pytest.mark.parametrize("isa", K.supported_isas())
def test_add_every_isa_path(isa):
    """The Cython ADD loop compiled per ISA (generic, avx2, avx512...), each one forced."""
    rng = np.random.default_rng(4)
    K.force_isa(isa)
    try:
        for i in range(12):
            shape1, shape2 = (s[:-1] + (s[-1] * 37 if s[-1] > 1 else 1,) if s else s
                              for s in list(BROADCASTS.values())[i % len(BROADCASTS)])
            if i % 2:  # inner runs of 37 * C: past the 512-element block, odd vector tails
                shape1, shape2 = shape2, shape1
            p = make_add_params(*add_quant(rng, ties=i % 2 == 1), ACTIVATIONS[i % 3])
            x1, x2 = int8(rng, shape1), int8(rng, shape2)
            out_shape = broadcast_shape(shape1, shape2)
            out, expected = np.empty(out_shape, np.int8), np.empty(out_shape, np.int8)
            run = K.bind_add_s8(p, shape1, shape2)
            assert run.isa == isa
            run(x1, x2, out)
            spec.add_s8(x1, x2, p, expected)
            assert_exact(out, expected, f"add on {isa}, case {i}")
        values = np.arange(-128, 128, dtype=np.int8)
        for q in ADD_ALL_PAIRS:
            p = make_add_params(*q, "none")
            out, expected = np.empty((256, 256), np.int8), np.empty((256, 256), np.int8)
            K.bind_add_s8(p, (256, 1), (1, 256))(values[:, None], values[None, :], out)
            spec.add_s8(values[:, None], values[None, :], p, expected)
            assert_exact(out, expected, f"add all pairs on {isa}, {q}")
    finally:
        K.force_isa("auto")


def test_add_two_threads():
    """ADDs from 32768 outputs on are split over the pool: blocks of broadcast runs (all
    65536 pairs as (256, 1) + (1, 256)) and pieces of one flat run (in place, odd length)."""
    rng = np.random.default_rng(5)
    p = make_add_params(*ADD_ALL_PAIRS[0], "relu")
    values = np.arange(-128, 128, dtype=np.int8)
    K.set_num_threads(2)
    try:
        out, expected = np.empty((256, 256), np.int8), np.empty((256, 256), np.int8)
        K.bind_add_s8(p, (256, 1), (1, 256))(values[:, None], values[None, :], out)
        spec.add_s8(values[:, None], values[None, :], p, expected)
        assert_exact(out, expected, "add all pairs, 2 threads")
        x1, x2 = int8(rng, (100003,)), int8(rng, (100003,))
        expected = np.empty(x1.shape, np.int8)
        spec.add_s8(x1, x2, p, expected)
        K.bind_add_s8(p, x1.shape, x2.shape)(x1, x2, x1)
        assert_exact(x1, expected, "flat add in place, 2 threads")
    finally:
        K.set_num_threads(1)


@pytest.mark.parametrize("isa", K.supported_isas())
def test_mean_every_isa_path(isa):
    """The Cython MEAN (its requantization vectorizes per ISA) on every path, every sum, both
    arithmetics (the reference's and XNNPACK's)."""
    K.force_isa(isa)
    try:
        for (h, w, *quant), rounding in zip(MEAN_SWEEPS * 2, ["litert-ref", "fp32"] * 5):
            x = all_sums(h, w)
            p = make_mean_params((1,) + x.shape, [1, 2], *quant, rounding)
            out, expected = np.empty(x.shape[2], np.int8), np.empty(x.shape[2], np.int8)
            K.mean_s8(x, p, out)
            spec.mean_s8(x, p, expected)
            assert_exact(out, expected, f"mean on {isa} over {h}x{w}: {p}")
    finally:
        K.force_isa("auto")


@pytest.mark.parametrize("n_inputs", [2, 3, 4])
def test_concat_random(backend, n_inputs):
    rng = np.random.default_rng([5, n_inputs])
    for rank in range(1, 5):
        for axis in range(rank):
            xs = concat_case(rng, n_inputs, rank, axis)
            shape = concat_shape([x.shape for x in xs], axis - rank)  # negative axis, normalized
            p = make_concat_params([(0.05, -3)] * n_inputs, (0.05, -3))
            out, expected = np.empty(shape, np.int8), np.empty(shape, np.int8)
            backend.concat_s8(xs, axis, p, out)
            spec.concat_s8(xs, axis, p, expected)
            assert_exact(out, expected, f"concat axis {axis} of {[x.shape for x in xs]}")


def test_concat_many_inputs(backend):
    """70 inputs: more than the Cython kernel joins per pass (64)."""
    rng = np.random.default_rng(11)
    xs = [int8(rng, (2, int(rng.integers(1, 4)), 3)) for _ in range(70)]
    shape = concat_shape([x.shape for x in xs], 1)
    p = make_concat_params([(0.1, 0)] * 70, (0.1, 0))
    out, expected = np.empty(shape, np.int8), np.empty(shape, np.int8)
    backend.concat_s8(xs, 1, p, out)
    spec.concat_s8(xs, 1, p, expected)
    assert_exact(out, expected, "concat of 70 inputs")


@pytest.mark.parametrize("quant", ["equal", "different", "ties"])
def test_mean_random(backend, quant):
    rng = np.random.default_rng([6, ("equal", "different", "ties").index(quant)])
    for h, w, c in MEAN_SHAPES:
        s_in, zp_in, s_out, zp_out = mean_quant(rng, quant == "equal", quant == "ties")
        x = int8(rng, (h, w, c))
        if quant == "ties":
            x = np.clip(zp_in + rng.integers(-3, 4, size=x.shape), -128, 127).astype(np.int8)
        p = make_mean_params((1, h, w, c), [1, 2], s_in, zp_in, s_out, zp_out)
        out, expected = np.empty(c, np.int8), np.empty(c, np.int8)
        backend.mean_s8(x, p, out)
        spec.mean_s8(x, p, expected)
        assert_exact(out, expected, f"mean {(h, w, c)}: {p}")


def test_mean_fp32_random(backend):
    """XNNPACK's MEAN (--rounding fp32): random shapes and quantizations, every sum of three
    sweeps, and sums past 2^24 where float32(sum) itself rounds."""
    rng = np.random.default_rng(61)
    cases = []
    for i in range(12):
        h, w = (int(v) for v in rng.integers(1, 16, size=2))
        cases.append((int8(rng, (h, w, int(rng.integers(1, 300)))),
                      mean_quant(rng, equal=i % 3 == 0, ties=i % 3 == 2)))
    cases += [(all_sums(h, w), tuple(q)) for h, w, *q in MEAN_SWEEPS[:3]]
    big = np.full((400, 400, 3), 127, np.int8)  # sum 127 * 160000 > 2^24
    big[0, 0] = (126, 125, 124)
    cases.append((big, (0.01, -5, 0.02, 3)))
    for x, quant in cases:
        p = make_mean_params((1,) + x.shape, [1, 2], *quant, "fp32")
        out, expected = np.empty(x.shape[2], np.int8), np.empty(x.shape[2], np.int8)
        backend.mean_s8(x, p, out)
        spec.mean_s8(x, p, expected)
        assert_exact(out, expected, f"fp32 mean {x.shape}: {p}")


@pytest.mark.parametrize("case", range(len(MEAN_SWEEPS)))
def test_mean_every_sum(backend, case):
    h, w, *quant = MEAN_SWEEPS[case]
    x = all_sums(h, w)
    p = make_mean_params((1,) + x.shape, [1, 2], *quant)
    out, expected = np.empty(x.shape[2], np.int8), np.empty(x.shape[2], np.int8)
    backend.mean_s8(x, p, out)
    spec.mean_s8(x, p, expected)
    assert_exact(out, expected, f"mean of every sum over {h}x{w}: {p}")


@pytest.mark.parametrize("case", range(len(MEAN_WRAP)))
def test_mean_int32_sum_wraps(backend, case):
    h, w, c, value, s_in, zp_in, s_out, zp_out = MEAN_WRAP[case]
    x = np.full((h, w, c), value, np.int8)
    x[0, 0, 0] = value - 1
    p = make_mean_params((1, h, w, c), [1, 2], s_in, zp_in, s_out, zp_out)
    out, expected = np.empty(c, np.int8), np.empty(c, np.int8)
    backend.mean_s8(x, p, out)
    spec.mean_s8(x, p, expected)
    assert_exact(out, expected, f"mean wrap case {case}")


# ---------------------------------------------------------------- hand-checkable cases


def test_add_hand(backend):
    """[[0.5, -1.0], [1.0, 1.0]] + [0.25, 0.5] per column at scales 1/8 and 1/4 into 1/8; then
    [1.0, 1.0] + [-3.0, 0.0] with a ReLU that floors -2.0 at the output zero point."""
    p = make_add_params(0.125, 0, 0.25, 0, 0.125, 0, "none")
    x1 = np.array([[4, -8], [8, 8]], np.int8)  # [[0.5, -1.0], [1.0, 1.0]]
    x2 = np.array([1, 2], np.int8)  # [0.25, 0.5] per column
    out = np.empty((2, 2), np.int8)
    backend.add_s8(x1, x2, p, out)
    np.testing.assert_array_equal(out, [[6, -4], [10, 12]])
    p = make_add_params(0.125, 0, 0.125, 0, 0.125, -10, "relu")
    backend.add_s8(np.array([8, 8], np.int8), np.array([-24, 0], np.int8), p, out[0])
    np.testing.assert_array_equal(out[0], [-10, -2])  # max(-2.0, 0) -> zp; 1.0 -> zp + 8


def test_mean_hand(backend):
    """Mean of a 2x2 patch [[1, 2], [3, 6]] = 3; and of [0, 0, 0, 1] = 0.25, which LiteRT's
    double rounding (SRDHM to 1/2, then RoundingDivideByPOT of 1/2) makes 1, not 0."""
    p = make_mean_params((1, 2, 2, 2), [1, 2], 0.1, 0, 0.1, 0)
    x = np.array([[[1, 0], [2, 0]], [[3, 0], [6, 1]]], np.int8)
    out = np.empty(2, np.int8)
    backend.mean_s8(x, p, out)
    np.testing.assert_array_equal(out, [3, 1])


def test_concat_hand(backend):
    a, b = np.array([[1, 2]], np.int8), np.array([[3, 4]], np.int8)
    out = np.empty((1, 4), np.int8)
    backend.concat_s8([a, b], 1, ConcatParams(2), out)
    np.testing.assert_array_equal(out, [[1, 2, 3, 4]])


# ---------------------------------------------------------------- refusals (no LiteRT needed)


def test_add_output_scale_litert_cannot_run_is_refused():
    """2 max(s1, s2) / (2^20 s_out) >= 1 fails QuantizeMultiplierSmallerThanOneExp's CHECK,
    which aborts LiteRT's process; the maker says so instead."""
    with pytest.raises(ValueError, match="output scale 1e-07 is too small"):
        make_add_params(0.1, 0, 0.05, 0, 1e-7, 0, "none")
    with pytest.raises(ValueError, match="input2_scale 0.0 is not a positive"):
        make_add_params(0.1, 0, 0.0, 0, 0.1, 0, "none")
    with pytest.raises(ValueError, match="output_zero_point 128 is outside int8"):
        make_add_params(0.1, 0, 0.1, 0, 0.1, 128, "none")


def test_mean_outside_h_w_is_refused():
    with pytest.raises(ValueError, match=r"MEAN: axes \[3\] reduce \[3\]; edgecnn runs MEAN over "
                                         r"H and W"):
        make_mean_params((1, 7, 7, 64), [3], 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match=r"axes \[1, 2, -1\] reduce \[1, 2, 3\]"):
        make_mean_params((1, 7, 7, 64), [1, 2, -1], 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match=r"axes \[1\] reduce \[1\]"):
        mean_shape((1, 7, 7, 64), [1], True)
    with pytest.raises(ValueError, match=r"input shape \(7, 7, 64\) is not NHWC"):
        mean_shape((7, 7, 64), [0, 1], True)
    with pytest.raises(ValueError, match=r"axes \[1, 4\] are out of range"):
        mean_shape((1, 7, 7, 64), [1, 4], True)


def test_bound_add_refuses_other_sizes_and_foreign_params():
    p = make_add_params(0.1, 0, 0.2, 0, 0.3, 0, "none")
    run = K.bind_add_s8(p, (4, 5), (5,))
    with pytest.raises(ValueError, match=r"ADD: sizes \(24, 5, 20\), bound for \(20, 5, 20\)"):
        run(np.zeros((4, 6), np.int8), np.zeros(5, np.int8), np.zeros((4, 5), np.int8))
    foreign = dataclasses.replace(p, input2_shift=-1)  # neither input at 2^30, shift 0
    with pytest.raises(ValueError, match="neither input has multiplier 2\\^30"):
        K.bind_add_s8(foreign, (4, 5), (5,))


# ---------------------------------------------------------------- float twins


def test_float_twins():
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(1, 4, 5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    np.testing.assert_array_equal(add_f32(a, b), a + b)
    assert concat_f32([a, a[..., :1]], -1).shape == (1, 4, 5, 4)
    m = mean_f32(a, [1, 2, -3], keep_dims=False)
    assert m.dtype == np.float32 and m.shape == (1, 3)
    np.testing.assert_allclose(m, a.mean(axis=(1, 2)), rtol=1e-6)
    assert mean_f32(a, [2, 1], keep_dims=True).shape == (1, 1, 1, 3)
