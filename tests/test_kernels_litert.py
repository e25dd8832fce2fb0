"""The reference kernels against LiteRT, bit for bit, on random single-op int8 models.

LiteRT runs with OpResolverType.BUILTIN_REF (its reference kernels): that is the golden
reference. The ``fp32`` policy is compared with LiteRT's default interpreter (XNNPACK).
Each test names the formula it proves; see edgecnn/reference/params.py for the policies.
"""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn.backends.reference as ref
from edgecnn.reference.params import (ConvParams, FCParams, PoolParams, activation_range,
                                      make_requant, make_softmax_params)
from litert_models import (Spec, conv2d_options, fully_connected_options, pool2d_options,
                           run, same_padding, single_op_model, softmax_options, valid_output)
from exact import assert_exact

ACTIVATIONS = ("none", "relu", "relu6")


def assert_bitexact(actual, expected, what=""):
    assert_exact(actual, expected, what, ('edgecnn', 'LiteRT'))


def _small_ints(rng, shape, center, spread, lo=-128, hi=127):
    return np.clip(center + rng.integers(-spread, spread + 1, size=shape), lo, hi)


def _tie_scales(rng, n_scales, s_in, s_w):
    """Half the time power-of-two scales (M = 2^-k: exact ties); else M in [0.03, 0.5)."""
    if rng.random() < 0.5:
        s_in = 2.0 ** -int(rng.integers(4, 9))
        s_w = (2.0 ** -rng.integers(5, 9, size=n_scales)).astype(np.float32)
        return s_in, s_w, float(s_in * s_w.max() * 2.0 ** int(rng.integers(1, 4)))
    return s_in, s_w, float(s_in * s_w.max() / rng.uniform(0.03, 0.5))


def _conv_case(rng, activation, per_channel=True, ties=False):
    """A random conv; ``ties``: small values and M in [0.03, 0.5), so roundings hit halves."""
    h, w = rng.integers(3, 11, size=2)
    cin, cout = rng.integers(1, 9, size=2)
    kh, kw = rng.integers(1, 5, size=2)
    stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
    padding = ("same", "valid")[rng.integers(2)]
    if padding == "valid":
        h = max(h, (kh - 1) * dilation[0] + 1)
        w = max(w, (kw - 1) * dilation[1] + 1)
    s_in = float(rng.uniform(0.005, 0.1))
    zp_in = int(rng.integers(-128, 128))
    n_scales = cout if per_channel else 1
    s_w = rng.uniform(0.002, 0.02, size=n_scales).astype(np.float32)
    taps = kh * kw * cin
    s_out = float(s_in * s_w.mean() * 5350 * np.sqrt(taps) / rng.uniform(20, 80))
    zp_out = int(rng.integers(-100, 100))
    x = rng.integers(-128, 128, size=(h, w, cin)).astype(np.int8)
    wt = rng.integers(-127, 128, size=(cout, kh, kw, cin)).astype(np.int8)
    bias = rng.integers(-20000, 20000, size=cout).astype(np.int32)
    if ties:
        s_in, s_w, s_out = _tie_scales(rng, n_scales, s_in, s_w)
        x = _small_ints(rng, (h, w, cin), zp_in, 4).astype(np.int8)
        wt = _small_ints(rng, wt.shape, 0, 4).astype(np.int8)
        bias = rng.integers(-64, 65, size=cout).astype(np.int32)
    return dict(h=int(h), w=int(w), cin=int(cin), cout=int(cout), kh=int(kh), kw=int(kw),
                stride=stride, dilation=dilation, padding=padding, s_in=s_in, zp_in=zp_in,
                s_w=s_w, s_out=s_out, zp_out=zp_out, x=x, wt=wt, bias=bias,
                activation=activation)


def _conv_geometry(c):
    if c["padding"] == "same":
        oh, pt = same_padding(c["h"], c["kh"], c["stride"][0], c["dilation"][0])
        ow, pl = same_padding(c["w"], c["kw"], c["stride"][1], c["dilation"][1])
    else:
        oh, pt = valid_output(c["h"], c["kh"], c["stride"][0], c["dilation"][0]), 0
        ow, pl = valid_output(c["w"], c["kw"], c["stride"][1], c["dilation"][1]), 0
    return oh, ow, pt, pl


