"""torchvision ResNet-18, MobileNetV2 and SqueezeNet 1.1 (seeded, non-trivial BatchNorm
statistics, 10 classes, 64x64) from every form a user saves them in: the pickled module
(graph templates), the state_dict with --arch, TorchScript traced and scripted, and ONNX
(torch.onnx.export's TorchScript-based exporter at opset 17 for all three, its default
torch.export-based one at opset 20 for SqueezeNet: the slowest fixture to write).

Each form's float graph equals torch's forward; the int8 files of the module and of
state_dict + --arch are the same bytes; the int8 files verify bit-exact against LiteRT's
BUILTIN_REF on every tensor. The fixtures are written once per session
(tests/fixtures/torchvision_fixtures.py).
"""

import os
import shutil
import sys

import numpy as np
import pytest

import alexnet_fixture as af
from edgecnn import ops
from edgecnn.convert import convert, import_float_graph, prepare_float_graph
from edgecnn.float_runtime import run_float
from edgecnn.verify import verify

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))
from torchvision_fixtures import NAMES, write_torchvision_fixtures  # noqa: E402

FORMS = ("module", "state_dict", "traced", "scripted", "onnx_opset17")
FILES = {"module": "_module.pt", "state_dict": "_state_dict.pt", "traced": "_traced.pt",
         "scripted": "_scripted.pt", "onnx_opset17": "_opset17.onnx", "onnx": ".onnx"}
SIZE = 64
# what each model's graph must hold: the skips, depthwise convs, concats and the global mean
EXPECTED = {"resnet18": {"Add": 8, "Mean": 1},
            "mobilenet_v2": {"Add": 10, "DepthwiseConv2D": 17, "Mean": 1},
            "squeezenet1_1": {"Concatenation": 8, "Mean": 1}}


@pytest.fixture(scope="session")
def torchvision_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchvision")
    write_torchvision_fixtures(str(out), forms=FORMS)
    write_torchvision_fixtures(str(out / "default_exporter"), names=("squeezenet1_1",),
                               forms=("onnx",))
    yield str(out)
    shutil.rmtree(str(out), ignore_errors=True)  # 190 MB


def path_of(folder, name, form):
    if form == "onnx":
        return os.path.join(folder, "default_exporter", name + ".onnx")
    return os.path.join(folder, name + FILES[form])


def torch_io(folder, name):
    with np.load(os.path.join(folder, name + ".npz")) as d:
        return d["x"].transpose(0, 2, 3, 1).copy(), d["y"]


CASES = [(n, f) for n in NAMES for f in FORMS] + [("squeezenet1_1", "onnx")]


@pytest.mark.parametrize("name,form", CASES)
def test_float_graph_equals_torch(torchvision_dir, name, form):
    graph = import_float_graph(path_of(torchvision_dir, name, form), input_size=SIZE,
                               arch=name if form == "state_dict" else None)
    x, y = torch_io(torchvision_dir, name)
    got = run_float(prepare_float_graph(graph), x)
    np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-5 * float(np.abs(y).max()))
    kinds = [type(n).__name__ for n in prepare_float_graph(graph).nodes]
    for kind, count in EXPECTED[name].items():
        assert kinds.count(kind) == count, (kind, kinds)
    assert not any(isinstance(n, ops.BatchNorm) for n in prepare_float_graph(graph).nodes)


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tv_calib"))
    af.calibration_set(folder, 8)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_int8_verifies_bit_exact_and_module_equals_state_dict(torchvision_dir, calib_dir, name,
                                                              tmp_path):
    out = {form: str(tmp_path / f"{form}.tflite") for form in ("module", "state_dict",
                                                                "onnx_opset17")}
    for form, path in out.items():
        result = convert(path_of(torchvision_dir, name, form), path, input_size=SIZE,
                         calib=[calib_dir], arch=name if form == "state_dict" else None)
        if form == "onnx_opset17":  # proven against onnxruntime on the calibration images
            assert result.crosscheck.ok, result.crosscheck.describe()
    with open(out["module"], "rb") as a, open(out["state_dict"], "rb") as b:
        assert a.read() == b.read()
    for form in ("module", "onnx_opset17"):
        report = verify(out[form], af.photo_paths()[:1], backend="cython")
        assert [r.name for r in report.rows if r.max_diff != 0] == [] and report.ok
