"""A pickle reader that never calls or imports anything named by the pickle.

Why our own opcode loop instead of subclassing ``pickle.Unpickler``: the C unpickler, even
with ``find_class`` returning stand-ins, still calls whatever it gets back (REDUCE calls it,
NEWOBJ calls ``cls.__new__``, BUILD looks up ``__setstate__``, APPENDS looks up ``extend``,
EXT1/2/4 consult ``copyreg``'s registry). Every one of those is a door we would have to keep
shut from the outside. Here each opcode is ~3 lines we can read, REDUCE and NEWOBJ are told
apart structurally, and opcodes we do not need are refused by name.

The rule for globals (GLOBAL, STACK_GLOBAL, INST): a global is one of
  1. a *data constructor* in ``SAFE_CALLABLES`` (OrderedDict, set, torch.Size,
     torch._utils._rebuild_tensor_v2, numpy scalars, ...): our own re-implementation, called
     with checked arguments; it builds plain data and touches nothing outside this module;
  2. a *constant* (``torch.float32``, ``torch.FloatStorage``): a dtype marker;
  3. anything else becomes an inert ``ClassRef(module, name)``. A ClassRef can only be
     stored as a value, or instantiated through NEWOBJ / NEWOBJ_EX / ``copyreg._reconstructor``
     / ``copyreg.__newobj__`` into an ``InertObject`` that records the qualified name and the
     state BUILD hands it. Calling a ClassRef (REDUCE, INST, OBJ, or as the function of
     ``_rebuild_from_type_v2``) raises UnsafePickleError naming it.
So ``torch.nn.modules.conv.Conv2d`` and a user's ``__main__.LeNet5`` both load as records,
and ``os.system`` / ``builtins.eval`` / ``subprocess.Popen`` can never run.
"""

from __future__ import annotations

import _compat_pickle  # name tables only: python 2 -> 3 module renames
import codecs
import re
import reprlib
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from edgecnn.errors import EdgecnnError, ModelFormatError, UnsafePickleError

# torch dtype name -> numpy dtype string; "bfloat16" has no numpy twin and is widened later.
TORCH_DTYPES = {
    "float32": "<f4", "float": "<f4", "float16": "<f2", "half": "<f2", "bfloat16": "bfloat16",
    "float64": "<f8", "double": "<f8", "int64": "<i8", "long": "<i8", "int32": "<i4", "int": "<i4",
    "int16": "<i2", "short": "<i2", "int8": "i1", "uint8": "u1", "bool": "?",
    "complex64": "<c8", "cfloat": "<c8", "complex128": "<c16", "cdouble": "<c16",
}
STORAGE_TYPES = {
    "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "bfloat16", "DoubleStorage": "<f8",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?", "ComplexFloatStorage": "<c8", "ComplexDoubleStorage": "<c16",
    # untyped storages are bytes; a tensor built on one is uint8, as in torch
    "UntypedStorage": "u1", "_UntypedStorage": "u1",
}


@dataclass(frozen=True)
class ClassRef:
    """A global named by the pickle: recorded, never imported."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class InertObject:
    """What NEWOBJ / copyreg._reconstructor makes of a ClassRef: a name and data, no behavior."""

    cls: ClassRef
    args: tuple = ()
    state: Any = None
    listitems: list = field(default_factory=list)
    dictitems: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DType:
    """``torch.float32``-style global, or the dtype of a ``torch.FloatStorage``-style class."""

    qualname: str
    np_dtype: str  # numpy dtype string, or "bfloat16"


@dataclass(eq=False)
class StorageRef:
    """A persistent id resolved by the container: storage ``key`` of ``numel`` elements."""

    key: str
    dtype: str
    location: str
    numel: int
    view: Optional[tuple] = None  # legacy storage views: (offset, size) in elements


@dataclass(eq=False)
class TensorRef:
    """``_rebuild_tensor_v2``'s arguments, checked and materialized once the name is known."""

    storage: StorageRef
    offset: int
    size: tuple
    stride: tuple


