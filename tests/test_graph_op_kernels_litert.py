"""The graph-op spec against LiteRT 2.3 BUILTIN_REF, bit for bit, on single-op int8 ADD,
CONCATENATION and MEAN models (tests/litert_models.py), and what LiteRT refuses refused by the
makers too. Each test names the formula it proves; see edgecnn/reference/params.py."""

from __future__ import annotations

import numpy as np
import pytest

import edgecnn.backends.reference as spec
from edgecnn.reference.params import (broadcast_shape, concat_shape, make_add_params,
                                      make_broadcast, make_concat_params, make_mean_params,
                                      mean_shape)
from exact import assert_exact
from graph_op_cases import (ACTIVATIONS, ADD_ALL_PAIRS, BROADCASTS, MEAN_SHAPES, MEAN_SWEEPS,
                            MEAN_WRAP, add_quant, all_sums, concat_case, int8,
                            mean_quant)
from litert_models import (Spec, add_options, concatenation_options, reducer_options, run,
                           single_op_model)


# ---------------------------------------------------------------- the spec vs LiteRT


def _add_model(shape1, shape2, q, activation):
    s1, zp1, s2, zp2, s_out, zp_out = q
    kind, opts = add_options(activation)
    return single_op_model("ADD", [Spec(shape1, np.int8, s1, zp1), Spec(shape2, np.int8, s2, zp2)],
                           [Spec(broadcast_shape(shape1, shape2), np.int8, s_out, zp_out)],
                           kind, opts, version=2)


def _mean_model(in_shape, axes, keep_dims, s_in, zp_in, s_out, zp_out):
    kind, opts = reducer_options(keep_dims)
    axis = Spec((len(axes),), np.int32, data=np.asarray(axes, np.int32))
    return single_op_model("MEAN", [Spec(in_shape, np.int8, s_in, zp_in), axis],
                           [Spec(mean_shape(in_shape, axes, keep_dims), np.int8, s_out, zp_out)],
                           kind, opts, version=2)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_add_matches_builtin_ref(activation):
    """AddParams from double(s_i) / (2 max) and 2 max / (2^20 s_out), AddFunc per element, the
    same on LiteRT's broadcast path (BroadcastAdd6DSlow) as on the elementwise one."""
    rng = np.random.default_rng([7, ACTIVATIONS.index(activation)])
    for i, (shape1, shape2) in enumerate(list(BROADCASTS.values()) * 2):
        if i % 2:
            shape1, shape2 = shape2, shape1
        q = add_quant(rng, ties=i >= len(BROADCASTS))
        x1, x2 = int8(rng, shape1), int8(rng, shape2)
        ours = np.empty(broadcast_shape(shape1, shape2), np.int8)
        spec.add_s8(x1, x2, make_add_params(*q, activation), ours)
        assert_exact(ours, run(_add_model(shape1, shape2, q, activation), x1, x2),
                    f"add {shape1} + {shape2} {q}")


def test_add_all_pairs_match_builtin_ref():
    for case, q in enumerate(ADD_ALL_PAIRS):
        values = np.arange(-128, 128, dtype=np.int8)
        x1, x2 = values[:, None], values[None, :]
        ours = np.empty((256, 256), np.int8)
        spec.add_s8(x1, x2, make_add_params(*q, "none"), ours)
        assert_exact(ours, run(_add_model((256, 1), (1, 256), q, "none"), x1, x2),
                    f"add all pairs {q}")


def test_concat_matches_builtin_ref():
    rng = np.random.default_rng(8)
    for n_inputs in (2, 3, 4):
        for rank in range(1, 5):
            axis = int(rng.integers(-rank, rank))
            xs = concat_case(rng, n_inputs, rank, axis % rank)
            shape = concat_shape([x.shape for x in xs], axis)
            kind, opts = concatenation_options(axis)
            model = single_op_model("CONCATENATION", [Spec(x.shape, np.int8, 0.07, 9) for x in xs],
                                    [Spec(shape, np.int8, 0.07, 9)], kind, opts, version=2)
            ours = np.empty(shape, np.int8)
            spec.concat_s8(xs, axis % rank, make_concat_params([(0.07, 9)] * n_inputs, (0.07, 9)),
                           ours)
            assert_exact(ours, run(model, *xs), f"concat axis {axis} of {[x.shape for x in xs]}")


@pytest.mark.parametrize("keep_dims", [True, False], ids=["keep_dims", "squeeze"])
def test_mean_matches_builtin_ref(keep_dims):
    """QuantizedMeanOrSum for every keep_dims and quantization (no special 4-D path in
    BUILTIN_REF), axes given any way LiteRT accepts them."""
    rng = np.random.default_rng([9, keep_dims])
    for i, (h, w, c) in enumerate(MEAN_SHAPES * 2):
        quant = mean_quant(rng, equal=i % 3 == 0, ties=i % 3 == 2)
        axes = ([1, 2], [2, 1], [-3, -2], [1, 2, 1])[i % 4]
        x = int8(rng, (h, w, c))
        p = make_mean_params((1, h, w, c), axes, *quant)
        ours = np.empty(c, np.int8)
        spec.mean_s8(x, p, ours)
        expected = run(_mean_model((1, h, w, c), axes, keep_dims, *quant), x[None])
        assert expected.shape == mean_shape((1, h, w, c), axes, keep_dims)
        assert_exact(ours, expected.ravel(), f"mean {(h, w, c)} axes {axes} {quant}")


