"""Run a prepared int8 graph on a kernel backend: "cython" (fast) or "reference" (NumPy spec)."""

from __future__ import annotations

import importlib

import numpy as np

from . import ir
from .errors import EdgecnnError, UsageError
from .prepare import prepare

BACKENDS = ("cython", "reference")


def kernels_for(backend: str):
    """The backend module: both expose the same kernel names and signatures."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(f"edgecnn.backends.{backend}")
    except ImportError as e:
        raise EdgecnnError(f"the {backend} backend cannot be imported ({e}); reinstall edgecnn "
                           "with 'pip install .' so its Cython kernels are compiled") from None


class Runtime:
    """An int8 graph bound to kernels and buffers; ``invoke`` has no Python per element."""

    def __init__(self, graph: ir.Graph, backend: str = "cython", rounding: str = "litert-ref",
                 preserve_all: bool = False, threads: int = 1):
        self.graph = graph
        self.backend = backend
        self.rounding = rounding
        kernels = kernels_for(backend)
        if threads < 1:
            raise UsageError(f"--threads {threads}: give 1 or more")
        if hasattr(kernels, "set_num_threads"):
            kernels.set_num_threads(threads)  # process-wide: the kernels' worker pool
        self.plan = prepare(graph, kernels, rounding, preserve_all)
        self._steps = [(s.run, self.plan.buffers[s.layer.inputs[0]].reshape(s.in_shape),
                        self.plan.buffers[s.layer.output.name].reshape(s.out_shape))
                       for s in self.plan.steps if not s.view_only]
        self._input = self.plan.buffers[graph.input.name]
        self._output = self.plan.buffers[graph.output.name]
        self._in_shape = tuple(graph.input.shape)  # checked per invoke without rebuilding these
        self._in_dtype = np.dtype(graph.input.dtype)

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """Run on one input of the graph's input shape and dtype; returns a copy of the output."""
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        if x.shape != self._in_shape or x.dtype != self._in_dtype:
            want = self.graph.input
            raise UsageError(f"input {want.name!r} expects {want.dtype} {tuple(want.shape)}, got "
                             f"{x.dtype} {x.shape}")
        self._input[...] = x
        for run, src, dst in self._steps:
            run(src, dst)
        return self._output.copy()

    def tensor(self, name: str) -> np.ndarray:
        """A tensor's value after ``invoke`` (every tensor only with preserve_all=True)."""
        return self.plan.buffers[name]
