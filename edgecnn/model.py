"""The Python API: ``edgecnn.load(path)`` and ``model.predict(image)``.

A loaded model is a ``.tflite`` file read into the IR plus the preprocessing and labels
stored in its metadata, run on edgecnn's kernels ("cython", "reference") or on LiteRT
("litert", its default path) for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import ir, ops
from .errors import UsageError
from .image_input import describe, split_batch, to_input
from .litert import LiteRTRunner
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
    """One class of a top-k: output ``index``, its ``label`` (the index as text when the model
    stores no labels) and its ``score`` (probability)."""

    index: int
    label: str
    score: float

    def to_dict(self) -> dict:
        """``{"index", "label", "score"}`` for JSON."""
        return {"index": self.index, "label": self.label, "score": self.score}


class Model:
    """An int8 ``.tflite`` ready to run: ``predict`` for images, ``run`` for raw tensors."""

    def __init__(self, path: str, backend: str = "cython", rounding: str = "litert-ref",
                 threads: int = 1, max_memory: int = DEFAULT_MAX_MEMORY,
                 preprocess: Optional[ir.Preprocess] = None):
        if backend not in ALL_BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; use one of {', '.join(ALL_BACKENDS)}")
        self.path = path
        loaded = load_tflite(path, max_memory)
        self.graph: ir.Graph = loaded.graph
        if preprocess is not None:  # given by the caller: wins over what the file stores
            self.graph = self.graph.replace(preprocess=preprocess)
        self.tensor_index: dict[str, int] = loaded.tensor_index
        self.backend = backend
        if backend == "litert":
            self._runner = LiteRTRunner(path, "litert", threads)
        else:
            self._runner = Runtime(self.graph, backend, rounding, threads=threads)

    @property
    def preprocess(self) -> ir.Preprocess:
        """How images become the model input (stored in the file, or given to ``load``)."""
        if self.graph.preprocess is None:
            raise UsageError(f"{self.path} stores no preprocessing (not written by edgecnn); "
                             "pass preprocess= to edgecnn.load (ir.Preprocess), or give infer "
                             "--input-size/--color/--resize/--mean/--std/--invert, or store them "
                             "once with 'edgecnn set-preprocess'")
        return self.graph.preprocess

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names stored in the model, one per output (empty when it stores none)."""
        return self.graph.labels

    def input_from_float(self, x: np.ndarray) -> np.ndarray:
        """A preprocessed float (1, H, W, C) input in the model's input dtype (int8 quantized)."""
        return input_from_float(self.graph, x)

    def input_from_image(self, image) -> np.ndarray:
        """An image (path, PIL image or numpy image) as the model's input tensor."""
        return self.input_from_float(to_input(image, self.preprocess))

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
        """The ``k`` most probable classes, best first (ties: the lower index first)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise UsageError(f"top-k {k!r}: give a whole number of classes, 1 or more")
        order = np.argsort(-probs, kind="stable")[:k]
        return [Prediction(int(i), self.labels[i] if i < len(self.labels) else str(int(i)),
                           float(probs[i])) for i in order]

    def predict(self, images, top_k: int = 5):
        """Top-k predictions for one image, or a list of them for a batch.

        One image: a path (``str`` or ``pathlib.Path``), a PIL image, or a numpy image (HxW or
        HxWxC; uint8 pixels or float pixels in [0, 1]) -> ``[Prediction, ...]``.
        A batch: a list or tuple of those, or an NxHxWxC array -> a list with one
        ``[Prediction, ...]`` per image, in order. Each image goes through the model's
        preprocessing; an already normalized tensor goes to ``run`` instead.
        """
        items, batch = split_batch(images)
        results = [self.top_k(self.scores(self.run(self.input_from_float(
            to_input(item, self.preprocess, describe(item, i))))), top_k)
            for i, item in enumerate(items)]
        return results if batch else results[0]


def load(path: str, backend: str = "cython", rounding: str = "litert-ref", threads: int = 1,
         max_memory: int = DEFAULT_MAX_MEMORY, preprocess: Optional[ir.Preprocess] = None) -> Model:
    """Open an int8 ``.tflite`` for inference.

    ``backend``: ``"cython"`` (fast), ``"reference"`` (the NumPy spec) or ``"litert"``.
    ``preprocess``: an ``ir.Preprocess`` for a file that stores none (TensorFlow's converter's),
    or to override the stored one. A file declaring tensors of more than ``max_memory`` bytes
    in all is refused before anything is allocated.

    >>> model = edgecnn.load("lenet.tflite")  # doctest: +SKIP
    >>> model.predict("digit.png", top_k=3)  # doctest: +SKIP
    [Prediction(index=7, label='7', score=0.99), ...]
    """
    return Model(path, backend, rounding, threads, max_memory, preprocess)
