"""TorchScript archives (``torch.jit.save``, traced or scripted) -> float IR graph, without
torch and without executing anything from the file.

An archive is a torch zip: ``data.pkl`` holds the module objects (class name, attributes,
parameters; read by the safe unpickler, storages in ``data/``), ``constants.pkl`` the tensors
the code names as ``CONSTANTS.cN`` (storages in ``constants/``), ``code/`` the model's
TorchScript source, one file per class path (``code/__torch__/torchvision/models/resnet.py``
holds ``__torch__.torchvision.models.resnet.ResNet``), and a traced archive's
``traced_inputs.pkl`` the example input's shape.

The source is parsed with Python's ``ast`` (TorchScript's serialized code is Python syntax)
and interpreted here, symbolically: ``forward(self, x)`` runs on a builder Value for the
input; attribute reads give submodules, parameters and constants; calls to other methods and
to the scripted ``torch.nn.functional`` helpers are followed; ``torch.*`` calls go to the aten
table in ``torchscript_ops.py``, which adds graph nodes or folds constants (shapes, list
arithmetic, comparisons). Branches and loops must be decided by constants (``if inplace:``,
``if self.training:``, ``for i in range(n)``); one decided by a tensor is refused, as is any
construct or op outside the table, with the op and the source line named.

Modules are run in eval mode (``self.training`` is False), as inference runs them.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field

from edgecnn.errors import (ArchitectureError, EdgecnnError, ModelFormatError,
                            UnsupportedOpError)

from ._safe_pickle import InertObject, SafeUnpickler, StorageRef, TensorRef
from .builder import GeometryError, GraphBuilder
from .pt_reader import TENSOR_EXPANSION_LIMIT, TENSOR_SLACK, _Budget, _tensor, \
    open_torchscript, read_pickle_with_storages

MAX_CODE_BYTES = 32 << 20  # all code/ files together
MAX_STEPS = 1_000_000  # statements and calls interpreted
MAX_DEPTH = 48  # nested TorchScript calls
SEARCH_SIZES = range(1, 1025)
DEFAULT_SIZE = 224


class TSRefusal(UnsupportedOpError):
    pass


@dataclass(eq=False)
class TSObject:
    """A module instance from data.pkl: its class's qualified name and attributes."""

    qualname: str
    attrs: dict = field(default_factory=dict)
    path: str = ""


@dataclass(frozen=True)
class Ref:
    """A dotted name not yet called: ``torch.relu``, ``ops.prim.NumToTensor``, a
    ``__torch__`` function, or a bound method ``obj.method``."""

    name: str
    obj: object = None


@dataclass
class Code:
    """The parsed code/ folder: classes and functions by qualified name."""

    classes: dict = field(default_factory=dict)  # qualname -> {method: FunctionDef}
    constants: dict = field(default_factory=dict)  # qualname -> {name: Final constant}
    functions: dict = field(default_factory=dict)  # qualname -> FunctionDef
    files: dict = field(default_factory=dict)  # id(FunctionDef) -> (file, source lines)


