"""Import -> float graph: edgecnn's NHWC float graph computes what torch computed.

The forward fixtures hold torch's own output (tests/fixtures/make_forward_fixtures.py), so
these tests prove the layout conversions (OIHW -> OHWI, the C,H,W flatten order), BN folding
with the file's eps, and --arch matching, without torch installed.
"""

import json
import os

import numpy as np
import pytest

from edgecnn import ir, shapes, ops
from edgecnn.convert import import_float_graph, prepare_float_graph
from edgecnn.converters.layers import build_float_graph
from edgecnn.errors import ArchitectureError, UnsupportedOpError
from edgecnn.float_runtime import run_float

FIX = os.path.join(os.path.dirname(__file__), "fixtures")
PT = os.path.join(FIX, "pt")


def forward_fixture(name):
    with np.load(os.path.join(FIX, "forward", name + ".npz")) as d:
        return d["x"].transpose(0, 2, 3, 1).copy(), d["y"]  # NCHW -> NHWC


def assert_matches_torch(graph, name):
    x, y = forward_fixture(name)
    got = run_float(graph, x)
    np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-4)


def test_pickled_sequential_without_arch_matches_torch():
    x, _ = forward_fixture("sequential_module")
    graph = import_float_graph(os.path.join(PT, "sequential_module.pt"), input_size=x.shape[1])
    assert_matches_torch(graph, "sequential_module")  # BN unfolded
    assert_matches_torch(prepare_float_graph(graph), "sequential_module")  # folded, fused


@pytest.mark.parametrize("name", ["lenet5_module", "lenet5s_bn_module", "lenet5s_tanh_avg_module"])
def test_a_pickled_user_class_is_refused_its_forward_is_not_in_the_pickle(name):
    with pytest.raises(ArchitectureError) as e:
        import_float_graph(os.path.join(PT, name + ".pt"))
    text = str(e.value)
    assert "__main__.LeNet5, whose forward() a pickle does not store" in text
    assert "TorchScript" in text and "ONNX" in text and "--arch" in text and "\n" not in text


@pytest.mark.parametrize("name", ["lenet5_state_dict", "lenet5_state_dict_legacy"])
def test_state_dict_with_arch_lenet5_matches_the_module(name):
    graph = import_float_graph(os.path.join(PT, name + ".pt"), arch="lenet5")
    assert_matches_torch(prepare_float_graph(graph), "lenet5_module")


