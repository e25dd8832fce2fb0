"""``edgecnn demo``: the whole path on the bundled LeNet-5 (trained on real MNIST digits).

convert the shipped state_dict with calibration images -> infer the sample digits ->
float vs int8 top-1 on the held-out digits (never trained or calibrated on) -> verify every
tensor against LiteRT's reference kernels on 100 held-out digits written as PNGs.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image

from .convert import check_output, convert
from .float_runtime import run_float
from .model import load
from .preprocess import expand_image_paths, normalize_pixels
from .verify import verify

VERIFY_IMAGES = 100


def data_dir() -> str:
    return str(resources.files("edgecnn") / "data" / "lenet5")


@dataclass
class DemoFigures:
    heldout: int
    float_top1: float
    int8_top1: float
    verify_ok: bool
    verify_inputs: int
    verify_max_diff: float


def heldout_set():
    with np.load(os.path.join(data_dir(), "heldout.npz")) as d:
        return d["images"], d["labels"]


def accuracy(model_path: str, result_float_graph, images: np.ndarray, labels: np.ndarray,
             backend: str = "cython") -> tuple[float, float]:
    """(float top-1, int8 top-1) over uint8 images already at the model's input size."""
    model = load(model_path, backend=backend)
    pre = model.preprocess
    x = np.concatenate([normalize_pixels(img, pre) for img in images])
    float_pred = np.concatenate([run_float(result_float_graph, x[i:i + 256]).argmax(axis=1)
                                 for i in range(0, len(x), 256)])
    int8_pred = np.array([np.argmax(model.run(model.input_from_float(x[i:i + 1])))
                          for i in range(len(x))])
    return float(np.mean(float_pred == labels)), float(np.mean(int8_pred == labels))


def run_demo(out: str, force: bool, echo, progress) -> DemoFigures:
    data = data_dir()
    os.makedirs(out, exist_ok=True)
    model_path = os.path.join(out, "lenet5.int8.tflite")
    check_output(model_path, force)
    calib = os.path.join(data, "calib")
    echo(f"1. convert {os.path.join(data, 'lenet5.pt')} (--arch lenet5, mean 0.5, std 0.5)")
    with progress("   calibrating", len(expand_image_paths([calib]))) as bar:
        result = convert(os.path.join(data, "lenet5.pt"), model_path, arch="lenet5", calib=[calib],
                         labels=tuple(str(d) for d in range(10)), force=force, progress=bar.update,
                         mean=(0.5,), std=(0.5,))
    echo(f"   wrote {model_path} ({os.path.getsize(model_path)} bytes)")

    echo("2. infer the bundled sample digits (cython kernels)")
    model = load(model_path)
    samples = expand_image_paths([os.path.join(data, "samples")])
    right = 0
    for path in samples:
        top = model.predict(path, top_k=1)[0]
        truth = os.path.basename(path).split("_")[1]
        right += top.label == truth
        if path in samples[:5]:
            echo(f"   {os.path.basename(path)}: {top.label} ({top.score:.3f})")
    echo(f"   {right}/{len(samples)} sample digits right")

    images, labels = heldout_set()
    f_top1, q_top1 = accuracy(model_path, result.float_graph, images, labels)
    echo(f"3. held-out digits ({len(labels)}, never trained or calibrated on): float top-1 "
         f"{100 * f_top1:.2f}%, int8 top-1 {100 * q_top1:.2f}% "
         f"({100 * (q_top1 - f_top1):+.2f} points)")

    with tempfile.TemporaryDirectory() as tmp:
        for i, img in enumerate(images[:VERIFY_IMAGES]):
            Image.fromarray(img, "L").save(os.path.join(tmp, f"heldout_{i:04d}.png"))
        report = verify(model_path, [tmp])
        xnn = verify(model_path, [tmp], against="litert")
    exact = sum(r.max_diff == 0 for r in report.rows)
    echo(f"4. verify against {report.litert} BUILTIN_REF on {report.inputs} held-out digits: "
         f"{exact}/{len(report.rows)} tensors bit-exact -> {'PASS' if report.ok else 'FAIL'}")
    out = xnn.rows[0]
    echo(f"5. against LiteRT's default XNNPACK path (float32 rescale, ties to even): output max "
         f"{out.max_diff:g} LSB, {100 * out.exact_share:.1f}% of logits equal, top-1 agrees on "
         f"{xnn.top1_agree}/{xnn.inputs} (--rounding fp32 reproduces that path)")
    return DemoFigures(len(labels), f_top1, q_top1, report.ok, report.inputs, report.max_diff)
