"""The bundled LeNet-5 converted once, and labelled held-out digits in every DATA layout
``evaluate`` reads (folder, CSV, npz), for tests/test_evaluate*.py and the HTML/Ray tests."""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

from edgecnn.convert import convert
from edgecnn.demo import data_dir, heldout_set

PER_CLASS = 4  # 40 held-out digits: enough for a 10x10 confusion matrix, fast in CI
LENET_PT = os.path.join(data_dir(), "lenet5.pt")


def make_lenet(folder, method: str = "minmax") -> str:
    """The bundled LeNet-5 converted with 40 calibration digits and labels 0..9."""
    calib = sorted(os.listdir(os.path.join(data_dir(), "calib")))[:40]
    out = os.path.join(folder, f"lenet_{method}.tflite")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 40 grey digits for a grey model: nothing to warn about
        convert(LENET_PT, out, arch="lenet5", method=method, mean=(0.5,), std=(0.5,),
                calib=[os.path.join(data_dir(), "calib", c) for c in calib],
                labels=[str(d) for d in range(10)])
    return out


def heldout_subset():
    """(uint8 images, labels): the first PER_CLASS held-out digits of each class."""
    images, labels = heldout_set()
    pick = np.concatenate([np.flatnonzero(labels == d)[:PER_CLASS] for d in range(10)])
    return images[pick], labels[pick]


def make_data(folder) -> dict:
    """The same digits as an ImageFolder tree, a CSV and an npz: {"folder", "csv", "npz"}."""
    images, labels = heldout_subset()
    tree = os.path.join(folder, "digits")
    rows = ["path,label"]
    for k, (img, label) in enumerate(zip(images, labels)):
        os.makedirs(os.path.join(tree, str(label)), exist_ok=True)
        rel = os.path.join("digits", str(label), f"{k:03d}.png")
        Image.fromarray(img, "L").save(os.path.join(folder, rel))
        rows.append(f"{rel},{label}")
    with open(os.path.join(folder, "digits.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    np.savez(os.path.join(folder, "digits.npz"), x=images, y=labels)
    return {"folder": tree, "csv": os.path.join(folder, "digits.csv"),
            "npz": os.path.join(folder, "digits.npz")}
