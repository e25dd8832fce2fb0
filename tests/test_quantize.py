"""Quantization per the TFLite int8 spec, BN folding and the float graph passes."""

import numpy as np
import pytest

from edgecnn import ir, shapes, ops
from edgecnn.calibrate import calibrate
from edgecnn.errors import ArchitectureError, CalibrationError
from edgecnn.float_runtime import run_float
from edgecnn.fold import fold_batchnorm
from edgecnn.passes import fuse_activations, split_explicit_padding
from edgecnn.quantize import activation_quant, quantize_bias, quantize_graph, symmetric_weight_quant
from edgecnn.reference.fixedpoint import round_half_away


def graph_of(layers, hwc=(8, 8, 3)):
    inp = ir.Tensor("input", (1,) + hwc, "float32")
    return shapes.infer_shapes(ir.sequential(inp, layers))


def test_round_half_away_differs_from_numpy_round_at_ties():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5])
    np.testing.assert_array_equal(round_half_away(x), [1, 2, 3, -1, -3])
    np.testing.assert_array_equal(np.round(x), [0, 2, 2, -0, -2])


def test_activation_quant_hand_checked():
    q = activation_quant(-1.0, 3.0)  # scale 4/255, zp = round(-128 + 1 / (4/255)) = round(-64.25)
    assert q.scale[0] == np.float32(4.0 / 255.0) and q.zero_point[0] == -64
    q = activation_quant(0.5, 2.0)  # widened to include 0: [0, 2] -> zp -128
    assert q.scale[0] == np.float32(2.0 / 255.0) and q.zero_point[0] == -128
    q = activation_quant(-3.0, -1.0)  # [-3, 0] -> zp 127
    assert q.zero_point[0] == 127


def test_dead_tensor_gets_a_sane_scale():
    q = activation_quant(0.0, 0.0)
    assert q.scale[0] > 0 and q.zero_point[0] == -128


def test_weights_are_symmetric_per_channel_in_minus127_127():
    w = np.array([[[[1.0, -2.0]]], [[[0.25, 0.5]]], [[[0.0, 0.0]]]], np.float32)  # OHWI 3x1x1x2
    q, quant = symmetric_weight_quant(w, per_channel=True)
    np.testing.assert_array_equal(q.reshape(3, 2), [[64, -127], [64, 127], [0, 0]])
    np.testing.assert_allclose(quant.scale, [2 / 127, 0.5 / 127, 1.0], rtol=1e-7)
    assert np.all(quant.zero_point == 0)


def test_bias_scale_is_input_scale_times_weight_scale_rounded_half_away():
    b = quantize_bias(np.array([0.25, -0.25], np.float32), 2, 0.5, np.array([1.0, 1.0], np.float32), "l")
    np.testing.assert_array_equal(b, [1, -1])  # 0.5 ties round away from zero
    assert b.dtype == np.int32


def test_bias_overflow_is_a_clear_error():
    with pytest.raises(CalibrationError, match="bias does not fit int32"):
        quantize_bias(np.array([1e9], np.float32), 1, 1e-6, np.array([1e-6], np.float32), "conv1")


def random_conv_bn_graph(rng, eps):
    conv = ops.Conv2D("conv", rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32),
                     rng.normal(0, 0.1, 4).astype(np.float32), padding=(1, 1, 1, 1))
    bn = ops.BatchNorm("bn", rng.uniform(0.5, 2, 4).astype(np.float32),
                      rng.normal(0, 1, 4).astype(np.float32), rng.normal(0, 1, 4).astype(np.float32),
                      rng.uniform(0.1, 3, 4).astype(np.float32), eps)
    return graph_of([conv, bn, ops.Activation("relu", "relu")])


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_folded_batchnorm_equals_unfolded(eps):
    rng = np.random.default_rng(3)
    graph = random_conv_bn_graph(rng, eps)
    x = rng.normal(0, 1, (5, 8, 8, 3)).astype(np.float32)
    folded = fold_batchnorm(graph)
    assert [type(layer).__name__ for layer in folded.nodes] == ["Conv2D", "Activation"]
    np.testing.assert_allclose(run_float(folded, x), run_float(graph, x), rtol=1e-5, atol=1e-5)


