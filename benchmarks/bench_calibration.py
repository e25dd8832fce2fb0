"""int8 top-1 drop per calibration method (minmax, percentile, mse) on real data.

Two models, each converted once per method with the same calibration images, then
evaluated with ``edgecnn.evaluate`` (float and int8 on every test image):

- digits: the bundled LeNet-5 (edgecnn/data/lenet5), its 200 calibration digits, the 2,000
  held-out digits (heldout.npz);
- Fashion-MNIST: the CNN of examples/fashion_mnist (trained on Debian's
  ``dataset-fashion-mnist``, the real 60k/10k split), 200 training images for calibration
  (the first 200 of ``default_rng(0).permutation(60000)``), the 10,000 test images.

Usage:
    python benchmarks/bench_calibration.py [--calib-images 200] [--limit N] [--json]
    (apt-get install dataset-fashion-mnist first; --limit N evaluates the first N test images)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "fashion_mnist"))
from fashion_data import CLASSES, DEBIAN_DATA, load_split  # noqa: E402

import edgecnn  # noqa: E402
from edgecnn.demo import data_dir, heldout_set  # noqa: E402

METHODS = ("minmax", "percentile", "mse")


def _write_pngs(images, folder: Path) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, img in enumerate(images):
        p = folder / f"calib_{k:04d}.png"
        Image.fromarray(img, "L").save(p)
        paths.append(str(p))
    return paths


def datasets(tmp: Path, calib_images: int, limit: int):
    """(name, source, arch, calib paths, test npz, labels) per benchmark model."""
    images, labels = heldout_set()
    digits_npz = tmp / "digits_test.npz"
    np.savez(digits_npz, x=images[:limit], y=labels[:limit])
    calib = sorted(os.listdir(os.path.join(data_dir(), "calib")))[:calib_images]
    yield ("digits (LeNet-5)", os.path.join(data_dir(), "lenet5.pt"), "lenet5",
           [os.path.join(data_dir(), "calib", c) for c in calib], digits_npz,
           [str(d) for d in range(10)])
    train_x, _ = load_split(DEBIAN_DATA, "train")
    test_x, test_y = load_split(DEBIAN_DATA, "test")
    pick = np.random.default_rng(0).permutation(len(train_x))[:calib_images]
    fashion_npz = tmp / "fashion_test.npz"
    np.savez(fashion_npz, x=test_x[:limit], y=test_y[:limit])
    example = REPO / "examples" / "fashion_mnist"
    yield ("Fashion-MNIST (CNN)", str(example / "fashion_cnn.pt"),
           str(example / "fashion_cnn.json"), _write_pngs(train_x[pick], tmp / "fashion_calib"),
           fashion_npz, list(CLASSES))


def run(calib_images: int, limit: int, workers) -> list:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, source, arch, calib, test, labels in datasets(tmp, calib_images, limit):
            for method in METHODS:
                out = tmp / f"{Path(source).stem}_{method}.tflite"
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    edgecnn.convert(source, str(out), arch=arch, calib=calib, method=method,
                                    mean=(0.5,), std=(0.5,), labels=labels)
                convert_s = time.perf_counter() - start
                r = edgecnn.evaluate(str(out), str(test), source, arch=arch, per_layer=True,
                                     workers=workers)
                worst = min((row for row in r.layers if row.sqnr_db is not None),
                            key=lambda row: row.sqnr_db)
                rows.append({"dataset": name, "method": method, "images": r.images,
                             "calibration_images": len(calib), "float_top1": r.float_top1,
                             "int8_top1": r.int8_top1, "drop_points": 100 * (r.float_top1 - r.int8_top1),
                             "agreement": r.agreement, "worst_tensor": worst.name,
                             "worst_sqnr_db": worst.sqnr_db,
                             "output_sqnr_db": r.layers[-1].sqnr_db,
                             "convert_seconds": convert_s,
                             "evaluate_seconds": r.run["seconds"]})
                print(f"  {name} {method}: done", file=sys.stderr, flush=True)
    return rows


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calib-images", type=int, default=200)
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    parser.add_argument("--workers", type=int, default=None, help="default: every core")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.calib_images, args.limit, args.workers)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"edgecnn {edgecnn.__version__}, {_cpu()}, Python {platform.python_version()}; "
          f"calibration on {args.calib_images} training images per model")
    print(f"{'dataset':<22} {'method':<11} {'test images':>11} {'float top-1':>11} "
          f"{'int8 top-1':>10} {'drop':>7} {'agree':>8} {'output SQNR':>11}  worst tensor")
    for r in rows:
        print(f"{r['dataset']:<22} {r['method']:<11} {r['images']:>11} "
              f"{100 * r['float_top1']:>10.2f}% {100 * r['int8_top1']:>9.2f}% "
              f"{r['drop_points']:>+6.2f} {100 * r['agreement']:>7.2f}% "
              f"{r['output_sqnr_db']:>8.2f} dB  {r['worst_tensor']} ({r['worst_sqnr_db']:.1f} dB)")
    print("drop = float top-1 minus int8 top-1, in points; agree = float/int8 top-1 agreement")


if __name__ == "__main__":
    main()
