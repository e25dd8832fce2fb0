"""A user's own nn.Module (functional forward, a residual) in every form a user saves it.

The pickled module is refused (its forward() is not in the pickle); TorchScript, traced and
scripted, is read from its code without torch, and ONNX as a graph. Each converts to int8
whose top-1 on edgecnn's 2000 held-out digits is within 0.5 points of the float model's.
The fixtures (tests/fixtures/torchscript/) were trained on real MNIST; their npz holds
torch's logits for 16 digits. Hostile archives are written here with torch.
"""

import os
import sys
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.convert import convert, import_float_graph, prepare_float_graph
from edgecnn.demo import accuracy, data_dir, heldout_set
from edgecnn.errors import ArchitectureError, ModelFormatError, UnsupportedOpError
from edgecnn.float_runtime import run_float
from edgecnn.verify import verify

TS = os.path.join(os.path.dirname(__file__), "fixtures", "torchscript")
FORMS = ["traced.pt", "scripted.pt", "onnx"]  # NAME_traced.pt, NAME_scripted.pt, NAME.onnx
NAMES = ["functional_lenet", "residual_lenet"]


def fixture(name, form):
    return os.path.join(TS, f"{name}.onnx" if form == "onnx" else f"{name}_{form}")


def logits(name):
    with np.load(os.path.join(TS, name + ".npz")) as d:
        return d["x"].transpose(0, 2, 3, 1).copy(), d["y"]


@pytest.mark.parametrize("name", NAMES)
def test_the_pickled_user_module_is_refused_in_one_line(name):
    r = CliRunner().invoke(main, ["convert", os.path.join(TS, f"{name}_module.pt"), "--calib",
                                  os.path.join(data_dir(), "calib"), "-o", "never.tflite"])
    assert r.exit_code == 2 and not os.path.exists("never.tflite")
    err = r.output.strip()
    assert "\n" not in err and err.startswith("error: ")
    cls = "FunctionalLeNet" if name.startswith("functional") else "ResidualLeNet"
    assert f"__main__.{cls}, whose forward() a pickle does not store" in err
    assert "torch.jit.save(torch.jit.trace(model, x)" in err and "ONNX" in err


@pytest.mark.parametrize("form", FORMS + ["opset17.onnx", "opset17_dynamic_batch.onnx"])
@pytest.mark.parametrize("name", NAMES)
def test_float_graph_equals_torch(name, form):
    x, y = logits(name)
    graph = import_float_graph(fixture(name, form))
    assert graph.input.shape == (1, 32, 32, 1)  # traced: stored input; scripted: searched
    np.testing.assert_allclose(run_float(prepare_float_graph(graph), x), y, rtol=1e-4,
                               atol=1e-4)
    has_add = any(type(n).__name__ == "Add" for n in graph.nodes)
    assert has_add == (name == "residual_lenet")  # the skip connection is kept


@pytest.fixture(scope="module")
def heldout():
    return heldout_set()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", NAMES)
def test_int8_top1_on_2000_heldout_digits_within_half_a_point(name, form, heldout, tmp_path):
    out = str(tmp_path / "m.tflite")
    result = convert(fixture(name, form), out, calib=[os.path.join(data_dir(), "calib")],
                     mean=(0.5,), std=(0.5,))
    images, labels = heldout
    f_top1, q_top1 = accuracy(out, result.float_graph, images, labels)
    print(f"{name} {form}: float {100 * f_top1:.2f}% int8 {100 * q_top1:.2f}%")
    assert f_top1 > 0.97 and abs(f_top1 - q_top1) <= 0.005
    report = verify(out, count=4)
    assert report.ok and [r.name for r in report.rows if r.max_diff != 0] == []
    if form == "onnx":
        assert result.crosscheck is not None and result.crosscheck.ok


# ---- hostile and unsupported TorchScript --------------------------------------------------

class _DataDependent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x):
        y = self.conv(x)
        if bool(y > 0):  # serialized as torch.gt(y, 0.): a branch on the tensor's values
            y = torch.relu(y)
        return y


