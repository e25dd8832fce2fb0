"""The Python API: ``edgecnn.load(path)`` and ``model.predict(image)``.

A loaded model is a ``.tflite`` file read into the IR plus the preprocessing and labels
stored in its metadata, run on edgecnn's kernels ("cython", "reference") or on LiteRT
("litert", its default path) for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ir, ops
from .errors import UsageError
from .litert import LiteRTRunner
from .preprocess import load_image
from .reference.float_ops import softmax_f32
from .runtime import BACKENDS, Runtime, kernels_for
from .tflite.reader import load_tflite
from .tflite.validate import DEFAULT_MAX_MEMORY

ALL_BACKENDS = BACKENDS + ("litert",)


def input_from_float(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    """A preprocessed float (1, H, W, C) image in the graph's input dtype: int8 inputs are
    quantized with the reference QUANTIZE kernel (LiteRT's formula)."""
    t = graph.input
    if t.dtype == "float32":
        return np.asarray(x, np.float32)
    scale, zp = t.quant.scalar()
    out = np.empty(t.shape, np.int8)
    kernels_for("reference").quantize_s8(np.ascontiguousarray(x, np.float32), scale, zp, out)
    return out


def ends_in_softmax(graph: ir.Graph) -> bool:
    """True when the (first) output is a softmax's, directly or through a DEQUANTIZE."""
    node = graph.producer(graph.outputs[0])
    if isinstance(node, ops.Dequantize):
        node = graph.producer(node.inputs[0])
    return isinstance(node, ops.Softmax)


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float

    def to_dict(self) -> dict:
        return {"index": self.index, "label": self.label, "score": self.score}


class Model:
    def __init__(self, path: str, backend: str = "cython", rounding: str = "litert-ref",
                 threads: int = 1, max_memory: int = DEFAULT_MAX_MEMORY):
        if backend not in ALL_BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; use one of {', '.join(ALL_BACKENDS)}")
        self.path = path
        loaded = load_tflite(path, max_memory)
        self.graph: ir.Graph = loaded.graph
        self.tensor_index: dict[str, int] = loaded.tensor_index
        self.backend = backend
        if backend == "litert":
            self._runner = LiteRTRunner(path, "litert", threads)
        else:
            self._runner = Runtime(self.graph, backend, rounding, threads=threads)

    @property
    def preprocess(self) -> ir.Preprocess:
        if self.graph.preprocess is None:
            raise UsageError(f"{self.path} stores no preprocessing (it was not written by edgecnn); "
                             "feed arrays with model.run() instead of image files")
        return self.graph.preprocess

    @property
    def labels(self) -> tuple[str, ...]:
        return self.graph.labels

    def input_from_float(self, x: np.ndarray) -> np.ndarray:
        return input_from_float(self.graph, x)

    def input_from_image(self, path: str) -> np.ndarray:
        return self.input_from_float(load_image(path, self.preprocess))

    def run(self, x: np.ndarray) -> np.ndarray:
        """Raw output tensor for an input already in the graph's input dtype and shape."""
        return self._runner.invoke(x)

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """Class probabilities from a raw output: dequantized, then softmax unless the model
        already ends in one."""
        out = self.graph.tensor(self.graph.outputs[0])
        values = raw.astype(np.float32).reshape(-1)
        if out.dtype == "int8":
            scale, zp = out.quant.scalar()
            values = (values - zp) * scale
        if ends_in_softmax(self.graph):
            return values
        return softmax_f32(values[None, :])[0]

    def top_k(self, probs: np.ndarray, k: int = 5) -> list[Prediction]:
        order = np.argsort(-probs, kind="stable")[:max(1, k)]
        return [Prediction(int(i), self.labels[i] if i < len(self.labels) else str(int(i)),
                           float(probs[i])) for i in order]

    def predict(self, image, top_k: int = 5) -> list[Prediction]:
        """Top-k for an image path, or for a preprocessed float (1, H, W, C) array."""
        x = self.input_from_image(image) if isinstance(image, str) else self.input_from_float(image)
        return self.top_k(self.scores(self.run(x)), top_k)


def load(path: str, backend: str = "cython", rounding: str = "litert-ref", threads: int = 1,
         max_memory: int = DEFAULT_MAX_MEMORY) -> Model:
    """Open an int8 (or float) ``.tflite`` for inference; a file declaring tensors of more
    than ``max_memory`` bytes in all is refused before anything is allocated."""
    return Model(path, backend, rounding, threads, max_memory)
