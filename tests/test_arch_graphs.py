"""State dicts with architectures: SPEC.json graphs (named inputs: residuals, concats, grouped
convs), geometry hints, and the torchvision names that say which built-in a file fits.
Torch builds the reference modules; edgecnn reads only the saved state_dicts.
"""

import json
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

from edgecnn.convert import import_float_graph, prepare_float_graph
from edgecnn.errors import ArchitectureError
from edgecnn.float_runtime import run_float

PT = os.path.join(os.path.dirname(__file__), "fixtures", "pt")
README_SPEC = {"name": "tiny-resnet", "input": {"height": 32, "width": 32, "channels": 3},
               "layers": [
                   {"type": "conv", "filters": 16, "kernel": 3, "padding": 1, "name": "stem"},
                   {"type": "batchnorm"}, {"type": "relu", "name": "x"},
                   {"type": "conv", "filters": 16, "kernel": 3, "padding": 1},
                   {"type": "batchnorm", "name": "branch"},
                   {"type": "add", "inputs": ["branch", "x"]}, {"type": "relu"},
                   {"type": "adaptive_avgpool", "output": 1}, {"type": "flatten"},
                   {"type": "linear", "units": 10}]}


class TinyResNet(nn.Module):
    """README's spec as a module (its weights in the spec's order)."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv, self.bn2 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.stem(x)))
        y = torch.relu(self.bn2(self.conv(x)) + x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class GroupedConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, padding=1, groups=4)  # depthwise, multiplier 2
        self.b = nn.Conv2d(4, 6, 1, groups=2)  # grouped: block-diagonal
        self.fc = nn.Linear(14 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.cat([self.a(x), torch.relu(self.b(x))], 1), 1))


GROUPED_SPEC = {"input": {"height": 6, "width": 6, "channels": 4}, "layers": [
    {"type": "conv", "filters": 8, "kernel": 3, "padding": 1, "groups": 4, "name": "a"},
    {"type": "conv", "filters": 6, "kernel": 1, "groups": 2, "inputs": ["input"]},
    {"type": "relu", "name": "b"},
    {"type": "concat", "inputs": ["a", "b"], "axis": 1}, {"type": "flatten"},
    {"type": "linear", "units": 5}]}


def _seeded(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.2), m.running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize("model,spec,hw,c", [(TinyResNet, README_SPEC, 32, 3),
                                             (GroupedConcat, GROUPED_SPEC, 6, 4)])
def test_graph_specs_equal_torch(tmp_path, model, spec, hw, c):
    m = _seeded(model())
    torch.save(m.state_dict(), tmp_path / "w.pt")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    graph = import_float_graph(str(tmp_path / "w.pt"), arch=str(tmp_path / "spec.json"))
    x = np.random.default_rng(1).standard_normal((3, hw, hw, c)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(run_float(prepare_float_graph(graph), x), want, rtol=1e-4,
                               atol=1e-5)


def test_spec_inputs_must_name_earlier_layers(tmp_path):
    spec = dict(README_SPEC, layers=README_SPEC["layers"][:5] + [
        {"type": "add", "inputs": ["branch", "later"]}])
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    torch.save(_seeded(TinyResNet()).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ArchitectureError, match="'later', which no earlier layer is named"):
        import_float_graph(str(tmp_path / "w.pt"), arch=str(tmp_path / "spec.json"))


def test_mnist_lenet_at_28_hears_that_padding_2_fits():
    with pytest.raises(ArchitectureError) as e:
        import_float_graph(os.path.join(PT, "lenet5_state_dict.pt"), arch="lenet5",
                           input_size=28)
    text = str(e.value)
    assert "expects 400 inputs but its input has 256 (16x4x4 flattened)" in text
    assert "at 28x28, padding 2 on the first conv fits" in text
    assert "--input-size 32 fits this architecture as it is" in text and "\n" not in text


def test_a_torchvision_state_dict_names_the_builtin_it_fits(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))
    from torchvision_fixtures import import_torchvision
    torch.manual_seed(0)
    model = import_torchvision().models.squeezenet1_0(num_classes=7)
    torch.save(model.state_dict(), tmp_path / "sq10.pt")
    with pytest.raises(ArchitectureError, match=r"\(the file fits --arch squeezenet1_0\)"):
        import_float_graph(str(tmp_path / "sq10.pt"), arch="squeezenet1_1")
    graph = import_float_graph(str(tmp_path / "sq10.pt"), arch="squeezenet1_0", input_size=96)
    x = np.random.default_rng(2).standard_normal((2, 96, 96, 3)).astype(np.float32)
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(run_float(prepare_float_graph(graph), x), want, rtol=1e-4,
                               atol=1e-5)
