"""What calibration saw, kept next to the model: ``MODEL.calib.json``.

``convert`` writes it beside the ``.tflite`` (``lenet.int8.tflite`` -> ``lenet.int8.calib.json``)
so ``evaluate --html`` can draw each tensor's activation histogram with the range calibration
chose, without the calibration images or the float model. It is small (64 coarse bins a side
per tensor: LeNet-5's is about 6 KB) and the model never depends on it: the ``.tflite`` stays
a standard file, and a missing or stale sidecar only leaves the histograms out of a report.
Why not recompute: that needs the same images and method again, and the float source.

Format (JSON)::

    {"format": "edgecnn-calibration", "version": 1, "model": "lenet.int8.tflite",
     "method": "mse", "images": 200,
     "tensors": {"features.0": {"range": [lo, hi],
                                "histogram": {"width": w, "zeros": n, "neg": [...], "pos": [...],
                                              "min": m, "max": M}}, ...}}

``range`` is the method's range before the quantizer widens it to include 0; the int8
scale and zero point in the model are the final word.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Optional, Sequence

from PIL import Image

from . import ir
from .errors import CalibrationWarning, EdgecnnError, InputFileError, ModelFormatError
from .fileio import write_atomic

FORMAT = "edgecnn-calibration"
VERSION = 1
MAX_BYTES = 16 << 20  # a sidecar is a few KB per tensor; refuse anything absurd
FEW_IMAGES = 20  # below this, ranges rest on too few activations to be trusted


def sidecar_path(model_path) -> str:
    """``lenet.int8.tflite`` -> ``lenet.int8.calib.json``."""
    return os.path.splitext(os.fspath(model_path))[0] + ".calib.json"


def to_dict(observer, ranges: dict, model_path: str, images: int) -> dict:
    """The sidecar document for a finished calibration (calibrate.RangeObserver and the
    ranges its method chose)."""
    return {"format": FORMAT, "version": VERSION, "model": os.path.basename(model_path),
            "method": observer.method, "images": images,
            "tensors": {name: {"range": [float(v) for v in ranges[name]],
                               "histogram": h.to_dict()}
                        for name, h in observer.histograms.items() if name in ranges}}


def write(doc: dict, model_path, force: bool) -> str:
    path = sidecar_path(model_path)
    write_atomic(path, json.dumps(doc, indent=1).encode("utf-8"), force=force)
    return path


def read(model_path) -> Optional[dict]:
    """The sidecar of ``model_path``, or None when there is none; a corrupt one is an error."""
    path = sidecar_path(model_path)
    if not os.path.isfile(path):
        return None
    try:
        if os.path.getsize(path) > MAX_BYTES:
            raise ModelFormatError(f"{path}: {os.path.getsize(path)} bytes is too large for a "
                                   "calibration record; delete it or convert again")
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, RecursionError):
        raise ModelFormatError(f"{path}: not valid JSON; delete it or convert again") from None
    if not (isinstance(doc, dict) and doc.get("format") == FORMAT
            and isinstance(doc.get("tensors"), dict)):
        raise ModelFormatError(f"{path}: not an edgecnn calibration record; delete it or "
                               "convert again")
    if doc.get("version") != VERSION:
        raise ModelFormatError(f"{path}: calibration record version {doc.get('version')!r}; "
                               f"this edgecnn reads version {VERSION}")
    return doc


_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def calibration_warnings(paths: Sequence[str], used: int, pre: ir.Preprocess) -> list[str]:
    """Warnings about the calibration set: too few images, or images whose colour mode is not
    the model's (a grey model calibrated on colour photos sees different statistics than
    it will in use, and vice versa). Reads only image headers."""
    notes = []
    if used < FEW_IMAGES:
        notes.append(f"calibration used {used} image{'s' * (used != 1)}; with fewer than "
                     f"{FEW_IMAGES} the int8 ranges rest on a handful of activations: pass "
                     "--calib with 100-200 images like the ones the model will see")
    other = []
    for path in paths:
        try:
            with Image.open(path) as img:
                grey = img.mode in _GREY_MODES
        except (OSError, ValueError, EdgecnnError, Image.DecompressionBombError):
            continue  # unreadable files are reported by the loader
        if grey != (pre.color == "L"):
            other.append(path)
    if other:
        kind = "colour" if pre.color == "L" else "grey"
        notes.append(f"{len(other)} of {len(paths)} calibration images are {kind} but the model "
                     f"takes {'grey (L)' if pre.color == 'L' else 'colour (RGB)'} input (first: "
                     f"{other[0]}); they are converted, but calibrate on images like the ones "
                     "the model will see")
    return notes


def warn(notes: Sequence[str]) -> None:
    """Issue each note as a CalibrationWarning (the CLI prints them as 'warning:' lines)."""
    for note in notes:
        warnings.warn(note, CalibrationWarning, stacklevel=3)
