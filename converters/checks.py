"""Checks a built graph passes before the float passes run on it: the memory its conversion
needs (so ``--max-memory`` refuses before anything of that size is allocated) and BatchNorm
statistics whose folding would overflow float32.
"""

from __future__ import annotations

import math

import numpy as np

from edgecnn import ir, ops
from edgecnn.errors import ModelFormatError

CALIB_BATCH = 16  # edgecnn.convert.CALIB_BATCH: images the float run holds at once


def check_memory(graph: ir.Graph, source: str, max_memory, weight_bytes: int,
                 scratch: int) -> None:
    """Refuse a graph whose conversion would need more than ``max_memory``: its weights, plus a
    calibration batch of the tensors alive at once and the largest im2col scratch."""
    if max_memory is None:
        return
    need = weight_bytes + 4 * CALIB_BATCH * (peak_live_floats(graph) + scratch)
    if need > max_memory:
        raise ModelFormatError(
            f"{source}: converting it needs about {need:,} bytes (weights, and a calibration "
            f"batch of {CALIB_BATCH} through the float graph), over --max-memory "
            f"{max_memory:,}; raise --max-memory or use a smaller input size")


def check_folding(graph: ir.Graph, source: str) -> None:
    """Refuse NaN or infinite parameters (convert's check, with the file named), and BatchNorm
    statistics whose folded weights would overflow float32 (a variance near 0 with eps 0, say),
    before the float passes fold them."""
    from edgecnn.convert import check_finite_parameters
    from edgecnn.fold import fold_batchnorm
    try:
        check_finite_parameters(graph)
    except ModelFormatError as e:
        raise ModelFormatError(f"{source}: {e}") from None
    if not any(isinstance(n, ops.BatchNorm) for n in graph.nodes):
        return
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            fold_batchnorm(graph)
    except FloatingPointError:
        raise ModelFormatError(f"{source}: folding a BatchNorm into its conv overflows float32 "
                               "(running variance + eps near 0, or huge weights); the "
                               "statistics are corrupt") from None


def peak_live_floats(graph: ir.Graph) -> int:
    """The most float32 values of one image alive at once in a topological run (a tensor
    lives from its producer to its last reader)."""
    from edgecnn.float_runtime import last_reads
    last = last_reads(graph)
    size = {graph.input.name: math.prod(graph.input.shape)}
    live = peak = size[graph.input.name]
    for i, node in enumerate(graph.nodes):
        size[node.output.name] = math.prod(node.output.shape)
        live += size[node.output.name]
        peak = max(peak, live)
        for name in set(node.inputs):
            if last.get(name, -1) <= i:
                live -= size.get(name, 0)
    return peak
