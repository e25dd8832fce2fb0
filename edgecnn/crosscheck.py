"""``convert`` proves what it can: the imported float graph against the source's own runtime.

A float ``.tflite`` source runs in LiteRT, an ONNX source in onnxruntime (where installed:
``pip install "edgecnn[convert]"``), on the first calibration images, one image at a time
(exported models often fix the batch at 1); edgecnn's float graph (BN folded, ReLU fused,
padding split: what is then quantized) runs on the same images. The difference is measured
on every output, as the largest absolute difference against a tolerance of
``FLOAT_ATOL + FLOAT_RTOL * max|reference|``: float32 sums in another order differ by about
1e-6 of the output range, while a missing ReLU, pool or skip connection changes it by tens of
percent. PyTorch sources have no runtime here (edgecnn never imports torch); the tests compare
them with torch's own forward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ir
from .errors import MismatchError
from .float_runtime import run_float_all

FLOAT_RTOL = 1e-3
FLOAT_ATOL = 1e-5
CROSSCHECK_IMAGES = 32


@dataclass
class CrossCheck:
    runtime: str  # "LiteRT 2.3.0", "onnxruntime 1.32.0"
    inputs: int = 0
    max_abs_diff: float = 0.0
    max_reference: float = 0.0
    error: str = ""  # the runtime could not run the source: why

    @property
    def tolerance(self) -> float:
        return FLOAT_ATOL + FLOAT_RTOL * self.max_reference

    @property
    def ok(self) -> bool:
        return not self.error and self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "inputs": self.inputs, "max_abs_diff": self.max_abs_diff,
                "max_reference": self.max_reference, "tolerance": self.tolerance,
                "ok": self.ok, "error": self.error or None}

    def describe(self) -> str:
        if self.error:
            return f"cross-check: {self.runtime} could not run the source ({self.error}); not checked"
        verdict = "OK" if self.ok else "MISMATCH"
        return (f"cross-check: edgecnn's float graph vs {self.runtime} on {self.inputs} "
                f"calibration images: max |difference| {self.max_abs_diff:.3g} (outputs up to "
                f"{self.max_reference:.3g}, tolerance {self.tolerance:.3g}) -> {verdict}")

    def raise_if_mismatch(self, source: str) -> None:
        if not self.error and not self.ok:
            raise MismatchError(
                f"{source}: edgecnn's float graph differs from {self.runtime} by up to "
                f"{self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g}) on the calibration "
                "images, so the imported model is not the source's; nothing was written (pass "
                "--ignore-mismatch to write it anyway)")


def reference_runtime(source: str) -> Optional[str]:
    """"litert" or "onnxruntime" when the source's runtime is installed, else None."""
    ext = os.path.splitext(source)[1].lower()
    if ext == ".tflite":
        return "litert"
    if ext == ".onnx":
        import importlib.util
        return "onnxruntime" if importlib.util.find_spec("onnxruntime") else None
    return None


def _litert(source: str):
    from .litert import LiteRTRunner, litert_version
    runner = LiteRTRunner(source, mode="litert")
    return litert_version(), runner.invoke_all, False


def _onnxruntime(source: str):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    name, rank = session.get_inputs()[0].name, len(session.get_inputs()[0].shape)

    def run(x):  # NHWC -> the NCHW image, or the (N, features) vector, ONNX takes
        x = x.reshape(len(x), -1) if rank == 2 else x.transpose(0, 3, 1, 2)
        return session.run(None, {name: np.ascontiguousarray(x)})
    return f"onnxruntime {ort.__version__}", run, True


def crosscheck(source: str, graph: ir.Graph, images: np.ndarray) -> Optional[CrossCheck]:
    """Compare ``graph`` (float, NHWC) with the source's runtime on ``images`` (N, H, W, C)."""
    kind = reference_runtime(source)
    if kind is None or len(images) == 0:
        return None
    label = "LiteRT" if kind == "litert" else "onnxruntime"
    try:
        label, run, nchw = (_litert if kind == "litert" else _onnxruntime)(source)
        refs = [run(images[i:i + 1].astype(np.float32)) for i in range(len(images))]
    except Exception as e:  # the runtime's own refusal of a file: reported, not a mismatch
        return CrossCheck(label, error=f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                          if str(e) else type(e).__name__)
    ours = run_float_all(graph, images)
    check = CrossCheck(label, inputs=len(images))
    for k, got in enumerate(ours):
        ref = np.concatenate([np.asarray(r[k], np.float32) for r in refs])
        if nchw and got.ndim == 4:
            got = got.transpose(0, 3, 1, 2)
        if ref.size != got.size:
            return CrossCheck(label, error=f"output {k} has {ref.size} values there and "
                              f"{got.size} here")
        diff = np.abs(ref.reshape(got.shape) - got)
        check.max_abs_diff = max(check.max_abs_diff, float(np.nanmax(diff)) if diff.size else 0.0)
        if not np.all(np.isfinite(diff)):
            check.max_abs_diff = float("inf")
        check.max_reference = max(check.max_reference, float(np.abs(ref).max(initial=0.0)))
    return check
