"""Graph rewrites: float graphs made expressible as standard TFLite int8 ops, and one for running.

- ``fuse_activations``: a ReLU/ReLU6 reading the output of a conv, depthwise conv, dense
  layer or ADD becomes that op's fused activation (TFLite's fused_activation_function), so
  the int8 op clamps to the activation range instead of quantizing the pre-activation tensor.
  Only where the ReLU is the producer's one reader and the producer's output is not a graph
  output: a conv whose output also feeds a skip connection keeps its own output.
- ``split_explicit_padding``: TFLite conv/pool ops know only SAME and VALID; any other
  padding becomes an explicit PAD (real 0.0, i.e. the int8 zero point) + a VALID conv, as
  TensorFlow's own converter does. Exact: conv skips out-of-image taps, which equals
  padding with the zero point because (zp - zp) * w = 0.
- ``merge_zero_point_padding``: the reverse, for running a graph: a PAD whose one reader is a
  conv or depthwise conv becomes that op's explicit padding (the same bytes: the PAD keeps its
  input's quantization and pads with its zero point). The padded copy is never made: no pass
  over the tensor, no arena bytes for it (TensorFlow's converter writes such PADs before every
  stride-2 conv of a ResNet).
"""

from __future__ import annotations

from . import ir, ops, shapes
from .errors import UnsupportedOpError

def fuse_activations(graph: ir.Graph) -> ir.Graph:
    nodes: list = []
    position: dict = {}
    for node in graph.nodes:
        if isinstance(node, ops.Activation) and node.kind in ("relu", "relu6"):
            src = node.inputs[0]
            k = position.get(src)
            prev = nodes[k] if k is not None else None
            if (prev is not None and prev.fusable and not prev.keeps_quant
                    and prev.activation == "none" and graph.uses(src) == 1):
                nodes[k] = ir.replace(prev, activation=node.kind, output=node.output)
                position[node.output.name] = k
                continue
        position[node.output.name] = len(nodes)
        nodes.append(node)
    return graph.replace(nodes=tuple(nodes))


def split_explicit_padding(graph: ir.Graph) -> ir.Graph:
    nodes: list = []
    for node in graph.nodes:
        win = node.window
        if win is not None:
            x = graph.tensor(node.inputs[0])
            kind = shapes.padding_kind(x.shape[1:3], win.kernel, win.stride, win.padding,
                                       win.dilation)
            if kind == "explicit":
                if not node.pads_with_zero_point:
                    raise UnsupportedOpError(
                        f"{node.name}: pooling padding {node.padding} is neither SAME nor VALID "
                        f"for a {x.shape[1]}x{x.shape[2]} input, which TFLite pools cannot "
                        "express; remove the pooling padding or change the input size")
                pad_out = ir.Tensor(f"{node.name}/pad", (), node.output.dtype)
                nodes.append(ops.Pad(pad_out.name, tuple(node.padding), inputs=node.inputs,
                                     output=pad_out))
                node = ir.replace(node, padding=(0, 0, 0, 0), inputs=(pad_out.name,))
        nodes.append(node)
    return shapes.infer_shapes(graph.replace(nodes=tuple(nodes)))


def merge_zero_point_padding(graph: ir.Graph) -> ir.Graph:
    """A PAD read only by a conv-like op that pads with the zero point, and not a graph output,
    becomes part of that op's padding (module doc); other PADs stay."""
    pads = {n.output.name: n for n in graph.nodes if isinstance(n, ops.Pad)}
    merged, nodes = set(), []
    for node in graph.nodes:
        pad = pads.get(node.inputs[0]) if node.inputs else None
        if (pad is not None and node.pads_with_zero_point and hasattr(node, "padding")
                and graph.uses(pad.output.name) == 1):
            padding = tuple(a + b for a, b in zip(node.padding, pad.padding))
            node = ir.replace(node, padding=padding, inputs=pad.inputs + tuple(node.inputs[1:]))
            merged.add(pad.output.name)
        nodes.append(node)
    if not merged:
        return graph
    return graph.replace(nodes=tuple(n for n in nodes if n.output.name not in merged))