def _conv_model(c):
    oh, ow, _, _ = _conv_geometry(c)
    bias_scale = np.float32(c["s_in"]) * np.broadcast_to(c["s_w"], (c["cout"],)).astype(np.float32)
    if c["s_w"].size == 1:
        bias_scale = bias_scale[:1]
    inputs = [Spec((1, c["h"], c["w"], c["cin"]), np.int8, c["s_in"], c["zp_in"]),
              Spec(c["wt"].shape, np.int8, c["s_w"], 0, data=c["wt"]),
              Spec((c["cout"],), np.int32, bias_scale, 0, data=c["bias"])]
    outputs = [Spec((1, oh, ow, c["cout"]), np.int8, c["s_out"], c["zp_out"])]
    kind, opts = conv2d_options(c["stride"], c["dilation"], c["padding"], c["activation"])
    return single_op_model("CONV_2D", inputs, outputs, kind, opts, version=3)


def _conv_ours(c, policy):
    oh, ow, pt, pl = _conv_geometry(c)
    p = ConvParams(c["stride"][0], c["stride"][1], pt, pl, c["dilation"][0], c["dilation"][1],
                   -c["zp_in"])
    s_w = np.broadcast_to(c["s_w"], (c["cout"],)) if c["s_w"].size == 1 else c["s_w"]
    rq = make_requant(c["s_in"], s_w, c["s_out"], c["zp_out"], c["activation"], "conv", policy)
    out = np.empty((oh, ow, c["cout"]), np.int8)
    ref.conv2d_s8(c["x"], c["wt"], c["bias"], p, rq, out)
    return out


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_conv2d_double_rounding_matches_builtin_ref(activation):
    """CONV_2D per channel = policy double (gemmlowp two roundings), M from doubles."""
    rng = np.random.default_rng(100 + ACTIVATIONS.index(activation))
    for i in range(12):
        c = _conv_case(rng, activation, per_channel=(i % 4 != 3), ties=(i % 2 == 1))
        expected = run(_conv_model(c), c["x"][None])[0]
        assert_bitexact(_conv_ours(c, "litert-ref"), expected, f"conv case {i}")


def _fc_case(rng, activation, per_channel, ties=False):
    n, o = int(rng.integers(1, 300)), int(rng.integers(1, 40))
    s_in = float(rng.uniform(0.005, 0.1))
    zp_in = int(rng.integers(-128, 128))
    s_w = rng.uniform(0.002, 0.02, size=o if per_channel else 1).astype(np.float32)
    s_out = float(s_in * s_w.mean() * 5350 * np.sqrt(n) / rng.uniform(20, 80))
    x = rng.integers(-128, 128, size=n).astype(np.int8)
    wt = rng.integers(-127, 128, size=(o, n)).astype(np.int8)
    bias = rng.integers(-20000, 20000, size=o).astype(np.int32)
    if ties:
        n = min(n, 16)
        s_in, s_w, s_out = _tie_scales(rng, s_w.size, s_in, s_w)
        x = _small_ints(rng, n, zp_in, 4).astype(np.int8)
        wt = _small_ints(rng, (o, n), 0, 4).astype(np.int8)
        bias = rng.integers(-64, 65, size=o).astype(np.int32)
    return dict(n=n, o=o, s_in=s_in, zp_in=zp_in, s_w=s_w, s_out=s_out,
                zp_out=int(rng.integers(-100, 100)), activation=activation, x=x, wt=wt,
                bias=bias)


def _fc_model(c):
    bias_scale = (np.float32(c["s_in"]) * c["s_w"]).astype(np.float32)
    inputs = [Spec((1, c["n"]), np.int8, c["s_in"], c["zp_in"]),
              Spec((c["o"], c["n"]), np.int8, c["s_w"], 0, data=c["wt"]),
              Spec((c["o"],), np.int32, bias_scale, 0, data=c["bias"])]
    outputs = [Spec((1, c["o"]), np.int8, c["s_out"], c["zp_out"])]
    kind, opts = fully_connected_options(c["activation"])
    return single_op_model("FULLY_CONNECTED", inputs, outputs, kind, opts,
                           version=12 if c["s_w"].size > 1 else 4)


