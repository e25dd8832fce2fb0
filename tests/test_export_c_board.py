"""From images to a board: `export-c --images` writes in.bin and expected.txt and `make check`
compares the firmware with edgecnn (host and Cortex-M4 under QEMU); model.h gives the input,
output, preprocessing and labels a board needs (the pixel table reproduces edgecnn's input
exactly), the README says how to use it, EC_PROFILE=1 reports ticks per layer, and --flash /
--ram budgets refuse a model that does not fit with the figures, in one line, exit 2.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn.cli import main
from edgecnn.convert import convert
from edgecnn.demo import data_dir
from edgecnn.export_c import export_c
from edgecnn.model import input_from_float
from edgecnn.preprocess import normalize_pixels
from edgecnn.tflite.reader import load_tflite

LABELS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """LeNet-5 with labels, and a folder of 6 sample digits."""
    d = data_dir()
    folder = tmp_path_factory.mktemp("board")
    path = str(folder / "lenet5.tflite")
    convert(os.path.join(d, "lenet5.pt"), path, arch="lenet5", calib=[os.path.join(d, "calib")],
            labels=LABELS, mean=(0.5,), std=(0.5,))
    images = folder / "images"
    images.mkdir()
    for name in sorted(os.listdir(os.path.join(d, "samples")))[::5]:
        shutil.copy(os.path.join(d, "samples", name), images / name)
    return path, str(images)


def _make(folder, *goals, ok=True):
    r = subprocess.run(["make", "-s", "-C", str(folder), *goals], capture_output=True, text=True,
                       timeout=300)
    assert (r.returncode == 0) == ok, f"make {goals}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _cli(*args):
    """(exit code, stderr) of the edgecnn command."""
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.stderr


@pytest.mark.parametrize("target", ["host", "cortex-m4"])
def test_images_then_make_check(model, tmp_path, target):
    path, images = model
    report = export_c(path, tmp_path, target=target, images=[images])
    assert report.images == 6
    assert os.path.getsize(tmp_path / "in.bin") == 6 * 32 * 32
    assert len((tmp_path / "expected.txt").read_text().splitlines()) == 6
    out = _make(tmp_path, "check")
    assert "check: 6 inferences, outputs equal expected.txt" in out
    assert re.search(r"# inferences 6 ticks \d+ unit (microseconds|SysTick ticks)", out), out
    if target == "cortex-m4":  # per-layer ticks: one line per layer, in order
        prof = _make(tmp_path, "EC_PROFILE=1", "run")
        layers = re.findall(r"^# layer (\d+) ticks (\d+) ([\w+]+) (\S+)$", prof, re.M)
        assert [(int(k), op.split("+")[0]) for k, _, op, _ in layers] == list(enumerate(
            ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D"] + ["FullyConnected"] * 3))
        assert all(int(t) > 0 for _, t, _, _ in layers)
        # layer ticks sum to the total, less the marks' own few instructions
        total = int(re.search(r"# inferences 6 ticks (\d+)", prof)[1])
        assert 0.95 * total < sum(int(t) for _, t, _, _ in layers) <= total


def test_make_check_reports_a_difference(model, tmp_path):
    path, images = model
    export_c(path, tmp_path, images=[images])
    lines = (tmp_path / "expected.txt").read_text().splitlines()
    first = lines[0].split()
    first[0] = str(int(first[0]) ^ 1)
    (tmp_path / "expected.txt").write_text("\n".join([" ".join(first)] + lines[1:]) + "\n")
    out = _make(tmp_path, "check", ok=False)
    assert "check: outputs differ from expected.txt" in out


def test_model_h_gives_what_a_board_needs(model, tmp_path):
    """Input/output quantization and shape, labels and the pixel table, read back through C:
    the table applied to an image's pixels gives exactly the input in.bin holds for it."""
    path, images = model
    graph = load_tflite(path).graph
    export_c(path, tmp_path, images=[images])
    header = (tmp_path / "model.h").read_text()
    scale, zp = graph.input.quant.scalar()
    assert f"#define EC_MODEL_INPUT_SCALE {float(np.float32(scale)).hex()}f" in header
    assert f"#define EC_MODEL_INPUT_ZERO_POINT {zp}" in header
    for name, value in (("H", 32), ("W", 32), ("C", 1), ("PRE_CHANNELS", 1),
                        ("LABEL_COUNT", 10), ("OUTPUT_N", 10)):
        assert f"#define EC_MODEL_{'INPUT_' if len(name) == 1 else ''}{name} {value}" in header
    (tmp_path / "board.c").write_text(r"""
#include <stdio.h>
#include "model.h"
int main(void) {
    int c, v;
    for (c = 0; c < EC_MODEL_LABEL_COUNT; c++) printf("%s\n", ec_model_labels[c]);
    for (v = 0; v < 256; v++) printf("%d ", ec_model_pixel_lut[0][v]);
    printf("\n%a %a\n", (double)ec_model_pre_mean[0], (double)ec_model_pre_std[0]);
    return 0;
}
""")
    stubs = [str(tmp_path / f) for f in ("board.c", "model.c", "ec_conv.c", "ec_fully_connected.c",
                                          "ec_pool.c", "ec_elementwise.c", "ec_softmax.c")]
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), *stubs,
                    "-lm", "-o", str(tmp_path / "board")], check=True)
    lines = subprocess.run([str(tmp_path / "board")], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert tuple(lines[:10]) == LABELS
    lut = np.array(lines[10].split(), np.int8)
    assert [float.fromhex(v) for v in lines[11].split()] == [0.5, 0.5]
    name = sorted(os.listdir(images))[0]
    pixels = np.asarray(Image.open(os.path.join(images, name)).convert("L"))
    want = input_from_float(graph, normalize_pixels(pixels, graph.preprocess))
    np.testing.assert_array_equal(lut[pixels].reshape(want.shape), want)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "in.bin", np.int8)[:1024], want.ravel())
    readme = (tmp_path / "README.md").read_text()
    for text in ("ec_model_init()", "ec_model_invoke()", "STM32CubeIDE", "Arduino", "Zephyr",
                 "ec_model_pixel_lut", f"real = (q - {zp})", "NHWC", "`model.c`", "make check",
                 "f64-int", "`three`"):
        assert text in readme, text


def test_budgets_refuse_with_the_figures(model, tmp_path):
    path, _ = model
    code, err = _cli("export-c", path, "-o", tmp_path / "a", "--target", "cortex-m4", "--flash",
                     "32K")
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(r"needs [\d,]+ bytes of flash \([\d,]+ weights and parameters \+ ~[\d,]+ "
                     r"code\) but --flash allows 32,768", err), err
    code, err = _cli("export-c", path, "-o", tmp_path / "b", "--ram", "6000")
    assert code == 2 and "bytes of RAM (5,880 arena" in err, err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    code, err = _cli("export-c", path, "-o", tmp_path / "c", "--target", "cortex-m4", "--flash",
                     "128K", "--ram", "8K")
    assert code == 0, err


def test_images_need_a_model_with_preprocessing_and_decodable_files(model, tmp_path):
    path, images = model
    foreign = os.path.join(FIXTURES, sorted(f for f in os.listdir(FIXTURES)
                                            if f.endswith(".tflite"))[0])
    code, err = _cli("export-c", foreign, "-o", tmp_path / "a", "--images", images)
    assert code == 2 and "stores no preprocessing" in err, err
    bad = tmp_path / "bad"
    shutil.copytree(images, bad)
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, err = _cli("export-c", path, "-o", tmp_path / "b", "--images", bad)
    assert code == 2 and "broken.png" in err and err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()
