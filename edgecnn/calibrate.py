"""Calibration: run the float graph on representative inputs and record each tensor's range.

Methods:
- ``minmax``: the observed minimum and maximum over all calibration inputs.
- ``percentile``: the ``percentile``-th and ``(100 - percentile)``-th percentiles of the
  observed values, from a seeded, fixed-size sample per input (so memory stays bounded and
  results are reproducible); clips rare outliers to spend the 256 levels on the bulk.
- ``mse``: the range that minimises the expected int8 quantization error (rounding inside
  the range, clipping outside) over each tensor's histogram, searched per tensor
  (calib_hist.py), as ONNX Runtime, ncnn and NNoM offer beside min/max.
Every method also keeps a histogram per tensor (calib_hist.Histogram, order-independent), which
``convert`` stores next to the model for reports.
Ranges are widened to include 0 later, by the quantizer (the int8 spec needs real 0 exact).
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np

from . import ir
from .calib_hist import Histogram, mse_range
from .errors import CalibrationError
from .float_runtime import run_float

METHODS = ("minmax", "percentile", "mse")
SAMPLES_PER_BATCH = 20000  # values kept per tensor per batch for the percentile method


class RangeObserver:
    """Collects per-tensor statistics; call it as a float_runtime observer."""

    def __init__(self, method: str = "minmax", percentile: float = 99.99, seed: int = 0):
        if method not in METHODS:
            raise CalibrationError(f"unknown calibration method {method!r}; use one of {METHODS}")
        self.method = method
        self.percentile = percentile
        self._rng = np.random.default_rng(seed)
        self._min: dict[str, float] = {}
        self._max: dict[str, float] = {}
        self._samples: dict[str, list[np.ndarray]] = {}
        self.histograms: dict[str, Histogram] = {}

    def __call__(self, name: str, x: np.ndarray) -> None:
        self.histograms.setdefault(name, Histogram()).add(x)
        lo, hi = float(x.min()), float(x.max())
        self._min[name] = min(lo, self._min.get(name, lo))
        self._max[name] = max(hi, self._max.get(name, hi))
        if self.method == "percentile":
            flat = x.ravel()
            if flat.size > SAMPLES_PER_BATCH:
                flat = flat[self._rng.integers(0, flat.size, SAMPLES_PER_BATCH)]
            self._samples.setdefault(name, []).append(flat.astype(np.float32, copy=True))

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Per-tensor (lo, hi) by the observer's method."""
        if self.method == "minmax":
            return {k: (self._min[k], self._max[k]) for k in self._min}
        if self.method == "mse":
            return {k: mse_range(h) for k, h in self.histograms.items()}
        out = {}
        for name, chunks in self._samples.items():
            values = np.concatenate(chunks)
            lo = float(np.percentile(values, 100.0 - self.percentile))
            hi = float(np.percentile(values, self.percentile))
            out[name] = (lo, hi)
        return out


def calibrate(graph: ir.Graph, batches: Iterable[np.ndarray], method: str = "minmax",
              percentile: float = 99.99,
              progress: Optional[Callable[[int], None]] = None) -> dict[str, tuple[float, float]]:
    """Per-tensor (min, max) over ``batches`` of preprocessed float inputs (N, H, W, C).

    ``progress`` is called with the number of inputs done after each batch.
    """
    return calibrate_observer(graph, batches, method, percentile, progress).ranges()


def calibrate_observer(graph: ir.Graph, batches: Iterable[np.ndarray], method: str = "minmax",
                       percentile: float = 99.99,
                       progress: Optional[Callable[[int], None]] = None) -> RangeObserver:
    """``calibrate``, returning the observer: its ranges() and its per-tensor histograms."""
    observer = RangeObserver(method, percentile)
    seen = 0
    for batch in batches:
        run_float(graph, batch, observer)
        seen += batch.shape[0]
        if progress is not None:
            progress(batch.shape[0])
    if seen == 0:
        raise CalibrationError("no calibration inputs: pass --calib DIR with representative images")
    return observer
