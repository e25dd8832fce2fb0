"""int8 .tflite files made by TensorFlow's own converter (tests/fixtures/tflite/, written by
tests/fixtures/make_tf_fixtures.py; TensorFlow is never imported here): the reader takes
them, and ``verify`` against LiteRT's reference kernels is bit-exact on every tensor, on
each backend and through the CLI.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn import ir, ops
from edgecnn.cli import main
from edgecnn.tflite.reader import load_tflite
from edgecnn.verify import verify

TFLITE = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")

LENET5_LAYERS = ["Conv2D+relu", "MaxPool2D", "Conv2D+relu", "MaxPool2D", "Reshape",
                 "FullyConnected+relu", "FullyConnected+relu", "FullyConnected", "Softmax"]

# file -> (IR layers as "Type[+fused activation]" or "Activation:kind", input, output)
FIXTURES = {
    "tf_lenet5_float_io": (["Quantize"] + LENET5_LAYERS + ["Dequantize"],
                           ((1, 32, 32, 1), "float32"), ((1, 10), "float32")),
    "tf_lenet5_int8_io": (LENET5_LAYERS, ((1, 32, 32, 1), "int8"), ((1, 10), "int8")),
    "tf_small_same_avg": (["Conv2D+relu6", "Conv2D+relu6", "AvgPool2D", "AvgPool2D", "Reshape",
                           "FullyConnected"],
                          ((1, 24, 24, 3), "int8"), ((1, 10), "int8")),
    "tf_pad_tanh": (["Pad", "Conv2D", "Activation:tanh", "MaxPool2D", "Reshape",
                     "FullyConnected", "Activation:sigmoid", "FullyConnected"],
                    ((1, 16, 16, 1), "int8"), ((1, 5), "int8")),
}
BACKENDS = ["reference", "cython"]


def path_of(name: str) -> str:
    return os.path.join(TFLITE, name + ".tflite")


def describe(layer) -> str:
    if isinstance(layer, ops.Activation):
        return f"Activation:{layer.kind}"
    act = getattr(layer, "activation", "none")
    return type(layer).__name__ + (f"+{act}" if act != "none" else "")


def test_fixtures_are_small_and_documented():
    sizes = {n: os.path.getsize(path_of(n)) for n in FIXTURES}
    assert all(s < 300_000 for s in sizes.values()), sizes
    assert sum(sizes.values()) < 1_000_000, sizes
    with open(os.path.join(TFLITE, "README.md")) as f:
        readme = f.read()
    assert "TensorFlow 2." in readme
    assert all(f"`{n}.tflite`" in readme for n in FIXTURES)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_reader_takes_tf_converter_file(name):
    layers, (in_shape, in_dtype), (out_shape, out_dtype) = FIXTURES[name]
    graph = load_tflite(path_of(name)).graph
    assert [describe(l) for l in graph.nodes] == layers
    assert (graph.input.shape, graph.input.dtype) == (in_shape, in_dtype)
    assert (graph.output.shape, graph.output.dtype) == (out_shape, out_dtype)
    assert graph.input.dtype == "int8" or graph.nodes[0].output.dtype == "int8"

    for t in graph.tensors():
        if t.dtype != "int8":
            continue
        # int8 activations: per tensor, positive scale, zero point in range
        assert t.quant is not None and t.quant.scale.shape == (1,), t.name
        assert t.quant.scale[0] > 0 and -128 <= t.quant.zero_point[0] <= 127, t.name

    for layer in graph.nodes:
        if isinstance(layer, (ops.Conv2D, ops.FullyConnected)):
            w, wq, c_out = layer.weight, layer.weight_quant, layer.weight.shape[0]
            assert w.dtype == np.int8 and w.min() >= -127, layer.name  # symmetric, never -128
            assert wq.scale.shape in ((1,), (c_out,)) and (wq.scale > 0).all(), layer.name
            assert (wq.zero_point == 0).all() and wq.axis == 0, layer.name
            assert layer.bias.dtype == np.int32 and layer.bias.shape == (c_out,), layer.name
            if isinstance(layer, ops.Conv2D):
                assert wq.scale.shape == (c_out,), layer.name  # the converter's per-channel conv
        fixed = {"Softmax": (1 / 256, -128), "Activation:tanh": (1 / 128, 0),
                 "Activation:sigmoid": (1 / 256, -128)}.get(describe(layer))
        if fixed is not None:  # output quantization fixed by the TFLite int8 spec
            q = layer.output.quant
            assert (float(q.scale[0]), int(q.zero_point[0])) == fixed, layer.name


def test_reader_explicit_padding():
    small = load_tflite(path_of("tf_small_same_avg")).graph.nodes
    # SAME, stride 2, 3x3: 24 -> 12 and 12 -> 6 pad one row/column after (TF puts the odd one last)
    assert [small[0].padding, small[1].padding] == [(0, 1, 0, 1)] * 2
    assert [small[0].stride, small[1].stride] == [(2, 2)] * 2
    assert small[2].padding == (0, 0, 0, 0) and small[2].kernel == (2, 2)
    assert small[3].padding == (1, 1, 1, 1) and small[3].kernel == (3, 3)  # SAME 3x3 stride 1
    pad_tanh = load_tflite(path_of("tf_pad_tanh")).graph.nodes
    assert pad_tanh[0].padding == (1, 2, 2, 1)  # ZeroPadding2D(((1, 2), (2, 1)))
    assert pad_tanh[1].padding == (0, 0, 0, 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(FIXTURES))
def test_verify_bit_exact_against_litert_ref(name, backend):
    report = verify(path_of(name), None, against="litert-ref", backend=backend, count=8, seed=3)
    diffs = {r.name: r.max_diff for r in report.rows if r.max_diff != 0}
    assert report.ok and not diffs, diffs
    assert report.inputs == 8 and len(report.rows) == len(FIXTURES[name][0]) + 1
    assert all(r.exact == r.total > 0 for r in report.rows)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_cli_verify_exits_zero(name):
    r = CliRunner().invoke(main, ["verify", path_of(name)])
    assert r.exit_code == 0, r.output
