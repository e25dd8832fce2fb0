"""Architectures for weights that carry none (a state_dict): built-ins and SPEC.json files.

Built-ins: ``lenet5`` (and its tanh/avg variants) and ``alexnet`` as specs; ``resnet18``,
``resnet34``, ``resnet50``, ``mobilenet_v2``, ``squeezenet1_0`` and ``squeezenet1_1`` in
torchvision's layouts and parameter names (``templates/arch_torchvision.py``: the module tree
torchvision builds, through the same templates as a pickled module).

A spec is JSON:
    {"name": "lenet5",
     "input": {"height": 32, "width": 32, "channels": 1},
     "layers": [{"type": "conv", "filters": 6, "kernel": 5},
                {"type": "relu"}, {"type": "maxpool", "kernel": 2}, ...,
                {"type": "flatten"}, {"type": "linear", "units": 120}, ...]}
Layer types and keys are those of ``converters.layers`` (without the arrays). A layer reads the
one before it, or the layers its ``"inputs"`` name (``"input"`` is the model input): residual
``add`` and ``concat`` layers make a spec a graph. Weights are matched to the spec by order
and shape, never by key name: the state_dict's tensors are grouped by module prefix
("features.0.weight" + "features.0.bias" -> "features.0") and taken in file order. A
BatchNorm group right after a conv is accepted even when the spec does not list one (eps: the
spec's "eps", default 1e-5, PyTorch's; a state_dict stores none).
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict

import numpy as np

from edgecnn.errors import ArchitectureError, InputFileError, UnsupportedOpError

from .builder import GeometryError
from .layers import SUPPORTED, build_float_graph

_LENET_VARIANTS = {"lenet5": ("relu", "maxpool"), "lenet5-tanh": ("tanh", "maxpool"),
                   "lenet5-avg": ("relu", "avgpool"), "lenet5-tanh-avg": ("tanh", "avgpool")}


def _lenet5(act: str, pool: str) -> dict:
    """conv 6@5x5, pool 2, conv 16@5x5, pool 2, dense 120, 84, 10; layers named like the
    usual features/classifier Sequentials (a BatchNorm found in the weights shifts nothing:
    weight layers take their names from the file)."""
    features = []
    for filters in (6, 16):
        features += [{"type": "conv", "filters": filters, "kernel": 5}, {"type": act},
                     {"type": pool, "kernel": 2}]
    classifier = [{"type": "linear", "units": 120}, {"type": act},
                  {"type": "linear", "units": 84}, {"type": act}, {"type": "linear", "units": 10}]
    layers = ([dict(e, name=f"features.{i}") for i, e in enumerate(features)]
              + [dict(e, name=f"classifier.{i}") for i, e in enumerate(classifier)])
    return {"name": "lenet5", "input": {"height": 32, "width": 32, "channels": 1}, "layers": layers}


def _alexnet() -> dict:
    """torchvision's AlexNet layout, with torchvision's module names and the node names the
    torchvision template gives (the flatten of forward() included), so a state_dict with
    --arch alexnet and the pickled module give the same file; the class count follows the
    weights."""
    f = [
        {"type": "conv", "filters": 64, "kernel": 11, "stride": 4, "padding": 2}, {"type": "relu"},
        {"type": "maxpool", "kernel": 3, "stride": 2},
        {"type": "conv", "filters": 192, "kernel": 5, "padding": 2}, {"type": "relu"},
        {"type": "maxpool", "kernel": 3, "stride": 2},
        {"type": "conv", "filters": 384, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "conv", "filters": 256, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "conv", "filters": 256, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "maxpool", "kernel": 3, "stride": 2},
    ]
    c = [
        {"type": "dropout"}, {"type": "linear", "units": 4096}, {"type": "relu"},
        {"type": "dropout"}, {"type": "linear", "units": 4096}, {"type": "relu"},
        {"type": "linear"},
    ]
    layers = ([dict(e, name=f"features.{i}") for i, e in enumerate(f)]
              + [{"type": "adaptive_avgpool", "output": [6, 6], "name": "avgpool"},
                 {"type": "flatten", "name": "flatten"}]
              + [dict(e, name=f"classifier.{i}") for i, e in enumerate(c)])
    return {"name": "alexnet", "input": {"height": 224, "width": 224, "channels": 3},
            "layers": layers}


def torchvision_names() -> list:
    from .templates.arch_torchvision import BUILDERS
    return list(BUILDERS)


BUILTIN = sorted(list(_LENET_VARIANTS) + ["alexnet", "mobilenet_v2", "resnet18", "resnet34",
                                          "resnet50", "squeezenet1_0", "squeezenet1_1"])


def load_spec(arch: str) -> dict:
    """A built-in architecture by name, or a SPEC.json file."""
    if arch in _LENET_VARIANTS:
        return _lenet5(*_LENET_VARIANTS[arch])
    if arch == "alexnet":
        return _alexnet()
    if arch in torchvision_names():
        raise ArchitectureError(f"--arch {arch} is a torchvision module tree, not a spec; "
                                "pass it to edgecnn convert with the state_dict")
    if not arch.endswith(".json") and not os.path.exists(arch):
        raise ArchitectureError(f"unknown --arch {arch!r}; use one of {', '.join(BUILTIN)} "
                                "or a SPEC.json file (format in README.md)")
    try:
        with open(arch, encoding="utf-8") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise InputFileError(f"{arch}: no such architecture file") from None
    except IsADirectoryError:
        raise InputFileError(f"{arch} is a folder, not a SPEC.json file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, int digit limits
        raise ArchitectureError(f"{arch}: not a valid JSON spec ({str(e)[:200]})") from None
    except RecursionError:
        raise ArchitectureError(f"{arch}: not a valid JSON spec (nested too deeply)") from None
    _check_spec(spec, arch)
    return spec


# The spec's value checks: every key a layer type takes, and what its value must be. Sizes
# stay below MAX_DIM so that every shape fits the int32 of a .tflite file.
MAX_DIM = 1 << 16
_SIZE = ("a positive integer or a pair", 1)  # kernel, stride, dilation, output
_PAD = ("an integer >= 0 or a pair", 0)
LAYER_KEYS = {
    "conv": {"filters": ("count", 1), "kernel": _SIZE, "stride": _SIZE, "padding": _PAD,
             "dilation": _SIZE, "groups": ("count", 1)},
    "linear": {"units": ("count", 1)},
    "batchnorm": {"eps": ("eps", 0)},
    "maxpool": {"kernel": _SIZE, "stride": _SIZE, "padding": _PAD, "ceil_mode": ("bool", 0)},
    "avgpool": {"kernel": _SIZE, "stride": _SIZE, "padding": _PAD, "ceil_mode": ("bool", 0),
                "count_include_pad": ("bool", 0)},
    "adaptive_avgpool": {"output": _SIZE},
    "dropout": {"p": ("prob", 0)},
    "concat": {"axis": ("axis", 0)},
}
REQUIRED = {"maxpool": ("kernel",), "avgpool": ("kernel",), "adaptive_avgpool": ("output",)}
TOP_KEYS = ("name", "input", "layers", "eps", "description")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_value(where, key, value, rule):
    kind, low = rule
    if kind == "bool":
        ok = isinstance(value, bool)
        what = "true or false"
    elif kind == "count":
        ok = _is_int(value) and low <= value <= MAX_DIM * 64
        what = f"an integer from {low} to {MAX_DIM * 64}"
    elif kind == "eps":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value) and value > 0
        what = "a positive number"
    elif kind == "prob":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
        what = "a number from 0 to 1"
    elif kind == "axis":
        ok = _is_int(value) and -4 <= value <= 3
        what = "a PyTorch dim from -4 to 3 (1 is channels)"
    else:  # an int or a pair of ints, each in [low, MAX_DIM]
        items = value if isinstance(value, list) and len(value) == 2 else [value]
        ok = all(_is_int(v) and low <= v <= MAX_DIM for v in items)
        what = f"{kind}, each at most {MAX_DIM}"
    if not ok:
        raise ArchitectureError(f"{where}: '{key}' is {json.dumps(value)[:40]}; it must be {what}")


def _check_spec(spec, where: str) -> None:
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list):
        raise ArchitectureError(f"{where}: a spec is an object with a 'layers' list")
    unknown = [k for k in spec if k not in TOP_KEYS]
    if unknown:
        raise ArchitectureError(f"{where}: unknown key {unknown[0]!r}; a spec has {', '.join(TOP_KEYS)}")
    if not isinstance(spec.get("name", ""), str):
        raise ArchitectureError(f"{where}: 'name' must be a string")
    if "eps" in spec:
        _check_value(where, "eps", spec["eps"], ("eps", 0))
    inp = spec.get("input")
    if not isinstance(inp, dict) or not all(_is_int(inp.get(k)) and 0 < inp[k] <= MAX_DIM
                                            for k in ("height", "width", "channels")):
        raise ArchitectureError(f"{where}: 'input' needs integers height, width, channels from "
                                f"1 to {MAX_DIM}")
    names = {"input"}
    for i, layer in enumerate(spec["layers"]):
        kind = layer.get("type") if isinstance(layer, dict) else None
        if not isinstance(kind, str) or kind not in SUPPORTED:
            shown = json.dumps(kind if isinstance(layer, dict) else layer)[:40]
            raise ArchitectureError(f"{where}: layer {i} has type {shown}; "
                                    f"supported: {', '.join(SUPPORTED)}")
        rules = LAYER_KEYS.get(kind, {})
        at = f"{where}: layer {i} ({kind})"
        for key, value in layer.items():
            if key == "type":
                continue
            if key == "name":
                if not isinstance(value, str) or not value or value in names:
                    raise ArchitectureError(f"{at}: 'name' must be a string not used before "
                                            "(and not \"input\")")
            elif key == "inputs":
                _check_inputs(at, value, names, kind)
            elif key not in rules:
                allowed = ", ".join(["name", "inputs", *rules])
                raise ArchitectureError(f"{at}: unknown key {key[:40]!r}; {kind} takes {allowed}")
            elif not (key == "stride" and value is None and kind in ("maxpool", "avgpool")):
                _check_value(at, key, value, rules[key])
        for key in REQUIRED.get(kind, ()):
            if key not in layer:
                raise ArchitectureError(f"{at}: needs '{key}'")
        if kind in ("add", "concat") and "inputs" not in layer:
            raise ArchitectureError(f"{at}: needs 'inputs', the names of the layers it joins")
        names.add(layer.get("name"))


def _check_inputs(at, value, names, kind):
    arity = {"add": (2, 2), "concat": (2, 64)}.get(kind, (1, 1))
    if not isinstance(value, list) or not arity[0] <= len(value) <= arity[1] or not all(
            isinstance(v, str) for v in value):
        raise ArchitectureError(f"{at}: 'inputs' must list {arity[0]}"
                                f"{'' if arity[0] == arity[1] else ' or more'} layer name(s)")
    unknown = [v for v in value if v not in names]
    if unknown:
        raise ArchitectureError(f"{at}: 'inputs' names {unknown[0][:40]!r}, which no earlier "
                                "layer is named (\"input\" is the model input)")


def _groups(state_dict) -> list[tuple[str, dict]]:
    """State-dict tensors grouped by module prefix, in file order."""
    groups: "OrderedDict[str, dict]" = OrderedDict()
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        groups.setdefault(prefix, {})[leaf] = value
    return [(p, g) for p, g in groups.items() if set(g) - {"num_batches_tracked"}]


def _group_kind(g: dict) -> str:
    if "running_mean" in g and "running_var" in g:
        return "batchnorm"
    w = g.get("weight")
    if w is None:
        return "unknown"
    return {4: "conv", 2: "linear"}.get(np.ndim(w), "unknown")


def _describe(prefix, g) -> str:
    return f"{prefix} ({_group_kind(g)}: " + ", ".join(
        f"{k} {tuple(np.shape(v))}" for k, v in g.items() if k != "num_batches_tracked") + ")"


def _expected(entry) -> str:
    if entry["type"] == "conv":
        k = entry.get("kernel")
        return f"conv {entry.get('filters')}@{k}x{k}"
    if entry["type"] == "linear":
        return f"linear {entry.get('units')}"
    return entry["type"]


def bind_state_dict(spec: dict, state_dict, source: str) -> list[dict]:
    """Spec layers with weights attached, matched by order and shape."""
    groups = _groups(state_dict)
    entries, gi = [], 0
    c_in = spec["input"]["channels"]
    chain = not any("inputs" in e or e.get("groups", 1) != 1 for e in spec["layers"])

    def mismatch(reason):
        exp = [_expected(e) for e in spec["layers"] if e["type"] in ("conv", "linear", "batchnorm")]
        got = [_describe(p, g) for p, g in groups]
        raise ArchitectureError(
            f"{source} does not fit --arch {spec.get('name', '?')}: {reason}\n"
            f"  the architecture expects: {'; '.join(exp)}\n"
            f"  the file holds:           {'; '.join(got)}")

    for index, entry in enumerate(spec["layers"]):
        kind = entry["type"]
        if kind not in ("conv", "linear", "batchnorm"):
            entries.append(dict(entry))
            continue
        if gi >= len(groups):
            mismatch(f"it has no weights left for {_expected(entry)}")
        prefix, g = groups[gi]
        if _group_kind(g) != kind:
            mismatch(f"{prefix} is a {_group_kind(g)} where the architecture has {_expected(entry)}")
        gi += 1
        bound = dict(entry, name=prefix, id=entry.get("name") or prefix)
        if kind == "batchnorm":
            bound.update(gamma=g["weight"], beta=g["bias"], mean=g["running_mean"],
                         var=g["running_var"], eps=entry.get("eps", spec.get("eps", 1e-5)))
        else:
            w = g["weight"]
            want = entry.get("filters") if kind == "conv" else entry.get("units")
            if want is not None and w.shape[0] != want:
                mismatch(f"{prefix}.weight has {w.shape[0]} outputs where the architecture has "
                         f"{_expected(entry)}")
            if kind == "conv":
                k = entry.get("kernel")
                if k is not None and tuple(w.shape[2:]) != tuple(np.broadcast_to(k, 2)):
                    mismatch(f"{prefix}.weight is {w.shape[2]}x{w.shape[3]} where the architecture "
                             f"has {_expected(entry)}")
                if chain and w.shape[1] != c_in:
                    mismatch(f"{prefix}.weight expects {w.shape[1]} input channels where the "
                             f"previous layer gives {c_in}")
                c_in = w.shape[0]
            bound.update(weight=w, bias=g.get("bias"))
        entries.append(bound)
        # a BatchNorm group right after a conv/linear is folded even if the spec omits it
        if (kind in ("conv", "linear") and gi < len(groups)
                and _group_kind(groups[gi][1]) == "batchnorm"):
            nxt = spec["layers"][index + 1:]
            if not nxt or nxt[0]["type"] != "batchnorm":
                p, bn = groups[gi]
                gi += 1
                ref = bound["id"]  # layers reading the conv by name read it after its BN
                entries.append({"type": "batchnorm", "name": p, "id": ref, "inputs": [ref],
                                "gamma": bn["weight"], "beta": bn["bias"],
                                "mean": bn["running_mean"], "var": bn["running_var"],
                                "eps": spec.get("eps", 1e-5)})
    if gi != len(groups):
        mismatch(f"{len(groups) - gi} weight group(s) left over, starting at {groups[gi][0]}")
    return entries


def graph_from_spec(spec: dict, state_dict, source: str, input_hwc=None, max_memory=None,
                    **graph_kwargs):
    inp = spec["input"]
    hwc = input_hwc or (inp["height"], inp["width"], inp["channels"])
    entries = bind_state_dict(spec, state_dict, source)
    try:
        return build_float_graph(entries, hwc, name=spec.get("name", "model"),
                                 max_memory=max_memory, source=source, **graph_kwargs)
    except GeometryError as e:
        hint = geometry_hint(entries, hwc) if e.need is not None else ""
        raise ArchitectureError(f"{source}: {e}{hint}") from None


HINT_SIZES = range(4, 513)
HINT_PADDINGS = (1, 2, 3)


def _fits(entries, hwc) -> bool:
    try:
        build_float_graph(entries, hwc)
        return True
    except (ArchitectureError, UnsupportedOpError):
        return False


def geometry_hint(entries, hwc) -> str:
    """What would make a dense layer's in_features fit: padding on the first conv at this
    input size, or another square input size."""
    h, w, c = hwc
    hints = []
    first = next((i for i, e in enumerate(entries) if e["type"] == "conv"), None)
    if first is not None and not entries[first].get("padding"):
        for p in HINT_PADDINGS:
            trial = list(entries)
            trial[first] = dict(entries[first], padding=p)
            if _fits(trial, hwc):
                hints.append(f"at {h}x{w}, padding {p} on the first conv fits (as in the classic "
                             f"MNIST LeNet-5): write a SPEC.json whose first conv has "
                             f"\"padding\": {p}")
                break
    if h == w:
        size = next((s for s in HINT_SIZES if s != h and _fits(entries, (s, s, c))), None)
        if size is not None:
            hints.append(f"--input-size {size} fits this architecture as it is")
    if not hints:
        return " ---> HINT: no input size up to 512 fits; check the architecture (a SPEC.json)"
    return " ---> HINT: " + "; or ".join(hints)