@dataclass(frozen=True)
class SafeCallable:
    """A data constructor we re-implement; ``fn`` takes the REDUCE argument tuple."""

    qualname: str
    fn: Callable


class _Refuse(Exception):
    """Internal: carries an UnsafePickleError text up to the loop, which adds the file name."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def short(value) -> str:
    """A bounded repr for error messages: a hostile pickle can build values whose full repr is
    exponential (a tuple holding the same tuple twice, 100 levels deep) or megabytes long."""
    try:
        return _REPR.repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4300-digit str() limit
        return f"<{type(value).__name__}>"


KEY_TYPES = (str, bytes, int, float, bool, type(None))


def _key(value):
    """``value`` if it may be a dict key or set member. Hashing a tuple walks all of it (not
    cached), so a 100-level tuple of shared tuples would hash for ever; torch writes str and
    int keys only, so keys are scalars or flat tuples of scalars."""
    if isinstance(value, KEY_TYPES) or (
            isinstance(value, tuple) and all(isinstance(v, KEY_TYPES) for v in value)):
        return value
    raise ModelFormatError(f"a dict key or set member is a {type(value).__name__}; "
                           "checkpoints use strings and numbers")


def _keys(items):
    for item in items:
        _key(item)
    return items


def _ints(x, what):
    if not isinstance(x, tuple) or not all(type(v) is int for v in x):
        raise ModelFormatError(f"{what} must be a tuple of ints, got {short(x)}")
    return x


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    if not isinstance(storage, StorageRef):
        raise ModelFormatError(f"a tensor is built on {type(storage).__name__}, not on a storage")
    if type(offset) is not int:
        raise ModelFormatError(f"tensor storage offset must be an int, got {short(offset)}")
    return TensorRef(storage, offset, _ints(tuple(size), "tensor size"), _ints(tuple(stride), "tensor stride"))


def _rebuild_parameter(data, *_ignored):
    # _rebuild_parameter(data, requires_grad, hooks) and _with_state(..., state): the data is all we keep
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if isinstance(func, ClassRef):
        raise _Refuse(func.qualname)
    if not isinstance(func, SafeCallable) or not isinstance(args, tuple):
        raise ModelFormatError("_rebuild_from_type_v2 needs a tensor rebuild function and an argument tuple")
    return func.fn(*args)


def _ordered_dict(*args):
    if not args:
        return OrderedDict()
    if len(args) != 1 or not isinstance(args[0], (list, tuple, dict)):
        raise ModelFormatError("OrderedDict() is only accepted with a list of pairs")
    pairs = list(args[0].items()) if isinstance(args[0], dict) else list(args[0])
    if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise ModelFormatError("OrderedDict() is only accepted with a list of pairs")
    return OrderedDict((_key(k), v) for k, v in pairs)


def _codecs_encode(text, encoding="utf-8"):
    # protocol 2 pickles bytes as _codecs.encode(str, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ModelFormatError("_codecs.encode is only accepted as the latin1 bytes encoding of protocol 2")
    return text.encode("latin1")


def _bytearray(*args):
    if args and isinstance(args[0], str):
        return bytearray(_codecs_encode(*args))
    if args and not isinstance(args[0], (bytes, bytearray)):
        raise ModelFormatError("bytearray() is only accepted with bytes")
    return bytearray(*args)


def _collection(kind):
    def build(items=()):
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise ModelFormatError(f"{kind.__name__}() is only accepted with a list of items")
        return kind(_keys(items) if kind in (set, frozenset) else items)

    return build


def _slice(*args):
    if len(args) > 3:
        raise ModelFormatError("slice() takes at most 3 arguments")
    return slice(*args)


def _torch_size(dims=()):
    return _ints(tuple(dims), "torch.Size")


def _torch_device(kind, index=None):
    if not isinstance(kind, str) or (index is not None and type(index) is not int):
        raise ModelFormatError(f"torch.device({short(kind)}, {short(index)}) is not a device")
    return kind if index is None else f"{kind}:{index}"


@dataclass(eq=False)
class NumpyDType:
    """``numpy.dtype("f8", False, True)`` as pickled; BUILD then sets its byte order."""

    spec: str
    byteorder: str = "<"


def _numpy_dtype(spec, align=False, copy=True):
    if not isinstance(spec, str) or not re.fullmatch(r"[biufc][0-9]{1,2}", spec):
        raise ModelFormatError(f"numpy.dtype({short(spec)}) is not a plain numeric dtype")
    return NumpyDType(spec)


def _numpy_scalar(dtype, data):
    # numpy.core.multiarray.scalar(dtype, raw bytes): e.g. a np.float64 metric in a checkpoint
    if not isinstance(dtype, NumpyDType) or not isinstance(data, bytes):
        raise ModelFormatError("numpy scalar needs a numeric dtype and its bytes")
    return np.frombuffer(data, np.dtype(dtype.byteorder + dtype.spec), 1)[0]


def _reconstructor(cls, base, state):
    # copyreg._reconstructor(cls, base, state): protocol 0/1 object creation; base is not called
    if not isinstance(cls, ClassRef):
        raise ModelFormatError("copyreg._reconstructor needs a class")
    return InertObject(cls, state=state)


def _newobj(cls, *args):
    if not isinstance(cls, ClassRef):
        raise ModelFormatError("copyreg.__newobj__ needs a class")
    return InertObject(cls, args)


def _restore_type_tag(value, type_str=None):
    # TorchScript pickles tag typed containers (Dict[str, List[Any]]); the tag is dropped
    return value


def _build_list(kind):
    def build(items):
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, kind) for v in items):
            raise ModelFormatError(f"a TorchScript {kind.__name__} list holds something else")
        return list(items)
    return build


SAFE_CALLABLES = {
    q: SafeCallable(q, fn)
    for q, fn in {
        "torch.jit._pickle.restore_type_tag": _restore_type_tag,
        "torch.jit._pickle.build_intlist": _build_list(int),
        "torch.jit._pickle.build_doublelist": _build_list(float),
        "torch.jit._pickle.build_boollist": _build_list(bool),
        "torch.jit._pickle.build_tensorlist": _build_list(TensorRef),
        "collections.OrderedDict": _ordered_dict,
        "builtins.set": _collection(set),
        "builtins.frozenset": _collection(frozenset),
        "builtins.list": _collection(list),
        "builtins.tuple": _collection(tuple),
        "builtins.slice": _slice,
        "builtins.bytes": lambda: b"",
        "builtins.bytearray": _bytearray,
        "_codecs.encode": _codecs_encode,
        "copyreg._reconstructor": _reconstructor,
        "copyreg.__newobj__": _newobj,
        "numpy.dtype": _numpy_dtype,
        "numpy.core.multiarray.scalar": _numpy_scalar,
        "numpy._core.multiarray.scalar": _numpy_scalar,
        "torch.Size": _torch_size,
        "torch.device": _torch_device,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    }.items()
}


def resolve_global(module: str, name: str):
    """The whole policy for globals: a safe constructor, a dtype constant, or an inert ClassRef."""
    if not isinstance(module, str) or not isinstance(name, str) or not module or not name:
        raise ModelFormatError("a pickle global must name a module and an attribute")
    if (module, name) in _compat_pickle.NAME_MAPPING:  # python 2 spellings, as pickle's fix_imports
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    qualname = f"{module}.{name}"
    if qualname in SAFE_CALLABLES:
        return SAFE_CALLABLES[qualname]
    if module == "torch" and name in TORCH_DTYPES:
        return DType(qualname, TORCH_DTYPES[name])
    if module in ("torch", "torch.storage", "torch.cuda") and name in STORAGE_TYPES:
        return DType(qualname, STORAGE_TYPES[name])  # torch.cuda.FloatStorage: pre-1.0 GPU saves
    return ClassRef(module, name)


class SafeUnpickler:
    """Reads one pickle from ``data`` at ``pos``; ``load()`` returns the object and sets ``pos``.

    ``persistent_load(pid)`` resolves BINPERSID ids (torch storages); ``source`` names the
    file in error messages.
    """

    def __init__(self, data: bytes, source: str, persistent_load=None, pos: int = 0):
        self.raw = bytes(data)
        self.data = memoryview(self.raw)
        self.source = source
        self.persistent_load = persistent_load
        self.pos = pos

    def _read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFormatError(f"pickle declares {n} bytes at byte {self.pos} "
                                   f"but the data ends at {len(self.data)}")
        out = self.data[self.pos:self.pos + n].tobytes()
        self.pos += n
        return out

    def _line(self) -> bytes:
        end = self.raw.find(b"\n", self.pos)
        if end < 0:
            raise ModelFormatError(f"unterminated text field at byte {self.pos}")
        return self._read(end + 1 - self.pos)[:-1]

    def load(self):
        try:
            return self._load()
        except _Refuse as e:
            raise UnsafePickleError(
                f"{self.source}: refuses to call {e.args[0]} from the pickle; "
                "edgecnn loads only tensors and torch.nn module data"
            ) from None
        except EdgecnnError as e:
            if isinstance(e, ModelFormatError) and not str(e).startswith(self.source + ":"):
                raise type(e)(f"{self.source}: {e}") from None
            raise
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, struct.error,
                UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as e:
            raise ModelFormatError(
                f"{self.source}: corrupt pickle near byte {self.pos} ({type(e).__name__}: {e}); "
                "re-save the file with torch.save"
            ) from None

    def _pop_mark(self):
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _call(self, func, args):
        if isinstance(func, ClassRef):
            raise _Refuse(func.qualname)
        if isinstance(func, InertObject):
            raise _Refuse(f"an instance of {func.cls.qualname}")
        if not isinstance(func, SafeCallable):
            raise _Refuse(getattr(func, "qualname", f"a {type(func).__name__}"))
        if not isinstance(args, tuple):
            raise ModelFormatError("REDUCE arguments must be a tuple")
        return func.fn(*args)

    def _instantiate(self, cls, args):
        if isinstance(cls, SafeCallable):
            return self._call(cls, args)
        if not isinstance(cls, ClassRef):
            raise ModelFormatError(f"NEWOBJ needs a class, got {type(cls).__name__}")
        return InertObject(cls, tuple(args))

    def _load(self):  # noqa: C901 - one flat dispatch over pickle opcodes reads best
        # self.stack is the stack since the last MARK; MARK pushes it onto self.metastack
        self.stack, self.metastack, memo = [], [], {}
        read, unpack = self._read, struct.unpack
        while True:
            op = read(1)[0]
            s = self.stack
            if op == 0x80:  # PROTO
                if read(1)[0] > 5:
                    raise ModelFormatError("pickle protocol newer than 5")
            elif op == 0x95:  # FRAME
                read(8)
            elif op == 0x2E:  # STOP
                return s.pop()
            elif op == 0x28:  # MARK
                self.metastack.append(s)
                self.stack = []
            elif op == 0x30:  # POP
                if s:
                    s.pop()
                else:
                    self._pop_mark()
            elif op == 0x31:  # POP_MARK
                self._pop_mark()
            elif op == 0x32:  # DUP
                s.append(s[-1])
            elif op == 0x4E:  # NONE
                s.append(None)
            elif op in (0x88, 0x89):  # NEWTRUE, NEWFALSE
                s.append(op == 0x88)
            elif op == 0x4B:  # BININT1
                s.append(read(1)[0])
            elif op == 0x4D:  # BININT2
                s.append(unpack("<H", read(2))[0])
            elif op == 0x4A:  # BININT
                s.append(unpack("<i", read(4))[0])
            elif op == 0x8A:  # LONG1
                s.append(int.from_bytes(read(read(1)[0]), "little", signed=True))
            elif op == 0x8B:  # LONG4
                s.append(int.from_bytes(read(unpack("<i", read(4))[0]), "little", signed=True))
            elif op == 0x49:  # INT (protocol 0); "I00"/"I01" are False/True
                line = self._line()
                s.append({b"00": False, b"01": True}[line] if line in (b"00", b"01") else int(line))
            elif op == 0x4C:  # LONG (protocol 0)
                s.append(int(self._line().rstrip(b"L")))
            elif op == 0x46:  # FLOAT
                s.append(float(self._line()))
            elif op == 0x47:  # BINFLOAT
                s.append(unpack(">d", read(8))[0])
            elif op in (0x58, 0x8C, 0x8D):  # BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                n = {0x58: lambda: unpack("<I", read(4))[0], 0x8C: lambda: read(1)[0],
                     0x8D: lambda: unpack("<Q", read(8))[0]}[op]()
                s.append(read(n).decode("utf-8", "surrogatepass"))
            elif op == 0x56:  # UNICODE (protocol 0)
                s.append(self._line().decode("raw-unicode-escape"))
            elif op in (0x42, 0x43, 0x8E, 0x96):  # BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                n = {0x42: lambda: unpack("<I", read(4))[0], 0x43: lambda: read(1)[0]}.get(
                    op, lambda: unpack("<Q", read(8))[0])()
                s.append(bytearray(read(n)) if op == 0x96 else read(n))
            elif op in (0x54, 0x55):  # BINSTRING, SHORT_BINSTRING: py2 str, read as latin1 text
                n = unpack("<i", read(4))[0] if op == 0x54 else read(1)[0]
                s.append(read(n).decode("latin1"))
            elif op == 0x53:  # STRING (protocol 0, quoted)
                raw = self._line()
                if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
                    raise ModelFormatError("malformed STRING opcode")
                s.append(codecs.escape_decode(raw[1:-1])[0].decode("latin1"))
            elif op == 0x29:  # EMPTY_TUPLE
                s.append(())
            elif op in (0x85, 0x86, 0x87):  # TUPLE1/2/3
                n = op - 0x84
                items = tuple(s[-n:]) if len(s) >= n else None
                if items is None:
                    raise ModelFormatError("TUPLE opcode on a short stack")
                del s[-n:]
                s.append(items)
            elif op == 0x74:  # TUPLE
                items = self._pop_mark()
                self.stack.append(tuple(items))
            elif op == 0x5D:  # EMPTY_LIST
                s.append([])
            elif op == 0x6C:  # LIST
                items = self._pop_mark()
                self.stack.append(list(items))
            elif op == 0x7D:  # EMPTY_DICT
                s.append({})
            elif op == 0x64:  # DICT
                items = self._pop_mark()
                self.stack.append(dict(zip(_keys(items[::2]), items[1::2])))
            elif op == 0x8F:  # EMPTY_SET
                s.append(set())
            elif op == 0x91:  # FROZENSET
                items = self._pop_mark()
                self.stack.append(frozenset(_keys(items)))
            elif op in (0x61, 0x65):  # APPEND, APPENDS
                items = [s.pop()] if op == 0x61 else self._pop_mark()
                target = self.stack[-1]
                target = target.listitems if isinstance(target, InertObject) else target
                if not isinstance(target, list):
                    raise ModelFormatError(f"APPEND to a {type(target).__name__}")
                target.extend(items)
            elif op in (0x73, 0x75):  # SETITEM, SETITEMS
                items = s[-2:] if op == 0x73 else self._pop_mark()
                if op == 0x73:
                    del s[-2:]
                target = self.stack[-1]
                target = target.dictitems if isinstance(target, InertObject) else target
                if not isinstance(target, dict):
                    raise ModelFormatError(f"SETITEM on a {type(target).__name__}")
                for k, v in zip(items[::2], items[1::2]):
                    target[_key(k)] = v
            elif op == 0x90:  # ADDITEMS
                items = self._pop_mark()
                target = self.stack[-1]
                target = target.listitems if isinstance(target, InertObject) else target
                if isinstance(target, set):
                    target.update(_keys(items))
                elif isinstance(target, list):
                    target.extend(items)
                else:
                    raise ModelFormatError(f"ADDITEMS on a {type(target).__name__}")
            elif op in (0x70, 0x71, 0x72, 0x94):  # PUT, BINPUT, LONG_BINPUT, MEMOIZE
                key = {0x70: lambda: int(self._line()), 0x71: lambda: read(1)[0],
                       0x72: lambda: unpack("<I", read(4))[0], 0x94: lambda: len(memo)}[op]()
                memo[key] = s[-1]
            elif op in (0x67, 0x68, 0x6A):  # GET, BINGET, LONG_BINGET
                key = {0x67: lambda: int(self._line()), 0x68: lambda: read(1)[0],
                       0x6A: lambda: unpack("<I", read(4))[0]}[op]()
                if key not in memo:
                    raise ModelFormatError(f"memo key {key} read before it was written")
                s.append(memo[key])
            elif op == 0x63:  # GLOBAL
                module = self._line().decode("utf-8")
                s.append(resolve_global(module, self._line().decode("utf-8")))
            elif op == 0x93:  # STACK_GLOBAL
                name, module = s.pop(), s.pop()
                s.append(resolve_global(module, name))
            elif op == 0x52:  # REDUCE: the only way a pickle calls something
                args, func = s.pop(), s.pop()
                s.append(self._call(func, args))
            elif op == 0x81:  # NEWOBJ: cls.__new__(cls, *args) -> an inert record
                args, cls = s.pop(), s.pop()
                s.append(self._instantiate(cls, args))
            elif op == 0x92:  # NEWOBJ_EX
                _kwargs, args, cls = s.pop(), s.pop(), s.pop()
                s.append(self._instantiate(cls, args))
            elif op == 0x62:  # BUILD
                state = s.pop()
                self._build(s[-1], state)
            elif op in (0x51, 0x50):  # BINPERSID, PERSID
                pid = s.pop() if op == 0x51 else self._line().decode("ascii")
                if self.persistent_load is None:
                    raise ModelFormatError("the pickle refers to external data (persistent id) where none is allowed")
                s.append(self.persistent_load(pid))
            elif op == 0x69:  # INST: calls a class named inline
                module = self._line().decode("utf-8")
                raise _Refuse(f"{module}.{self._line().decode('utf-8')}")
            elif op == 0x6F:  # OBJ: calls the class under the mark
                items = self._pop_mark()
                raise _Refuse(getattr(items[0], "qualname", "an object") if items else "an object")
            elif op in (0x82, 0x83, 0x84):  # EXT1/2/4
                ext = {0x82: 1, 0x83: 2, 0x84: 4}[op]
                raise UnsafePickleError(f"{self.source}: refuses the copyreg extension-registry opcode EXT{ext}; "
                                        "edgecnn loads only tensors and torch.nn module data")
            elif op in (0x97, 0x98):  # NEXT_BUFFER, READONLY_BUFFER
                raise ModelFormatError(f"{self.source}: uses out-of-band pickle buffers, which torch.save never writes")
            else:
                raise ModelFormatError(f"{self.source}: unknown pickle opcode 0x{op:02x} at byte {self.pos - 1}; "
                                       "the file is corrupt or not a PyTorch checkpoint")

    @staticmethod
    def _build(target, state):
        if isinstance(target, InertObject):
            if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
                if not all(part is None or isinstance(part, dict) for part in state):
                    raise ModelFormatError("BUILD state (dict, slots) holds something else")
                merged = dict(state[0] or {})
                merged.update(state[1] or {})
                state = merged
            if isinstance(target.state, dict) and isinstance(state, dict):
                target.state.update(state)
            else:
                target.state = state
        elif isinstance(target, NumpyDType):
            order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
            if order not in ("<", ">", "|", "="):
                raise ModelFormatError(f"numpy dtype state {short(state)} has no byte order")
            target.byteorder = "<" if order in ("|", "=") else order
        elif isinstance(target, dict):
            pass  # attributes on an OrderedDict subclass, e.g. a state_dict's _metadata
        elif isinstance(target, TensorRef):
            pass  # python attributes on a tensor
        else:
            raise ModelFormatError(f"BUILD on a {type(target).__name__}")