def _literal(node):
    """A class-level ``Final`` constant: numbers, strings, bools, None, tuples, lists."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _literal(node.operand)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
    raise ValueError("not a literal")


def parse_code(zf, members, prefix, name) -> Code:
    code = Code()
    root = prefix + "code/"
    total = 0
    for member in sorted(members):
        if not member.startswith(root) or not member.endswith(".py"):
            continue
        total += members[member].file_size
        if total > MAX_CODE_BYTES:
            raise ModelFormatError(f"{name}: its code/ folder is over {MAX_CODE_BYTES >> 20} MB; "
                                   "not a model edgecnn can read")
        rel = member[len(root):-3]
        module = rel.replace("/", ".")
        try:
            text = zf.read(member).decode("utf-8")
            tree = ast.parse(text, filename=rel + ".py")
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError) as e:
            raise ModelFormatError(f"{name}: code/{rel}.py is not readable TorchScript source "
                                   f"({type(e).__name__})") from None
        except Exception as e:  # zipfile's errors on a corrupt member
            raise ModelFormatError(f"{name}: cannot read code/{rel}.py ({type(e).__name__})") \
                from None
        lines = text.splitlines()
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                q = f"{module}.{node.name}"
                methods, consts = code.classes.setdefault(q, {}), code.constants.setdefault(q, {})
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        methods[item.name] = item
                        code.files[id(item)] = (f"code/{rel}.py", lines)
                    elif isinstance(item, ast.AnnAssign) and item.value is not None and \
                            isinstance(item.target, ast.Name):
                        try:
                            consts[item.target.id] = _literal(item.value)
                        except ValueError:
                            pass
            elif isinstance(node, ast.FunctionDef):
                code.functions[f"{module}.{node.name}"] = node
                code.files[id(node)] = (f"code/{rel}.py", lines)
    return code


class _Objects:
    """data.pkl's InertObjects -> TSObjects with parameters as NumPy arrays (checked)."""

    def __init__(self, name, storages, budget):
        self.name, self.storages, self.budget, self.done = name, storages, budget, {}

    def convert(self, value, path=""):
        if isinstance(value, TensorRef):
            return _tensor(self.name, path or "tensor", value, self.storages, self.budget)
        if isinstance(value, InertObject):
            if id(value) in self.done:
                return self.done[id(value)]
            obj = TSObject(value.cls.qualname, path=path)
            self.done[id(value)] = obj
            state = value.state if isinstance(value.state, dict) else {}
            for key, v in state.items():
                if isinstance(key, str):
                    obj.attrs[key] = self.convert(v, f"{path}.{key}" if path else key)
            return obj
        if isinstance(value, (list, tuple)):
            items = [self.convert(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, dict):
            return {k: self.convert(v, f"{path}[{k!r}]") for k, v in value.items()}
        return value


def _traced_input_shape(zf, members, prefix, name):
    """(N, C, H, W) of a traced archive's stored example input, or None."""
    member = prefix + "traced_inputs.pkl"
    if member not in members:
        return None
    try:
        obj = SafeUnpickler(zf.read(member), name,
                            lambda pid: StorageRef("", "u1", "", 0)).load()
    except EdgecnnError:
        return None
    except Exception:  # a corrupt member: the size is then asked for instead
        return None
    inputs = obj.get("forward") if isinstance(obj, dict) else None
    first = inputs[0] if isinstance(inputs, list) and inputs else None
    if isinstance(first, TensorRef) and len(first.size) == 4 and min(first.size) > 0:
        return first.size
    return None


def _first_conv_channels(root: TSObject, code: Code):
    """Input channels of the first 4-D ``weight`` in attribute order (the usual first conv)."""
    stack, seen = [root], set()
    while stack:
        obj = stack.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        w = obj.attrs.get("weight")
        if getattr(w, "ndim", 0) == 4:
            groups = code.constants.get(obj.qualname, {}).get("groups", 1)
            return int(w.shape[1]) * (groups if isinstance(groups, int) and groups > 0 else 1)
        stack[:0] = [v for v in obj.attrs.values() if isinstance(v, TSObject)]
    return None


def load_torchscript(path: str, input_size=None, max_memory=None, **graph_kwargs):
    zf, members, prefix, big_endian, name, size = open_torchscript(path)
    with zf:
        budget = _Budget(TENSOR_EXPANSION_LIMIT * size + TENSOR_SLACK)
        data, storages = read_pickle_with_storages(zf, name, members, prefix + "data.pkl",
                                                   prefix + "data/", big_endian)
        constants = ()
        if prefix + "constants.pkl" in members:
            consts, cstorages = read_pickle_with_storages(zf, name, members,
                                                          prefix + "constants.pkl",
                                                          prefix + "constants/", big_endian)
            constants = _Objects(name, cstorages, budget).convert(consts, "CONSTANTS")
            if not isinstance(constants, tuple):
                raise ModelFormatError(f"{name}: constants.pkl holds a "
                                       f"{type(constants).__name__}, not a tuple")
        root = _Objects(name, storages, budget).convert(data)
        if not isinstance(root, TSObject):
            raise ModelFormatError(f"{name}: data.pkl holds a {type(root).__name__}, not a "
                                   "TorchScript module")
        code = parse_code(zf, members, prefix, name)
        traced = _traced_input_shape(zf, members, prefix, name)
    from .torchscript_interp import Interpreter
    label = os.path.splitext(os.path.basename(path))[0]

    def build(hwc):
        b = GraphBuilder(hwc, source=path, max_memory=max_memory)
        outs = Interpreter(code, constants, b, name).run_forward(root)
        return b.finish(outs, name=root.qualname.rsplit(".", 1)[-1].lower() or label,
                        **graph_kwargs)

    try:
        if traced is not None and input_size is None:
            return build((traced[2], traced[3], traced[1]))
        c = traced[1] if traced is not None else _first_conv_channels(root, code)
        if c is None:
            raise ArchitectureError(f"{path}: no convolution weight tells the input's channel "
                                    "count")
        if input_size is not None:
            return build((input_size, input_size, c))
        try:
            graph = build((DEFAULT_SIZE, DEFAULT_SIZE, c))
            from .pytorch import warn_default_size
            warn_default_size(path, "a scripted archive stores no example input")
            return graph
        except GeometryError:
            pass
        last = None
        for s in SEARCH_SIZES:  # the smallest square input the first dense layer fits
            try:
                return build((s, s, c))
            except GeometryError as e:
                if last is not None and e.got is not None and last.got is not None and \
                        e.got > e.need and last.got > last.need:
                    break
                last = e
        raise ArchitectureError(f"{path}: no square input size fits the model's first dense "
                                "layer; pass --input-size")
    except EdgecnnError as e:
        if str(e).startswith(path):
            raise
        raise type(e)(f"{path}: {e}") from None
