"""Hostile .pt files, class by class: each is planted in the three containers the reader
knows (a torch zip, the legacy stream, a bare pickle), then loaded. Every one must be
refused with a one-line ModelFormatError (UnsafePickleError where something would have been
called) naming the file, and nothing it asks for may run: a marker file must not appear and
no audit event of a process start, code execution or foreign import may fire.

The reduce payloads of test_pt_reader.py (os.system, eval, exec, Popen, open in every
protocol) and its crafted-opcode table are not repeated here; this file adds the containers,
the remaining classes, and the resource bombs (hash, repr, tensor and zip expansion).
"""

import builtins
import importlib
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from pickle_ops import Reduce, global_op, int_op, int_tuple_op, str_op

from edgecnn.converters.pt_reader import load_pt
from edgecnn.errors import ModelFormatError, UnsafePickleError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
WEIGHTS = np.arange(12, dtype=np.float32)
_AUDIT = {"on": False, "events": []}
_WATCHED = ("os.system", "subprocess.Popen", "exec", "compile", "os.exec", "os.posix_spawn",
            "os.spawn", "os.fork", "ctypes.dlopen", "builtins.input", "code.__new__", "import")


def _audit(event, args):
    if _AUDIT["on"] and event.startswith(_WATCHED):
        _AUDIT["events"].append((event, repr(args)[:100]))


sys.addaudithook(_audit)






def _pid(key, numel, storage=("torch", "FloatStorage")):
    return b"(" + str_op("storage") + global_op(*storage) + str_op(key) + str_op("cpu") + int_op(numel) + b"tQ"


def _tensor(key="0", numel=12, size=(12,), stride=(1,), offset=0):
    return (global_op("torch._utils", "_rebuild_tensor_v2") + b"(" + _pid(key, numel) + int_op(offset)
            + int_tuple_op(size) + int_tuple_op(stride) + b"\x89" + global_op("collections", "OrderedDict") + b")RtR")


def _state_dict(entries):
    body = b"".join(str_op(k) + v for k, v in entries)
    return b"\x80\x02" + global_op("collections", "OrderedDict") + b")R(" + body + b"u."


def _zip(path, pkl, storages=None, extra=()):
    storages = {"0": WEIGHTS.tobytes()} if storages is None else storages
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
        for name, raw in extra:
            zf.writestr(name, raw)
    return str(path)


