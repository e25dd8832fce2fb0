"""Pickled ``nn.Module`` trees -> graphs, only where edgecnn knows ``forward()``.

A pickle stores a module's class name, hyperparameters, parameters and children, never its
``forward()``. So a module converts only when its class is one whose forward edgecnn
implements here, matched by the full qualified name the pickle records (a user's own class
named ``Conv2d`` or ``ResNet`` is not torch's or torchvision's):

- torch.nn leaves (``LEAVES``): Conv2d, Linear, BatchNorm2d, pools, activations, ...;
- containers: ``nn.Sequential`` (nested too) and Sequential subclasses that keep its forward
  (torchvision's ``Conv2dNormActivation``);
- graph templates for library classes (``templates/torchvision.py``): AlexNet, VGG, ResNet with
  BasicBlock/Bottleneck, MobileNetV2 with InvertedResidual, SqueezeNet with Fire, MNASNet.

Any other class is refused with one line that says what works instead (TorchScript, ONNX, or
the state_dict with ``--arch``). Modules are converted in eval mode: BatchNorm uses its
running statistics and dropout is the identity, as ``model.eval()`` computes.
"""

from __future__ import annotations

import numpy as np

from edgecnn.errors import ArchitectureError, UnsupportedOpError

from ..builder import GraphBuilder, Value, pair

NN = "torch.nn.modules."
SEQUENTIAL = {NN + "container.Sequential", "torchvision.ops.misc.Conv2dNormActivation",
              "torchvision.ops.misc.ConvNormActivation",
              "torchvision.models.mobilenetv2.ConvBNReLU",
              "torchvision.models.mobilenetv2.ConvBNActivation"}
WHAT_WORKS = ("save it as TorchScript (torch.jit.save(torch.jit.trace(model, x), 'model.pt') "
              "or torch.jit.script(model)) or as ONNX (torch.onnx.export), or pass its "
              "state_dict with --arch NAME or a SPEC.json")


def refuse(path: str, m):
    from .torchvision import MODELS
    where = f"module {path}" if path else "the model"
    if m.qualname.startswith(NN) and not m.children:
        known = ", ".join(sorted(q.rsplit(".", 1)[1] for q in LEAVES))
        return UnsupportedOpError(f"{where} is a {m.qualname}, a layer edgecnn does not "
                                  f"convert; supported torch.nn layers: {known}")
    return ArchitectureError(
        f"{where} is a {m.qualname}, whose forward() a pickle does not store; edgecnn converts "
        f"pickled nn.Sequential and torchvision's {', '.join(MODELS)}; {WHAT_WORKS}")


class ModuleWalker:
    """Calls pickled modules on builder Values, by their known forward()."""

    def __init__(self, builder: GraphBuilder, source: str):
        self.b, self.source = builder, source

    def __call__(self, m, x: Value, path: str) -> Value:
        from .torchvision import TEMPLATES
        leaf = LEAVES.get(m.qualname)
        if leaf is not None:
            if m.children:
                raise refuse(path, m)
            return leaf(self.b, m, x, path or m.type_name.lower())
        if m.qualname in SEQUENTIAL:
            return self.sequential(m, x, path)
        template = TEMPLATES.get(m.qualname)
        if template is None:
            raise refuse(path, m)
        return template(self, m, x, path)

    def sequential(self, m, x: Value, path: str) -> Value:
        for name, child in m.children.items():
            x = self(child, x, join(path, name))
        return x

    def child(self, m, name: str, path: str, required: bool = True):
        c = m.children.get(name)
        if c is None and required:
            raise ArchitectureError(f"{self.source}: module {path or 'the model'} "
                                    f"({m.type_name}) has no submodule {name!r}; it is not the "
                                    "layout edgecnn knows for this class")
        return c

    def call(self, m, name: str, x: Value, path: str) -> Value:
        return self(self.child(m, name, path), x, join(path, name))

    def expect_children(self, m, path: str, names) -> None:
        extra = [k for k in m.children if k not in names]
        if extra:
            raise ArchitectureError(f"{self.source}: module {path or 'the model'} "
                                    f"({m.qualname}) has a submodule {extra[0]!r} that its "
                                    "known forward() does not use; it is not the layout edgecnn "
                                    f"knows; {WHAT_WORKS}")


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---- torch.nn leaves -----------------------------------------------------------------------

def _attr(m, key, default=None):
    return m.attrs.get(key, default)


def _param(m, key, path, required=True):
    v = m.parameters.get(key, m.buffers.get(key))
    if v is None and required:
        raise ArchitectureError(f"{path}: {m.type_name} has no {key!r} tensor")
    return v


