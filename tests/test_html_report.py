"""``evaluate --html``: the page is self-contained and its charts render in a real headless
Chromium (Debian's ``chromium``, installed by .ci/run): each chart's colour is found in the
screenshot, in page order (SQNR bars, calibration histograms, confusion heat map)."""

import os
import re
import shutil
import subprocess

import matplotlib
import numpy as np
from click.testing import CliRunner
from PIL import Image

from edgecnn.cli import main
from edgecnn.html_report import COLORS, CONFUSION_CMAP
from eval_fixture import LENET_PT, make_data, make_lenet

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars"]
WIDTH, HEIGHT = 1280, 3600


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: apt-get install chromium (bash .ci/run install does)"
    return path


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])


def _rows_with(pixels: np.ndarray, hex_color: str, tolerance: int = 12) -> np.ndarray:
    """Row indices of the pixels within ``tolerance`` of a colour."""
    near = np.abs(pixels.astype(int) - _rgb(hex_color)).max(axis=2) <= tolerance
    return np.nonzero(near)[0]


def test_html_report_renders_in_headless_chromium(tmp_path):
    model = make_lenet(str(tmp_path), method="mse")
    data = make_data(str(tmp_path))
    page = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["evaluate", model, data["folder"], "--float", LENET_PT,
                                  "--arch", "lenet5", "--html", str(page), "--workers", "1"])
    assert r.exit_code == 0, r.output
    text = page.read_text()
    assert text.count("<svg") == 3 and "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing to fetch
    assert os.stat(page).st_mode & 0o777 == 0o666 & ~_umask()

    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}",
                    page.as_uri()], check=True, timeout=120, capture_output=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    sqnr = _rows_with(pixels, COLORS["sqnr"])
    flagged = _rows_with(pixels, COLORS["flagged"])
    hist = _rows_with(pixels, COLORS["histogram"])
    # the heat map: a class predicted right every time is the colour map's darkest cell
    darkest = matplotlib.colormaps[CONFUSION_CMAP](1.0)
    green = _rows_with(pixels, "#" + "".join(f"{round(255 * v):02x}" for v in darkest[:3]))
    for name, rows in (("SQNR bars", sqnr), ("worst-layer bar", flagged),
                       ("calibration histograms", hist), ("confusion heat map", green)):
        assert rows.size > 400, f"{name}: only {rows.size} pixels of its colour in the screenshot"
    assert np.median(sqnr) < np.median(hist) < np.median(green)  # in page order


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
