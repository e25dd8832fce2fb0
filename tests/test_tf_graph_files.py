"""Branching int8 .tflite files made by TensorFlow's converter (tests/fixtures/tflite/graph/,
written by tests/fixtures/make_tf_graph_fixtures.py): MLPerf Tiny's ResNet-8, DS-CNN,
MobileNetV1 VWW and FC autoencoder, MobileNetV2 0.35/96, a Fire concat, concats on H and W,
depth multipliers with dilation, PAD before a stride-2 depthwise, MEAN with and without
keep_dims; int8 and float input/output. None was written by edgecnn.

Every tensor of every file is bit-exact against LiteRT BUILTIN_REF on both backends, and with
--rounding fp32 every output against LiteRT's default path (XNNPACK); the dynamic-batch flatten
(SHAPE, STRIDED_SLICE, PACK, RESHAPE) folds into one static RESHAPE.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from edgecnn.tflite.reader import load_tflite
from edgecnn.verify import verify

GRAPH = os.path.join(os.path.dirname(__file__), "fixtures", "tflite", "graph")
FILES = sorted(os.path.basename(p)[:-len(".tflite")] for p in glob.glob(f"{GRAPH}/*.tflite"))
# the big ones run on the Cython backend only (the NumPy spec takes seconds per input there)
SLOW_ON_REFERENCE = ("tf_mobilenet_v2_035_96", "tf_mobilenet_v1_vww")


def path_of(name: str) -> str:
    return os.path.join(GRAPH, name + ".tflite")


def kinds(name):
    return [type(n).__name__ for n in load_tflite(path_of(name)).graph.nodes]


def test_every_graph_fixture_is_here_with_its_ops():
    assert len(FILES) == 23
    with open(os.path.join(GRAPH, "..", "README.md")) as f:
        readme = f.read()
    assert all(f"`graph/{n}.tflite`" in readme or f"`{n}.tflite`" in readme for n in FILES)
    assert {"Add", "DepthwiseConv2D", "Mean", "Concatenation", "Pad"} <= {
        k for n in FILES for k in kinds(n)}


@pytest.mark.parametrize("name", ["tf_resnet8_int8_io", "tf_ds_cnn_int8_io",
                                  "tf_mobilenet_v1_vww_int8_io"])
def test_dynamic_batch_flatten_folds_into_one_static_reshape(name):
    graph = load_tflite(path_of(name)).graph
    reshapes = [n for n in graph.nodes if type(n).__name__ == "Reshape"]
    assert len(reshapes) == 1 and reshapes[0].output.shape[0] == 1
    assert "Shape" not in kinds(name)


def test_grouped_conv_reads_as_one_block_diagonal_conv():
    """TF's grouped CONV_2D (filter C_in / groups deep) becomes one dense CONV_2D whose
    weights are zero outside each group's block: exact, since zeros add nothing."""
    convs = [n for n in load_tflite(path_of("tf_grouped_conv_int8_io")).graph.nodes
             if type(n).__name__ == "Conv2D"]
    assert [c.weight.shape for c in convs] == [(16, 3, 3, 8), (8, 1, 1, 16)]
    for conv, groups in zip(convs, (4, 2)):
        c_out, c_in = conv.weight.shape[0], conv.weight.shape[3]
        for g in range(groups):
            block = conv.weight[g * c_out // groups:(g + 1) * c_out // groups]
            outside = np.delete(block, np.s_[g * c_in // groups:(g + 1) * c_in // groups], 3)
            assert not outside.any() and block.any()


def test_branches_are_read_by_name():
    graph = load_tflite(path_of("tf_resnet8_int8_io")).graph
    adds = [n for n in graph.nodes if type(n).__name__ == "Add"]
    assert len(adds) == 3
    for add in adds:  # each ADD reads two different producers, one of them a skip
        producers = [graph.producer(name) for name in add.inputs]
        assert len({id(p) for p in producers}) == 2
    fire = load_tflite(path_of("tf_fire_concat_int8_io")).graph
    cats = [n for n in fire.nodes if type(n).__name__ == "Concatenation"]
    assert cats and all(c.axis == 3 and len(c.inputs) == 2 for c in cats)


@pytest.mark.parametrize("backend", ["reference", "cython"])
@pytest.mark.parametrize("name", FILES)
def test_every_tensor_bit_exact_against_litert_ref(name, backend):
    if backend == "reference" and name.startswith(SLOW_ON_REFERENCE):
        count = 1
    else:
        count = 4
    report = verify(path_of(name), None, against="litert-ref", backend=backend, count=count,
                    seed=5)
    diffs = {r.name: r.max_diff for r in report.rows if r.max_diff != 0}
    assert report.ok and not diffs, diffs
    assert all(r.exact == r.total > 0 for r in report.rows)
    assert len(report.rows) == len(load_tflite(path_of(name)).graph.tensors())


LARGE = os.path.join(os.path.dirname(__file__), "fixtures", "tflite", "large",
                     "mobilenet_v2_1.0_224_int8.tflite")


@pytest.mark.parametrize("backend", ["reference", "cython"])
def test_mobilenet_v2_224_every_tensor_bit_exact(backend):
    """Keras MobileNetV2 1.0/224 (35 convolutions, 17 depthwise, 10 residual ADDs)."""
    report = verify(LARGE, None, against="litert-ref", backend=backend, count=1, seed=1)
    diffs = {r.name: r.max_diff for r in report.rows if r.max_diff != 0}
    assert report.ok and not diffs and len(report.rows) == 66, diffs


@pytest.mark.parametrize("name", FILES)
def test_fp32_rounding_reproduces_litert_default_path(name):
    """LiteRT's default path (XNNPACK) rescales in float32 with ties to even; edgecnn's fp32
    policy does the same, and runs XNNPACK's MEAN and LiteRT's optimized float SOFTMAX, so the
    output of every file (ResNet-8, DS-CNN, MobileNetV1 and V2 included) is bit-exact with it."""
    report = verify(path_of(name), None, against="litert", rounding="fp32", count=4, seed=5)
    out = report.rows[0]
    assert len(report.rows) == 1 and out.max_diff == 0, (out.name, out.max_diff)


@pytest.mark.parametrize("name", [n for n in FILES if n.endswith("_int8_io")])
def test_outputs_bit_exact_against_tflite_micro(name):
    """TensorFlow Lite Micro, a second all-integer reference (double rounding everywhere, as
    CMSIS-NN): with --rounding double edgecnn's outputs equal its outputs bit for bit."""
    report = verify(path_of(name), None, against="tflm", count=3, seed=5)
    assert report.rounding == "double"
    diffs = {r.name: r.max_diff for r in report.rows if r.max_diff != 0}
    assert report.ok and not diffs, diffs