def _fc_ours(c, policy):
    rq = make_requant(c["s_in"], c["s_w"], c["s_out"], c["zp_out"], c["activation"], "fc",
                      policy)
    out = np.empty(c["o"], np.int8)
    ref.fully_connected_s8(c["x"], c["wt"], c["bias"], FCParams(-c["zp_in"]), rq, out)
    return out


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fully_connected_f64_matches_builtin_ref(activation, per_channel):
    """FULLY_CONNECTED = policy f64: round_half_away(double(acc) * s_in * s_w / s_out)."""
    rng = np.random.default_rng(200 + ACTIVATIONS.index(activation) + 10 * per_channel)
    for i in range(12):
        c = _fc_case(rng, activation, per_channel, ties=(i % 2 == 1))
        expected = run(_fc_model(c), c["x"][None])[0]
        assert_bitexact(_fc_ours(c, "litert-ref"), expected, f"fc case {i}")


def _mismatches(policy, cases, model, ours):
    return sum(int((ours(c, policy) != run(model(c), c["x"][None])[0]).sum()) for c in cases)


def test_rounding_cases_tell_the_policies_apart():
    """On tie-heavy cases every other policy misses LiteRT somewhere: the tests above decide."""
    rng = np.random.default_rng(7)
    convs = [_conv_case(rng, "none", ties=True) for _ in range(12)]
    fcs = [_fc_case(rng, "none", bool(i % 2), ties=True) for i in range(16)]
    for policy in ("single", "fp32"):
        assert _mismatches(policy, convs, _conv_model, _conv_ours) > 0, policy
        assert _mismatches(policy, fcs, _fc_model, _fc_ours) > 0, policy
    assert _mismatches("double", fcs, _fc_model, _fc_ours) > 0  # FC is not gemmlowp
    assert _mismatches("litert-ref", convs, _conv_model, _conv_ours) == 0


@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_pool_matches_builtin_ref(kind, activation):
    """Max: raw int8 max of in-image taps; average: sum / valid taps, ties away from zero."""
    rng = np.random.default_rng(300 + ACTIVATIONS.index(activation))
    for i in range(10):
        h, w, ch = (int(v) for v in rng.integers(1, 10, size=3))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
        padding = "same" if i % 2 else "valid"
        if padding == "valid":
            h, w = max(h, kh), max(w, kw)
            oh, ow = valid_output(h, kh, stride[0]), valid_output(w, kw, stride[1])
            pt = pl = 0
        else:
            (oh, pt), (ow, pl) = same_padding(h, kh, stride[0]), same_padding(w, kw, stride[1])
        scale, zp = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
        x = rng.integers(-128, 128, size=(h, w, ch)).astype(np.int8)
        optkind, opts = pool2d_options((kh, kw), stride, padding, activation)
        model = single_op_model(kind, [Spec((1, h, w, ch), np.int8, scale, zp)],
                                [Spec((1, oh, ow, ch), np.int8, scale, zp)], optkind, opts,
                                version=2)
        lo, hi = activation_range(activation, scale, zp)
        p = PoolParams(kh, kw, stride[0], stride[1], pt, pl, lo, hi)
        out = np.empty((oh, ow, ch), np.int8)
        (ref.max_pool_s8 if kind == "MAX_POOL_2D" else ref.avg_pool_s8)(x, p, out)
        assert_bitexact(out, run(model, x[None])[0], f"{kind} case {i}")


def test_softmax_matches_builtin_ref():
    """SOFTMAX int8: gemmlowp fixed point (PreprocessSoftmaxScaling, 5 integer bits)."""
    rng = np.random.default_rng(400)
    for i in range(24):
        n = int(rng.integers(1, 300))
        s_in, beta = float(rng.uniform(0.005, 0.5)), float(rng.choice([1.0, 0.5, 2.0, 1.7]))
        zp = int(rng.integers(-128, 128))
        x = rng.integers(-128, 128, size=n).astype(np.int8)
        if i % 3 == 0:  # a few large values on a flat background
            x = np.full(n, -100, np.int8)
            x[rng.integers(0, n, size=3)] = rng.integers(-100, 128, size=3)
        kind, opts = softmax_options(beta)
        model = single_op_model("SOFTMAX", [Spec((1, n), np.int8, s_in, zp)],
                                [Spec((1, n), np.int8, 1.0 / 256, -128)], kind, opts, version=2)
        out = np.empty(n, np.int8)
        ref.softmax_s8(x, make_softmax_params(s_in, beta), out)
        assert_bitexact(out, run(model, x[None])[0], f"softmax case {i} (n={n}, s={s_in})")


