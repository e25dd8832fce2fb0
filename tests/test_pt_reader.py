"""The .pt reader: fixtures written by torch (tests/fixtures/make_pt_fixtures.py) load bit for
bit without torch; hostile pickles written here are refused before anything runs."""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from pickle_ops import Reduce, global_op, int_op, int_tuple_op, str_op

from edgecnn.converters._safe_pickle import SafeUnpickler
from edgecnn.converters.pt_reader import ModuleRecord, PtFile, load_pt
from edgecnn.errors import InputFileError, ModelFormatError, UnsafePickleError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "pt")
MANIFEST = json.load(open(os.path.join(FIXTURES, "manifest.json")))
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _expected(name):
    with np.load(os.path.join(FIXTURES, MANIFEST["fixtures"][name]["npz"] + ".npz")) as z:
        return OrderedDict((k, z[k]) for k in z.files)


def _assert_same(got, want):
    assert list(got) == list(want)
    for key in want:
        a, b = got[key], want[key]
        assert (a.dtype, a.shape) == (b.dtype, b.shape), key
        if a.tobytes() != b.tobytes():
            idx = np.argwhere(a.reshape(-1).view(np.uint8) != b.reshape(-1).view(np.uint8))[0]
            pytest.fail(f"{key}: first differing byte {idx}: {a.reshape(-1)[:4]} vs {b.reshape(-1)[:4]}")


def _one_line(err, name):
    text = str(err.value)
    assert "\n" not in text and name in text, text
    return text


# ----------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("name", sorted(MANIFEST["fixtures"]))
def test_fixture_loads_exactly(name):
    pt = load_pt(os.path.join(FIXTURES, name + ".pt"))
    assert isinstance(pt, PtFile) and pt.kind == MANIFEST["fixtures"][name]["kind"]
    _assert_same(pt.state_dict, _expected(name))
    for arr in pt.state_dict.values():
        assert arr.flags.c_contiguous and arr.flags.writeable and arr.flags.owndata
    assert (pt.module is not None) == (pt.kind == "module")


def test_fixtures_have_provenance_and_stay_small():
    assert MANIFEST["provenance"].startswith("torch 2.") and "make_pt_fixtures.py" in MANIFEST["provenance"]
    total = sum(os.path.getsize(os.path.join(FIXTURES, f)) for f in os.listdir(FIXTURES))
    assert total < 2_000_000


def test_dtypes_bfloat16_strided_offset():
    sd = load_pt(os.path.join(FIXTURES, "dtypes_state_dict.pt")).state_dict
    assert {k: str(v.dtype) for k, v in sd.items() if k in ("f16", "f64", "i64", "flags", "bf16", "u8")} == {
        "f16": "float16", "f64": "float64", "i64": "int64", "flags": "bool", "bf16": "float32", "u8": "uint8"}
    base = np.arange(48, dtype=np.float32).reshape(6, 8) * 0.5 - 3
    np.testing.assert_array_equal(sd["transposed"], base.T)
    np.testing.assert_array_equal(sd["strided"], base[::2, 1::3])
    np.testing.assert_array_equal(sd["offset"], base[2:4])
    assert sd["scalar"].shape == () and sd["scalar"] == 2.5 and sd["empty"].shape == (0, 3)


@pytest.mark.parametrize("name,location", [("cuda0_state_dict", b"cuda:0"), ("mps_legacy_state_dict", b"mps")])
def test_gpu_device_tags_load(name, location):
    path = os.path.join(FIXTURES, name + ".pt")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            blob = zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))
    else:
        blob = open(path, "rb").read()
    assert location in blob
    _assert_same(load_pt(path).state_dict, _expected(name))


def _types(record):
    return [c.type_name for c in record.children.values()]