def test_batchnorm_after_a_pool_becomes_a_1x1_depthwise_conv():
    rng = np.random.default_rng(3)
    bn = ops.BatchNorm("bn", *(rng.uniform(0.5, 2, 3).astype(np.float32) for _ in range(4)),
                       eps=1e-3)
    graph = graph_of([ops.MaxPool2D("pool", (2, 2), (2, 2)), bn])
    folded = fold_batchnorm(graph)
    assert [type(n).__name__ for n in folded.nodes] == ["MaxPool2D", "DepthwiseConv2D"]
    assert folded.nodes[1].weight.shape == (1, 1, 1, 3) and folded.output.name == "bn"
    x = rng.normal(0, 1, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, x), run_float(graph, x), rtol=1e-5, atol=1e-6)


def test_relu_fuses_and_odd_padding_becomes_an_explicit_pad():
    rng = np.random.default_rng(0)
    conv = ops.Conv2D("conv", rng.normal(0, 1, (2, 3, 3, 3)).astype(np.float32), None,
                     stride=(2, 2), padding=(2, 2, 2, 2))  # not SAME for 8x8 stride 2
    graph = split_explicit_padding(fuse_activations(graph_of([conv, ops.Activation("r", "relu")])))
    kinds = [(type(layer).__name__, getattr(layer, "activation", None)) for layer in graph.nodes]
    assert kinds == [("Pad", None), ("Conv2D", "relu")]
    x = rng.normal(0, 1, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(run_float(graph, x),
                               run_float(graph_of([conv, ops.Activation("r", "relu")]), x), atol=1e-5)


def test_quantized_graph_follows_the_spec():
    rng = np.random.default_rng(1)
    layers = [ops.Conv2D("conv", rng.normal(0, 1, (4, 3, 3, 3)).astype(np.float32),
                        np.zeros(4, np.float32), activation="relu"),
              ops.MaxPool2D("pool", (2, 2), (2, 2)), ops.Reshape("flat"),
              ops.FullyConnected("fc", rng.normal(0, 1, (5, 36)).astype(np.float32), None),
              ops.Softmax("softmax")]
    graph = graph_of(layers)
    ranges = calibrate(graph, [rng.normal(0, 1, (4, 8, 8, 3)).astype(np.float32)])
    q = quantize_graph(graph, ranges)
    conv, pool, flat, fc, sm = q.nodes
    assert q.input.dtype == "int8" and conv.weight.dtype == np.int8 and conv.bias.dtype == np.int32
    assert conv.weight_quant.scale.shape == (4,) and fc.weight_quant.scale.shape == (1,)
    assert conv.output.quant.zero_point[0] == -128  # ReLU output: range starts at 0
    assert pool.output.quant is conv.output.quant and flat.output.quant is conv.output.quant
    assert sm.output.quant.scalar() == (np.float32(1 / 256), -128)
    assert int(np.abs(conv.weight).max()) == 127 and int(conv.weight.min()) >= -127


def test_percentile_calibration_clips_outliers():
    graph = graph_of([ops.Activation("r", "relu")], (40, 40, 1))
    x = np.linspace(0, 1, 1600, dtype=np.float32).reshape(1, 40, 40, 1)
    x[0, 0, 0, 0] = 1000.0
    lo, hi = calibrate(graph, [x], "percentile", percentile=99.0)["r"]
    assert hi < 2.0
    assert calibrate(graph, [x], "minmax")["r"][1] == 1000.0


def test_calibration_needs_inputs():
    with pytest.raises(CalibrationError, match="--calib"):
        calibrate(graph_of([ops.Activation("r", "relu")]), [])


def test_prepare_refuses_a_declared_shape_the_layer_does_not_compute():
    from edgecnn.errors import ModelFormatError
    from edgecnn.prepare import prepare_calls

    rng = np.random.default_rng(2)
    graph = graph_of([ops.Conv2D("conv", rng.normal(0, 1, (2, 3, 3, 3)).astype(np.float32), None)])
    q = quantize_graph(graph, calibrate(graph, [rng.normal(0, 1, (1, 8, 8, 3)).astype(np.float32)]))
    prepare_calls(q)
    conv = q.nodes[0]
    bad = q.replace(nodes=(ir.replace(conv, output=ir.replace(conv.output, shape=(1, 6, 6, 1))),))
    with pytest.raises(ModelFormatError, match=r"conv: output 'conv' declares shape \(1, 6, 6, 1\) "
                                               r"but the op computes \(1, 6, 6, 2\)"):
        prepare_calls(bad)
    zero_stride = q.replace(nodes=(ir.replace(conv, stride=(0, 1)),))
    with pytest.raises(ModelFormatError, match="must be 1 or more"):
        prepare_calls(zero_stride)
