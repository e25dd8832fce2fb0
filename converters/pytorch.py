"""PyTorch ``.pt`` -> float IR graph, without torch.

Three kinds of file, told apart by their content:
- a TorchScript archive (``torch.jit.save``): its code is read as a graph (``torchscript.py``);
- a state_dict (or a checkpoint dict holding one): weights without layers, so ``--arch``
  names the architecture (a built-in or a SPEC.json);
- a pickled full module (``torch.save(model)``): the pickle holds the module tree but not
  ``forward()``, so it converts only where edgecnn knows forward() (``templates/``:
  nn.Sequential and torchvision's classes); any other class is refused.
"""

from __future__ import annotations

import os
import warnings

from edgecnn.errors import ArchitectureError, DefaultsWarning, UnsupportedOpError, UsageError

from . import arch as arch_mod
from .builder import GeometryError, GraphBuilder
from .pt_reader import ModuleRecord, is_torchscript, load_pt
from .templates import ModuleWalker, refuse
from .templates.arch_torchvision import BUILDERS as TORCHVISION_ARCHS
from .templates.arch_torchvision import module_tree

IMAGENET_SIZE = 224
SEARCH_SIZES = range(1, 1025)


def _first_conv_channels(m: ModuleRecord):
    """Input channels of the first Conv2d (or in_features of the first Linear) depth-first."""
    stack = [m]
    while stack:
        node = stack.pop(0)
        w = node.parameters.get("weight")
        if node.qualname == "torch.nn.modules.conv.Conv2d" and w is not None and w.ndim == 4:
            return "conv", w.shape[1] * int(node.attrs.get("groups", 1) or 1)
        if node.qualname == "torch.nn.modules.linear.Linear" and w is not None and w.ndim == 2:
            return "linear", w.shape[1]
        stack[:0] = list(node.children.values())
    raise ArchitectureError("the pickled module holds no Conv2d or Linear layer")


def _has_adaptive_pool(m: ModuleRecord) -> bool:
    return (m.type_name in ("AdaptiveAvgPool2d", "MobileNetV2", "MNASNet")
            or any(_has_adaptive_pool(c) for c in m.children.values()))


def graph_from_module(root: ModuleRecord, hwc, source: str, max_memory=None, **graph_kwargs):
    b = GraphBuilder(hwc, source=source, max_memory=max_memory)
    out = ModuleWalker(b, source)(root, b.input_value(), "")
    return b.finish([out], name=root.type_name.lower(), **graph_kwargs)


def _module_graph(root, source, input_size, max_memory, **graph_kwargs):
    if root.qualname not in _known_roots():
        raise ArchitectureError(f"{source}: {refuse('', root)}")
    kind, c = _first_conv_channels(root)
    if kind == "linear":
        return graph_from_module(root, (1, 1, c), source, max_memory, **graph_kwargs)
    if input_size is not None:
        return graph_from_module(root, (input_size, input_size, c), source, max_memory,
                                 **graph_kwargs)
    if _has_adaptive_pool(root):  # any size works; ImageNet's is the convention
        warn_default_size(source, "AdaptiveAvgPool2d")
        return graph_from_module(root, (IMAGENET_SIZE, IMAGENET_SIZE, c), source, max_memory,
                                 **graph_kwargs)
    # no size recorded: the smallest square input whose flattened map fits the first dense layer
    last = None
    for size in SEARCH_SIZES:
        try:
            return graph_from_module(root, (size, size, c), source, max_memory, **graph_kwargs)
        except GeometryError as e:
            if last is not None and e.got is not None and last.got is not None and \
                    e.got > e.need and last.got > last.need:
                break
            last = e
    raise ArchitectureError(f"{source}: no square input size fits the model's first dense "
                            "layer; pass --input-size")


def warn_default_size(source: str, why: str) -> None:
    """The user is told when edgecnn picks the input size itself."""
    warnings.warn(f"{os.path.basename(source)}: the model does not fix its input size ({why}); "
                  f"using {IMAGENET_SIZE}x{IMAGENET_SIZE}, ImageNet's convention: pass "
                  "--input-size N for another (e.g. 32 for a CIFAR model)", DefaultsWarning,
                  stacklevel=2)


def _known_roots():
    from .templates import LEAVES, SEQUENTIAL
    from .templates.torchvision import TEMPLATES
    return set(LEAVES) | SEQUENTIAL | set(TEMPLATES)


def load_pytorch(path: str, arch: str | None = None, input_size: int | None = None,
                 max_memory=None, **graph_kwargs):
    """A float ir.Graph from a .pt file (TorchScript, state_dict + arch, or a full module)."""
    if is_torchscript(path):
        if arch is not None:
            raise UsageError(f"{path} is TorchScript, which carries its own layers; drop --arch")
        from .torchscript import load_torchscript
        return load_torchscript(path, input_size, max_memory, **graph_kwargs)
    pt = load_pt(path)
    if arch is not None:
        if arch in TORCHVISION_ARCHS:
            root = module_tree(arch, pt.state_dict, path)
            size = input_size or IMAGENET_SIZE
            return graph_from_module(root, (size, size, 3), path, max_memory, **graph_kwargs)
        spec = arch_mod.load_spec(arch)
        hwc = None
        if input_size is not None:
            hwc = (input_size, input_size, spec["input"]["channels"])
        return arch_mod.graph_from_spec(spec, pt.state_dict, path, hwc, max_memory=max_memory,
                                        **graph_kwargs)
    if pt.module is None:
        raise ArchitectureError(
            f"{path} holds only weights (a state_dict); pass --arch "
            f"({', '.join(arch_mod.BUILTIN)} or a SPEC.json) so edgecnn knows the layers")
    try:
        return _module_graph(pt.module, path, input_size, max_memory, **graph_kwargs)
    except (ArchitectureError, UnsupportedOpError) as e:
        if str(e).startswith(path):
            raise
        raise type(e)(f"{path}: {e}") from None