def _conv(b, m, x, path):
    if _attr(m, "padding_mode", "zeros") != "zeros":
        raise UnsupportedOpError(f"{path}: padding_mode={m.attrs['padding_mode']!r}; only zero "
                                 "padding is supported")
    if _attr(m, "transposed", False):
        raise UnsupportedOpError(f"{path}: transposed convolution is not supported")
    padding = _attr(m, "padding", 0)
    if isinstance(padding, str):
        if padding != "valid":
            raise UnsupportedOpError(f"{path}: Conv2d padding={padding!r}: use integer padding")
        padding = 0
    return b.conv(path, x, _param(m, "weight", path), m.parameters.get("bias"),
                  _attr(m, "stride", 1), padding, _attr(m, "dilation", 1), _attr(m, "groups", 1))


def _linear(b, m, x, path):
    return b.linear(path, x, _param(m, "weight", path), m.parameters.get("bias"))


def _batchnorm(b, m, x, path):
    mean, var = m.buffers.get("running_mean"), m.buffers.get("running_var")
    if mean is None or var is None:
        raise UnsupportedOpError(f"{path}: BatchNorm without running statistics "
                                 "(track_running_stats=False) cannot be folded")
    n = np.shape(mean)[0] if np.ndim(mean) == 1 else -1
    gamma = m.parameters.get("weight")
    beta = m.parameters.get("bias")
    return b.batchnorm(path, x, gamma if gamma is not None else np.ones(n, np.float32),
                       beta if beta is not None else np.zeros(n, np.float32), mean, var,
                       _attr(m, "eps", 1e-5))


def _pool(kind):
    def handler(b, m, x, path):
        if _attr(m, "return_indices", False):
            raise UnsupportedOpError(f"{path}: MaxPool2d(return_indices=True)")
        if _attr(m, "divisor_override") is not None:
            raise UnsupportedOpError(f"{path}: AvgPool2d(divisor_override=...)")
        return b.pool(path, x, kind, _attr(m, "kernel_size"), _attr(m, "stride"),
                      _attr(m, "padding", 0), bool(_attr(m, "ceil_mode", False)),
                      bool(_attr(m, "count_include_pad", True)), _attr(m, "dilation", 1))
    return handler


def _adaptive(b, m, x, path):
    out = _attr(m, "output_size")
    if out is None or (isinstance(out, tuple) and None in out):
        raise UnsupportedOpError(f"{path}: AdaptiveAvgPool2d with output_size {out!r}")
    return b.adaptive_avgpool(path, x, pair(out, "output_size"))


def _hardtanh(b, m, x, path):
    lo, hi = _attr(m, "min_val", -1.0), _attr(m, "max_val", 1.0)
    if (lo, hi) != (0.0, 6.0):
        raise UnsupportedOpError(f"{path}: Hardtanh({lo}, {hi}); only (0, 6), ReLU6, is "
                                 "supported")
    return b.activation(path, x, "relu6")


def _flatten(b, m, x, path):
    start, end = _attr(m, "start_dim", 1), _attr(m, "end_dim", -1)
    if start != 1 or end not in (-1, len(x.shape) - 1):
        raise UnsupportedOpError(f"{path}: Flatten(start_dim={start}, end_dim={end}); only "
                                 "start_dim=1 through the last dim is supported")
    return b.flatten(path, x)


def _softmax(b, m, x, path):
    return b.softmax(path, x, _attr(m, "dim", -1) if _attr(m, "dim") is not None else -1)


def _act(kind):
    return lambda b, m, x, path: b.activation(path, x, kind)


def _identity(b, m, x, path):
    return x


LEAVES = {
    NN + "conv.Conv2d": _conv,
    NN + "linear.Linear": _linear,
    NN + "linear.Identity": _identity,
    NN + "batchnorm.BatchNorm2d": _batchnorm,
    NN + "pooling.MaxPool2d": _pool("max"),
    NN + "pooling.AvgPool2d": _pool("avg"),
    NN + "pooling.AdaptiveAvgPool2d": _adaptive,
    NN + "activation.ReLU": _act("relu"),
    NN + "activation.ReLU6": _act("relu6"),
    NN + "activation.Hardtanh": _hardtanh,
    NN + "activation.Tanh": _act("tanh"),
    NN + "activation.Sigmoid": _act("sigmoid"),
    NN + "activation.Softmax": _softmax,
    NN + "flatten.Flatten": _flatten,
    NN + "dropout.Dropout": _identity,
    NN + "dropout.Dropout2d": _identity,
}