def _legacy(path, pkl, storages=None):
    storages = {"0": WEIGHTS.tobytes()} if storages is None else storages
    parts = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(1001, 2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2), pkl,
             pickle.dumps(sorted(storages), 2)]
    for key in sorted(storages):
        parts += [struct.pack("<q", len(storages[key]) // 4), storages[key]]
    path.write_bytes(b"".join(parts))
    return str(path)


def _bare(path, pkl, storages=None):
    path.write_bytes(pkl)
    return str(path)


CONTAINERS = {"zip": _zip, "legacy": _legacy, "bare": _bare}


@pytest.fixture
def guard(tmp_path):
    """Loads a file with the audit hook on; fails if a watched event fired or the marker exists."""
    marker = tmp_path / "pwned"
    load_pt(os.path.join(os.path.dirname(__file__), "fixtures", "pt", "dtypes_state_dict.pt"))
    "warm".encode("cp437")  # zipfile decodes non-UTF-8 names with it: imported before the hook

    def load(path):
        _AUDIT["events"].clear()
        _AUDIT["on"] = True
        try:
            return load_pt(path)
        finally:
            _AUDIT["on"] = False

    yield str(marker), load
    assert not marker.exists(), "a pickle ran code"
    assert not _AUDIT["events"], f"audit events during load: {_AUDIT['events']}"


def _one_line(err, name):
    text = str(err.value)
    assert "\n" not in text and name in text, text
    return text


def _dumps(obj):
    return pickle.dumps(obj, protocol=2)


def _cmd(marker):
    return f"touch {marker}"


# class -> (payload builder(marker), error class, text the message must hold)
HOSTILE = {
    "reduce_os_system": (lambda m: _dumps({"w": Reduce(os.system, (_cmd(m),))}),
                         UnsafePickleError, "system"),
    "reduce_subprocess_check_output": (
        lambda m: _dumps([Reduce(subprocess.check_output, (["touch", m],))]),
        UnsafePickleError, "subprocess.check_output"),
    "reduce_eval": (lambda m: _dumps(Reduce(builtins.eval, (f"open({m!r}, 'w')",))),
                    UnsafePickleError, "builtins.eval"),
    "reduce_exec": (lambda m: _dumps(Reduce(builtins.exec, (f"open({m!r}, 'w')",))),
                    UnsafePickleError, "builtins.exec"),
    "reduce_compile": (lambda m: _dumps(Reduce(builtins.compile, ("1", "f", "eval"))),
                       UnsafePickleError, "builtins.compile"),
    "reduce___import__": (lambda m: b"\x80\x02" + global_op("builtins", "__import__") + b"(" + str_op("os") + b"tR.",
                          UnsafePickleError, "builtins.__import__"),
    "importlib_import_module": (lambda m: _dumps(Reduce(importlib.import_module, ("os",))),
                                UnsafePickleError, "importlib.import_module"),
    "getattr_chain": (lambda m: b"\x80\x02" + global_op("builtins", "getattr") + b"(" + global_op("os", "path")
                      + str_op("join") + b"tR(" + str_op(m) + b"tR.", UnsafePickleError, "builtins.getattr"),
    "pickled_function": (lambda m: _dumps({"w": os.system}), ModelFormatError, "no tensors"),
    "pickled_class": (lambda m: _dumps({"w": subprocess.Popen}), ModelFormatError, "no tensors"),
    "global_as_state_dict_value": (lambda m: _state_dict([("w", global_op("os", "system"))]),
                                   ModelFormatError, "no tensors"),
    "newobj_of_os_system": (lambda m: b"\x80\x02" + global_op("os", "system") + b"(" + str_op(_cmd(m)) + b"t\x81.",
                            ModelFormatError, "holds a pickled os.system"),
    "stack_global_non_string": (lambda m: b"\x80\x04" + int_op(7) + str_op("system") + b"\x93.",
                                ModelFormatError, "must name a module"),
    "nested_global_in_safe_call": (lambda m: b"\x80\x02" + global_op("collections", "OrderedDict") + b"((" + str_op("a")
                                   + global_op("os", "system") + b"(" + str_op(_cmd(m)) + b"tRtltR.",
                                   UnsafePickleError, "os.system"),
    "inst_opcode": (lambda m: b"(S'" + _cmd(m).encode() + b"'\nisubprocess\ngetoutput\n.",
                    UnsafePickleError, "subprocess.getoutput"),
    "obj_opcode": (lambda m: b"(" + global_op("subprocess", "getoutput") + b"S'" + _cmd(m).encode() + b"'\no.",
                   UnsafePickleError, "subprocess.getoutput"),
    "build_on_a_global": (lambda m: b"\x80\x02" + global_op("os", "system") + b"}b.", ModelFormatError,
                          "BUILD on a ClassRef"),
    "build_setstate_on_record": (lambda m: b"\x80\x02" + global_op("__main__", "Evil") + b")\x81}(" + str_op("__setstate__")
                                 + global_op("os", "system") + b"ub.", ModelFormatError, "holds a pickled __main__.Evil"),
    "reduce_on_safe_callable_result": (lambda m: b"\x80\x02" + global_op("collections", "OrderedDict") + b")R(" + str_op(_cmd(m))
                                       + b"tR.", UnsafePickleError, "OrderedDict"),
    "ext_registry_opcode": (lambda m: b"\x80\x02\x83\x01\x00.", UnsafePickleError, "EXT2"),
    "out_of_band_buffer": (lambda m: b"\x80\x05\x97.", ModelFormatError, "out-of-band"),
}


@pytest.mark.parametrize("container", sorted(CONTAINERS))
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path, guard, name, container):
    marker, load = guard
    build, error, text = HOSTILE[name]
    path = CONTAINERS[container](tmp_path / f"{name}.pt", build(marker), {})
    if container == "bare":  # read safely to its end (or not at all: no pickle header), then
        error = ModelFormatError  # "not a PyTorch checkpoint" unless something was refused
    with pytest.raises(error) as err:
        load(path)
    message = _one_line(err, f"{name}.pt")
    assert text in message or (container == "bare" and "not a PyTorch checkpoint" in message)


# ----------------------------------------------------------------------------- persistent ids


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "0/../../x", "data/0", ""])
def test_persistent_id_outside_the_archive_is_refused(tmp_path, guard, key):
    _, load = guard
    pkl = _state_dict([("w", _tensor(key=key))])
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "pid.pt", pkl, {"0": WEIGHTS.tobytes()}))
    assert "the archive has no data/" in _one_line(err, "pid.pt")


@pytest.mark.parametrize("pid,text", [
    (b"S'../etc/passwd'\n", "unexpected persistent id"),  # a bare string id
    (b"(" + str_op("module") + global_op("__main__", "Net") + str_op("src") + str_op("x") + b"t", "unexpected persistent id"),
    (b"(" + str_op("storage") + global_op("os", "system") + str_op("0") + str_op("cpu") + int_op(12) + b"t", "not a torch storage type"),
    (b"(" + str_op("storage") + global_op("torch", "FloatStorage") + str_op("0") + str_op("cpu") + int_op(-1) + b"t", "malformed"),
])
def test_malformed_persistent_ids_are_refused(tmp_path, guard, pid, text):
    _, load = guard
    pkl = b"\x80\x02" + pid + b"Q."
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "pid.pt", pkl))
    assert text in _one_line(err, "pid.pt")


