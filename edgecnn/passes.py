"""Float graph rewrites that make a graph expressible as standard TFLite int8 ops.

- ``fuse_activations``: a ReLU/ReLU6 reading the output of a conv, depthwise conv, dense
  layer or ADD becomes that op's fused activation (TFLite's fused_activation_function), so
  the int8 op clamps to the activation range instead of quantizing the pre-activation tensor.
  Only where the ReLU is the producer's one reader and the producer's output is not a graph
  output: a conv whose output also feeds a skip connection keeps its own output.
- ``split_explicit_padding``: TFLite conv/pool ops know only SAME and VALID; any other
  padding becomes an explicit PAD (real 0.0, i.e. the int8 zero point) + a VALID conv, as
  TensorFlow's own converter does. Exact: conv skips out-of-image taps, which equals
  padding with the zero point because (zp - zp) * w = 0.
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
