"""PyTorch ``.pt`` -> float IR graph, without torch (the file is read by ``pt_reader``).

A state_dict needs an architecture (``--arch`` name or SPEC.json); a full pickled module
(``torch.save(model)``) carries its own: its leaf modules, walked depth-first in
registration order, are taken as the execution order. That holds for the plain
Sequential-style models this importer accepts; a leaf type it does not know means the
order cannot be known, and the error says to pass ``--arch``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from edgecnn.errors import ArchitectureError, DefaultsWarning, UnsupportedOpError

from . import arch as arch_mod
from .layers import build_float_graph, pair
from .pt_reader import ModuleRecord, load_pt

_CONTAINERS = ("Sequential", "ModuleList")


def _attr(m: ModuleRecord, key, default=None):
    return m.attrs.get(key, default)


def _conv(m):
    if _attr(m, "padding_mode", "zeros") != "zeros":
        raise UnsupportedOpError(f"{m.type_name}: padding_mode={m.attrs['padding_mode']!r}; "
                                 "only zero padding is supported")
    padding = _attr(m, "padding", 0)
    if isinstance(padding, str):
        raise UnsupportedOpError(f"Conv2d padding={padding!r}: use integer padding")
    return {"type": "conv", "weight": m.parameters["weight"], "bias": m.parameters.get("bias"),
            "stride": _attr(m, "stride", 1), "padding": padding,
            "dilation": _attr(m, "dilation", 1), "groups": _attr(m, "groups", 1)}


def _pool(kind):
    def handler(m):
        return {"type": kind, "kernel": _attr(m, "kernel_size"),
                "stride": _attr(m, "stride") or _attr(m, "kernel_size"),
                "padding": _attr(m, "padding", 0), "ceil_mode": bool(_attr(m, "ceil_mode", False)),
                "count_include_pad": bool(_attr(m, "count_include_pad", True)),
                "dilation": _attr(m, "dilation", 1)}
    return handler


def _batchnorm(m):
    if m.buffers.get("running_mean") is None:
        raise UnsupportedOpError(f"{m.qualname}: BatchNorm without running statistics "
                                 "(track_running_stats=False) cannot be folded")
    n = m.buffers["running_mean"].shape[0]
    gamma = m.parameters.get("weight")
    beta = m.parameters.get("bias")
    return {"type": "batchnorm", "eps": float(_attr(m, "eps", 1e-5)),
            "gamma": gamma if gamma is not None else np.ones(n, np.float32),
            "beta": beta if beta is not None else np.zeros(n, np.float32),
            "mean": m.buffers["running_mean"], "var": m.buffers["running_var"]}


def _adaptive(m):
    out = _attr(m, "output_size")
    if out is None or (isinstance(out, (tuple, list)) and None in out):
        raise UnsupportedOpError(f"{m.qualname}: AdaptiveAvgPool2d with output_size {out!r}")
    return {"type": "adaptive_avgpool", "output": pair(out)}


def _simple(kind):
    return lambda m: {"type": kind}


def _flatten(m):
    if _attr(m, "start_dim", 1) != 1 or _attr(m, "end_dim", -1) != -1:
        raise UnsupportedOpError(f"{m.qualname}: Flatten(start_dim={m.attrs.get('start_dim')}, "
                                 f"end_dim={m.attrs.get('end_dim')}); only start_dim=1 is supported")
    return {"type": "flatten"}


def _softmax(m):
    if _attr(m, "dim") not in (None, 1, -1):
        raise UnsupportedOpError(f"{m.qualname}: Softmax over dim {m.attrs['dim']}; only the "
                                 "class dimension is supported")
    return {"type": "softmax"}


HANDLERS = {
    "Conv2d": _conv,
    "Linear": lambda m: {"type": "linear", "weight": m.parameters["weight"],
                         "bias": m.parameters.get("bias")},
    "BatchNorm2d": _batchnorm,
    "MaxPool2d": _pool("maxpool"),
    "AvgPool2d": _pool("avgpool"),
    "AdaptiveAvgPool2d": _adaptive,
    "ReLU": _simple("relu"),
    "ReLU6": _simple("relu6"),
    "Tanh": _simple("tanh"),
    "Sigmoid": _simple("sigmoid"),
    "Flatten": _flatten,
    "Dropout": _simple("dropout"),
    "Identity": _simple("identity"),
    "Softmax": _softmax,
}


def module_entries(root: ModuleRecord, source: str) -> list[dict]:
    """The leaf modules of a pickled model as layer entries, in registration order."""
    entries = []

    def walk(m: ModuleRecord, path: str):
        handler = HANDLERS.get(m.type_name)
        if handler is not None:
            entry = handler(m)
            if entry["type"] in ("maxpool", "avgpool") and pair(entry.pop("dilation", 1)) != (1, 1):
                raise UnsupportedOpError(f"{source}: {path}: dilated pooling is not supported")
            entry["name"] = path or m.type_name.lower()
            entries.append(entry)
            return
        if not m.children:
            raise ArchitectureError(
                f"{source}: module {path or '<root>'} is a {m.qualname}, whose computation "
                f"edgecnn cannot see; pass --arch (a built-in name or a SPEC.json) with the "
                f"state_dict. Known modules: {', '.join(sorted(HANDLERS))}")
        for name, child in m.children.items():
            walk(child, f"{path}.{name}" if path else name)

    walk(root, "")
    if not any(e["type"] in ("conv", "linear") for e in entries):
        raise ArchitectureError(f"{source}: the pickled module holds no Conv2d or Linear layer")
    return entries


def _infer_input_hwc(entries, source, input_size):
    """Input (H, W, C): C from the first conv; H = W from --input-size, else the smallest
    square size for which the first Linear sees exactly its in_features."""
    first = next(e for e in entries if e["type"] in ("conv", "linear"))
    if first["type"] == "linear":
        n = first["weight"].shape[1]
        return (1, 1, n) if input_size is None else (input_size, input_size, n // input_size ** 2)
    c = first["weight"].shape[1]
    if input_size is not None:
        return (input_size, input_size, c)
    if any(e["type"] == "adaptive_avgpool" for e in entries):
        # adaptive pooling admits any size; ImageNet's is the convention, and the user is told
        warnings.warn(f"{os.path.basename(source)}: the model does not fix its input size "
                      "(AdaptiveAvgPool2d); using 224x224, ImageNet's convention: pass "
                      "--input-size N for another (e.g. 32 for a CIFAR model)", DefaultsWarning,
                      stacklevel=2)
        return (224, 224, c)
    for size in range(1, 1025):
        try:
            build_float_graph(entries, (size, size, c))
            return (size, size, c)
        except (ArchitectureError, UnsupportedOpError):
            continue
    raise ArchitectureError(f"{source}: no square input size up to 1024 fits the model's first "
                            "dense layer; pass --input-size")


def load_pytorch(path: str, arch: str | None = None, input_size: int | None = None, **graph_kwargs):
    """A float ir.Graph from a .pt file (state_dict + arch, or a full pickled module)."""
    pt = load_pt(path)
    if arch is not None:
        spec = arch_mod.load_spec(arch)
        hwc = None
        if input_size is not None:
            hwc = (input_size, input_size, spec["input"]["channels"])
        return arch_mod.graph_from_spec(spec, pt.state_dict, path, hwc, **graph_kwargs)
    if pt.module is None:
        raise ArchitectureError(
            f"{path} holds only weights (a state_dict); pass --arch "
            f"({', '.join(arch_mod.BUILTIN)} or a SPEC.json) so edgecnn knows the layers")
    entries = module_entries(pt.module, path)
    hwc = _infer_input_hwc(entries, path, input_size)
    name = pt.module.type_name.lower()
    return build_float_graph(entries, hwc, name=name, **graph_kwargs)
