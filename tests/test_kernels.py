"""Every kernel on every backend: seeded random configurations compared bit for bit with the
NumPy spec, tiny hand-checkable cases written as floats, and the errors of the param makers."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

import edgecnn.backends.reference as spec
from edgecnn._kernels import conv as _conv
from edgecnn._kernels import elementwise as _ew
from edgecnn._kernels import pool as _pool
from edgecnn.reference.fixedpoint import round_half_away
from edgecnn.reference.params import (ROUNDING_POLICIES, ConvParams, FCParams, PoolParams,
                                      Requant, activation_range, make_requant,
                                      make_softmax_float_params, make_softmax_params)
from exact import assert_exact

POLICIES = ("litert-ref", "double", "single", "fp32", "f64")
ACTIVATIONS = ("none", "relu", "relu6")


def assert_same(actual, expected, what=""):
    assert_exact(actual, expected, what, ('backend', 'reference'))


def q(values, scale, zp, dtype=np.int8):
    """Quantize floats the TFLite way (ties away from zero) for hand-written cases."""
    return np.clip(round_half_away(np.asarray(values) / scale) + zp, -128, 127).astype(dtype)


# ---------------------------------------------------------------- random vs the spec


def _conv_config(rng, policy, activation, ties):
    h, w = (int(v) for v in rng.integers(1, 12, size=2))
    cin, cout = (int(v) for v in rng.integers(1, 20, size=2))
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
    pt, pl = (int(v) for v in rng.integers(0, 4, size=2))
    oh = max((h + 2 * pt - (kh - 1) * dh - 1) // sh + 1, 1)
    ow = max((w + 2 * pl - (kw - 1) * dw - 1) // sw + 1, 1)
    s_in, zp_in = float(rng.uniform(0.005, 0.1)), int(rng.integers(-128, 128))
    s_w = rng.uniform(0.002, 0.02, size=cout).astype(np.float32)
    m = rng.uniform(0.03, 0.5) if ties else 40 / (5350 * np.sqrt(kh * kw * cin))
    s_out = float(s_in * s_w.mean() / m)
    spread = 4 if ties else 127
    x = np.clip(zp_in + rng.integers(-spread, spread + 1, size=(h, w, cin)), -128, 127)
    wt = rng.integers(-min(spread, 127), min(spread, 127) + 1, size=(cout, kh, kw, cin))
    bias = rng.integers(-20000, 20000, size=cout) // (300 if ties else 1)
    p = ConvParams(sh, sw, pt, pl, dh, dw, -zp_in)
    rq = make_requant(s_in, s_w, s_out, int(rng.integers(-100, 100)), activation, "conv",
                      policy)
    return (x.astype(np.int8), wt.astype(np.int8), bias.astype(np.int32), p, rq,
            (oh, ow, cout))


@pytest.mark.parametrize("ties", [False, True], ids=["wide", "ties"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("policy", POLICIES)
def test_conv2d_random(backend, policy, activation, ties):
    rng = np.random.default_rng([POLICIES.index(policy), ACTIVATIONS.index(activation), ties])
    for i in range(6):
        x, wt, bias, p, rq, shape = _conv_config(rng, policy, activation, ties)
        out, expected = np.empty(shape, np.int8), np.empty(shape, np.int8)
        backend.conv2d_s8(x, wt, bias, p, rq, out)
        spec.conv2d_s8(x, wt, bias, p, rq, expected)
        assert_same(out, expected, f"conv case {i}: {p}, x {x.shape}, w {wt.shape}")


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("policy", POLICIES)
def test_fully_connected_random(backend, policy, activation, per_channel):
    rng = np.random.default_rng([10, POLICIES.index(policy), ACTIVATIONS.index(activation),
                                 per_channel])
    for i in range(6):
        n, o = int(rng.integers(1, 600)), int(rng.integers(1, 50))
        ties = i % 2 == 1
        s_in, zp_in = float(rng.uniform(0.005, 0.1)), int(rng.integers(-128, 128))
        s_w = rng.uniform(0.002, 0.02, size=o if per_channel else 1).astype(np.float32)
        m = rng.uniform(0.03, 0.5) if ties else 40 / (5350 * np.sqrt(n))
        spread = 4 if ties else 127
        x = np.clip(zp_in + rng.integers(-spread, spread + 1, size=n), -128, 127).astype(np.int8)
        wt = rng.integers(-spread, spread + 1, size=(o, n)).astype(np.int8)
        bias = (rng.integers(-20000, 20000, size=o) // (300 if ties else 1)).astype(np.int32)
        rq = make_requant(s_in, s_w, float(s_in * s_w.mean() / m), int(rng.integers(-100, 100)),
                          activation, "fc", policy)
        out, expected = np.empty(o, np.int8), np.empty(o, np.int8)
        backend.fully_connected_s8(x, wt, bias, FCParams(-zp_in), rq, out)
        spec.fully_connected_s8(x, wt, bias, FCParams(-zp_in), rq, expected)
        assert_same(out, expected, f"fc case {i}: n={n} o={o}")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_pool_random(backend, kind, activation):
    rng = np.random.default_rng([20, ACTIVATIONS.index(activation), kind == "max"])
    for i in range(10):
        h, w, ch = (int(v) for v in rng.integers(1, 12, size=3))
        fh, fw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        pt, pl = int(rng.integers(0, fh)), int(rng.integers(0, fw))
        oh, ow = (h + 2 * pt - fh) // sh + 1, (w + 2 * pl - fw) // sw + 1
        if oh < 1 or ow < 1:
            continue
        lo, hi = activation_range(activation, float(rng.uniform(0.01, 0.1)),
                                  int(rng.integers(-128, 100)))
        p = PoolParams(fh, fw, sh, sw, pt, pl, lo, hi)
        x = rng.integers(-128, 128, size=(h, w, ch)).astype(np.int8)
        out, expected = np.empty((oh, ow, ch), np.int8), np.empty((oh, ow, ch), np.int8)
        getattr(backend, f"{kind}_pool_s8")(x, p, out)
        getattr(spec, f"{kind}_pool_s8")(x, p, expected)
        assert_same(out, expected, f"{kind} pool case {i}: {p}")


@pytest.mark.parametrize("policy", ROUNDING_POLICIES)
def test_requantize_random(backend, policy):
    rng = np.random.default_rng([30, ROUNDING_POLICIES.index(policy)])
    for shape in [(7,), (3, 5), (2, 4, 6)]:
        c = shape[-1]
        rq = make_requant(0.05, rng.uniform(0.002, 0.02, size=c), 0.02, 3, "relu6", "conv",
                          policy)
        acc = rng.integers(-3000, 3000, size=shape).astype(np.int32)
        acc.flat[:4] = [0, -1, 1, 2 ** 20]
        out, expected = np.empty(shape, np.int8), np.empty(shape, np.int8)
        backend.requantize(acc, rq, out)
        spec.requantize(acc, rq, expected)
        assert_same(out, expected, f"requantize {shape}")


def test_softmax_random(backend):
    rng = np.random.default_rng(40)
    for i in range(20):
        n = int(rng.integers(1, 500))
        x = rng.integers(-128, 128, size=n).astype(np.int8)
        if i % 4 == 0:
            x[:] = x[0]  # all equal: every output is 1/n
        p = make_softmax_params(float(rng.uniform(0.001, 1.0)), float(rng.choice([1.0, 0.3, 4.0])))
        out, expected = np.empty(n, np.int8), np.empty(n, np.int8)
        backend.softmax_s8(x, p, out)
        spec.softmax_s8(x, p, expected)
        assert_same(out, expected, f"softmax case {i}: n={n} {p}")


def test_softmax_float_random(backend):
    """LiteRT's optimized float softmax (--rounding fp32): lengths up to 1100, all-equal rows
    (512 equal values give exactly 0.5: std::round's tie, away from zero), output scales near
    1/256 as LiteRT allows them."""
    rng = np.random.default_rng(41)
    for i in range(16):
        n = 512 if i == 0 else int(rng.integers(1, 1100))
        x = rng.integers(-128, 128, size=n).astype(np.int8)
        if i % 4 == 0:
            x[:] = x[0]
        s_out = 1 / 256 * (1 + float(rng.uniform(-0.0009, 0.0009)) * (i % 2))
        p = make_softmax_float_params(float(rng.uniform(0.001, 1.0)),
                                      float(rng.choice([1.0, 0.3, 4.0])), s_out, -128)
        out, expected = np.empty(n, np.int8), np.empty(n, np.int8)
        backend.softmax_float_s8(x, p, out)
        spec.softmax_float_s8(x, p, expected)
        assert_same(out, expected, f"float softmax case {i}: n={n}")
        if i == 0:
            assert (expected == -127).all()  # round(0.5) = 1


def test_elementwise_random(backend):
    rng = np.random.default_rng(50)
    x8 = rng.integers(-128, 128, size=(4, 5, 3)).astype(np.int8)
    for s_in, zp_in, s_out, zp_out in [(0.02, -3, 0.02, -3), (0.05, 10, 0.031, -128),
                                       (0.013, -128, 0.07, 5)]:
        for name in ("relu_s8", "relu6_s8"):
            out, expected = np.empty_like(x8), np.empty_like(x8)
            getattr(backend, name)(x8, s_in, zp_in, s_out, zp_out, out)
            getattr(spec, name)(x8, s_in, zp_in, s_out, zp_out, expected)
            assert_same(out, expected, f"{name} {s_in, zp_in, s_out, zp_out}")
        for name in ("tanh_s8", "logistic_s8"):
            out, expected = np.empty_like(x8), np.empty_like(x8)
            getattr(backend, name)(x8, s_in, zp_in, out)
            getattr(spec, name)(x8, s_in, zp_in, expected)
            assert_same(out, expected, f"{name} {s_in, zp_in}")
    for scale, zp in [(0.01, 0), (0.0371, -17), (1.5, 127)]:
        xf = (rng.normal(size=(3, 50)) * 100 * scale).astype(np.float32)
        xf[0, :20] = ((np.arange(20) - 10 + 0.5) * np.float32(scale)).astype(np.float32)
        xf[1, :2] = [1e30, -1e30]
        out, expected = np.empty(xf.shape, np.int8), np.empty(xf.shape, np.int8)
        backend.quantize_s8(xf, scale, zp, out)
        spec.quantize_s8(xf, scale, zp, expected)
        assert_same(out, expected, f"quantize {scale, zp}")
        fo, fe = np.empty(x8.shape, np.float32), np.empty(x8.shape, np.float32)
        backend.dequantize_s8(x8, scale, zp, fo)
        spec.dequantize_s8(x8, scale, zp, fe)
        assert_same(fo, fe, f"dequantize {scale, zp}")
    out, expected = np.empty((7, 9, 3), np.int8), np.empty((7, 9, 3), np.int8)
    backend.pad_s8(x8, 1, 3, -7, out)
    spec.pad_s8(x8, 1, 3, -7, expected)
    assert_same(out, expected, "pad")


# ---------------------------------------------------------------- hand-checkable cases


def test_conv2d_3x3_stride1_pad1_relu_hand(backend):
    """A 3x3 box filter of weight 1.0 over a 3x3 ramp with zero padding, ReLU."""
    s_in, zp_in, s_w, s_out, zp_out = 0.5, -10, 1.0 / 127, 0.25, -20
    img = np.array([[-1.0, 0.0, 1.0], [2.0, 3.0, -4.0], [0.5, -0.5, 1.5]])
    x = q(img, s_in, zp_in)[:, :, None]
    w = np.full((1, 3, 3, 1), 127, np.int8)  # 1.0
    bias = np.array([round(0.5 / (s_in * s_w))], np.int32)  # +0.5
    rq = make_requant(s_in, [s_w], s_out, zp_out, "relu", "conv", "litert-ref")
    out = np.empty((3, 3, 1), np.int8)
    backend.conv2d_s8(x, w, bias, ConvParams(1, 1, 1, 1, 1, 1, -zp_in), rq, out)
    padded = np.pad(img, 1)
    sums = np.array([[padded[i:i + 3, j:j + 3].sum() for j in range(3)] for i in range(3)])
    expected = q(np.maximum(sums + 0.5, 0.0), s_out, zp_out)[:, :, None]
    np.testing.assert_array_equal(out, expected)


def test_conv2d_1x1_stride2_relu6_hand(backend):
    """A 1x1 conv doubling the input, stride 2; ReLU6 caps 7.0 at 6.0 (zp + 24)."""
    s_in, s_out, zp_out = 0.25, 0.25, -30
    x = q([[1.0, 9.0, 3.5], [-2.0, 0.0, 0.0], [3.5, 9.0, 0.75]], s_in, 0)[:, :, None]
    w = np.array([[[[127]]]], np.int8)
    rq = make_requant(s_in, [2.0 / 127], s_out, zp_out, "relu6", "conv", "litert-ref")
    out = np.empty((2, 2, 1), np.int8)
    backend.conv2d_s8(x, w, np.zeros(1, np.int32), ConvParams(2, 2, 0, 0, 1, 1, 0), rq, out)
    np.testing.assert_array_equal(out[:, :, 0], q([[2.0, 6.0], [6.0, 1.5]], s_out, zp_out))


def test_fully_connected_hand(backend):
    """y = W x + b with W = [[1, -1], [0.5, 0.5]], x = [2, 1], b = [0.25, 0]: [1.25, 1.5]."""
    s_in, zp_in, s_w, s_out, zp_out = 0.125, 4, 1.0 / 64, 0.125, -8
    x = q([2.0, 1.0], s_in, zp_in)
    w = q([[1.0, -1.0], [0.5, 0.5]], s_w, 0)
    bias = np.array([round(0.25 / (s_in * s_w)), 0], np.int32)
    rq = make_requant(s_in, [s_w], s_out, zp_out, "none", "fc", "litert-ref")
    out = np.empty(2, np.int8)
    backend.fully_connected_s8(x, w, bias, FCParams(-zp_in), rq, out)
    np.testing.assert_array_equal(out, q([1.25, 1.5], s_out, zp_out))


def test_avg_pool_2x2_stride2_pad1_hand(backend):
    """Only in-image taps count: (2+3)/2 = 2.5 -> 3 and (4-9)/2 = -2.5 -> -3 (ties away)."""
    x = np.array([[1, 2, 3], [4, 5, -8], [-9, -2, -3]], np.int8)[:, :, None]
    out = np.empty((2, 2, 1), np.int8)
    backend.avg_pool_s8(x, PoolParams(2, 2, 2, 2, 1, 1, -128, 127), out)
    np.testing.assert_array_equal(out[:, :, 0], [[1, 3], [-3, -2]])  # (5-8-2-3)/4 = -2


def test_max_pool_3x3_stride2_relu_hand(backend):
    """Raw int8 max of in-image taps, then the ReLU clamp at the zero point (-5)."""
    x = np.array([[-9, -7, -20], [-30, -6, -8], [-10, 4, -1]], np.int8)[:, :, None]
    out = np.empty((2, 2, 1), np.int8)
    backend.max_pool_s8(x, PoolParams(3, 3, 2, 2, 1, 1, -5, 127), out)
    np.testing.assert_array_equal(out[:, :, 0], [[-5, -5], [4, 4]])


def test_softmax_two_equal_maxima_hand(backend):
    """softmax([a, a, -inf]) = [0.5, 0.5, 0]: 0.5 is 128/256 -> int8 0; zero is -128."""
    x = np.array([100, 100, -128], np.int8)
    out = np.empty(3, np.int8)
    backend.softmax_s8(x, make_softmax_params(0.5, 1.0), out)
    np.testing.assert_array_equal(out, [0, 0, -128])


def test_quantize_ties_away_hand(backend):
    """QUANTIZE rounds halves away from zero: 0.25 / 0.5 -> 1 and -0.25 / 0.5 -> -1."""
    out = np.empty(4, np.int8)
    backend.quantize_s8(np.array([0.25, -0.25, 100.0, -0.74], np.float32), 0.5, 0, out)
    np.testing.assert_array_equal(out, [1, -1, 127, -1])


# ---------------------------------------------------------------- contracts and errors


def test_policy_codes_match_the_c_header():
    assert _ew.POLICY_CODES == {name: i for i, name in enumerate(ROUNDING_POLICIES)}


def test_param_fields_are_the_cython_argument_names():
    conv_args = set(inspect.signature(_conv.conv2d_s8).parameters)
    requant_fields = {f.name for f in dataclasses.fields(Requant)}
    assert {f.name for f in dataclasses.fields(ConvParams)} | requant_fields <= conv_args
    pool_args = set(inspect.signature(_pool.max_pool_s8).parameters)
    assert {f.name for f in dataclasses.fields(PoolParams)} <= pool_args
    soft_args = set(inspect.signature(_ew.softmax_s8).parameters)
    assert {"input_multiplier", "input_left_shift", "diff_min"} <= soft_args


def test_make_requant_rejects_unknown_policy():
    with pytest.raises(ValueError, match="unknown rounding policy 'banker'"):
        make_requant(0.1, [0.01], 0.2, 0, "none", "conv", "banker")


def test_make_requant_rejects_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        make_requant(0.1, [0.01], 0.2, 0, "gelu", "conv")


def test_make_requant_rejects_unknown_op():
    with pytest.raises(ValueError, match="unknown op 'pool'"):
        make_requant(0.1, [0.01], 0.2, 0, "none", "pool")


def test_activation_range_relu6():
    """zp + round(6 / s): 6 / 0.05 = 120 -> min(127, -10 + 120) = 110; ReLU floor is the zp."""
    assert activation_range("relu6", 0.05, -10) == (-10, 110)
    assert activation_range("relu", 0.05, -128) == (-128, 127)


def test_lut_rejects_unknown_kind(backend):
    with pytest.raises(ValueError, match="unknown table activation 'gelu'"):
        backend.activation_lut("gelu", 0.1, 0, 1 / 128, 0)