def test_lenet5_module_record():
    m = load_pt(os.path.join(FIXTURES, "lenet5_module.pt")).module
    assert isinstance(m, ModuleRecord)
    assert (m.qualname, m.type_name) == ("__main__.LeNet5", "LeNet5")
    assert list(m.children) == ["features", "flatten", "classifier"]
    feats, cls = m.children["features"], m.children["classifier"]
    assert feats.qualname == "torch.nn.modules.container.Sequential"
    assert list(feats.children) == [str(i) for i in range(6)]
    assert _types(feats) == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d"]
    assert _types(cls) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    conv = feats.children["0"]
    assert conv.qualname == "torch.nn.modules.conv.Conv2d"
    assert {k: conv.attrs[k] for k in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                                       "dilation", "groups", "padding_mode")} == {
        "in_channels": 1, "out_channels": 6, "kernel_size": (5, 5), "stride": (1, 1), "padding": (0, 0),
        "dilation": (1, 1), "groups": 1, "padding_mode": "zeros"}
    assert list(conv.parameters) == ["weight", "bias"] and conv.parameters["weight"].shape == (6, 1, 5, 5)
    pool = feats.children["2"]
    assert [pool.attrs[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")] == [2, 2, 0, False]
    assert (cls.children["0"].attrs["in_features"], cls.children["0"].attrs["out_features"]) == (400, 120)
    assert m.children["flatten"].attrs["start_dim"] == 1
    assert all(not k.startswith("_") for k in conv.attrs)
    np.testing.assert_array_equal(conv.parameters["weight"], _expected("lenet5_module")["features.0.weight"])


def test_batchnorm_module_keeps_eps_momentum_and_running_stats():
    pt = load_pt(os.path.join(FIXTURES, "lenet5s_bn_module.pt"))
    feats = pt.module.children["features"]
    assert _types(feats) == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    bn1, bn2 = feats.children["1"], feats.children["5"]
    assert (bn1.attrs["eps"], bn1.attrs["momentum"], bn1.attrs["num_features"]) == (1e-5, 0.1, 6)
    assert (bn2.attrs["eps"], bn2.attrs["momentum"], bn2.attrs["num_features"]) == (1e-3, 0.05, 16)
    assert list(bn1.buffers) == ["running_mean", "running_var", "num_batches_tracked"]
    assert int(bn1.buffers["num_batches_tracked"]) == 3
    assert np.abs(bn1.buffers["running_mean"]).max() > 0 and not np.all(bn1.buffers["running_var"] == 1)
    assert "features.1.running_var" in pt.state_dict
    _assert_same(load_pt(os.path.join(FIXTURES, "lenet5s_bn_state_dict.pt")).state_dict, pt.state_dict)


def test_tanh_avgpool_module():
    m = load_pt(os.path.join(FIXTURES, "lenet5s_tanh_avg_module.pt")).module
    assert _types(m.children["features"]) == ["Conv2d", "Tanh", "AvgPool2d", "Conv2d", "Tanh", "AvgPool2d"]
    pool = m.children["features"].children["2"]
    assert pool.qualname == "torch.nn.modules.pooling.AvgPool2d"
    assert (pool.attrs["kernel_size"], pool.attrs["count_include_pad"], pool.attrs["ceil_mode"]) == (2, True, False)


def test_sequential_module_hyperparameters():
    pt = load_pt(os.path.join(FIXTURES, "sequential_module.pt"))
    m = pt.module
    assert m.type_name == "Sequential" and list(m.children) == [str(i) for i in range(7)]
    conv, bn, relu6, gap, flat, drop, fc = m.children.values()
    assert (conv.attrs["stride"], conv.attrs["padding"]) == ((2, 2), (1, 1))
    assert conv.parameters["bias"] is None and "0.bias" not in pt.state_dict
    assert relu6.type_name == "ReLU6" and relu6.attrs["inplace"] is True
    assert gap.attrs["output_size"] == (1, 1) and flat.attrs["start_dim"] == 1
    assert drop.attrs["p"] == 0.25 and fc.attrs["in_features"] == 4


@pytest.mark.parametrize("key", ["state_dict", "model", "model_state_dict"])
def test_checkpoint_dicts_unwrap(key):
    pt = load_pt(os.path.join(FIXTURES, f"ckpt_{key}.pt"))
    assert pt.kind == "state_dict" and list(pt.state_dict)[0] == "features.0.weight"


def test_checkpoint_holding_a_full_module():
    pt = load_pt(os.path.join(FIXTURES, "ckpt_model_module.pt"))
    assert pt.kind == "module" and pt.module.type_name == "LeNet5"
    _assert_same(pt.state_dict, load_pt(os.path.join(FIXTURES, "lenet5s_module_legacy.pt")).state_dict)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_scalars_in_a_checkpoint(tmp_path, protocol):
    extras = {"best_acc": np.float64(0.98), "step": np.int64(-7), "lr": np.float32(1e-3), "ok": np.bool_(True)}
    got = SafeUnpickler(pickle.dumps(extras, protocol), "x").load()
    assert got == extras and [type(v) for v in got.values()] == [type(v) for v in extras.values()]
    with pytest.raises(UnsafePickleError):  # numpy arrays go through a REDUCE we do not allow
        SafeUnpickler(pickle.dumps(np.zeros(2), protocol), "x").load()


def test_reader_never_imports_torch(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from edgecnn.converters.pt_reader import load_pt\n"
            f"pt = load_pt({os.path.join(FIXTURES, 'lenet5_module.pt')!r})\n"
            "assert pt.module.type_name == 'LeNet5'\n"
            "assert not [m for m in sys.modules if m.startswith('torch.')]\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


@pytest.mark.parametrize("protocol", range(6))
def test_plain_pickles_round_trip_through_the_opcode_loop(protocol):
    obj = {"a": [1, -2, 2**70, 3.5, "x\n'\"", b"\x00\xff", b"", None, True], "t": (1, (2, 3), ()),
           "od": OrderedDict(b=1, a=2), "s": {1, 2}, "f": frozenset({3}), "sl": slice(1, 9, 2),
           "ba": bytearray(b"ab"), "big": list(range(1500))}
    assert SafeUnpickler(pickle.dumps(obj, protocol=protocol), "x").load() == obj


# ----------------------------------------------------------------------------- hand-written torch pickles






def _tensor(key, numel, size, stride, offset=0, storage=("torch", "FloatStorage")):
    pid = b"(" + str_op("storage") + global_op(*storage) + str_op(key) + str_op("cpu") + int_op(numel) + b"tQ"
    return (global_op("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + int_op(offset) + int_tuple_op(size) + int_tuple_op(stride)
            + b"\x89" + global_op("collections", "OrderedDict") + b")Rt" + b"R")


def _state_dict_pickle(entries):
    """protocol-2 bytes of OrderedDict(entries), entries given as already-pickled values."""
    body = b"".join(str_op(k) + v for k, v in entries)
    return b"\x80\x02" + global_op("collections", "OrderedDict") + b")R(" + body + b"u."


def _zip(path, pkl, storages, extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
        for name, raw in extra:
            zf.writestr(name, raw)
    return str(path)


def _legacy(path, pkl, storages, element_size=4):
    parts = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(1001, 2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2), pkl, pickle.dumps(sorted(storages), 2)]
    for key in sorted(storages):
        parts += [struct.pack("<q", len(storages[key]) // element_size), storages[key]]
    path.write_bytes(b"".join(parts))
    return str(path)


WEIGHTS = np.arange(12, dtype=np.float32)


def test_hand_written_zip_and_legacy_load(tmp_path):
    pkl = _state_dict_pickle([("w", _tensor("0", 12, (3, 2), (1, 3), offset=2))])
    want = np.lib.stride_tricks.as_strided(WEIGHTS[2:], (3, 2), (4, 12))
    for path in (_zip(tmp_path / "a.pt", pkl, {"0": WEIGHTS.tobytes()}),
                 _legacy(tmp_path / "b.pt", pkl, {"0": WEIGHTS.tobytes()})):
        np.testing.assert_array_equal(load_pt(path).state_dict["w"], want)


def test_untyped_storage_is_bytes(tmp_path):
    pkl = _state_dict_pickle([("w", _tensor("0", 4, (4,), (1,), storage=("torch", "UntypedStorage")))])
    got = load_pt(_zip(tmp_path / "u.pt", pkl, {"0": b"\x01\x02\x03\xff"})).state_dict["w"]
    assert got.dtype == np.uint8 and got.tolist() == [1, 2, 3, 255]


def test_big_endian_byteorder_record(tmp_path):
    pkl = _state_dict_pickle([("w", _tensor("0", 12, (12,), (1,)))])
    path = tmp_path / "be.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model/data.pkl", pkl)
        zf.writestr("model/byteorder", "big")
        zf.writestr("model/data/0", WEIGHTS.astype(">f4").tobytes())
    got = load_pt(path).state_dict["w"]
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, WEIGHTS)


def test_tensor_subclass_and_parameter_wrappers(tmp_path):
    plain = _tensor("0", 12, (2, 6), (6, 1))
    subclass = (global_op("torch._tensor", "_rebuild_from_type_v2") + b"(" + global_op("torch._utils", "_rebuild_tensor_v2")
                + global_op("torch", "Tensor") + plain[len(global_op("torch._utils", "_rebuild_tensor_v2")):-1] + b"}tR")
    param = global_op("torch._utils", "_rebuild_parameter_with_state") + b"(" + plain + b"\x88" + global_op(
        "collections", "OrderedDict") + b")R}tR"
    pkl = _state_dict_pickle([("a", subclass), ("b", param)])
    sd = load_pt(_zip(tmp_path / "wrap.pt", pkl, {"0": WEIGHTS.tobytes()})).state_dict
    np.testing.assert_array_equal(sd["a"], WEIGHTS.reshape(2, 6))
    np.testing.assert_array_equal(sd["b"], WEIGHTS.reshape(2, 6))


@pytest.mark.parametrize("size,stride,offset", [
    ((4, 4), (4, 1), 0), ((12,), (1,), 1), ((3,), (6,), 0), ((3,), (-1,), 5), ((2,), (1,), -1)])
def test_tensor_outside_its_storage_is_refused(tmp_path, size, stride, offset):
    pkl = _state_dict_pickle([("layer.weight", _tensor("0", 12, size, stride, offset))])
    with pytest.raises(ModelFormatError) as err:
        load_pt(_zip(tmp_path / "oob.pt", pkl, {"0": WEIGHTS.tobytes()}))
    assert "'layer.weight'" in _one_line(err, "oob.pt")


def test_persistent_id_to_a_missing_key_is_refused(tmp_path):
    pkl = _state_dict_pickle([("w", _tensor("7", 12, (12,), (1,)))])
    with pytest.raises(ModelFormatError) as err:
        load_pt(_zip(tmp_path / "miss.pt", pkl, {"0": WEIGHTS.tobytes()}))
    assert "'7'" in _one_line(err, "miss.pt")
    with pytest.raises(ModelFormatError) as err:
        load_pt(_legacy(tmp_path / "miss_legacy.pt", pkl, {"0": WEIGHTS.tobytes()}))
    assert "'7'" in _one_line(err, "miss_legacy.pt")


def test_storage_shorter_than_declared_is_refused(tmp_path):
    pkl = _state_dict_pickle([("w", _tensor("0", 12, (12,), (1,)))])
    with pytest.raises(ModelFormatError) as err:
        load_pt(_zip(tmp_path / "short.pt", pkl, {"0": WEIGHTS[:5].tobytes()}))
    _one_line(err, "short.pt")


def test_legacy_storage_size_beyond_the_file_is_refused(tmp_path):
    pkl = _state_dict_pickle([("w", _tensor("0", 12, (12,), (1,)))])
    path = _legacy(tmp_path / "huge.pt", pkl, {"0": WEIGHTS.tobytes()})
    blob = open(path, "rb").read()
    at = len(blob) - WEIGHTS.nbytes - 8
    open(path, "wb").write(blob[:at] + struct.pack("<q", 2**40) + blob[at + 8:])
    with pytest.raises(ModelFormatError) as err:
        load_pt(path)
    assert "declares" in _one_line(err, "huge.pt")


@pytest.mark.parametrize("member", ["../evil", "/etc/evil", "archive/../../evil"])
def test_zip_member_paths_are_checked(tmp_path, member):
    pkl = _state_dict_pickle([("w", _tensor("0", 12, (12,), (1,)))])
    with pytest.raises(ModelFormatError) as err:
        load_pt(_zip(tmp_path / "path.pt", pkl, {"0": WEIGHTS.tobytes()}, extra=[(member, b"x")]))
    assert "refuses zip member" in _one_line(err, "path.pt")


def test_zip_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", _state_dict_pickle([]))
        zf.writestr("archive/data/0", bytes(40 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(ModelFormatError) as err:
        load_pt(path)
    assert "zip bomb" in _one_line(err, "bomb.pt")


# ----------------------------------------------------------------------------- hostile pickles


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield str(path)
    assert not path.exists(), "a pickle ran code"


def _hostile(marker):
    import builtins

    return {
        "os.system": Reduce(os.system, (f"touch {marker}",)),
        "builtins.eval": Reduce(builtins.eval, (f"open({marker!r}, 'w')",)),
        "builtins.exec": Reduce(builtins.exec, (f"open({marker!r}, 'w')",)),
        "subprocess.Popen": Reduce(subprocess.Popen, (["touch", marker],)),
        "builtins.open": Reduce(builtins.open, (marker, "w")),
    }


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("glob", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "builtins.open"])
def test_reduce_globals_are_refused_in_any_protocol(tmp_path, marker, protocol, glob):
    evil = _hostile(marker)[glob]
    glob = f"{evil.func.__module__}.{evil.func.__qualname__}"  # os.system is posix.system on Linux
    payload = pickle.dumps(OrderedDict(weight=[1.0], extra={"nested": [evil]}), protocol=protocol)
    with pytest.raises(UnsafePickleError) as err:
        load_pt(_zip(tmp_path / "evil.pt", payload, {}))
    text = _one_line(err, "evil.pt")
    assert f"refuses to call {glob}" in text and "edgecnn loads only tensors" in text


@pytest.mark.parametrize("container", ["zip", "legacy", "bare"])
def test_evil_entry_inside_a_real_state_dict(tmp_path, marker, container):
    evil = global_op("os", "system") + b"(" + str_op(f"touch {marker}") + b"tR"
    pkl = _state_dict_pickle([("w", _tensor("0", 12, (12,), (1,))), ("bias", evil)])
    path = {"zip": lambda: _zip(tmp_path / "sd.pt", pkl, {"0": WEIGHTS.tobytes()}),
            "legacy": lambda: _legacy(tmp_path / "sd.pt", pkl, {"0": WEIGHTS.tobytes()}),
            "bare": lambda: (tmp_path / "sd.pt").write_bytes(pkl) and str(tmp_path / "sd.pt")}[container]()
    with pytest.raises(UnsafePickleError) as err:
        load_pt(path)
    assert "refuses to call os.system" in _one_line(err, "sd.pt")  # as the pickle spells it


def test_evil_object_in_legacy_header_pickles(tmp_path, marker):
    evil = pickle.dumps(_hostile(marker)["subprocess.Popen"], 2)
    path = tmp_path / "hdr.pt"
    path.write_bytes(pickle.dumps(LEGACY_MAGIC, 2) + pickle.dumps(1001, 2) + evil)
    with pytest.raises(UnsafePickleError) as err:
        load_pt(path)
    assert "subprocess.Popen" in _one_line(err, "hdr.pt")


CRAFTED = {
    # name: (payload builder taking the shell command, the global the error must name)
    # getattr(__import__("os"), "system")(cmd): the first call is refused
    "getattr_chain": (lambda cmd: b"\x80\x02" + global_op("builtins", "getattr") + b"(" + global_op("builtins", "__import__") + b"("
                      + str_op("os") + b"tR" + str_op("system") + b"tR(" + str_op(cmd) + b"tR.", "builtins.__import__"),
    "getattr_on_class": (lambda cmd: b"\x80\x02" + global_op("builtins", "getattr") + b"(" + global_op("os", "path") + str_op("join")
                         + b"tR.", "builtins.getattr"),
    "importlib": (lambda cmd: b"\x80\x02" + global_op("importlib", "import_module") + b"(" + str_op("os") + b"tR.",
                  "importlib.import_module"),
    "stack_global": (lambda cmd: b"\x80\x04" + str_op("os") + str_op("system") + b"\x93(" + str_op(cmd) + b"tR.", "os.system"),
    "inst": (lambda cmd: b"(S'" + cmd.encode() + b"'\nios\nsystem\n.", "os.system"),
    "obj": (lambda cmd: b"(cos\nsystem\nS'" + cmd.encode() + b"'\no.", "os.system"),
    "rebuild_from_type": (lambda cmd: b"\x80\x02" + global_op("torch._tensor", "_rebuild_from_type_v2") + b"("
                          + global_op("os", "system") + global_op("torch", "Tensor") + b"(" + str_op(cmd) + b"t}tR.", "os.system"),
    "reduce_on_record": (lambda cmd: b"\x80\x02" + global_op("__main__", "Net") + b")\x81(" + str_op(cmd) + b"tR.",
                         "__main__.Net"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_opcodes_are_refused(tmp_path, marker, name):
    build, glob = CRAFTED[name]
    with pytest.raises(UnsafePickleError) as err:
        load_pt(_zip(tmp_path / f"{name}.pt", build(f"touch {marker}"), {}))
    assert glob in _one_line(err, f"{name}.pt")


def test_deep_nesting_is_a_format_error(tmp_path):
    deep_tuple = b")" + b"\x85" * 100_000  # ((((...),),),): fine for the loop, too deep for the reader
    module = global_op("m", "Net") + b")\x81}(" + str_op("_modules") + b"}" + str_op("deep") + deep_tuple + b"ub."
    with pytest.raises(ModelFormatError) as err:
        load_pt(_zip(tmp_path / "deep.pt", b"\x80\x02" + module, {}))
    assert "too deeply" in _one_line(err, "deep.pt")
    deep_list = b"\x80\x02]" + b"(]" * 100_000 + b"e" * 100_000 + b"."
    with pytest.raises(ModelFormatError) as err:
        load_pt(_zip(tmp_path / "list.pt", deep_list, {}))
    assert "holds a list" in _one_line(err, "list.pt")


def test_extension_opcodes_are_refused(tmp_path):
    with pytest.raises(UnsafePickleError) as err:
        load_pt(_zip(tmp_path / "ext.pt", b"\x80\x02\x82\x01.", {}))
    assert "EXT1" in _one_line(err, "ext.pt")


def test_inert_records_of_user_classes_are_not_called(tmp_path):
    # NEWOBJ + BUILD of a class that does not exist anywhere: fine as data, since nothing is imported
    module = (global_op("my_private_pkg.models", "TinyNet") + b")\x81}(" + str_op("training") + b"\x89" + str_op("_parameters")
              + b"}(" + str_op("w") + _tensor("0", 12, (12,), (1,)) + b"u" + str_op("_buffers") + b"}" + str_op("_modules")
              + b"}" + str_op("width") + int_op(7) + str_op("shape") + global_op("torch", "Size") + b"(" + int_tuple_op((1, 2)) + b"tR"
              + str_op("device") + global_op("torch", "device") + b"(" + str_op("cuda") + int_op(1) + b"tR"
              + str_op("dtype") + global_op("torch", "float32") + str_op("fn") + global_op("torch.nn.functional", "relu") + b"ub")
    pt = load_pt(_zip(tmp_path / "user.pt", b"\x80\x02" + module + b".", {"0": WEIGHTS.tobytes()}))
    assert (pt.kind, pt.module.qualname) == ("module", "my_private_pkg.models.TinyNet")
    assert pt.module.attrs == {"training": False, "width": 7, "shape": (1, 2), "device": "cuda:1"}
    np.testing.assert_array_equal(pt.state_dict["w"], WEIGHTS)


# ----------------------------------------------------------------------------- not a checkpoint


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError) as err:
        load_pt(tmp_path / "nope.pt")
    _one_line(err, "nope.pt")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(InputFileError) as err:
        load_pt(tmp_path)
    _one_line(err, str(tmp_path))


@pytest.mark.parametrize("content", [b"hello world\n", b"", b"\x89PNG\r\n\x1a\n" + bytes(100), pickle.dumps([1, 2], 2)])
def test_not_a_pytorch_file(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError) as err:
        load_pt(path)
    assert "not a PyTorch checkpoint" in _one_line(err, "x.pt") and "torch.save" in str(err.value)


@pytest.mark.parametrize("name", ["lenet5_state_dict", "lenet5_state_dict_legacy", "lenet5s_module_legacy"])
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_files(tmp_path, name, keep):
    blob = open(os.path.join(FIXTURES, name + ".pt"), "rb").read()
    path = tmp_path / "cut.pt"
    path.write_bytes(blob[: int(len(blob) * keep)])
    with pytest.raises(ModelFormatError) as err:
        load_pt(path)
    _one_line(err, "cut.pt")


def test_tar_format_and_torchscript_get_clear_errors(tmp_path):
    tar = tmp_path / "old.pt"
    with tarfile.open(tar, "w") as tf:
        info = tarfile.TarInfo("sys_info")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ModelFormatError) as err:
        load_pt(tar)
    assert "tar format" in _one_line(err, "old.pt")
    script = _zip(tmp_path / "script.pt", _state_dict_pickle([]), {}, extra=[("archive/constants.pkl", b"")])
    with pytest.raises(ModelFormatError) as err:
        load_pt(script)
    assert "TorchScript" in _one_line(err, "script.pt")


def test_dict_without_tensors(tmp_path):
    path = _zip(tmp_path / "cfg.pt", pickle.dumps({"epoch": 3, "lr": 0.1}, 2), {})
    with pytest.raises(ModelFormatError) as err:
        load_pt(path)
    assert "'epoch'" in _one_line(err, "cfg.pt")
