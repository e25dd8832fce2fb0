"""The activation-memory planner: one arena, offsets from tensor lifetimes (greedy, like
TFLite Micro's GreedyMemoryPlanner). The Python runtime and export-c use the same plan.

Lifetimes are in step indices over the topological order: a tensor lives from the step that
writes it (the graph input from before step 0) to the last step that reads it (graph outputs
until after the last step, where the caller reads them). Then, largest first, each tensor
takes the lowest offset that overlaps no tensor alive at the same time.

Sharing:
- a reshape's output is a view of its input (no bytes of its own): the input's lifetime grows
  to cover every reader of the view;
- an element-wise op whose kernel allows it (``KernelCall.inplace``: ADD, ReLU, the tanh/
  logistic table) writes over an input that dies at that step, when both have the same size,
  dtype and the input is not the graph input. Each element is read before it is written.

Kernel scratch (export-c's DSP/Helium conv columns) is planned like a tensor alive during its
step only, so it lands where no tensor is alive then and grows the arena only if nothing fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import ir

DTYPE_BYTES = {"int8": 1, "float32": 4, "int32": 4}


def nbytes(t: ir.Tensor) -> int:
    return math.prod(t.shape) * DTYPE_BYTES[t.dtype]


@dataclass(frozen=True)
class PlanRow:
    node: str  # "(input)" for the graph input
    op: str
    tensor: str
    shape: tuple
    bytes: int
    offset: int
    shares: str = ""  # the tensor whose bytes it reuses (a reshape view, an in-place op)


@dataclass
class MemoryPlan:
    offsets: dict  # tensor name -> byte offset in the arena
    arena_bytes: int
    rows: list = field(default_factory=list)  # the input, then one per step
    root: dict = field(default_factory=dict)  # tensor name -> tensor owning its bytes
    scratch: dict = field(default_factory=dict)  # step index -> offset of its kernel scratch


def plan_memory(graph: ir.Graph, steps, align: int = 8, scratch=None) -> MemoryPlan:
    """``steps``: (node, KernelCall) in topological order. Offsets are multiples of ``align``.
    ``scratch``: step index -> bytes its kernel needs during that step only."""
    end = len(steps)
    # 1. views: a reshape's output shares its input's bytes
    view = {graph.input.name: graph.input.name}
    for node, call in steps:
        view[node.output.name] = (view[node.inputs[0]] if call.kernel is None
                                  else node.output.name)
    last = {name: -1 for name in set(view.values())}
    for i, (node, _) in enumerate(steps):
        for name in node.inputs:
            last[view[name]] = max(last[view[name]], i)
    for name in graph.outputs:
        last[view[name]] = end
    # 2. in place: an output may take over an input whose bytes are dead after this step
    group = {name: name for name in last}  # view root -> owner of the bytes
    first = {graph.input.name: -1}
    for i, (node, call) in enumerate(steps):
        out = view[node.output.name]
        if out != node.output.name:
            continue
        owner = _inplace_owner(graph, node, call, view, group, last, i)
        if owner is not None:
            group[out] = owner
            last[owner] = max(last[owner], last[out])  # the owner's bytes now live for both
        else:
            first[out] = i
    owned = {name: graph.tensor(name) for name in first}
    for name in owned:  # a tensor nobody reads still occupies its bytes while it is written
        last[name] = max(last[name], first[name])
    sizes = {name: nbytes(t) for name, t in owned.items()}
    for i, size in (scratch or {}).items():  # keys ("scratch", i): never a tensor name
        if size:
            key = ("scratch", i)
            sizes[key], first[key], last[key] = size, i, i

    placed, offsets = [], {}
    for name in sorted(sizes, key=lambda n: (-sizes[n], first[n])):
        size = -(-sizes[name] // align) * align
        offset = 0
        for o, s, f, l in sorted(placed):
            if f <= last[name] and first[name] <= l and o < offset + size and offset < o + s:
                offset = max(offset, -(-(o + s) // align) * align)
        placed.append((offset, size, first[name], last[name]))
        offsets[name] = offset
    arena = max((o + s for o, s, _, _ in placed), default=0)
    root = {name: group[v] for name, v in view.items()}
    scratch_at = {key[1]: offset for key, offset in offsets.items() if isinstance(key, tuple)}
    offsets = {name: offsets[r] for name, r in root.items()}
    rows = [PlanRow("(input)", "input", graph.input.name, graph.input.shape, nbytes(graph.input),
                    offsets[graph.input.name])]
    for node, _ in steps:
        out = node.output
        r = root[out.name]
        rows.append(PlanRow(node.name, node.display_name(), out.name, out.shape, nbytes(out),
                            offsets[out.name], r if r != out.name else ""))
    return MemoryPlan(offsets, max(arena, align), rows, root, scratch_at)


def _inplace_owner(graph, node, call, view, group, last, step):
    """The owner of an input's bytes the output may overwrite at ``step``, or None: the
    bytes must be dead after this step (``last[owner]`` covers every tensor sharing them)."""
    out = node.output
    for k in call.inplace:
        name = node.inputs[k]
        owner = group[view[name]]
        t = graph.tensor(name)
        if (owner != graph.input.name and node.inputs.count(name) == 1
                and nbytes(t) == nbytes(out) and t.dtype == out.dtype and last[owner] == step):
            return owner
    return None
