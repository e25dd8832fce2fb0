"""The bundled LeNet-5, trained on real MNIST digits: .pt -> int8 .tflite -> edgecnn's kernels,
bit-exact against LiteRT's reference kernels on every tensor, on real held-out digits."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn.cli import main
from edgecnn.convert import convert
from edgecnn.demo import accuracy, data_dir, heldout_set
from edgecnn.verify import verify

VERIFY_IMAGES = 120


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    d = tmp_path_factory.mktemp("lenet")
    path = str(d / "lenet5.tflite")
    result = convert(os.path.join(data_dir(), "lenet5.pt"), path, arch="lenet5",
                     calib=[os.path.join(data_dir(), "calib")], mean=(0.5,), std=(0.5,),
                     labels=tuple(str(i) for i in range(10)))
    images, labels = heldout_set()
    os.makedirs(d / "heldout")
    for i, img in enumerate(images[:VERIFY_IMAGES]):
        Image.fromarray(img, "L").save(d / "heldout" / f"{i:04d}_{labels[i]}.png")
    return path, result, str(d / "heldout")


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_every_tensor_is_bit_exact_against_litert_reference(bundled, backend):
    path, _, heldout = bundled
    report = verify(path, [heldout], against="litert-ref", backend=backend)
    assert report.inputs == VERIFY_IMAGES
    assert [r.name for r in report.rows if r.max_diff != 0] == []
    assert len(report.rows) == 9 and report.ok


def test_int8_top1_within_half_a_point_of_float(bundled):
    path, result, _ = bundled
    images, labels = heldout_set()
    float_top1, int8_top1 = accuracy(path, result.float_graph, images, labels)
    assert float_top1 > 0.95
    assert abs(int8_top1 - float_top1) <= 0.005, (float_top1, int8_top1)


def test_xnnpack_difference_is_reported_within_two_lsb(bundled):
    path, _, heldout = bundled
    report = verify(path, [heldout], against="litert")
    assert report.ok and report.max_diff <= 2
    assert report.top1_agree >= 0.95 * report.inputs


def test_sample_digits_are_recognised(bundled):
    import edgecnn
    model = edgecnn.load(bundled[0])
    samples = sorted(os.listdir(os.path.join(data_dir(), "samples")))
    right = sum(model.predict(os.path.join(data_dir(), "samples", s), 1)[0].label == s.split("_")[1]
                for s in samples)
    assert len(samples) == 30 and right >= 28


def test_demo_command(tmp_path):
    r = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "demo"), "--json"])
    assert r.exit_code == 0, r.output
    assert "PASS" in r.stderr and "int8 top-1" in r.stderr  # the steps, beside the JSON
    figures = json.loads(r.stdout)
    assert figures["verify_ok"] and figures["heldout"] == 2000 and figures["int8_top1"] > 0.98
    again = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "demo"), "--json"])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert json.loads(again.stdout)["exit_code"] == 2
