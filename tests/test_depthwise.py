"""DEPTHWISE_CONV_2D: the three twins (NumPy spec, Cython on every ISA path, C firmware) bit for
bit, the spec against LiteRT BUILTIN_REF (policy double) and XNNPACK (policy fp32) on single-op
int8 models, the float twin against LiteRT's float kernels, hand-checkable cases written as
floats, and the errors of the validating functions."""

from __future__ import annotations

import dataclasses
import inspect
import re

import numpy as np
import pytest

import edgecnn.backends.reference as spec
from edgecnn.backends import cython as K
from edgecnn._kernels import depthwise as _dw
from edgecnn.export_c import stubs_dir
from edgecnn.reference.depthwise_conv import check_depthwise, depth_multiplier_of
from edgecnn.reference.fixedpoint import round_half_away
from edgecnn.reference.float_ops import activation_f32, depthwise_conv2d_f32
from edgecnn.reference.params import DepthwiseParams, Requant, make_requant
from litert_models import (Spec, depthwise_conv2d_options, run, same_padding, single_op_model,
                           valid_output)
from exact import assert_exact

POLICIES = ("litert-ref", "double", "single", "fp32", "f64")
ACTIVATIONS = ("none", "relu", "relu6")
ISAS = K.supported_isas()


def q(values, scale, zp):
    """Quantize floats the TFLite way (ties away from zero) for hand-written cases."""
    return np.clip(round_half_away(np.asarray(values) / scale) + zp, -128, 127).astype(np.int8)


# ---------------------------------------------------------------- random configurations


def _case(rng, activation="none", ties=False, per_channel=True, padding=None, max_hw=11,
          gain=False):
    """A random depthwise layer: shapes, strides 1-3, dilation 1-2, SAME / VALID / explicit
    padding, M 1-4. ``ties``: power-of-two scales (M = 2^-k) and small values, so roundings
    land on exact halves; ``gain``: multipliers s_in * s_w / s_out in [0.3, 4] (left shifts)
    on small values; otherwise accumulators of realistic size."""
    h, w = (int(v) for v in rng.integers(1, max_hw + 1, size=2))
    c, m = int(rng.integers(1, 12)), int(rng.integers(1, 5))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
    padding = padding or ("same", "valid", "explicit")[int(rng.integers(3))]
    if padding == "valid":
        h, w = max(h, (kh - 1) * dh + 1), max(w, (kw - 1) * dw + 1)
        oh, ow, pt, pl = valid_output(h, kh, sh, dh), valid_output(w, kw, sw, dw), 0, 0
    elif padding == "same":
        (oh, pt), (ow, pl) = same_padding(h, kh, sh, dh), same_padding(w, kw, sw, dw)
    else:
        pt, pb, pl, pr = (int(v) for v in rng.integers(0, 4, size=4))
        h, w = max(h, (kh - 1) * dh + 1 - pt - pb), max(w, (kw - 1) * dw + 1 - pl - pr)
        oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
        ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    cm = c * m
    zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-100, 100))
    s_in = float(rng.uniform(0.005, 0.1))
    s_w = rng.uniform(0.002, 0.02, size=cm if per_channel else 1).astype(np.float32)
    x = rng.integers(-128, 128, size=(h, w, c))
    wt = rng.integers(-127, 128, size=(kh, kw, cm))
    bias = rng.integers(-20000, 20000, size=cm)
    s_out = float(s_in * s_w.mean() * 5350 * np.sqrt(kh * kw) / rng.uniform(20, 80))
    if ties:
        s_in = 2.0 ** -int(rng.integers(4, 9))
        s_w = (2.0 ** -rng.integers(5, 9, size=s_w.size)).astype(np.float32)
        s_out = float(s_in * s_w.max() * 2.0 ** int(rng.integers(1, 4)))
        x = np.clip(zp_in + rng.integers(-4, 5, size=x.shape), -128, 127)
        wt = rng.integers(-4, 5, size=wt.shape)
        bias = rng.integers(-64, 65, size=cm)
    if gain:
        s_out = float(s_in * s_w.max() / rng.uniform(0.3, 4.0))
        x = np.clip(zp_in + rng.integers(-3, 4, size=x.shape), -128, 127)
        wt = rng.integers(-3, 4, size=wt.shape)
        bias = rng.integers(-20, 21, size=cm)
    return dict(x=x.astype(np.int8), w=wt.astype(np.int8), bias=bias.astype(np.int32),
                p=DepthwiseParams(sh, sw, pt, pl, dh, dw, m, -zp_in), out_shape=(oh, ow, cm),
                padding=padding, s_in=s_in, zp_in=zp_in, s_w=s_w, s_out=s_out, zp_out=zp_out,
                activation=activation)


