"""``edgecnn verify``: run one ``.tflite`` in edgecnn and in LiteRT on the same inputs and
compare tensor by tensor.

Both engines get the same int8 input tensor (quantized once, by edgecnn, from the
preprocessed image), because float->int8 QUANTIZE differs between LiteRT's paths.

- against "litert-ref" (BUILTIN_REF, all tensors preserved): every tensor is compared and
  the contract is bit-exact everywhere.
- against "litert" (the default XNNPACK path): XNNPACK fuses the graph, so only the outputs
  are compared; it rescales in float32 with ties to even, so the contract is exactness with
  ``--rounding fp32``. Under any other rounding the difference is a report, not a check (a
  1-LSB rescale difference early in a deep graph can grow by tens of LSB by its output), unless
  a ``tolerance`` is given. Top-1 agreement is reported either way.
- against "tflm" (TensorFlow Lite Micro): all-integer double rounding everywhere, so the
  default rounding resolves to ``double`` and the output must be bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from . import ir
from .errors import UsageError
from .litert import MODES, LiteRTRunner, litert_version, reference_rounding
from .tflm import TFLMRunner, tflm_version
from .model import input_from_float
from .preprocess import load_images
from .runtime import Runtime
from .tflite.reader import load_tflite
from .tflite.validate import DEFAULT_MAX_MEMORY

DEFAULT_RANDOM_INPUTS = 20
AGAINST = tuple(MODES) + ("tflm",)


@dataclass
class TensorRow:
    name: str
    op: str
    shape: tuple
    dtype: str
    max_diff: float = 0.0  # in LSB for int8/int32, absolute for float32
    exact: int = 0
    total: int = 0

    @property
    def exact_share(self) -> float:
        return self.exact / self.total if self.total else 1.0

    def to_dict(self) -> dict:
        return {"tensor": self.name, "op": self.op, "shape": list(self.shape), "dtype": self.dtype,
                "max_diff": self.max_diff, "unit": "abs" if self.dtype == "float32" else "LSB",
                "exact_share": self.exact_share}


@dataclass
class VerifyReport:
    model: str
    against: str
    rounding: str
    backend: str
    litert: str
    inputs: int
    input_source: str
    rows: list
    top1_agree: int = 0
    tolerance: Optional[int] = 0  # None: a report of the difference, not a check
    skipped: list = field(default_factory=list)

    @property
    def max_diff(self) -> float:
        return max((r.max_diff for r in self.rows), default=0.0)

    @property
    def ok(self) -> bool:
        return self.tolerance is None or self.max_diff <= self.tolerance

    def to_dict(self) -> dict:
        return {"model": self.model, "against": self.against, "rounding": self.rounding,
                "backend": self.backend, "litert": self.litert, "inputs": self.inputs,
                "input_source": self.input_source, "ok": self.ok, "max_diff": self.max_diff,
                "tolerance_lsb": self.tolerance,
                "top1_agreement": self.top1_agree / self.inputs if self.inputs else None,
                "tensors": [r.to_dict() for r in self.rows],
                "skipped_images": [{"image": p, "error": e} for p, e in self.skipped]}


def _op_name(graph: ir.Graph, tensor: ir.Tensor) -> str:
    node = graph.producer(tensor.name)
    return "input" if node is None else node.display_name()


def _inputs(graph, images, count, seed, skipped):
    """Yield model inputs in the graph's input dtype: from images, or seeded random."""
    if images:
        for path, item in load_images(images, graph.preprocess):
            if isinstance(item, Exception):
                skipped.append((path, str(item)))
            else:
                yield input_from_float(graph, item)
        return
    rng = np.random.default_rng(seed)
    for _ in range(count):
        if graph.input.dtype == "int8":
            yield rng.integers(-128, 128, graph.input.shape, dtype=np.int8)
        else:
            yield rng.standard_normal(graph.input.shape).astype(np.float32)


def _compare(row: TensorRow, ours: np.ndarray, theirs: np.ndarray) -> None:
    if row.dtype == "float32":
        diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    else:
        diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    row.max_diff = max(row.max_diff, float(diff.max()) if diff.size else 0.0)
    row.exact += int(np.count_nonzero(diff == 0))
    row.total += diff.size


def verify(model_path: str, images: Optional[Sequence[str]] = None, against: str = "litert-ref",
           rounding: str = "litert-ref", backend: str = "cython", tolerance: Optional[int] = None,
           count: int = DEFAULT_RANDOM_INPUTS, seed: int = 0,
           progress: Optional[Callable[[int], None]] = None,
           max_memory: int = DEFAULT_MAX_MEMORY,
           preprocess: Optional[ir.Preprocess] = None) -> VerifyReport:
    """``preprocess`` feeds ``images`` to a file that stores none (or overrides the stored)."""
    if against not in AGAINST:
        raise UsageError(f"--against {against!r}: use one of {', '.join(AGAINST)}")
    reference = against == "litert-ref"
    if reference and rounding == "litert-ref":
        rounding = reference_rounding()  # what this LiteRT's reference kernels do
    elif against == "tflm" and rounding == "litert-ref":
        rounding = "double"  # TFLite Micro's only rounding
    loaded = load_tflite(model_path, max_memory)
    graph = loaded.graph
    if preprocess is not None:
        graph = graph.replace(preprocess=preprocess)
    if tolerance is None:
        tolerance = 0 if reference or against == "tflm" or rounding == "fp32" else None
    ours = Runtime(graph, backend, rounding, preserve_all=True)
    theirs = (TFLMRunner(model_path, len(graph.outputs)) if against == "tflm"
              else LiteRTRunner(model_path, against))
    tensors = graph.tensors() if reference else graph.output_tensors()
    rows = [TensorRow(t.name, _op_name(graph, t), tuple(t.shape), t.dtype) for t in tensors]
    skipped: list = []

    if images and graph.preprocess is None:
        raise UsageError(f"{model_path} stores no preprocessing, so images cannot be fed: give "
                         "--input-size/--color/--resize/--mean/--std/--invert, store them with "
                         "'edgecnn set-preprocess', or run verify without --images (seeded "
                         "random inputs)")

    n = agree = 0
    for x in _inputs(graph, images, count, seed, skipped):
        outs_ours = ours.invoke_all(x)
        outs_theirs = theirs.invoke_all(x)
        if reference:
            for row, t in zip(rows, tensors):
                _compare(row, ours.tensor(t.name), theirs.tensor(loaded.tensor_index[t.name]))
        else:
            for row, a, b in zip(rows, outs_ours, outs_theirs):
                _compare(row, a, b)
        agree += int(np.argmax(outs_ours[0]) == np.argmax(outs_theirs[0]))
        n += 1
        if progress is not None:
            progress(1)
    if n == 0:
        raise UsageError("verify got no usable input: every image failed to load")
    engine = tflm_version() if against == "tflm" else litert_version()
    return VerifyReport(model_path, against, rounding, backend, engine, n,
                        "images" if images else f"seeded random (seed {seed})", rows, agree,
                        tolerance, skipped)
