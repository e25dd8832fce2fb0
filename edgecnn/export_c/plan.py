"""Read a model through edgecnn's own prepare, and plan the one static arena.

prepare() binds a recording backend: each step's run() is called once with placeholder buffers
and records the kernel name and the parameters prepare derived (multipliers, shifts, clamps,
tables), so the C gets the very numbers the Python runtime uses. The planner is greedy (largest
tensor first, lowest offset overlapping no tensor alive at the same step, like TFLite Micro's
GreedyMemoryPlanner); a reshape aliases its input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import ir
from ..prepare import prepare
from ..reference.quantize import activation_lut

ALIGN = 8  # arena offsets: float tensors need 4, 8 keeps doubles possible


@dataclass(frozen=True)
class PlanRow:
    layer: str
    op: str
    tensor: str
    shape: tuple
    bytes: int
    offset: int
    alias_of: str = ""  # a reshape: the tensor whose bytes it reuses



class _Recorder:
    """A kernel backend that records calls: prepare binds it; each step's run() is then called
    once with placeholder buffers to capture the kernel name and the prepared parameters."""

    def __init__(self):
        self.calls = []

    def activation_lut(self, *args):
        return activation_lut(*args)

    def __getattr__(self, name):
        if name.startswith("bind_") or name.startswith("__") or name == "set_num_threads":
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def record_steps(graph: ir.Graph, rounding: str):
    rec = _Recorder()
    plan = prepare(graph, rec, rounding)
    steps = []
    for step in plan.steps:
        if step.view_only:
            steps.append((step, None, None))
            continue
        step.run(None, None)
        name, args = rec.calls.pop()
        steps.append((step, name, args[1:-1]))  # drop the (input, output) placeholders
    return steps


# ---- arena planning ------------------------------------------------------------------------------

def nbytes(t: ir.Tensor) -> int:
    return math.prod(t.shape) * (4 if t.dtype == "float32" else 1)


def scratch_key(index: int) -> tuple:
    """The offsets key of step ``index``'s scratch buffer: a tuple, so no tensor name (a string
    from the model) can collide with it."""
    return ("scratch", index)


def plan_arena(graph: ir.Graph, steps, scratch=None) -> tuple[list, dict, int]:
    """(rows, offsets by tensor name, arena bytes). Lifetimes in step indices: the input lives
    from before step 0, the output until after the last step (the caller reads it). ``scratch``
    maps a step index to the bytes its kernel needs during that step only; each is planned like
    a tensor alive at that step, its offset under ``scratch_key(index)``."""
    root = {graph.input.name: graph.input.name}
    first = {graph.input.name: -1}
    last = {graph.input.name: -1}
    tensors = {graph.input.name: graph.input}
    for i, (step, _, _) in enumerate(steps):
        layer = step.layer
        src = root[layer.inputs[0]]
        last[src] = i
        out = layer.output
        if step.view_only:
            root[out.name] = src
            continue
        root[out.name] = out.name
        tensors[out.name] = out
        first[out.name], last[out.name] = i, i
    last[root[graph.output.name]] = len(steps)
    sizes = {name: nbytes(t) for name, t in tensors.items()}
    for i, size in (scratch or {}).items():
        if size:
            key = scratch_key(i)
            sizes[key], first[key], last[key] = size, i, i
    placed = []  # (offset, size, first, last)
    offsets = {}
    for name in sorted(sizes, key=lambda n: (-sizes[n], first[n])):
        size = -(-sizes[name] // ALIGN) * ALIGN
        offset = 0
        for o, s, f, l in sorted(placed):
            if f <= last[name] and first[name] <= l and o < offset + size and offset < o + s:
                offset = max(offset, -(-(o + s) // ALIGN) * ALIGN)
        placed.append((offset, size, first[name], last[name]))
        offsets[name] = offset
    arena = max((o + s for o, s, _, _ in placed), default=0)
    rows = [PlanRow("(input)", "input", graph.input.name, graph.input.shape,
                    nbytes(graph.input), offsets[graph.input.name])]
    for step, _, _ in steps:
        out = step.layer.output
        r = root[out.name]
        rows.append(PlanRow(step.layer.name, type(step.layer).__name__, out.name, out.shape,
                            nbytes(out), offsets[r], r if r != out.name else ""))
    named = {n: offsets[root[n]] for n in root}
    named.update({k: offsets[k] for k in sizes if k not in tensors})
    return rows, named, max(arena, ALIGN)