def test_state_dict_with_bn_and_a_spec_file_carrying_eps(tmp_path):
    spec = {"name": "lenet5s-bn", "input": {"height": 16, "width": 16, "channels": 1},
            "layers": [{"type": "conv", "filters": 6, "kernel": 5}, {"type": "batchnorm"},
                       {"type": "relu"}, {"type": "maxpool", "kernel": 2},
                       {"type": "conv", "filters": 16, "kernel": 5},
                       {"type": "batchnorm", "eps": 1e-3}, {"type": "relu"},
                       {"type": "maxpool", "kernel": 2}, {"type": "flatten"},
                       {"type": "linear", "units": 120}, {"type": "relu"},
                       {"type": "linear", "units": 84}, {"type": "relu"},
                       {"type": "linear", "units": 10}]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    graph = import_float_graph(os.path.join(PT, "lenet5s_bn_state_dict.pt"), arch=str(path))
    assert_matches_torch(prepare_float_graph(graph), "lenet5s_bn_module")


def test_builtin_arch_accepts_batchnorm_found_in_the_weights():
    graph = import_float_graph(os.path.join(PT, "lenet5s_bn_state_dict.pt"), arch="lenet5",
                               input_size=16)
    assert sum(isinstance(layer, ops.BatchNorm) for layer in graph.nodes) == 2


def test_arch_mismatch_shows_both_lists():
    with pytest.raises(ArchitectureError) as e:
        import_float_graph(os.path.join(PT, "lenet5_state_dict.pt"), arch="alexnet")
    text = str(e.value)
    assert "--arch alexnet" in text and "features.0 (conv: weight (6, 1, 5, 5)" in text


def test_state_dict_without_arch_asks_for_it():
    with pytest.raises(ArchitectureError, match="pass --arch"):
        import_float_graph(os.path.join(PT, "lenet5_state_dict.pt"))


def test_unknown_arch_name_lists_the_builtins():
    with pytest.raises(ArchitectureError, match="lenet5, lenet5-avg"):
        import_float_graph(os.path.join(PT, "lenet5_state_dict.pt"), arch="resnet101")


def test_adaptive_pool_to_1x1_becomes_the_spatial_mean_when_the_input_is_larger():
    graph = import_float_graph(os.path.join(PT, "sequential_module.pt"), input_size=8)
    means = [layer for layer in graph.nodes if isinstance(layer, ops.Mean)]
    assert len(means) == 1 and graph.tensor(means[0].inputs[0]).shape[1:3] == (4, 4)


def test_adaptive_pool_with_uneven_windows_is_refused():
    entries = [{"type": "adaptive_avgpool", "output": [2, 2]}, {"type": "flatten"},
               {"type": "linear", "weight": np.zeros((2, 12), np.float32), "bias": None}]
    assert build_float_graph(entries, (4, 4, 3)).nodes[0].kernel == (2, 2)
    with pytest.raises(UnsupportedOpError, match="uneven windows"):
        build_float_graph(entries, (5, 5, 3))


def test_unknown_formats_are_clear_errors(tmp_path):
    p = tmp_path / "m.h5"
    p.write_bytes(b"x")
    with pytest.raises(UnsupportedOpError, match="unknown model format '.h5'"):
        import_float_graph(str(p))


def test_float_tflite_converts_to_a_bit_exact_int8_model(tmp_path):
    from PIL import Image

    from edgecnn.convert import convert
    from edgecnn.tflite.writer import write_tflite
    from edgecnn.verify import verify

    x, y = forward_fixture("lenet5_module")
    float_graph = prepare_float_graph(import_float_graph(os.path.join(PT, "lenet5_state_dict.pt"),
                                                         arch="lenet5"))
    write_tflite(float_graph, str(tmp_path / "float.tflite"))
    reread = import_float_graph(str(tmp_path / "float.tflite"))
    np.testing.assert_allclose(run_float(reread, x), y, rtol=1e-4, atol=1e-4)

    rng = np.random.default_rng(5)
    os.makedirs(tmp_path / "calib")
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "calib" / f"{i}.png")
    convert(str(tmp_path / "float.tflite"), str(tmp_path / "int8.tflite"),
            calib=[str(tmp_path / "calib")], method="percentile")
    assert verify(str(tmp_path / "int8.tflite"), [str(tmp_path / "calib")]).ok


def test_an_int8_tflite_is_not_converted_again(tmp_path):
    tf_file = os.path.join(FIX, "tflite", "tf_lenet5_int8_io.tflite")
    with pytest.raises(UnsupportedOpError, match="already an int8 model"):
        import_float_graph(tf_file)


def test_imagenet_style_defaults_scale_the_resize_and_bring_the_labels():
    from edgecnn.convert import default_labels, default_preprocess
    fc = ops.FullyConnected("fc", np.zeros((1000, 3), np.float32), None)
    for size, resize in ((224, 256), (416, 475)):
        inp = ir.Tensor("input", (1, size, size, 3), "float32")
        graph = shapes.infer_shapes(ir.sequential(inp, [
            ops.AvgPool2D("gap", (size, size), (size, size)), ops.Reshape("flat"), fc],
            name="alexnet"))
        pre = default_preprocess(graph)
        assert (pre.resize, pre.mean, pre.color) == (resize, (0.485, 0.456, 0.406), "RGB")
        labels = default_labels(graph)
        assert len(labels) == 1000 and labels[0] == "tench"
    assert default_preprocess(graph, None, resize=300, mean=(0.5,)).resize == 300
    assert default_labels(graph.replace(name="mynet")) == ()  # 416x416, not named alexnet