def test_persistent_id_in_a_bare_pickle_is_refused(tmp_path, guard):
    _, load = guard
    with pytest.raises(ModelFormatError) as err:
        load(_bare(tmp_path / "bare.pt", _state_dict([("w", _tensor())])))
    assert "not a PyTorch checkpoint" in _one_line(err, "bare.pt")


# ----------------------------------------------------------------------------- zip members


@pytest.mark.parametrize("member", ["..\\evil", "C:evil", "archive/data/../../../evil", "\\abs"])
def test_more_zip_member_paths_are_refused(tmp_path, guard, member):
    _, load = guard
    path = _zip(tmp_path / "m.pt", _state_dict([("w", _tensor())]), extra=[(member, b"x")])
    with pytest.raises(ModelFormatError) as err:
        load(path)
    assert "refuses zip member" in _one_line(err, "m.pt")


def test_zip_header_declaring_a_huge_size_is_refused_before_reading(tmp_path, guard):
    _, load = guard
    path = tmp_path / "lie.pt"
    _zip(path, _state_dict([("w", _tensor())]))
    blob = bytearray(path.read_bytes())
    cd = blob.rfind(b"PK\x01\x02")  # the last central directory entry: archive/data/0
    blob[cd + 24:cd + 28] = struct.pack("<I", 0xFFFFFFF0)  # its uncompressed size
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelFormatError) as err:
        load(str(path))
    assert "zip bomb" in _one_line(err, "lie.pt")


def test_encrypted_zip_member_is_a_format_error(tmp_path, guard):
    _, load = guard
    path = tmp_path / "enc.pt"
    _zip(path, _state_dict([("w", _tensor())]))
    blob = bytearray(path.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag bit everywhere
        at = blob.find(sig)
        while at >= 0:
            flag = 6 if sig == b"PK\x03\x04" else 8
            blob[at + flag] |= 1
            at = blob.find(sig, at + 4)
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelFormatError) as err:
        load(str(path))
    _one_line(err, "enc.pt")


# ----------------------------------------------------------------------------- storages and shapes


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("size,stride,offset,storage_bytes", [
    ((12,), (1,), 0, 47),  # one byte short of 12 floats
    ((4, 3), (3, 1), 1, 48),  # the last element is one past the storage
    ((3, 4), (1, 3), 0, 40),  # transposed view reaching past a short storage
])
def test_storage_shorter_than_shape_and_strides(tmp_path, guard, container, size, stride, offset, storage_bytes):
    _, load = guard
    pkl = _state_dict([("layer.weight", _tensor(size=size, stride=stride, offset=offset))])
    raw = bytes(range(256))[:storage_bytes] if storage_bytes < 256 else bytes(storage_bytes)
    path = CONTAINERS[container](tmp_path / "short.pt", pkl, {"0": raw})
    with pytest.raises(ModelFormatError) as err:
        load(path)
    _one_line(err, "short.pt")


def test_expanded_tensor_beyond_any_memory_is_refused(tmp_path, guard):
    _, load = guard
    pkl = _state_dict([("w", _tensor(size=(1 << 20, 1 << 20), stride=(0, 0)))])
    start = time.monotonic()
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "expand.pt", pkl))
    assert "'w'" in _one_line(err, "expand.pt") and time.monotonic() - start < 2


def test_one_tensor_named_a_million_times_is_refused(tmp_path, guard):
    _, load = guard
    big = np.zeros(1 << 18, np.float32).tobytes()  # 1 MB storage
    body = str_op("k0") + _tensor(numel=1 << 18, size=(1 << 18,)) + b"q\x01"
    body += b"".join(str_op(f"k{i}") + b"h\x01" for i in range(1, 20_000))  # memo GETs: 20 GB if copied
    pkl = b"\x80\x02" + global_op("collections", "OrderedDict") + b")R(" + body + b"u."
    start = time.monotonic()
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "many.pt", pkl, {"0": big}))
    assert "size" in _one_line(err, "many.pt") and time.monotonic() - start < 10


def test_tied_weights_still_load(tmp_path, guard):
    _, load = guard
    pkl = _state_dict([("a", _tensor() + b"q\x01"), ("b", b"h\x01")])
    sd = load(_zip(tmp_path / "tied.pt", pkl)).state_dict
    np.testing.assert_array_equal(sd["a"], WEIGHTS)
    np.testing.assert_array_equal(sd["b"], WEIGHTS)
    assert not np.shares_memory(sd["a"], sd["b"])


