"""Float graph rewrites that make a graph expressible as standard TFLite int8 ops.

- ``fuse_activations``: a ReLU/ReLU6 right after Conv2D/FullyConnected/pool becomes the
  layer's fused activation (TFLite's fused_activation_function), so the int8 layer clamps
  to the activation range instead of quantizing the pre-activation tensor.
- ``split_explicit_padding``: TFLite conv/pool ops know only SAME and VALID; any other
  padding becomes an explicit PAD (real 0.0, i.e. the int8 zero point) + a VALID conv, as
  TensorFlow's own converter does. Exact: conv skips out-of-image taps, which equals
  padding with the zero point because (zp - zp) * w = 0.
"""

from __future__ import annotations

from . import ir, shapes
from .errors import UnsupportedOpError

_FUSABLE = (ir.Conv2D, ir.FullyConnected, ir.MaxPool2D, ir.AvgPool2D)


def fuse_activations(graph: ir.Graph) -> ir.Graph:
    layers: list = []
    for layer in graph.layers:
        prev = layers[-1] if layers else None
        if (isinstance(layer, ir.Activation) and layer.kind in ("relu", "relu6")
                and isinstance(prev, _FUSABLE) and prev.activation == "none"):
            layers[-1] = ir.replace(prev, activation=layer.kind)
            continue
        layers.append(layer)
    return graph.replace(layers=ir.chain(graph.input, layers))


def split_explicit_padding(graph: ir.Graph) -> ir.Graph:
    layers: list = []
    in_shape = graph.input.shape
    for layer in graph.layers:
        if isinstance(layer, (ir.Conv2D, ir.MaxPool2D, ir.AvgPool2D)):
            kernel = layer.weight.shape[1:3] if isinstance(layer, ir.Conv2D) else layer.kernel
            dilation = layer.dilation if isinstance(layer, ir.Conv2D) else (1, 1)
            kind = shapes.padding_kind(in_shape[1:3], kernel, layer.stride, layer.padding, dilation)
            if kind == "explicit":
                if not isinstance(layer, ir.Conv2D):
                    raise UnsupportedOpError(
                        f"{layer.name}: pooling padding {layer.padding} is neither SAME nor VALID "
                        f"for a {in_shape[1]}x{in_shape[2]} input, which TFLite pools cannot "
                        "express; remove the pooling padding or change the input size")
                pad = ir.Pad(f"{layer.name}/pad", layer.padding,
                             output=ir.Tensor(f"{layer.name}/pad", (), layer.output.dtype))
                layers.append(pad)
                layer = ir.replace(layer, padding=(0, 0, 0, 0))
        layers.append(layer)
        in_shape = layer.output.shape
    return shapes.infer_shapes(graph.replace(layers=ir.chain(graph.input, layers)))
