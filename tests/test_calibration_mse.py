"""MSE calibration: the histogram is independent of batching, its error model is the real
quantization error, the search finds the best range, and convert keeps the record and warns
about doubtful calibration data."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn import calib_stats
from edgecnn.calib_hist import Histogram, mse_range, range_error
from edgecnn.cli import main
from edgecnn.demo import data_dir
from edgecnn.quantize import activation_quant
from eval_fixture import LENET_PT


def sample_mse(x: np.ndarray, lo: float, hi: float) -> float:
    """What int8 really does to ``x`` with the quantizer's parameters for [lo, hi]."""
    scale, zp = activation_quant(lo, hi).scalar()
    q = np.clip(np.floor(x / scale + 0.5) + zp, -128, 127)
    return float(np.mean((x - (q - zp) * scale) ** 2))


def _hist(x, splits=1):
    h = Histogram()
    for part in np.array_split(x, splits):
        h.add(part)
    return h


def test_histogram_does_not_depend_on_batch_order_or_size():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.laplace(size=5000), np.zeros(700), [1e-3, 37.5]]).astype(np.float32)
    one = _hist(x)
    many = _hist(rng.permutation(x), splits=17)
    assert one.width == many.width and one.zeros == many.zeros == 700
    np.testing.assert_array_equal(one.pos, many.pos)
    np.testing.assert_array_equal(one.neg, many.neg)
    assert one.count == x.size and (one.min, one.max) == (float(x.min()), float(x.max()))


@pytest.mark.parametrize("lo,hi", [(-1.0, 3.0), (-0.5, 1.5), (0.0, 2.0)])
def test_range_error_is_the_quantization_error_of_the_data(lo, hi):
    """Dense uniform data is what the per-bin model assumes: the predicted mean squared error
    equals the error int8 makes on the samples, clipped or not, within 1%."""
    x = np.random.default_rng(1).uniform(-1.0, 3.0, 2_000_000)
    h = _hist(x)
    k = np.arange(h.pos.size, dtype=np.float64)
    left = np.concatenate([-(k + 1) * h.width, k * h.width])
    counts = np.concatenate([h.neg, h.pos]).astype(np.float64)
    keep = counts > 0
    predicted = range_error(np.array([lo]), np.array([hi]), left[keep],
                            left[keep] + h.width, counts[keep])[0] / x.size
    assert predicted == pytest.approx(sample_mse(x, lo, hi), rel=0.01)


@pytest.mark.parametrize("dist", ["laplace", "relu_laplace", "gauss"])
def test_mse_range_beats_minmax_and_matches_a_brute_force_search(dist):
    rng = np.random.default_rng(2)
    x = {"laplace": rng.laplace(size=50_000), "gauss": rng.standard_normal(50_000),
         "relu_laplace": np.maximum(rng.laplace(size=50_000), 0)}[dist]
    lo, hi = mse_range(_hist(x, splits=9))
    ours = sample_mse(x, lo, hi)
    assert ours < sample_mse(x, x.min(), x.max())
    grid_lo = np.linspace(x.min(), 0, 13)[:-1] if x.min() < 0 else [0.0]
    best = min(sample_mse(x, a, b) for a in grid_lo for b in np.linspace(0, x.max(), 31)[1:])
    assert ours <= best * 1.01


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_convert_mse_writes_the_calibration_record(tmp_path):
    out = tmp_path / "lenet.tflite"
    calib = os.path.join(data_dir(), "calib")
    r = cli("convert", LENET_PT, "--arch", "lenet5", "--calib", calib, "--mean", "0.5", "--std",
            "0.5", "--calib-method", "mse", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["method"] == "mse" and doc["calibration_images"] == 200
    record = calib_stats.read(out)
    assert doc["calibration_record"] == calib_stats.sidecar_path(out)
    assert calib_stats.sidecar_path(out) == str(tmp_path / "lenet.calib.json")
    assert record["method"] == "mse" and record["images"] == 200
    conv = record["tensors"]["features.1"]  # conv + fused ReLU writes the ReLU's tensor
    assert conv["range"][0] == 0.0 and 0 < conv["range"][1] <= conv["histogram"]["max"]
    assert conv["histogram"]["zeros"] > 0  # ReLU output: exact zeros are counted apart
    assert os.path.getsize(calib_stats.sidecar_path(out)) < 20_000
    again = cli("convert", LENET_PT, "--arch", "lenet5", "--calib", calib, "-o", tmp_path / "x.tflite")
    assert again.exit_code == 0
    (tmp_path / "x.tflite").unlink()  # the record left behind still blocks a silent overwrite
    blocked = cli("convert", LENET_PT, "--arch", "lenet5", "--calib", calib, "-o",
                  tmp_path / "x.tflite")
    assert blocked.exit_code == 2 and "x.calib.json exists" in blocked.stderr


def test_convert_warns_about_few_and_wrong_colour_calibration_images(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    for k in range(6):
        src = os.path.join(data_dir(), "calib", f"calib_{k:04d}.png")
        img = Image.open(src).convert("RGB") if k < 2 else Image.open(src)
        img.save(calib / f"{k}.png")
    r = cli("convert", LENET_PT, "--arch", "lenet5", "--calib", calib, "--mean", "0.5",
            "--std", "0.5", "-o", tmp_path / "m.tflite", "--json")
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(lines) == 2
    assert "calibration used 6 images; with fewer than 20" in lines[0]
    assert "2 of 6 calibration images are colour but the model takes grey (L)" in lines[1]
    assert json.loads(r.stdout)["warnings"] == [ln[len("warning: "):] for ln in lines]
