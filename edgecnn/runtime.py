"""Run a prepared int8 graph on a kernel backend: "cython" (fast) or "reference" (NumPy spec).

Memory: every activation is a view into one arena laid out by edgecnn.memory (the plan
export-c uses too): tensors whose lifetimes do not overlap share bytes, a reshape is a view of
its input, an element-wise op may write over an input that dies there. ``preserve_all=True``
gives every tensor its own buffer instead, so verify can read each one after ``invoke``;
without it a PAD before a conv is merged into the conv's padding (passes.merge_zero_point_padding),
and its tensor does not exist.
"""

from __future__ import annotations

import importlib

import numpy as np

from . import ir
from .errors import EdgecnnError, UsageError
from .memory import nbytes, plan_memory
from .passes import merge_zero_point_padding
from .prepare import prepare_calls

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


def _buffers(graph: ir.Graph, steps, preserve_all: bool):
    """(tensor name -> ndarray of its full shape, arena bytes)."""
    if preserve_all:
        out = {t.name: np.zeros(t.shape, t.dtype) for t in graph.tensors()}
        for node, call in steps:
            if call.kernel is None:  # a view stays a view: verify reads the same bytes
                out[node.output.name] = out[node.inputs[0]].reshape(node.output.shape)
        return out, sum(b.nbytes for n, b in out.items() if b.base is None)
    plan = plan_memory(graph, steps)
    arena = np.zeros(plan.arena_bytes, np.uint8)
    out = {}
    for t in graph.tensors():
        start = plan.offsets[t.name]
        out[t.name] = arena[start:start + nbytes(t)].view(t.dtype).reshape(t.shape)
    return out, plan.arena_bytes


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
        if not preserve_all:  # every tensor kept: verify reads the padded copies too
            graph = merge_zero_point_padding(graph)
            self.graph = graph
        self.calls = prepare_calls(graph, rounding)
        self.buffers, self.arena_bytes = _buffers(graph, self.calls, preserve_all)
        self._steps = []
        for node, call in self.calls:
            if call.kernel is None:
                continue
            ins = tuple(self.buffers[name].reshape(shape)
                        for name, shape in zip(node.inputs, call.in_shapes))
            out = self.buffers[node.output.name].reshape(call.out_shape)
            self._steps.append((node.bind(call, kernels), ins, out))
        self._input = self.buffers[graph.input.name]
        self._outputs = [self.buffers[name] for name in graph.outputs]
        self._in_shape = tuple(graph.input.shape)  # checked per invoke without rebuilding these
        self._in_dtype = np.dtype(graph.input.dtype)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """Run on one input of the graph's input shape and dtype; returns a copy of the first
        output (``invoke_all`` returns every output)."""
        return self.invoke_all(x)[0]

    def invoke_all(self, x: np.ndarray) -> list:
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        if x.shape != self._in_shape or x.dtype != self._in_dtype:
            want = self.graph.input
            raise UsageError(f"input {want.name!r} expects {want.dtype} {tuple(want.shape)}, got "
                             f"{x.dtype} {x.shape}")
        self._input[...] = x
        for run, ins, out in self._steps:
            run(*ins, out)
        return [o.copy() for o in self._outputs]

    def tensor(self, name: str) -> np.ndarray:
        """A tensor's value after ``invoke`` (every tensor only with preserve_all=True)."""
        return self.buffers[name]

    @property
    def steps(self) -> list:
        """(node name, run, input views, output view) of each step that runs a kernel, in
        order, wired as ``invoke`` wires them (for per-step timing)."""
        names = [node.name for node, call in self.calls if call.kernel is not None]
        return [(name, *step) for name, step in zip(names, self._steps)]