def _requant(c, policy):
    return make_requant(c["s_in"], c["s_w"], c["s_out"], c["zp_out"], c["activation"],
                        "depthwise", policy)


def _spec_out(c, policy):
    out = np.empty(c["out_shape"], np.int8)
    spec.depthwise_conv2d_s8(c["x"], c["w"], c["bias"], c["p"], _requant(c, policy), out)
    return out


@pytest.mark.parametrize("ties", [False, True], ids=["wide", "ties"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("policy", POLICIES)
def test_depthwise_random(backend, policy, activation, ties):
    rng = np.random.default_rng([60, POLICIES.index(policy), ACTIVATIONS.index(activation), ties])
    for i in range(6):
        c = _case(rng, activation, ties, per_channel=i % 3 != 2, gain=i == 5)
        bias = None if i == 4 else c["bias"]
        rq = _requant(c, policy)
        out, expected = np.full(c["out_shape"], 99, np.int8), np.empty(c["out_shape"], np.int8)
        backend.depthwise_conv2d_s8(c["x"], c["w"], bias, c["p"], rq, out)
        spec.depthwise_conv2d_s8(c["x"], c["w"], bias, c["p"], rq, expected)
        assert_exact(out, expected, f"case {i}: {c['p']}, x {c['x'].shape}, w {c['w'].shape}")


# ---------------------------------------------------------------- every ISA path, bound


@pytest.fixture(params=ISAS)
def isa(request):
    K.force_isa(request.param)
    yield request.param
    K.force_isa("auto")


@pytest.mark.parametrize("policy", POLICIES)
def test_bound_depthwise_every_isa(isa, policy):
    """Channel counts around the vector widths (tails), M > 1, dilation, stride 2, 1x1 images,
    multipliers above 1/2 (left shifts), the input zero point at both ends of int8; a second
    call on a fresh input view."""
    rng = np.random.default_rng([61, POLICIES.index(policy), ISAS.index(isa)])
    for i, cm in enumerate([1, 3, 5, 8, 12, 16, 17, 24, 31, 32, 33, 48, 70, 96]):
        c = _case(rng, ACTIVATIONS[i % 3], ties=i % 4 == 3, max_hw=1 if i == 5 else 9,
                  gain=i % 4 == 1)
        m = int(rng.choice([d for d in (1, 2, 3, 4) if cm % d == 0]))
        zp_in = (-128, 127, c["zp_in"])[i % 3]
        p = dataclasses.replace(c["p"], depth_multiplier=m, input_offset=-zp_in)
        x = rng.integers(-128, 128, size=c["x"].shape[:2] + (cm // m,)).astype(np.int8)
        w = rng.integers(-127, 128, size=c["w"].shape[:2] + (cm,)).astype(np.int8)
        bias = rng.integers(-30000, 30000, size=cm).astype(np.int32)
        rq = make_requant(c["s_in"], np.resize(c["s_w"], cm), c["s_out"], c["zp_out"],
                          c["activation"], "depthwise", policy)
        shape = c["out_shape"][:2] + (cm,)
        run = K.bind_depthwise_conv2d_s8(w, bias, p, rq, x.shape, shape)
        out, expected = np.full(shape, 99, np.int8), np.empty(shape, np.int8)
        run(x, out)
        spec.depthwise_conv2d_s8(x, w, bias, p, rq, expected)
        assert_exact(out, expected, f"{isa} case {i}: {p}, x {x.shape}, w {w.shape}")
        run(x.copy(), out)
        assert_exact(out, expected, f"{isa} case {i} (second call)")


@pytest.mark.parametrize("policy", POLICIES)
def test_bound_depthwise_3x3_rows_every_isa(isa, policy):
    """3x3 filters at stride 1 and 2 along W (the AVX-512 row kernel's shapes, where it holds
    the taps' weights in registers and runs 4 pixels per step): widths around multiples of 4
    with and without side padding, rows cut off at the top and bottom, dilation along H,
    channel tails below and above 32, M = 2."""
    rng = np.random.default_rng([64, POLICIES.index(policy), ISAS.index(isa)])
    configs = [(w, sw, pl, cm) for w, sw, pl, cm in
               [(1, 1, 1, 32), (3, 1, 0, 32), (4, 1, 1, 48), (6, 1, 0, 16), (7, 1, 1, 144),
                (9, 2, 0, 40), (10, 2, 1, 64), (13, 2, 1, 17), (17, 1, 1, 96), (18, 2, 0, 33)]]
    for i, (w, sw, pl, cm) in enumerate(configs):
        h, sh, dh = int(rng.integers(3, 8)), 1 + i % 2, 1 + (i % 3 == 2)
        m = 2 if i % 4 == 3 and cm % 2 == 0 else 1
        pt = int(rng.integers(0, 2))
        oh = max(0, (h + 2 * pt - 2 * dh - 1)) // sh + 1
        ow = (w + 2 * pl - 3) // sw + 1
        if ow < 1 or oh < 1:
            continue
        zp_in = int(rng.integers(-128, 128))
        p = DepthwiseParams(sh, sw, pt, pl, dh, 1, m, -zp_in)
        x = rng.integers(-128, 128, size=(h, w, cm // m)).astype(np.int8)
        wt = rng.integers(-127, 128, size=(3, 3, cm)).astype(np.int8)
        bias = rng.integers(-30000, 30000, size=cm).astype(np.int32)
        rq = make_requant(0.05, rng.uniform(0.002, 0.02, cm).astype(np.float32), 0.3,
                          int(rng.integers(-20, 20)), ACTIVATIONS[i % 3], "depthwise", policy)
        shape = (oh, ow, cm)
        out, expected = np.full(shape, 99, np.int8), np.empty(shape, np.int8)
        K.bind_depthwise_conv2d_s8(wt, bias, p, rq, x.shape, shape)(x, out)
        spec.depthwise_conv2d_s8(x, wt, bias, p, rq, expected)
        assert_exact(out, expected, f"{isa} case {i}: {p}, x {x.shape}")


_BIG = {}


def _mobilenet_scale():
    """3x3 SAME at 112x112x96 (MobileNetV2's widest depthwise layer, stride 1), once."""
    if not _BIG:
        rng = np.random.default_rng(62)
        x = rng.integers(-128, 128, size=(112, 112, 96)).astype(np.int8)
        w = rng.integers(-127, 128, size=(3, 3, 96)).astype(np.int8)
        bias = rng.integers(-30000, 30000, size=96).astype(np.int32)
        p = DepthwiseParams(1, 1, 1, 1, 1, 1, 1, 7)
        rq = make_requant(0.05, rng.uniform(0.002, 0.02, 96).astype(np.float32), 0.4, -3,
                          "relu6", "depthwise")
        expected = np.empty((112, 112, 96), np.int8)
        spec.depthwise_conv2d_s8(x, w, bias, p, rq, expected)
        _BIG.update(x=x, w=w, bias=bias, p=p, rq=rq, expected=expected)
    return _BIG


@pytest.mark.parametrize("threads", [1, 2])
def test_bound_depthwise_threads_mobilenet_scale(isa, threads):
    b = _mobilenet_scale()
    K.set_num_threads(threads)
    try:
        out = np.empty_like(b["expected"])
        K.bind_depthwise_conv2d_s8(b["w"], b["bias"], b["p"], b["rq"], b["x"].shape,
                                   out.shape)(b["x"], out)
    finally:
        K.set_num_threads(1)
    assert_exact(out, b["expected"], f"{isa} 112x112x96 3x3 SAME, {threads} threads")


# ---------------------------------------------------------------- against LiteRT


def _model(c, dtype=np.int8):
    h, w, cin = c["x"].shape
    kh, kw, cm = c["w"].shape
    p = c["p"]
    if dtype == np.float32:
        inputs = [Spec((1, h, w, cin), np.float32), Spec((1, kh, kw, cm), np.float32,
                                                          data=c["wf"]),
                  Spec((cm,), np.float32, data=c["bf"])]
        outputs = [Spec((1,) + c["out_shape"], np.float32)]
    else:
        bias_scale = (np.float32(c["s_in"]) * c["s_w"]).astype(np.float32)
        inputs = [Spec((1, h, w, cin), np.int8, c["s_in"], c["zp_in"]),
                  Spec((1, kh, kw, cm), np.int8, c["s_w"], 0, data=c["w"], axis=3),
                  Spec((cm,), np.int32, bias_scale, 0, data=c["bias"])]
        outputs = [Spec((1,) + c["out_shape"], np.int8, c["s_out"], c["zp_out"])]
    kind, opts = depthwise_conv2d_options((p.stride_h, p.stride_w), (p.dilation_h, p.dilation_w),
                                          c["padding"], c["activation"], p.depth_multiplier)
    return single_op_model("DEPTHWISE_CONV_2D", inputs, outputs, kind, opts, version=3)


def _tflite_cases(rng, activation, n):
    return [_case(rng, activation, ties=i % 2 == 1, per_channel=i % 4 != 3,
                  padding=("same", "valid")[i % 2]) for i in range(n)]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_depthwise_double_rounding_matches_builtin_ref(activation):
    """BUILTIN_REF DEPTHWISE_CONV_2D int8 = policy double (MultiplyByQuantizedMultiplier, M0
    and shift from double(s_in) * double(s_w[c]) / double(s_out)), per channel and per tensor."""
    rng = np.random.default_rng(160 + ACTIVATIONS.index(activation))
    for i, c in enumerate(_tflite_cases(rng, activation, 12)):
        expected = run(_model(c), c["x"][None])[0]
        assert_exact(_spec_out(c, "litert-ref"), expected, f"case {i}: {c['p']} vs BUILTIN_REF")


def test_depthwise_rounding_cases_tell_the_policies_apart():
    """On tie-heavy cases every other policy misses BUILTIN_REF somewhere."""
    cases = [_case(np.random.default_rng([163, i]), "none", ties=True, padding="same")
             for i in range(12)]
    expected = [run(_model(c), c["x"][None])[0] for c in cases]
    for policy in ("single", "fp32", "f64"):
        assert sum(int((_spec_out(c, policy) != e).sum()) for c, e in zip(cases, expected)), policy
    assert all((_spec_out(c, "litert-ref") == e).all() for c, e in zip(cases, expected))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_depthwise_fp32_policy_matches_xnnpack(activation):
    """LiteRT's default interpreter (XNNPACK) = policy fp32: rint(float32(acc) * float32(s_in
    * s_w / s_out)), ties to even; policy double misses it on tie-heavy cases."""
    rng = np.random.default_rng(170 + ACTIVATIONS.index(activation))
    misses = 0
    for i, c in enumerate(_tflite_cases(rng, activation, 8)):
        expected = run(_model(c), c["x"][None], reference=False)[0]
        assert_exact(_spec_out(c, "fp32"), expected, f"case {i}: {c['p']} vs XNNPACK")
        misses += int((_spec_out(c, "double") != expected).sum())
    assert misses > 0


def test_depthwise_f32_matches_litert_float():
    """The float twin: bit-equal to BUILTIN_REF's float kernel (a multiply and an add per tap,
    bias last), within float32 rounding of XNNPACK's."""
    rng = np.random.default_rng(180)
    for i in range(8):
        c = _case(rng, ("none", "relu6")[i % 2], padding=("same", "valid")[i // 2 % 2])
        c["wf"] = rng.normal(size=c["w"].shape).astype(np.float32)
        c["bf"] = rng.normal(size=c["bias"].shape).astype(np.float32)
        xf = rng.normal(size=c["x"].shape).astype(np.float32)[None]
        p = c["p"]
        (oh, ow, _), (h, w, _), (kh, kw, _) = c["out_shape"], c["x"].shape, c["w"].shape
        pb = max((oh - 1) * p.stride_h + (kh - 1) * p.dilation_h + 1 - h - p.pad_top, 0)
        pr = max((ow - 1) * p.stride_w + (kw - 1) * p.dilation_w + 1 - w - p.pad_left, 0)
        ours = activation_f32(depthwise_conv2d_f32(
            xf, c["wf"], c["bf"], (p.stride_h, p.stride_w), (p.pad_top, pb, p.pad_left, pr),
            (p.dilation_h, p.dilation_w), p.depth_multiplier), c["activation"])
        assert_exact(ours, run(_model(c, np.float32), xf), f"float case {i}: {p}")
        np.testing.assert_allclose(ours, run(_model(c, np.float32), xf, reference=False),
                                   rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- hand-checkable cases


def test_depthwise_3x3_same_two_channels_relu_hand(backend):
    """Channel 0: a 3x3 box of weight 1.0 plus a bias of 0.5; channel 1: 2.0 at the centre
    only. SAME padding (zeros), ReLU. Every result is a whole number of output steps."""
    s_in, zp_in, s_w, s_out, zp_out = 0.5, -10, 1.0 / 32, 0.25, -20
    img = np.array([[-1.0, 0.0, 1.0], [2.0, 3.0, -4.0], [0.5, -0.5, 1.5]])
    x = np.stack([q(img, s_in, zp_in), q(-img, s_in, zp_in)], axis=-1)
    w = np.zeros((3, 3, 2), np.int8)
    w[:, :, 0] = 32  # 1.0
    w[1, 1, 1] = 64  # 2.0
    bias = np.array([round(0.5 / (s_in * s_w)), 0], np.int32)
    rq = make_requant(s_in, [s_w, s_w], s_out, zp_out, "relu", "depthwise")
    out = np.empty((3, 3, 2), np.int8)
    backend.depthwise_conv2d_s8(x, w, bias, DepthwiseParams(1, 1, 1, 1, 1, 1, 1, -zp_in), rq, out)
    padded = np.pad(img, 1)
    box = np.array([[padded[i:i + 3, j:j + 3].sum() for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(out[:, :, 0], q(np.maximum(box + 0.5, 0.0), s_out, zp_out))
    np.testing.assert_array_equal(out[:, :, 1], q(np.maximum(-2.0 * img, 0.0), s_out, zp_out))


def test_depthwise_multiplier2_1x1_stride2_relu6_hand(backend):
    """One input channel, M = 2 with 1x1 filters 2.0 and -1.0, stride 2: out channel 0 is
    2x (capped at 6 by ReLU6), channel 1 is -x (0 where x > 0)."""
    s_in, s_out, zp_out = 0.25, 0.125, -30
    img = np.array([[1.0, 9.0, 3.5], [-2.0, 0.0, 0.0], [-3.5, 9.0, 0.75]])
    x = q(img, s_in, 0)[:, :, None]
    w = np.array([[[127, -127]]], np.int8)
    rq = make_requant(s_in, [2.0 / 127, 1.0 / 127], s_out, zp_out, "relu6", "depthwise")
    out = np.empty((2, 2, 2), np.int8)
    backend.depthwise_conv2d_s8(x, w, None, DepthwiseParams(2, 2, 0, 0, 1, 1, 2, 0), rq, out)
    sub = img[::2, ::2]
    np.testing.assert_array_equal(out[:, :, 0], q(np.clip(2 * sub, 0, 6), s_out, zp_out))
    np.testing.assert_array_equal(out[:, :, 1], q(np.clip(-sub, 0, 6), s_out, zp_out))


def test_depthwise_dilation2_valid_hand(backend):
    """A 3x3 filter of 1.0 dilated by 2 over a 5x5 ramp 0..24 reads the 9 pixels at even
    indices: 0 + 2 + 4 + 10 + 12 + 14 + 20 + 22 + 24 = 108 (input zero point -100)."""
    img = np.arange(25, dtype=np.float64).reshape(5, 5)
    x = q(img, 1.0, -100)[:, :, None]
    out = np.empty((1, 1, 1), np.int8)
    rq = make_requant(1.0, [1.0 / 127], 1.0, 0, "none", "depthwise")
    backend.depthwise_conv2d_s8(x, np.full((3, 3, 1), 127, np.int8), np.zeros(1, np.int32),
                                DepthwiseParams(1, 1, 0, 0, 2, 2, 1, 100), rq, out)
    assert int(out[0, 0, 0]) == 108


# ---------------------------------------------------------------- contracts and errors


def test_depth_multiplier_that_does_not_divide():
    assert depth_multiplier_of(8, 24) == 3
    with pytest.raises(ValueError, match="depth multiplier does not divide"):
        depth_multiplier_of(3, 8)


@pytest.mark.parametrize("shapes, message", [
    (((4, 4, 3), (3, 3, 8), (8,), (4, 4, 8)), "input channels 3 x depth multiplier 2 = 6"),
    (((4, 4, 3), (3, 3, 6), (5,), (4, 4, 6)), r"bias shape \(5,\), expected \(6,\)"),
    (((4, 4), (3, 3, 6), (6,), (4, 4, 6)), "expects x"),
    (((4, 4, 3), (3, 3, 6), (6,), (0, 4, 6)), "non-empty"),
])
def test_depthwise_bad_shapes(backend, shapes, message):
    x_shape, w_shape, b_shape, o_shape = shapes
    p = DepthwiseParams(1, 1, 1, 1, 1, 1, 2, 0)
    rq = make_requant(0.1, np.full(w_shape[-1], 0.01), 0.1, 0, "none", "depthwise")
    with pytest.raises(ValueError, match=message):
        check_depthwise(x_shape, w_shape, b_shape, p, o_shape)
    if backend.NAME != "c":  # the firmware kernel trusts export-c's prepare-time checks
        with pytest.raises(ValueError, match=message):
            backend.depthwise_conv2d_s8(np.zeros(x_shape, np.int8), np.zeros(w_shape, np.int8),
                                        np.zeros(b_shape, np.int32), p, rq,
                                        np.zeros(o_shape, np.int8))


def test_depthwise_bad_params():
    rq = make_requant(0.1, [0.01], 0.1, 0, "none", "depthwise")
    with pytest.raises(ValueError, match="depth multiplier must be >= 1"):
        check_depthwise((4, 4, 3), (3, 3, 3), None, DepthwiseParams(1, 1, 1, 1, 1, 1, 0, 0),
                        (4, 4, 3))
    with pytest.raises(ValueError, match="zero point 300 outside int8"):
        K.bind_depthwise_conv2d_s8(np.zeros((3, 3, 3), np.int8), None,
                                   DepthwiseParams(1, 1, 1, 1, 1, 1, 1, -300), rq, (4, 4, 3),
                                   (4, 4, 3))
    run = K.bind_depthwise_conv2d_s8(np.zeros((3, 3, 3), np.int8), None,
                                     DepthwiseParams(1, 1, 1, 1, 1, 1, 1, 0), rq, (4, 4, 3),
                                     (4, 4, 3))
    with pytest.raises(ValueError, match="depthwise input shape"):
        run(np.zeros((5, 4, 3), np.int8), np.zeros((4, 4, 3), np.int8))
    with pytest.raises(ValueError, match="depthwise output shape"):
        run(np.zeros((4, 4, 3), np.int8), np.zeros((4, 4, 4), np.int8))
    with pytest.raises(ValueError, match="depth multiplier 2 = 6"):
        depthwise_conv2d_f32(np.zeros((1, 4, 4, 3), np.float32), np.zeros((3, 3, 3)), None,
                             depth_multiplier=2)


def test_depthwise_param_names_match_cython_and_c():
    fields = [f.name for f in dataclasses.fields(DepthwiseParams)]
    args = set(inspect.signature(_dw.depthwise_conv2d_s8).parameters)
    assert set(fields) | {f.name for f in dataclasses.fields(Requant)} <= args
    header = re.sub(r"/\*.*?\*/", "", (stubs_dir() / "ec_kernels.h").read_text(), flags=re.S)
    body = re.search(r"typedef struct \{([^}]*)\} ec_depthwise_params_t;", header).group(1)
    assert re.findall(r"(\w+)\s*[,;]", body) == fields