def test_quantize_matches_builtin_ref():
    """QUANTIZE float32 -> int8: round_half_away(float32(x) / float32(scale)) + zp, clamped."""
    rng = np.random.default_rng(500)
    for i in range(8):
        scale, zp = float(np.float32(rng.uniform(0.001, 0.2))), int(rng.integers(-128, 128))
        x = (rng.normal(size=400) * 60 * scale).astype(np.float32)
        x[:100] = ((np.arange(100) - 50 + 0.5) * np.float32(scale)).astype(np.float32)  # ties
        model = single_op_model("QUANTIZE", [Spec((1, 400), np.float32)],
                                [Spec((1, 400), np.int8, scale, zp)])
        out = np.empty(400, np.int8)
        ref.quantize_s8(x, scale, zp, out)
        assert_bitexact(out, run(model, x[None])[0], f"quantize case {i}")


def test_dequantize_matches_builtin_ref():
    """DEQUANTIZE int8 -> float32: float32(double(scale) * (q - zp))."""
    rng = np.random.default_rng(600)
    for i in range(4):
        scale, zp = float(np.float32(rng.uniform(0.001, 0.2))), int(rng.integers(-128, 128))
        x = np.arange(-128, 128, dtype=np.int8)
        model = single_op_model("DEQUANTIZE", [Spec((1, 256), np.int8, scale, zp)],
                                [Spec((1, 256), np.float32)], version=2)
        out = np.empty(256, np.float32)
        ref.dequantize_s8(x, scale, zp, out)
        assert_bitexact(out, run(model, x[None])[0], f"dequantize case {i}")


@pytest.mark.parametrize("op", ["RELU", "RELU6", "TANH", "LOGISTIC"])
def test_standalone_activation_matches_builtin_ref(op):
    """RELU/RELU6: clamp(zp_out + MBQM(x - zp_in)); TANH/LOGISTIC: a float32 table (tanhf, expf)."""
    rng = np.random.default_rng(700 + len(op))
    x = np.arange(-128, 128, dtype=np.int8)
    for i in range(16):
        s_in, zp_in = float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128))
        if op in ("RELU", "RELU6"):
            s_out = s_in * float(rng.choice([1.0, rng.uniform(0.3, 3.0)]))
            zp_out = int(rng.integers(-128, 100))
        else:
            s_out, zp_out = (1.0 / 128, 0) if op == "TANH" else (1.0 / 256, -128)
        model = single_op_model(op, [Spec((1, 256), np.int8, s_in, zp_in)],
                                [Spec((1, 256), np.int8, s_out, zp_out)], version=2)
        out = np.empty(256, np.int8)
        if op == "RELU":
            ref.relu_s8(x, s_in, zp_in, s_out, zp_out, out)
        elif op == "RELU6":
            ref.relu6_s8(x, s_in, zp_in, s_out, zp_out, out)
        elif op == "TANH":
            ref.tanh_s8(x, s_in, zp_in, out)
        else:
            ref.logistic_s8(x, s_in, zp_in, out)
        assert_bitexact(out, run(model, x[None])[0], f"{op} case {i} (s_in={s_in}, zp={zp_in})")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fp32_policy_matches_xnnpack(activation):
    """LiteRT's default interpreter (XNNPACK) = policy fp32: rint(float32(acc) * float32(
    s_in * s_w / s_out)), ties to even, for CONV_2D and FULLY_CONNECTED; the other policies
    miss it by 1 LSB on tie-heavy cases."""
    rng = np.random.default_rng(800 + ACTIVATIONS.index(activation))
    misses = {"litert-ref": 0, "double": 0, "single": 0}
    for i in range(10):
        c = _conv_case(rng, activation, per_channel=(i % 4 != 3), ties=(i % 2 == 1))
        expected = run(_conv_model(c), c["x"][None], reference=False)[0]
        assert_bitexact(_conv_ours(c, "fp32"), expected, f"conv case {i} vs XNNPACK")
        f = _fc_case(rng, activation, bool(i % 3), ties=(i % 2 == 1))
        expected_fc = run(_fc_model(f), f["x"][None], reference=False)[0]
        assert_bitexact(_fc_ours(f, "fp32"), expected_fc, f"fc case {i} vs XNNPACK")
        for policy in misses:
            misses[policy] += int((_conv_ours(c, policy) != expected).sum())
    assert all(misses.values()), misses
