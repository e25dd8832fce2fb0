"""Prepare an int8 graph once: every check, every derived quantity, one memory plan.

``prepare_calls`` walks the nodes in topological order, checks that each node's declared output
shape is the one its op computes from its inputs (kernels trust these shapes blindly), and asks
each op for its ``KernelCall``: the kernel and the parameters prepare derived (multipliers and
shifts from the stored scales, activation clamps, offsets, tables). The Python runtime binds
those calls to a backend; export-c writes them as C. Kernels see activations without the batch
dimension: (H, W, C) for images, (N,) for vectors, always C-contiguous.
"""

from __future__ import annotations

from . import ir
from .errors import ArchitectureError, ModelFormatError, UnsupportedOpError
from .reference import params as P


def prepare_calls(graph: ir.Graph, rounding: str = "litert-ref") -> list:
    """[(node, KernelCall)] for every node, in topological order; raises EdgecnnError."""
    if rounding not in P.MODEL_POLICIES:
        raise UnsupportedOpError(f"rounding {rounding!r}: use one of {', '.join(P.MODEL_POLICIES)}")
    try:
        graph.check()
    except ArchitectureError as e:
        raise ModelFormatError(str(e)) from None
    _check_batch_one(graph.input)
    steps = []
    for node in graph.nodes:
        ins = [graph.tensor(name) for name in node.inputs]
        for t in ins + [node.output]:
            if t.dtype not in ("int8", "float32"):
                raise ModelFormatError(f"{node.name}: tensor {t.name!r} is {t.dtype}; edgecnn "
                                       "runs int8 and float32 activations")
        try:
            want = tuple(node.out_shape([t.shape for t in ins]))
        except ArchitectureError as e:
            raise ModelFormatError(str(e)) from None
        if tuple(node.output.shape) != want:
            raise ModelFormatError(
                f"{node.name}: output {node.output.name!r} declares shape "
                f"{tuple(node.output.shape)} but the op computes {want} from "
                f"{', '.join(str(tuple(t.shape)) for t in ins)}")
        steps.append((node, node.prepare(ins, rounding)))
    return steps


def _check_batch_one(x: ir.Tensor) -> None:
    """Kernels see one image (H, W, C) or vector (N,): the input's batch must be 1 (every
    later shape follows from it, checked node by node)."""
    if len(x.shape) < 2 or x.shape[0] != 1:
        raise UnsupportedOpError(f"input {x.name!r} has shape {tuple(x.shape)}; edgecnn runs "
                                 "batch 1: re-export the model with batch size 1")
