"""Run a float IR graph in NumPy: the calibration engine and the float baseline.

Batched: the input is (N, H, W, C) float32, already preprocessed. Nodes run in topological
order on a name -> array map; an array is dropped after its last reader, so a 224x224 ResNet
batch holds only the tensors alive at once. An optional observer is called with
(tensor_name, array) for the input and every node output, which is how calibration collects
ranges without the runtime knowing about statistics.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from . import ir


def last_reads(graph: ir.Graph) -> dict:
    """Tensor name -> index of the last node reading it (graph outputs: past the end)."""
    last = {}
    for i, node in enumerate(graph.nodes):
        for name in node.inputs:
            last[name] = i
    for name in graph.outputs:
        last[name] = len(graph.nodes)
    return last


def run_float_all(graph: ir.Graph, x: np.ndarray,
                  observer: Optional[Callable[[str, np.ndarray], None]] = None) -> list:
    """Run ``graph`` on a batch ``x`` (N, H, W, C) float32; returns every graph output."""
    x = np.asarray(x, np.float32)
    if observer is not None:
        observer(graph.input.name, x)
    values = {graph.input.name: x}
    last = last_reads(graph)
    # weights from a file may overflow float32 in a sum; the infinities that makes are
    # reported by calibration (a non-finite range), not as numpy warnings on the way
    with np.errstate(over="ignore", invalid="ignore"):
        for i, node in enumerate(graph.nodes):
            y = node.run_float([values[name] for name in node.inputs]).astype(np.float32,
                                                                              copy=False)
            values[node.output.name] = y
            if observer is not None:
                observer(node.output.name, y)
            for name in set(node.inputs):
                if last.get(name, -1) <= i:
                    del values[name]
    return [values[name] for name in graph.outputs]


def run_float(graph: ir.Graph, x: np.ndarray,
              observer: Optional[Callable[[str, np.ndarray], None]] = None) -> np.ndarray:
    """Run a single-output ``graph`` on a batch ``x`` and return that output."""
    graph.output  # noqa: B018  (raises for a multi-output graph: use run_float_all)
    return run_float_all(graph, x, observer)[0]