def test_mean_every_sum_matches_builtin_ref():
    """Every int8 sum over H x W, several quantizations: the spec equals LiteRT throughout.
    (LiteRT truncates (M0 << shift) / count; rounding it instead moves no output in these
    sweeps, so that detail rests on the source, not on a test.)"""
    for h, w, *quant in MEAN_SWEEPS:
        x = all_sums(h, w)
        ours = np.empty(x.shape[2], np.int8)
        spec.mean_s8(x, make_mean_params((1,) + x.shape, [1, 2], *quant), ours)
        assert_exact(ours, run(_mean_model((1,) + x.shape, [1, 2], False, *quant),
                              x[None]).ravel(), f"mean of every sum over {h}x{w}, {quant}")


def test_mean_wrap_and_double_rounding_match_builtin_ref():
    """The wrapping int32 sum of MEAN_WRAP, and the hand case's 0.25 -> 1, are LiteRT's."""
    for h, w, c, value, s_in, zp_in, s_out, zp_out in MEAN_WRAP:
        x = np.full((1, h, w, c), value, np.int8)
        x[0, 0, 0, 0] = value - 1
        ours = np.empty(c, np.int8)
        spec.mean_s8(x[0], make_mean_params(x.shape, [1, 2], s_in, zp_in, s_out, zp_out), ours)
        model = _mean_model(x.shape, [1, 2], False, s_in, zp_in, s_out, zp_out)
        assert_exact(ours, run(model, x).ravel(), f"mean {x.shape} of {value}, zp {zp_in}")
    x = np.array([0, 0, 0, 1], np.int8).reshape(1, 2, 2, 1)
    assert run(_mean_model(x.shape, [1, 2], True, 0.1, 0, 0.1, 0), x).ravel()[0] == 1


# ---------------------------------------------------------------- refusals


def _litert_refuses(model, *xs):
    with pytest.raises(RuntimeError):
        run(model, *xs)


def test_concat_with_rescaling_is_refused_as_litert_does():
    x = np.zeros((1, 2, 2, 3), np.int8)
    kind, opts = concatenation_options(3)
    for q2 in [(0.2, 0), (0.1, 1)]:
        _litert_refuses(single_op_model(
            "CONCATENATION", [Spec(x.shape, np.int8, 0.1, 0), Spec(x.shape, np.int8, *q2)],
            [Spec((1, 2, 2, 6), np.int8, 0.1, 0)], kind, opts, version=2), x, x)
        with pytest.raises(ValueError, match="input 1 has scale .* LiteRT's int8 CONCATENATION"):
            make_concat_params([(0.1, 0), q2], (0.1, 0))
    kind, opts = concatenation_options(3, "relu")  # a fused activation: LiteRT refuses it too
    _litert_refuses(single_op_model(
        "CONCATENATION", [Spec(x.shape, np.int8, 0.1, 0)] * 2,
        [Spec((1, 2, 2, 6), np.int8, 0.1, 0)], kind, opts, version=2), x, x)


def test_concat_shapes_that_disagree_are_refused_as_litert_does():
    kind, opts = concatenation_options(2)
    a, b = np.zeros((1, 2, 2, 3), np.int8), np.zeros((1, 3, 2, 3), np.int8)
    _litert_refuses(single_op_model(
        "CONCATENATION", [Spec(a.shape, np.int8, 0.1, 0), Spec(b.shape, np.int8, 0.1, 0)],
        [Spec((1, 2, 4, 3), np.int8, 0.1, 0)], kind, opts, version=2), a, b)
    with pytest.raises(ValueError, match=r"input 1 has shape \(1, 3, 2, 3\) but input 0 has"):
        concat_shape([a.shape, b.shape], 2)
    with pytest.raises(ValueError, match="axis 4 is out of range for rank 4"):
        concat_shape([a.shape, a.shape], 4)
    with pytest.raises(ValueError, match="input 1 has shape"):
        concat_shape([(2, 3), (2, 3, 1)], 0)


def test_add_broadcast_litert_refuses_is_refused():
    a, b = np.zeros((1, 2, 2, 3), np.int8), np.zeros((1, 2, 2, 2), np.int8)
    kind, opts = add_options("none")
    _litert_refuses(single_op_model(
        "ADD", [Spec(a.shape, np.int8, 0.1, 0), Spec(b.shape, np.int8, 0.1, 0)],
        [Spec(a.shape, np.int8, 0.1, 0)], kind, opts, version=2), a, b)
    with pytest.raises(ValueError, match=r"shapes \(1, 2, 2, 3\) and \(1, 2, 2, 2\) do not "
                                         r"broadcast"):
        make_broadcast(a.shape, b.shape)
    with pytest.raises(ValueError, match="have 9 dimensions; LiteRT broadcasts at most 8"):
        broadcast_shape((1,) * 9, (1,))
