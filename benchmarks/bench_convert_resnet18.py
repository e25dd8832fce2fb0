"""How long `edgecnn convert` takes on a 224x224 ResNet-18 with 100 calibration images (issue
10 asks for under 60 s, with a progress bar): import, calibration (the float graph on every
image: NumPy, conv as one BLAS matmul per layer and batch), quantization and writing.

The model is torchvision's ResNet-18 layout with seeded weights (He-initialized convs, BN
statistics with spread) built through ``--arch resnet18``'s module tree and written as a float
.tflite (torch is not needed), so `convert` also runs its LiteRT cross-check; the 100 images
are seeded crops of the 14 photos shipped in edgecnn/data/photos.

    python benchmarks/bench_convert_resnet18.py [--runs 3] [--images 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np
from PIL import Image

import edgecnn
from edgecnn.convert import convert

PHOTOS = os.path.join(os.path.dirname(edgecnn.__file__), "data", "photos")


def resnet18_state_dict(seed=0, classes=1000) -> dict:
    """torchvision resnet18's parameter names and shapes, seeded NumPy values."""
    rng = np.random.default_rng(seed)
    sd = {}

    def conv(name, o, i, k):
        sd[name + ".weight"] = (rng.standard_normal((o, i, k, k)) * np.sqrt(2 / (i * k * k))
                                ).astype(np.float32)

    def bn(name, c):
        sd[name + ".weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        sd[name + ".bias"] = (0.2 * rng.standard_normal(c)).astype(np.float32)
        sd[name + ".running_mean"] = (0.2 * rng.standard_normal(c)).astype(np.float32)
        sd[name + ".running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    c_in = 64
    for layer, c in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{layer}.{block}."
            conv(p + "conv1", c, c_in, 3)
            bn(p + "bn1", c)
            conv(p + "conv2", c, c, 3)
            bn(p + "bn2", c)
            if block == 0 and c != c_in:
                conv(p + "downsample.0", c, c_in, 1)
                bn(p + "downsample.1", c)
            c_in = c
    sd["fc.weight"] = (rng.standard_normal((classes, 512)) / np.sqrt(512)).astype(np.float32)
    sd["fc.bias"] = np.zeros(classes, np.float32)
    return sd


def float_tflite(path: str) -> None:
    """The seeded ResNet-18 through the --arch resnet18 module tree, as a float .tflite."""
    from edgecnn.convert import prepare_float_graph
    from edgecnn.converters.pytorch import graph_from_module
    from edgecnn.converters.templates.arch_torchvision import module_tree
    from edgecnn.tflite.writer import write_tflite
    graph = graph_from_module(module_tree("resnet18", resnet18_state_dict(), "resnet18"),
                              (224, 224, 3), "resnet18")
    write_tflite(prepare_float_graph(graph), path)


def calibration_images(folder: str, count: int, seed=0) -> None:
    rng = np.random.default_rng(seed)
    photos = [Image.open(os.path.join(PHOTOS, n)).convert("RGB")
              for n in sorted(os.listdir(PHOTOS)) if n.endswith(".jpg")]
    for i in range(count):
        img = photos[i % len(photos)]
        w, h = img.size
        side = int(min(w, h) * rng.uniform(0.4, 1.0))
        left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        img.crop((left, top, left + side, top + side)).save(os.path.join(folder, f"{i:03d}.jpg"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--images", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "resnet18_float.tflite")
        float_tflite(src)
        calib = os.path.join(tmp, "calib")
        os.makedirs(calib)
        calibration_images(calib, args.images)
        totals, calib_times = [], []
        for run in range(args.runs):
            steps = []
            t0 = time.perf_counter()
            stamps = []
            result = convert(src, os.path.join(tmp, "r18.tflite"), calib=[calib], force=True,
                             progress=lambda n: (steps.append(n),
                                                 stamps.append(time.perf_counter())))
            total = time.perf_counter() - t0
            totals.append(total)
            calib_times.append(stamps[-1] - t0)
            print(f"run {run + 1}: convert {total:.1f} s (calibration done at "
                  f"{stamps[-1] - t0:.1f} s, {len(steps)} progress updates); "
                  f"{result.crosscheck.describe()}")
        print(f"ResNet-18 224x224, {args.images} calibration images, {platform.processor() or platform.machine()}: "
              f"convert median {statistics.median(totals):.1f} s (min {min(totals):.1f}), "
              f"import, cross-check and calibration median {statistics.median(calib_times):.1f} s "
              f"(min {min(calib_times):.1f})")


if __name__ == "__main__":
    main()
