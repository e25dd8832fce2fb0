"""The per-layer float-vs-int8 report (``edgecnn evaluate --per-layer``) for LeNet-5 and AlexNet.

- LeNet-5: the bundled model (edgecnn/data/lenet5), calibrated on its 200 calibration digits,
  compared on the first 500 held-out digits (labelled: accuracy too).
- AlexNet: torchvision's layout with the seeded weights of tests/alexnet_fixture.py (no
  pretrained weights can be fetched here; needs torch), calibrated on 100 crops of the 14
  bundled photos, compared on 30 other crops (seed 1; unlabelled: agreement and layers only).

Usage: python benchmarks/per_layer_report.py [--method minmax|percentile|mse] [--html DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import edgecnn  # noqa: E402
from edgecnn.demo import data_dir, heldout_set  # noqa: E402
from edgecnn.eval_report import format_report  # noqa: E402


def lenet(tmp: Path, method: str):
    images, labels = heldout_set()
    data = tmp / "heldout500.npz"
    np.savez(data, x=images[:500], y=labels[:500])
    model = tmp / "lenet.tflite"
    edgecnn.convert(os.path.join(data_dir(), "lenet5.pt"), str(model), arch="lenet5",
                    calib=[os.path.join(data_dir(), "calib")], method=method, mean=(0.5,),
                    std=(0.5,), labels=[str(d) for d in range(10)])
    return str(model), str(data), os.path.join(data_dir(), "lenet5.pt"), "lenet5"


def alexnet(tmp: Path, method: str):
    import alexnet_fixture as af
    source = af.save(af.build(), str(tmp), "alexnet")["state_dict"]
    calib = af.calibration_set(str(tmp / "calib"), 100)
    af.calibration_set(str(tmp / "compare"), 30, seed=1)
    model = tmp / "alexnet.tflite"
    edgecnn.convert(source, str(model), arch="alexnet", calib=calib, method=method)
    return str(model), str(tmp / "compare"), source, "alexnet"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="minmax", choices=("minmax", "percentile", "mse"))
    parser.add_argument("--html", type=Path, help="also write DIR/<model>.html")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for build in (lenet, alexnet):
            tmp = Path(d) / build.__name__
            tmp.mkdir()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, data, source, arch = build(tmp, args.method)
            report = edgecnn.evaluate(model, data, source, arch=arch, per_layer=True)
            text = format_report(report)
            print(f"=== {build.__name__} (calibration: {args.method})\n{text}\n")
            if args.html:
                from edgecnn.html_report import write_html
                args.html.mkdir(parents=True, exist_ok=True)
                write_html(report, text, args.html / f"{build.__name__}.html", force=True)


if __name__ == "__main__":
    main()