# ----------------------------------------------------------------------------- CPU bombs


def _shared_tuple_tower(levels):
    """t0 = (); t{k+1} = (t{k}, t{k}): a few bytes per level, 2**levels nodes when walked."""
    out = b")q\x00"
    for k in range(levels):
        out += b"0h" + bytes([k]) + b"h" + bytes([k]) + b"\x86q" + bytes([k + 1])  # POP, (tk, tk)
    return out


@pytest.mark.parametrize("where", ["dict_key", "set_member", "frozenset", "ordered_dict_key",
                                   "persistent_id", "torch_size"])
def test_shared_structure_bombs_finish_fast(tmp_path, guard, where):
    _, load = guard
    tower = _shared_tuple_tower(90)
    payload = {
        "dict_key": b"}" + tower + b"K\x01s",
        "set_member": b"\x8f(" + tower + b"\x90",
        "frozenset": b"(" + tower + b"\x91",
        "ordered_dict_key": global_op("collections", "OrderedDict") + b"((" + tower + b"K\x01tltR",
        "persistent_id": tower + b"Q",
        "torch_size": global_op("torch", "Size") + b"(" + tower + b"tR",
    }[where]
    start = time.monotonic()
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "bomb.pt", b"\x80\x04" + payload + b"."))
    text = _one_line(err, "bomb.pt")
    assert time.monotonic() - start < 5 and len(text) < 1000


def test_module_attribute_tower_loads_without_the_attribute(tmp_path, guard):
    _, load = guard
    pkl = b"\x80\x04" + global_op("m", "Net") + b")\x81}(" + str_op("_modules") + b"}" + str_op("width") + int_op(3) + str_op("bomb") \
        + _shared_tuple_tower(90) + b"ub."
    start = time.monotonic()
    pt = load(_zip(tmp_path / "attr.pt", pkl))
    assert pt.module.attrs == {"width": 3} and time.monotonic() - start < 5


def test_non_string_parameter_key_is_a_format_error(tmp_path, guard):
    _, load = guard
    pkl = (b"\x80\x02" + global_op("m", "Net") + b")\x81}(" + str_op("_parameters") + b"}" + int_op(3) + _tensor()
           + b"s" + str_op("_modules") + b"}ub.")
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "key.pt", pkl))
    assert "not a string" in _one_line(err, "key.pt")


def test_non_persistent_set_of_the_wrong_type_is_a_format_error(tmp_path, guard):
    _, load = guard
    pkl = (b"\x80\x02" + global_op("m", "Net") + b")\x81}(" + str_op("_modules") + b"}" + str_op("_non_persistent_buffers_set")
           + global_op("m", "Thing") + b")\x81ub.")
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "np.pt", pkl))
    assert "_non_persistent_buffers_set" in _one_line(err, "np.pt")


def _huge_int():
    raw = (10 ** 5000).to_bytes(2100, "little", signed=True)
    return b"\x8b" + struct.pack("<i", len(raw)) + raw  # LONG4: past str()'s 4300-digit limit


@pytest.mark.parametrize("where", ["offset", "child_name", "state_dict_key", "numel"])
def test_ints_too_long_to_print_still_give_a_one_line_error(tmp_path, guard, where):
    _, load = guard
    big = _huge_int()
    pkl = {
        "offset": _state_dict([("w", _tensor()[:-len(int_op(0) + int_tuple_op((12,)) + int_tuple_op((1,)) + b"\x89"
                                                     + global_op("collections", "OrderedDict") + b")RtR")]
                               + big + int_tuple_op((12,)) + int_tuple_op((1,)) + b"\x89"
                               + global_op("collections", "OrderedDict") + b")RtR")]),
        "child_name": b"\x80\x02" + global_op("m", "Net") + b")\x81}(" + str_op("_modules") + b"}" + big
                      + global_op("m", "Net") + b")\x81}" + str_op("_modules") + b"}sbsub.",
        "state_dict_key": b"\x80\x02}" + big + int_op(1) + b"s.",
        "numel": _state_dict([("w", global_op("torch._utils", "_rebuild_tensor_v2") + b"(" + b"(" + str_op("storage")
                               + global_op("torch", "FloatStorage") + str_op("0") + str_op("cpu") + big + b"tQ" + int_op(0)
                               + int_tuple_op((12,)) + int_tuple_op((1,)) + b"\x89" + global_op("collections", "OrderedDict")
                               + b")RtR")]),
    }[where]
    with pytest.raises(ModelFormatError) as err:
        load(_zip(tmp_path / "bigint.pt", pkl))
    assert len(_one_line(err, "bigint.pt")) < 1000
