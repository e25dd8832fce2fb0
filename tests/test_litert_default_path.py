"""--rounding fp32 against LiteRT's default interpreter (XNNPACK delegate + optimized builtin
kernels) on single-op int8 MEAN and SOFTMAX models, bit for bit: XNNPACK's qs8 MEAN and LiteRT's
optimized float softmax (edgecnn/reference/mean.py, softmax.py). Each test also shows that the
reference arithmetic differs there, so the comparison decides something. x86-64 only: the CI's
arm64 stage does not run this file (an aarch64 clang build of LiteRT takes SoftmaxInt8LUT)."""

from __future__ import annotations

import numpy as np

import edgecnn.backends.reference as spec
from edgecnn.reference.params import (make_mean_params, make_softmax_float_params,
                                      make_softmax_params, mean_shape)
from exact import assert_exact
from graph_op_cases import MEAN_SWEEPS, all_sums, int8, mean_quant
from litert_models import Spec, reducer_options, run, single_op_model, softmax_options


def _mean_model(in_shape, keep_dims, s_in, zp_in, s_out, zp_out):
    kind, opts = reducer_options(keep_dims)
    axis = Spec((2,), np.int32, data=np.array([1, 2], np.int32))
    return single_op_model("MEAN", [Spec(in_shape, np.int8, s_in, zp_in), axis],
                           [Spec(mean_shape(in_shape, [1, 2], keep_dims), np.int8, s_out, zp_out)],
                           kind, opts, version=2)


def test_mean_fp32_is_litert_default_path():
    """Random shapes and quantizations with and without keep_dims, then every int8 sum of the
    sweeps: out = rint(float32(sum) * scale + bias), two float32 roundings."""
    rng = np.random.default_rng(12)
    cases = [(int8(rng, (int(rng.integers(1, 12)), int(rng.integers(1, 12)),
                         int(rng.integers(1, 80)))), mean_quant(rng, i % 3 == 0, i % 3 == 2))
             for i in range(12)]
    cases += [(all_sums(h, w), tuple(q)) for h, w, *q in MEAN_SWEEPS]
    reference_differs = 0
    for i, (x, quant) in enumerate(cases):
        shape = (1,) + x.shape
        expected = run(_mean_model(shape, i % 2 == 0, *quant), x[None], reference=False).ravel()
        ours, ref = np.empty(x.shape[2], np.int8), np.empty(x.shape[2], np.int8)
        spec.mean_s8(x, make_mean_params(shape, [1, 2], *quant, "fp32"), ours)
        assert_exact(ours, expected, f"fp32 mean {x.shape} {quant} vs LiteRT default")
        spec.mean_s8(x, make_mean_params(shape, [1, 2], *quant), ref)
        reference_differs += int((ref != expected).sum())
    assert reference_differs > 0


# Inputs on which the reference (gemmlowp) softmax and LiteRT's float one round apart (found
# by search: they agree on nearly every input, as both are accurate to well below an output step)
SOFTMAX_APART = [(0.014248702548825713, [127, 74, 101]), (0.6123915297876743, [127, 123, 125]),
                 (0.856593304666178, [127, 115, 121])]


def test_softmax_fp32_is_litert_default_path():
    """Random lengths, input scales and betas; 512 equal inputs, each exactly 0.5 output steps
    (std::round's tie: away from zero, -127); the cases where the reference kernel differs."""
    rng = np.random.default_rng(13)
    reference_differs = 0
    for i in range(24 + len(SOFTMAX_APART)):
        n = 512 if i == 0 else int(rng.integers(1, 500))
        s_in, beta = float(rng.uniform(0.001, 1.0)), float(rng.choice([1.0, 0.3, 4.0]))
        x = rng.integers(-128, 128, size=n).astype(np.int8)
        if i % 4 == 0:
            x[:] = x[0]
        if i >= 24:
            s_in, values = SOFTMAX_APART[i - 24]
            x, n, beta = np.array(values, np.int8), len(values), 1.0
        kind, opts = softmax_options(beta)
        model = single_op_model("SOFTMAX", [Spec((1, n), np.int8, s_in, int(rng.integers(-128, 128)))],
                                [Spec((1, n), np.int8, 1 / 256, -128)], kind, opts)
        expected = run(model, x[None], reference=False)[0]
        ours = np.empty(n, np.int8)
        spec.softmax_float_s8(x, make_softmax_float_params(s_in, beta, 1 / 256, -128), ours)
        assert_exact(ours, expected, f"fp32 softmax n={n} s_in={s_in} beta={beta} vs LiteRT")
        if i == 0:
            assert (expected == -127).all()
        else:
            ref = np.empty(n, np.int8)
            spec.softmax_s8(x, make_softmax_params(s_in, beta), ref)
            reference_differs += int((ref != expected).sum())
    assert reference_differs >= len(SOFTMAX_APART)
