"""Read PyTorch ``.pt`` / ``.pth`` files without torch and without running pickled code.

Containers: the zip format of torch >= 1.6 (``<any prefix>/data.pkl``, storages in
``<prefix>/data/<key>``, optional ``<prefix>/byteorder``) and the legacy format (a sequence
of pickles: magic number, protocol version, sys_info, the object with persistent ids, the
storage keys; then per key an 8-byte little-endian element count and the raw bytes). The
pre-0.4 tar format gets a clear error; TorchScript archives are read by ``torchscript.py``
through ``open_torchscript`` and ``read_pickle_with_storages``.

The pickles go through ``_safe_pickle.SafeUnpickler``: nothing named in them is imported or
called (its docstring states the rule for globals). Tensors stay ``TensorRef`` records until
the caller's name for them is known, then become contiguous NumPy arrays, checked to lie
inside their storage. bfloat16 is widened to float32 (bit shift, exact); every other dtype
keeps its NumPy twin. Any device tag loads: the bytes are the same on every device.

What comes back is a ``PtFile``: a state_dict (always), and for a pickled ``nn.Module`` the
inert ``ModuleRecord`` tree (class names, hyperparameters, parameters, buffers, children).
"""

from __future__ import annotations

import bz2
import lzma
import os
import struct
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from edgecnn.errors import InputFileError, ModelFormatError, UnsafePickleError

from ._safe_pickle import ClassRef, DType, InertObject, SafeUnpickler, StorageRef, TensorRef, short

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")  # tried in this order
ZIP_EXPANSION_LIMIT = 64  # declared uncompressed bytes per file byte (torch stores, never deflates)
MAX_MODULE_DEPTH = 64
# Materialized tensors may not exceed the file's bytes by more than this factor (plus a
# slack): tied weights and expanded (stride 0) tensors stay well inside it, while a pickle
# naming one big tensor a million times, or an expanded tensor of 2**40 elements, is refused
# before anything is allocated.
TENSOR_EXPANSION_LIMIT = 4
TENSOR_SLACK = 256 << 20
# zipfile's own errors, and what its decompressors raise on corrupt or exotic members
# (an encrypted member is a RuntimeError, an unknown method NotImplementedError).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
               RuntimeError, zlib.error, lzma.LZMAError, struct.error, UnicodeDecodeError)
RESAVE = "re-save it with torch.save"
PLAIN = (int, float, bool, str, type(None))


@dataclass
class ModuleRecord:
    """A pickled ``nn.Module`` as data: nothing of its class is imported."""

    qualname: str  # "torch.nn.modules.conv.Conv2d" or "__main__.LeNet5"
    type_name: str  # last component: "Conv2d"
    attrs: dict = field(default_factory=dict)  # public plain hyperparameters; lists become tuples
    parameters: dict = field(default_factory=dict)  # name -> ndarray | None, in _parameters order
    buffers: dict = field(default_factory=dict)  # name -> ndarray | None, in _buffers order
    children: dict = field(default_factory=dict)  # name -> ModuleRecord, in _modules order


@dataclass
class PtFile:
    path: str
    kind: str  # "state_dict" or "module"
    state_dict: "OrderedDict[str, np.ndarray]"
    module: Optional[ModuleRecord] = None


