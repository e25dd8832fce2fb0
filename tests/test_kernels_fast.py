"""The packed, prepare-time-bound kernels of the cython backend (bind_conv2d_s8,
bind_fully_connected_s8, bind_max_pool_s8, bind_avg_pool_s8) against the NumPy spec, bit for bit, on every ISA path this CPU runs
(forced one by one): seeded random shapes, strides 1-4, symmetric and asymmetric padding,
dilation, channel counts 1..70, every rounding policy, input zero points -128 / 0 / 127."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn.backends.reference as spec
from edgecnn.reference.params import (ConvParams, FCParams, PoolParams, make_requant,
                                      make_softmax_float_params, make_softmax_params)

from edgecnn.backends import cython as K  # noqa: E402
from exact import assert_exact

POLICIES = ("litert-ref", "double", "single", "fp32", "f64")
ISAS = K.supported_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    K.force_isa(request.param)
    yield request.param
    K.force_isa("auto")


def assert_same(actual, expected, what=""):
    assert_exact(actual, expected, what, ('bound', 'reference'))


def _conv_case(rng, policy, zp_in, case):
    cin = int(rng.choice([1, 3, 4, 5, 16, 33, 64, 70])) if case % 3 else int(rng.integers(1, 71))
    cout = int(rng.integers(1, 71))
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 5, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2)) if case % 4 == 3 else (1, 1)
    h = int(rng.integers(max(1, (kh - 1) * dh - 2), 14))
    w = int(rng.integers(max(1, (kw - 1) * dw - 2), 14))
    pt, pb, pl, pr = (int(v) for v in rng.integers(0, 4, size=4))  # asymmetric allowed
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    if oh < 1 or ow < 1:
        return None
    s_in = float(rng.uniform(0.005, 0.1))
    s_w = rng.uniform(0.002, 0.02, size=cout).astype(np.float32)
    s_out = float(s_in * s_w.mean() * 3 * np.sqrt(kh * kw * cin))
    x = rng.integers(-128, 128, size=(h, w, cin)).astype(np.int8)
    wt = rng.integers(-127, 128, size=(cout, kh, kw, cin)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=cout).astype(np.int32)
    p = ConvParams(sh, sw, pt, pl, dh, dw, -zp_in)
    act = ("none", "relu", "relu6")[case % 3]
    rq = make_requant(s_in, s_w, s_out, int(rng.integers(-128, 128)), act, "conv", policy)
    return x, wt, bias, p, rq, (oh, ow, cout)


@pytest.mark.parametrize("zp_in", [-128, 0, 127])
@pytest.mark.parametrize("policy", POLICIES)
def test_bound_conv_random(isa, policy, zp_in):
    rng = np.random.default_rng([POLICIES.index(policy), zp_in + 128, ISAS.index(isa)])
    done = 0
    for case in range(40):
        made = _conv_case(rng, policy, zp_in, case)
        if made is None:
            continue
        x, wt, bias, p, rq, shape = made
        run = K.bind_conv2d_s8(wt, bias, p, rq, x.shape, shape)
        out, expected = np.full(shape, 99, np.int8), np.empty(shape, np.int8)
        run(x, out)
        spec.conv2d_s8(x, wt, bias, p, rq, expected)
        assert_same(out, expected, f"{isa} conv case {case}: {p}, x {x.shape}, w {wt.shape}")
        run(x.copy(), out)  # a second call on a fresh input view: same answer
        assert_same(out, expected, f"{isa} conv case {case} (second call)")
        done += 1
    assert done > 20


@pytest.mark.parametrize("threads", [1, 2])
def test_bound_conv_threads_alexnet_like(isa, threads):
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(27, 27, 64)).astype(np.int8)
    wt = rng.integers(-127, 128, size=(192, 5, 5, 64)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=192).astype(np.int32)
    p = ConvParams(1, 1, 2, 2, 1, 1, 5)
    rq = make_requant(0.05, rng.uniform(0.002, 0.02, 192).astype(np.float32), 2.0, -3, "relu",
                      "conv", "litert-ref")
    expected = np.empty((27, 27, 192), np.int8)
    spec.conv2d_s8(x, wt, bias, p, rq, expected)
    K.set_num_threads(threads)
    try:
        out = np.empty_like(expected)
        K.bind_conv2d_s8(wt, bias, p, rq, x.shape, out.shape)(x, out)
    finally:
        K.set_num_threads(1)
    assert_same(out, expected, f"{isa} conv 27x27x64 -> 192, {threads} threads")


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("policy", POLICIES)
def test_bound_fully_connected_random(isa, policy, per_channel):
    rng = np.random.default_rng([11, POLICIES.index(policy), per_channel, ISAS.index(isa)])
    for case, zp_in in enumerate([-128, 0, 127, 3, -77, 64]):
        n, o = int(rng.integers(1, 700)), int(rng.integers(1, 70))
        s_in = float(rng.uniform(0.005, 0.1))
        s_w = rng.uniform(0.002, 0.02, size=o if per_channel else 1).astype(np.float32)
        x = rng.integers(-128, 128, size=n).astype(np.int8)
        wt = rng.integers(-127, 128, size=(o, n)).astype(np.int8)
        bias = rng.integers(-30000, 30000, size=o).astype(np.int32)
        rq = make_requant(s_in, s_w, float(s_in * s_w.mean() * 3 * np.sqrt(n)),
                          int(rng.integers(-128, 128)), ("none", "relu")[case % 2], "fc", policy)
        out, expected = np.empty(o, np.int8), np.empty(o, np.int8)
        spec.fully_connected_s8(x, wt, bias, FCParams(-zp_in), rq, expected)
        for threads in (1, 2):
            K.set_num_threads(threads)
            try:
                K.bind_fully_connected_s8(wt, bias, FCParams(-zp_in), rq)(x, out)
            finally:
                K.set_num_threads(1)
            assert_same(out, expected, f"{isa} fc case {case}: n={n} o={o} zp {zp_in}")


def test_kernel_isa_names_and_force_errors():
    assert K.kernel_isa() in ("avx512amx", "avx512vnni", "avx2", "neon-sdot", "neon", "generic")
    assert "generic" in ISAS and K.kernel_isa() in ISAS
    with pytest.raises(ValueError, match="unknown kernel ISA"):
        K.force_isa("sse9")
    missing = [n for n in ("avx512amx", "avx512vnni", "avx2", "neon-sdot", "neon")
               if n not in ISAS]
    for name in missing:
        with pytest.raises(ValueError, match="not supported on this CPU"):
            K.force_isa(name)
    assert K.kernel_isa() in ISAS  # a refused force leaves the choice as it was


def test_bound_shapes_are_checked():
    rq = make_requant(0.05, np.array([0.01], np.float32), 0.1, 0, "none", "conv", "litert-ref")
    run = K.bind_conv2d_s8(np.ones((1, 3, 3, 2), np.int8), np.zeros(1, np.int32),
                        ConvParams(1, 1, 1, 1, 1, 1, 0), rq, (4, 4, 2), (4, 4, 1))
    with pytest.raises(ValueError, match="conv input shape"):
        run(np.zeros((5, 4, 2), np.int8), np.zeros((4, 4, 1), np.int8))


@pytest.mark.parametrize("policy", POLICIES)
def test_bound_fully_connected_exact_ties(isa, policy):
    """Scales of exactly 1/2 and 1/4 put half the outputs on a rounding tie, both signs."""
    rng = np.random.default_rng([12, POLICIES.index(policy)])
    for s_out in (0.25, 0.5):  # real scale 0.5 * 0.25 / s_out = 1/2, 1/4
        n, o = 67, 130
        x = rng.integers(-8, 9, size=n).astype(np.int8)
        wt = rng.integers(-5, 6, size=(o, n)).astype(np.int8)
        bias = rng.integers(-200, 200, size=o).astype(np.int32)
        rq = make_requant(0.5, np.array([0.25], np.float32), s_out, 1, "none", "fc", policy)
        out, expected = np.empty(o, np.int8), np.empty(o, np.int8)
        spec.fully_connected_s8(x, wt, bias, FCParams(2), rq, expected)
        K.bind_fully_connected_s8(wt, bias, FCParams(2), rq)(x, out)
        assert_same(out, expected, f"{isa} fc ties, s_out {s_out}")


def test_bound_fully_connected_two_threads_big(isa):
    """Big enough (over 10^6 multiply-adds) for the worker pool to split the rows."""
    rng = np.random.default_rng(13)
    n, o = 4001, 301
    x = rng.integers(-128, 128, size=n).astype(np.int8)
    wt = rng.integers(-127, 128, size=(o, n)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=o).astype(np.int32)
    rq = make_requant(0.05, rng.uniform(0.002, 0.02, o).astype(np.float32), 8.0, -5, "relu",
                      "fc", "litert-ref")
    expected, out = np.empty(o, np.int8), np.empty(o, np.int8)
    spec.fully_connected_s8(x, wt, bias, FCParams(7), rq, expected)
    K.set_num_threads(2)
    try:
        run = K.bind_fully_connected_s8(wt, bias, FCParams(7), rq)
        for _ in range(3):
            out[:] = 0
            run(x, out)
            assert_same(out, expected, f"{isa} fc {n}x{o}, 2 threads")
    finally:
        K.set_num_threads(1)


def _pool_case(rng, case):
    c = int(rng.choice([1, 3, 6, 16, 17, 64])) if case % 2 else int(rng.integers(1, 40))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    if case % 5 == 0:
        kh = kw = sh = sw = 2
    pt, pb, pl, pr = ((int(v) for v in rng.integers(0, min(kh, kw), size=4)) if case % 3
                      else (0, 0, 0, 0))  # padding below the window: no empty windows
    h, w = (int(v) for v in rng.integers(1, 16, size=2))
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if oh < 1 or ow < 1 or pt >= kh or pl >= kw:
        return None
    lo, hi = [(-128, 127), (-5, 127), (-128, 40), (0, 100)][case % 4]
    x = rng.integers(-128, 128, size=(h, w, c)).astype(np.int8)
    return x, PoolParams(kh, kw, sh, sw, pt, pl, lo, hi), (oh, ow, c)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_bound_pool_random(kind):
    rng = np.random.default_rng([21, kind == "max"])
    bind = K.bind_max_pool_s8 if kind == "max" else K.bind_avg_pool_s8
    ref = spec.max_pool_s8 if kind == "max" else spec.avg_pool_s8
    done = 0
    for case in range(150):
        made = _pool_case(rng, case)
        if made is None:
            continue
        x, p, shape = made
        run = bind(p, x.shape, shape)
        out, expected = np.full(shape, 99, np.int8), np.empty(shape, np.int8)
        ref(x, p, expected)
        for _ in range(2):  # the scratch row carries nothing from one call to the next
            run(x.copy(), out)
            assert_same(out, expected, f"{kind} pool case {case}: {p}, x {x.shape}")
        done += 1
    assert done > 80


def test_bound_pool_shapes_are_checked():
    run = K.bind_max_pool_s8(PoolParams(2, 2, 2, 2, 0, 0, -128, 127), (4, 4, 3), (2, 2, 3))
    with pytest.raises(ValueError, match="pool input shape"):
        run(np.zeros((4, 5, 3), np.int8), np.zeros((2, 2, 3), np.int8))


@pytest.mark.parametrize("arithmetic", ["reference", "float"])
def test_bound_softmax_random(arithmetic):
    """The bound softmax (exps tabulated at bind time; "float": LiteRT's optimized kernel,
    --rounding fp32) against the spec: lengths 1..1000, betas whose diff_min cuts the table
    short, all-equal rows, a bound kernel reused."""
    rng = np.random.default_rng(77 if arithmetic == "reference" else 78)
    if arithmetic == "reference":
        make = make_softmax_params
        bind, run_spec = K.bind_softmax_s8, spec.softmax_s8
    else:
        def make(s_in, beta):
            return make_softmax_float_params(s_in, beta, 1 / 256, -128)
        bind, run_spec = K.bind_softmax_float_s8, spec.softmax_float_s8
    for i in range(30):
        n = int(rng.integers(1, 1001))
        p = make(float(rng.uniform(0.001, 1.0)), float(rng.choice([1.0, 0.3, 4.0, 50.0])))
        run = bind(p, (n,), (n,))
        for j in range(2):
            x = rng.integers(-128, 128, size=n).astype(np.int8)
            if (i + j) % 4 == 0:
                x[:] = x[0]
            out, expected = np.full(n, 9, np.int8), np.empty(n, np.int8)
            run(x, out)
            run_spec(x, p, expected)
            assert_exact(out, expected, f"bound {arithmetic} softmax case {i}.{j}: n={n} {p}")
    with pytest.raises(ValueError, match="bound for 5"):
        bind(p, (5,), (5,))(np.zeros(6, np.int8), np.zeros(6, np.int8))