class _Gelu(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return torch.nn.functional.gelu(self.conv(x))


def _saved(module, path, script, channels=1):
    module = module.eval()
    m = torch.jit.script(module) if script else torch.jit.trace(
        module, torch.randn(1, channels, 8, 8))
    torch.jit.save(m, str(path))
    return str(path)


def test_data_dependent_control_flow_is_refused_with_its_line(tmp_path):
    path = _saved(_DataDependent(), tmp_path / "dd.pt", script=True)
    with pytest.raises(UnsupportedOpError) as e:
        import_float_graph(path, input_size=8)
    text = str(e.value)
    assert "line" in text and "data-dependent" in text and "\n" not in text


@pytest.mark.parametrize("script", [False, True])
def test_an_unknown_op_is_named_with_its_source_line(tmp_path, script):
    path = _saved(_Gelu(), tmp_path / "gelu.pt", script)
    with pytest.raises(UnsupportedOpError) as e:
        import_float_graph(path, input_size=8)
    text = str(e.value)
    assert "gelu" in text and "line" in text and "\n" not in text


def _rewrite_code(src, dst, replace):
    """A copy of the archive ``src`` with its model code edited (what a hostile file holds)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("code/__torch__.py"):
                data = replace(data.decode()).encode()
            zout.writestr(info, data)
    return str(dst)


def test_code_in_the_archive_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = (f"    _p = __import__('os').system('touch {marker}')\n"
               f"    _q = eval(\"__import__('os').system('touch {marker}')\")\n")
    path = _rewrite_code(fixture("functional_lenet", "traced.pt"), tmp_path / "evil.pt",
                         lambda code: code.replace("    fc3 = self.fc3\n",
                                                   "    fc3 = self.fc3\n" + payload))
    events = []

    def hook(event, args):
        if event in ("os.system", "subprocess.Popen", "exec", "os.exec"):
            events.append(event)
    sys.addaudithook(hook)
    with pytest.raises(UnsupportedOpError, match="__import__|eval"):
        import_float_graph(path)
    assert not marker.exists() and not events


def test_corrupt_code_and_a_truncated_archive_are_one_line_errors(tmp_path):
    bad = _rewrite_code(fixture("functional_lenet", "traced.pt"), tmp_path / "syntax.pt",
                        lambda code: code + "\ndef (:\n")
    with pytest.raises(ModelFormatError, match="not readable TorchScript source"):
        import_float_graph(bad)
    blob = open(fixture("functional_lenet", "scripted.pt"), "rb").read()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises((ModelFormatError, ArchitectureError)) as e:
        import_float_graph(str(cut), arch="lenet5")
    assert "\n" not in str(e.value)


class _ManyOps(torch.nn.Module):
    """The aten ops the LeNets do not use, traced and scripted."""

    def __init__(self):
        super().__init__()
        self.dw = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.gc = torch.nn.Conv2d(4, 6, 1, groups=2)
        self.bn = torch.nn.BatchNorm2d(14)
        self.w = torch.nn.Parameter(torch.randn(5, 14))
        self.b = torch.nn.Parameter(torch.randn(5))

    def forward(self, x):
        a = torch.nn.functional.relu6(self.dw(x))
        b = torch.sigmoid(self.gc(x))
        y = torch.tanh(self.bn(torch.cat([a, b], 1)))
        y = torch.nn.functional.avg_pool2d(y, 3, 1, padding=1, count_include_pad=False)
        y = y.mean([2, 3])
        y = torch.addmm(self.b, y, self.w.t())
        return torch.softmax(y.view(-1, 5), dim=1)


@pytest.mark.parametrize("script", [False, True])
def test_more_aten_ops_equal_torch(tmp_path, script):
    torch.manual_seed(0)
    model = _ManyOps().eval()
    with torch.no_grad():
        model.bn.running_mean.normal_(), model.bn.running_var.uniform_(0.5, 2)
    path = _saved(model, tmp_path / "many.pt", script, channels=4)
    graph = import_float_graph(path, input_size=8)
    kinds = {type(n).__name__ for n in prepare_float_graph(graph).nodes}
    assert {"DepthwiseConv2D", "Conv2D", "Concatenation", "AvgPool2D", "Mean",
            "FullyConnected", "Softmax"} <= kinds
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 4)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(run_float(prepare_float_graph(graph), x), want, rtol=1e-4,
                               atol=1e-6)