def load_pt(path) -> PtFile:
    """Read ``path`` (zip or legacy torch.save output) into a PtFile; raises EdgecnnError subclasses."""
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file; pass the .pt/.pth file written by torch.save") from None
    except OSError as e:
        raise InputFileError(f"{path}: cannot read it ({e.strerror or e}); check the path and permissions") from None
    if blob[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        obj, storages = _read_zip(path, name, blob)
    elif blob[257:262] == b"ustar":
        raise ModelFormatError(f"{name}: uses the pre-0.4 PyTorch tar format; load it with an old torch "
                               "and save it again with torch.save")
    else:
        obj, storages = _read_legacy(name, blob)
    budget = _Budget(TENSOR_EXPANSION_LIMIT * len(blob) + TENSOR_SLACK)
    try:
        return _to_ptfile(path, name, obj, storages, budget)
    except RecursionError:
        raise ModelFormatError(f"{name}: nests its data too deeply to be a checkpoint; {RESAVE}") from None


# ----------------------------------------------------------------------------- containers


def _storage_pid(name, pid, known_keys, legacy):
    """Check a torch persistent id: ('storage', storage_type, key, location, numel[, view])."""
    if not isinstance(pid, tuple) or not pid:
        raise ModelFormatError(f"{name}: unexpected persistent id {short(pid)}; {RESAVE}")
    if pid[0] == "module" and legacy and len(pid) == 4 and isinstance(pid[1], ClassRef):
        return pid[1]  # legacy saves put each nn.Module class (with its source) in a persistent id
    if pid[0] != "storage" or len(pid) not in (5, 6):
        raise ModelFormatError(f"{name}: unexpected persistent id {short(pid[:1])}; {RESAVE}")
    storage_type, key, location, numel = pid[1:5]
    if not isinstance(storage_type, DType):
        raise ModelFormatError(f"{name}: storage {short(key)} has type "
                               f"{short(getattr(storage_type, 'qualname', storage_type))}, not a torch storage type")
    if not isinstance(key, str) or not isinstance(location, str) or type(numel) is not int or numel < 0:
        raise ModelFormatError(f"{name}: malformed storage persistent id {short(pid)}; {RESAVE}")
    if known_keys is not None and key not in known_keys:
        raise ModelFormatError(f"{name}: data.pkl refers to storage {short(key)} but the archive has no "
                               f"data/{short(key)[1:-1]}; the file is incomplete, {RESAVE}")
    view = None
    if len(pid) == 6 and pid[5] is not None:
        if not isinstance(pid[5], tuple) or len(pid[5]) != 3:
            raise ModelFormatError(f"{name}: malformed storage view in persistent id {short(pid)}; {RESAVE}")
        view_key, offset, size = pid[5]
        view = (offset, size)
    return StorageRef(key, storage_type.np_dtype, location, numel, view)


def _check_members(name, infos, blob_size):
    """Refuse path tricks and zip bombs in a torch zip's member list."""
    declared = 0
    for info in infos:
        parts = info.filename.replace("\\", "/").split("/")
        if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise ModelFormatError(f"{name}: refuses zip member {info.filename!r} (absolute or '..' path)")
        declared += info.file_size
    if declared > ZIP_EXPANSION_LIMIT * blob_size + (1 << 20):
        raise ModelFormatError(f"{name}: zip members declare {declared} bytes in a {blob_size}-byte file "
                               "(zip bomb?); refusing to read it")


def _data_pkl_prefix(name, members):
    pkls = [n for n in members if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        what = "no data.pkl" if not pkls else f"{len(pkls)} data.pkl records"
        raise ModelFormatError(f"{name}: not a PyTorch checkpoint ({what} in the zip); "
                               "pass a file written by torch.save")
    return pkls[0][: -len("data.pkl")]


def read_pickle_with_storages(zf, name, members, pkl_member, storage_dir, big_endian):
    """Unpickle ``pkl_member`` safely; its storages are ``storage_dir + key`` members.
    Returns (object, {key: 1-D storage array})."""
    keys = {n[len(storage_dir):] for n in members if n.startswith(storage_dir)}
    try:
        pkl = zf.read(pkl_member)
        storage_refs = {}

        def persistent_load(pid):
            ref = _storage_pid(name, pid, keys, legacy=False)
            if isinstance(ref, StorageRef):
                storage_refs.setdefault(ref.key, ref)
            return ref

        obj = SafeUnpickler(pkl, name, persistent_load).load()
        raw = {k: zf.read(storage_dir + k) for k in storage_refs}
    except _ZIP_ERRORS as e:
        raise ModelFormatError(f"{name}: truncated or corrupt zip ({type(e).__name__}: {short(str(e))[1:-1]}); "
                               f"{RESAVE}") from None
    return obj, _storages(name, storage_refs, raw, big_endian)


def _open_zip(path, name, blob):
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except _ZIP_ERRORS as e:
        raise ModelFormatError(f"{name}: truncated or corrupt zip ({e}); {RESAVE}") from None
    try:
        _check_members(name, infos, len(blob))
    except ModelFormatError:
        zf.close()
        raise
    return zf, {i.filename: i for i in infos}


def _big_endian(zf, name, prefix, members):
    try:
        return prefix + "byteorder" in members and zf.read(prefix + "byteorder").strip() == b"big"
    except _ZIP_ERRORS as e:
        raise ModelFormatError(f"{name}: truncated or corrupt zip ({type(e).__name__}); {RESAVE}") from None


def is_torchscript(path) -> bool:
    """True for a torch.jit.save archive: a torch zip with code/ next to its data.pkl."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (*_ZIP_ERRORS, FileNotFoundError):
        return False
    prefixes = {n[: -len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1}
    return any(p + "constants.pkl" in names or any(n.startswith(p + "code/") for n in names)
               for p in prefixes)


def open_torchscript(path):
    """(zipfile, members, prefix, big_endian, file name) of a TorchScript archive, checked for
    path tricks and zip bombs; the caller closes the zipfile."""
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise InputFileError(f"{path}: cannot read it ({e.strerror or e})") from None
    zf, members = _open_zip(path, name, blob)
    try:
        prefix = _data_pkl_prefix(name, members)
        return zf, members, prefix, _big_endian(zf, name, prefix, members), name, len(blob)
    except ModelFormatError:
        zf.close()
        raise


def _read_zip(path, name, blob):
    zf, members = _open_zip(path, name, blob)
    with zf:
        prefix = _data_pkl_prefix(name, members)
        if prefix + "constants.pkl" in members or any(n.startswith(prefix + "code/") for n in members):
            raise ModelFormatError(f"{name}: is a TorchScript archive (torch.jit.save); convert it with "
                                   "edgecnn convert, which reads its code as a graph")
        big_endian = _big_endian(zf, name, prefix, members)
        return read_pickle_with_storages(zf, name, members, prefix + "data.pkl", prefix + "data/",
                                         big_endian)


def _read_legacy(name, blob):
    not_torch = (f"{name}: not a PyTorch checkpoint (no data.pkl in the zip and no legacy magic number); "
                 "pass a file written by torch.save")
    if not blob or blob[:1] not in (b"\x80", b"\x8a", b"L", b"I"):
        raise ModelFormatError(not_torch)
    # persistent ids belong in the 4th pickle only; here they read as an empty storage so that
    # a bare pickle is still read to its end, and a hostile one is reported as such
    reader = SafeUnpickler(blob, name, persistent_load=lambda pid: StorageRef("", "u1", "", 0))
    try:
        magic = reader.load()
    except UnsafePickleError:
        raise
    except ModelFormatError:
        raise ModelFormatError(not_torch) from None
    if magic != LEGACY_MAGIC:  # a bare pickle, already read safely (so a hostile one was refused)
        raise ModelFormatError(not_torch)
    reader.persistent_load = None
    version = reader.load()
    if version != LEGACY_PROTOCOL:
        raise ModelFormatError(f"{name}: legacy PyTorch protocol {short(version)}, expected {LEGACY_PROTOCOL}; {RESAVE}")
    sys_info = reader.load()
    little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True) is not False
    refs = {}

    def persistent_load(pid):
        ref = _storage_pid(name, pid, None, legacy=True)
        if isinstance(ref, StorageRef):
            refs.setdefault(ref.key, ref)
        return ref

    reader.persistent_load = persistent_load
    obj = reader.load()
    reader.persistent_load = None
    keys = reader.load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ModelFormatError(f"{name}: legacy storage key list is malformed; {RESAVE}")
    missing = sorted(set(refs) - set(keys))
    if missing:
        raise ModelFormatError(f"{name}: the pickle refers to storage {missing[0]!r} "
                               f"that the file does not hold; {RESAVE}")
    raw, pos = {}, reader.pos
    for key in keys:
        if pos + 8 > len(blob):
            raise ModelFormatError(f"{name}: truncated before storage {key!r}; {RESAVE}")
        count = struct.unpack("<q" if little else ">q", blob[pos:pos + 8])[0]
        if key not in refs:
            raise ModelFormatError(f"{name}: lists storage {key!r} that no tensor uses; {RESAVE}")
        nbytes = count * _itemsize(refs[key].dtype)
        if count < 0 or pos + 8 + nbytes > len(blob):
            raise ModelFormatError(f"{name}: storage {key!r} declares {count} elements ({nbytes} bytes) "
                                   f"but only {len(blob) - pos - 8} bytes follow; {RESAVE}")
        raw[key] = blob[pos + 8:pos + 8 + nbytes]
        pos += 8 + nbytes
    return obj, _storages(name, refs, raw, big_endian=not little)


# ----------------------------------------------------------------------------- storages and tensors


def _itemsize(dtype):
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _storages(name, refs, raw, big_endian):
    """key -> 1-D array of the storage's dtype (bfloat16 widened to float32)."""
    out = {}
    for key, ref in refs.items():
        data = raw[key]
        need = ref.numel * _itemsize(ref.dtype)
        if len(data) < need:
            raise ModelFormatError(f"{name}: storage {short(key)} holds {len(data)} bytes but declares "
                                   f"{short(ref.numel)} elements ({short(need)} bytes); {RESAVE}")
        if ref.dtype == "bfloat16":
            bits = np.frombuffer(data, ">u2" if big_endian else "<u2", ref.numel)
            arr = (bits.astype(np.uint32) << 16).view(np.float32)
        else:
            dt = np.dtype(ref.dtype)
            arr = np.frombuffer(data, dt.newbyteorder(">") if big_endian else dt, ref.numel).astype(dt)
        out[key] = arr
    return out


class _Budget:
    """Bytes the tensors of one file may still materialize (TENSOR_EXPANSION_LIMIT)."""

    def __init__(self, nbytes):
        self.left = nbytes

    def take(self, name, tensor_name, nbytes):
        if nbytes > self.left:
            raise ModelFormatError(f"{name}: tensor {short(tensor_name)} would bring the tensors to more than "
                                   f"{TENSOR_EXPANSION_LIMIT}x the file's size (a tensor repeated or expanded "
                                   f"far beyond its storage); the file is corrupt or hostile, {RESAVE}")
        self.left -= nbytes


def _tensor(name, tensor_name, t: TensorRef, storages, budget) -> np.ndarray:
    """A contiguous copy of ``t``, checked to stay inside its storage."""
    tensor_name = short(tensor_name)[1:-1] if isinstance(tensor_name, str) else short(tensor_name)
    base = storages[t.storage.key]
    if t.storage.view is not None:
        start, size = t.storage.view
        if type(start) is not int or type(size) is not int or start < 0 or size < 0 or start + size > base.size:
            raise ModelFormatError(f"{name}: tensor {tensor_name!r} uses a storage view outside storage "
                                   f"{t.storage.key!r}; {RESAVE}")
        base = base[start:start + size]
    size, stride, offset = t.size, t.stride, t.offset
    if len(size) != len(stride) or offset < 0 or any(v < 0 for v in size + stride):
        raise ModelFormatError(f"{name}: tensor {tensor_name!r} has size {short(size)}, stride {short(stride)}, "
                               f"offset {short(offset)}; the file is corrupt, {RESAVE}")
    numel = 1
    for n in size:
        numel *= n
    budget.take(name, tensor_name, numel * base.itemsize)
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= base.size:
            raise ModelFormatError(f"{name}: tensor {tensor_name!r} (size {short(size)}, stride {short(stride)}, "
                                   f"offset {short(offset)}) reads element {short(last)} of storage {short(t.storage.key)} which "
                                   f"holds {base.size}; the file is corrupt, {RESAVE}")
    if 0 in size:
        return np.zeros(size, base.dtype)
    # a read-only strided view of the storage, checked above to stay inside it; copied once
    view = np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=[s * base.itemsize for s in stride],
                                           writeable=False)
    return np.array(view, copy=True, order="C")


# ----------------------------------------------------------------------------- interpretation


def _to_ptfile(path, name, obj, storages, budget) -> PtFile:
    for _ in range(2):  # a checkpoint dict holds the state_dict or module one level down
        if isinstance(obj, InertObject):
            if not _is_module(obj):
                raise ModelFormatError(f"{name}: holds a pickled {short(obj.cls.qualname)[1:-1]}, not a state_dict or a "
                                       "torch.nn.Module; save model.state_dict() with torch.save")
            record, flat = _module(name, obj, "", storages, (), budget)
            return PtFile(path, "module", flat, record)
        if isinstance(obj, dict) and obj and all(isinstance(v, TensorRef) for v in obj.values()):
            return PtFile(path, "state_dict", _state_dict(name, obj, storages, budget))
        if isinstance(obj, dict):
            inner = next((k for k in CHECKPOINT_KEYS if k in obj), None)
            if inner is not None:
                obj = obj[inner]
                continue
            if not obj:
                raise ModelFormatError(f"{name}: holds an empty dict; save model.state_dict() with torch.save")
            bad = next(k for k, v in obj.items() if not isinstance(v, TensorRef))
            if any(isinstance(v, TensorRef) for v in obj.values()):
                raise ModelFormatError(f"{name}: state_dict entry {short(bad)} is a {type(obj[bad]).__name__}, "
                                       "not a tensor; save model.state_dict() with torch.save")
            keys = ", ".join(short(k) for k in list(obj)[:6])
            raise ModelFormatError(f"{name}: holds a dict with keys {keys} but no tensors and none of "
                                   f"{', '.join(CHECKPOINT_KEYS)}; save model.state_dict() with torch.save")
        break
    what = "a tensor" if isinstance(obj, TensorRef) else f"a {type(obj).__name__}"
    raise ModelFormatError(f"{name}: holds {what}, not a state_dict or a torch.nn.Module; "
                           "save model.state_dict() with torch.save")


def _state_dict(name, obj, storages, budget):
    out = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ModelFormatError(f"{name}: state_dict key {short(key)} is not a string")
        out[key] = _tensor(name, key, value, storages, budget)
    return out


def _is_module(obj):
    return isinstance(obj, InertObject) and isinstance(obj.state, dict) and "_modules" in obj.state


MAX_PLAIN_ITEMS = 4096  # a hyperparameter is a number, a string or a short tuple


def _plain(value, budget=None):
    """A hyperparameter value as plain data (lists become tuples), or None if it is not plain
    (or too big: the budget keeps a tuple of shared tuples from being walked for ever)."""
    budget = budget if budget is not None else [MAX_PLAIN_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        return None
    if isinstance(value, PLAIN):
        return (value,)
    if isinstance(value, (tuple, list)):
        items = []
        for v in value:
            item = _plain(v, budget)
            if item is None:
                return None
            items.append(item[0])
        return (tuple(items),)
    return None


def _named_tensors(name, prefix, what, table, storages, budget):
    if not isinstance(table, dict):
        raise ModelFormatError(f"{name}: module {prefix or '(root)'!r} has {what} of type {type(table).__name__}")
    out = OrderedDict()
    for key, value in table.items():
        if not isinstance(key, str):
            raise ModelFormatError(f"{name}: module {prefix or '(root)'!r} has a {what[1:]} key {short(key)} "
                                   "that is not a string")
        if value is not None and not isinstance(value, TensorRef):
            raise ModelFormatError(f"{name}: {what[1:-1]} {short(prefix + key)} is a {type(value).__name__}, "
                                   "not a tensor")
        out[key] = None if value is None else _tensor(name, prefix + key, value, storages, budget)
    return out


def _module(name, obj, prefix, storages, path_ids, budget):
    """(ModuleRecord, flat state_dict) for ``obj``; the state_dict follows torch's key order."""
    if len(path_ids) > MAX_MODULE_DEPTH or id(obj) in path_ids:
        raise ModelFormatError(f"{name}: module {prefix.rstrip('.')!r} nests too deep or contains itself")
    state = obj.state
    params = _named_tensors(name, prefix, "_parameters", state.get("_parameters", {}), storages, budget)
    buffers = _named_tensors(name, prefix, "_buffers", state.get("_buffers", {}), storages, budget)
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    if not isinstance(non_persistent, (set, frozenset, list, tuple)):
        raise ModelFormatError(f"{name}: module {prefix or '(root)'!r} has _non_persistent_buffers_set of type "
                               f"{type(non_persistent).__name__}")
    flat = OrderedDict((prefix + k, v) for k, v in params.items() if v is not None)
    flat.update((prefix + k, v) for k, v in buffers.items() if v is not None and k not in non_persistent)
    attrs = {}
    for key, value in state.items():
        plain = _plain(value) if isinstance(key, str) and not key.startswith("_") else None
        if plain is not None:
            attrs[key] = plain[0]
    children = OrderedDict()
    modules = state["_modules"]
    if not isinstance(modules, dict):
        raise ModelFormatError(f"{name}: module {prefix or '(root)'!r} has _modules of type {type(modules).__name__}")
    for key, child in modules.items():
        if not isinstance(key, str):
            raise ModelFormatError(f"{name}: module {prefix or '(root)'!r} has a child named {short(key)}, "
                                   "not a string")
        if child is None:
            continue
        if not _is_module(child):
            what = child.cls.qualname if isinstance(child, InertObject) else type(child).__name__
            raise ModelFormatError(f"{name}: child {short(prefix + str(key))} is a {short(what)[1:-1]}, "
                                   "not a torch.nn.Module")
        children[key], sub = _module(name, child, f"{prefix}{key}.", storages, path_ids + (id(obj),), budget)
        flat.update(sub)
    qualname = obj.cls.qualname
    record = ModuleRecord(qualname, qualname.rsplit(".", 1)[-1], attrs, dict(params), dict(buffers), dict(children))
    return record, flat


__all__ = ["ModuleRecord", "PtFile", "load_pt", "is_torchscript", "open_torchscript"]
