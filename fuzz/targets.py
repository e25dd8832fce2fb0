"""Fuzz targets: one per parser edgecnn exposes to files from outside.

Each target takes the raw bytes of one input and feeds them to the parser the way a user's
file would reach it. The contract every target checks (``run_one``): the input parses, or it
raises an ``edgecnn.errors.EdgecnnError``. Anything else (IndexError, struct.error,
RecursionError, MemoryError, a hang) is a bug in the parser, to be fixed there.

Targets:
  tflite      bytes as a .tflite file -> edgecnn.tflite.reader.from_flatbuffer
  pt          bytes as a .pt/.pth file -> edgecnn.converters.pt_reader.load_pt
  pt_pickle   bytes as data.pkl inside an otherwise valid torch zip (so mutations reach the
              unpickler instead of failing the zip CRC) -> load_pt
  image       bytes as an image file -> edgecnn.preprocess.load_image (L 8x8 and RGB 5x7)
  spec        bytes as a SPEC.json -> converters.arch.load_spec, then graph_from_spec on
              LeNet-5 weights (the whole --arch path)
  onnx        bytes as an .onnx file -> converters.onnx_model.load_onnx, the float passes and
              a float run (256 MB --max-memory)
  onnx_struct bytes as choices that pick a small valid ONNX model and mutate it through the
              protobuf API (fuzz/onnx_fuzz.py), then the same path as ``onnx``
  torchscript bytes as the model class's code (code/__torch__/...py) in the scripted residual
              LeNet archive -> converters.torchscript.load_torchscript and a float run
  export_c_names  bytes split at NUL into tensor names of a small int8 model -> export_c;
              the generated C, comments and string literals removed and edgecnn's
              identifiers normalized, must
              equal the C generated for the same model with plain names (so no name reached
              code), and must compile with -std=c99 -Wall -Wextra -Werror
  tflite_struct   bytes choose field edits on a real int8 model (fuzz/tflite_struct.py):
              shapes, scales, zero points, quantized dimensions, operator inputs/outputs,
              options, opcodes, buffers, names, version; a model that loads and prepares must
              give the same output on the reference and the Cython kernels (every SIMD path)
  export_c_asan   the same mutated models; each one edgecnn accepts is exported to C, built
              with ASan+UBSan (make asan), run, and compared with the reference runtime

Seeds are the repo's own files (tests/fixtures, the bundled LeNet-5 data) plus the small
files in fuzz/corpus/<target>/ (written by fuzz/make_corpus.py).
"""

from __future__ import annotations

import atexit
import functools
import glob
import io
import os
import shutil
import tempfile
import zipfile

from edgecnn import ir
from edgecnn.errors import EdgecnnError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")
FIXTURES = os.path.join(REPO, "tests", "fixtures")
_TMP = tempfile.mkdtemp(prefix="edgecnn-fuzz-")
atexit.register(shutil.rmtree, _TMP, True)


def _as_file(data: bytes, suffix: str) -> str:
    path = os.path.join(_TMP, f"input{os.getpid()}{suffix}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def tflite(data: bytes) -> None:
    from edgecnn.tflite.reader import from_flatbuffer
    from_flatbuffer(data, "fuzz.tflite", max_memory=256 << 20)


def pt(data: bytes) -> None:
    from edgecnn.converters.pt_reader import load_pt
    load_pt(_as_file(data, ".pt"))


@functools.lru_cache(maxsize=1)
def _pt_storages():
    """The storages of a small real checkpoint, to put mutated data.pkl files next to."""
    path = os.path.join(FIXTURES, "pt", "sequential_module.pt")
    with zipfile.ZipFile(path) as zf:
        return {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist() if "/data/" in n}


def wrap_pickle(pkl: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", "little")
        for name, raw in _pt_storages().items():
            zf.writestr(f"archive/{name}", raw)
    return out.getvalue()


def pt_pickle(data: bytes) -> None:
    pt(wrap_pickle(data))


_IMAGE_PRE = (ir.Preprocess(height=8, width=8, color="L"),
              ir.Preprocess(height=5, width=7, color="RGB", resize=9, mean=(0.5,), std=(0.25,)))


def image(data: bytes) -> None:
    from edgecnn.preprocess import load_image
    path = _as_file(data, ".img")
    for pre in _IMAGE_PRE:
        load_image(path, pre)


@functools.lru_cache(maxsize=1)
def _lenet_weights():
    from edgecnn.converters.pt_reader import load_pt
    return load_pt(os.path.join(FIXTURES, "pt", "lenet5_state_dict.pt")).state_dict


def _onnx_path(path: str) -> None:
    import numpy as np

    from edgecnn.convert import prepare_float_graph
    from edgecnn.converters.onnx_model import load_onnx
    from edgecnn.float_runtime import run_float_all
    graph = prepare_float_graph(load_onnx(path, max_memory=256 << 20))
    run_float_all(graph, np.zeros((1,) + graph.input.shape[1:], np.float32))


def onnx(data: bytes) -> None:
    _onnx_path(_as_file(data, ".onnx"))


def onnx_struct(data: bytes) -> None:
    from onnx_fuzz import build
    _onnx_path(_as_file(build(data), ".onnx"))


TS_ARCHIVE = os.path.join(FIXTURES, "torchscript", "residual_lenet_scripted.pt")


@functools.lru_cache(maxsize=1)
def _ts_members():
    """The scripted archive's members, and the name of the one holding the model's class."""
    with zipfile.ZipFile(TS_ARCHIVE) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    root = next(n for n, d in members.items() if n.endswith(".py") and b"class ResidualLeNet" in d)
    return members, root


def torchscript(data: bytes) -> None:
    import numpy as np

    from edgecnn.convert import prepare_float_graph
    from edgecnn.converters.torchscript import load_torchscript
    from edgecnn.float_runtime import run_float_all
    members, root = _ts_members()
    path = os.path.join(_TMP, f"ts{os.getpid()}.pt")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, blob in members.items():
            zf.writestr(name, data if name == root else blob)
    graph = prepare_float_graph(load_torchscript(path, 32, max_memory=256 << 20))
    run_float_all(graph, np.zeros((1,) + graph.input.shape[1:], np.float32))


def spec(data: bytes) -> None:
    from edgecnn.converters.arch import graph_from_spec, load_spec
    s = load_spec(_as_file(data, ".json"))
    graph_from_spec(s, _lenet_weights(), "fuzz.pt")


_NAMES_MODEL = os.path.join(FIXTURES, "tflite", "tf_small_same_avg.tflite")


def _renamed_model(names: list) -> str:
    """The fixture with its tensors renamed (cycling through ``names``), as a file."""
    import flatbuffers

    from edgecnn.tflite import schema
    fb = schema.load()
    with open(_NAMES_MODEL, "rb") as f:
        model = fb.ModelT.InitFromPackedBuf(f.read(), 0)
    for i, t in enumerate(model.subgraphs[0].tensors):
        t.name = names[i % len(names)] if names else b""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=schema.FILE_IDENTIFIER)
    return _as_file(bytes(builder.Output()), ".tflite")


def _code_shape(folder: str) -> str:
    """model.c and model.h without comments, with string literals emptied (layer names and
    labels reach C only as ctext.c_string literals) and identifiers l<index>_<name> cut to
    l<index>."""
    import re
    text = ""
    for name in ("model.c", "model.h"):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text += re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    return re.sub(r"\bl(\d+)_\w+", r"l\1", text)


def _export(path: str, folder: str) -> str:
    from edgecnn.export_c import export_c
    export_c(path, folder, force=True, command_line="fuzz")
    return _code_shape(folder)


@functools.lru_cache(maxsize=1)
def _plain_code_shape() -> str:
    return _export(_renamed_model([b"t%d" % i for i in range(64)]), os.path.join(_TMP, "plain"))


def export_c_names(data: bytes) -> None:
    import subprocess
    folder = os.path.join(_TMP, f"fw{os.getpid()}")
    got = _export(_renamed_model(data.split(b"\0")), folder)
    if got != _plain_code_shape():
        raise AssertionError("a tensor name changed the generated code outside comments")
    cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                         "model.c"], cwd=folder, capture_output=True, text=True)
    if cc.returncode != 0:
        raise AssertionError(f"the generated C does not compile: {cc.stderr[:300]}")


RUN_ELEMENTS = 50_000  # run mutated models whose tensors hold fewer elements (the NumPy
                       # reference conv loops over output pixels in Python)


def _struct_model(data: bytes):
    """(path, graph, reference Runtime) of the mutated model, or an EdgecnnError."""
    from tflite_struct import mutated_model

    from edgecnn.runtime import Runtime
    from edgecnn.tflite.reader import load_tflite
    path = _as_file(mutated_model(data), ".tflite")
    graph = load_tflite(path, max_memory=64 << 20).graph
    return path, graph, Runtime(graph, "reference", preserve_all=False)


def _inputs(graph, n=2):
    import numpy as np
    rng = np.random.default_rng(len(graph.nodes))
    t = graph.input
    if t.dtype == "int8":
        return [rng.integers(-128, 128, t.shape).astype(np.int8) for _ in range(n)]
    return [rng.normal(0, 4, t.shape).astype(np.float32) for _ in range(n)]


def _small(graph) -> bool:
    import math
    return sum(math.prod(t.shape) for t in graph.tensors()) <= RUN_ELEMENTS


def _same(a, b, what):
    import numpy as np
    if a.shape != b.shape or a.tobytes() != b.tobytes():
        bad = np.argwhere(a.reshape(-1).view(np.uint8 if a.dtype.itemsize == 1 else np.uint32)
                          != b.reshape(-1).view(np.uint8 if b.dtype.itemsize == 1 else np.uint32))
        i = int(bad[0][0]) if bad.size else 0
        raise AssertionError(f"{what}: first mismatch at flat index {i}: "
                             f"{a.reshape(-1)[i]} vs {b.reshape(-1)[i]}")


def tflite_struct(data: bytes) -> None:
    """A real int8 model with fields edited (fuzz/tflite_struct.py): it must load and prepare
    or be refused with an EdgecnnError; a model that prepares runs on the reference and the
    Cython kernels, which must agree bit for bit."""
    from edgecnn.backends import cython as K
    from edgecnn.runtime import Runtime
    _, graph, ref = _struct_model(data)
    Runtime(graph, "cython")
    if not _small(graph):
        return
    inputs = _inputs(graph)
    want = [ref.invoke(x) for x in inputs]
    try:
        for isa in K.supported_isas():  # weights are packed per path at bind time
            K.force_isa(isa)
            cy = Runtime(graph, "cython")
            for x, w in zip(inputs, want):
                _same(cy.invoke(x), w, f"cython ({isa}) vs reference")
    finally:
        K.force_isa("auto")


def export_c_asan(data: bytes) -> None:
    """Every mutated model edgecnn accepts exports to C that builds with ASan+UBSan
    (``make asan``), runs clean and equals the reference runtime bit for bit. Slow (one C
    build per input): a handful in the CI smoke, long runs by hand."""
    import subprocess

    import numpy as np

    from edgecnn.export_c import export_c
    path, graph, ref = _struct_model(data)
    if not _small(graph):
        return
    folder = os.path.join(_TMP, f"asan{os.getpid()}")
    export_c(path, folder, force=True, command_line="fuzz")
    make = subprocess.run(["make", "-s", "-C", folder, "asan"], capture_output=True, text=True)
    if make.returncode != 0:
        raise AssertionError(f"make asan failed: {make.stderr[-400:]}")
    inputs = _inputs(graph)
    with open(os.path.join(folder, "in.bin"), "wb") as f:
        f.write(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))
    run = subprocess.run(["./model_test_asan", "in.bin"], cwd=folder, capture_output=True,
                         text=True, timeout=60)
    if run.returncode != 0:
        raise AssertionError(f"model_test_asan exited {run.returncode}: {run.stderr[-600:]}")
    rows = [line.split() for line in run.stdout.splitlines() if line and not line.startswith("#")]
    out = graph.output
    for x, row in zip(inputs, rows):
        want = ref.invoke(x).reshape(-1)
        got = (np.array([int(v, 16) for v in row], np.uint32).view(np.float32)
               if out.dtype == "float32" else np.array([int(v) for v in row], np.int8))
        _same(got, want, "C (make asan) vs reference runtime")


TARGETS = {"tflite": tflite, "pt": pt, "pt_pickle": pt_pickle, "image": image, "spec": spec,
           "onnx": onnx, "onnx_struct": onnx_struct, "torchscript": torchscript,
           "export_c_names": export_c_names, "tflite_struct": tflite_struct,
           "export_c_asan": export_c_asan}


def _files(*patterns):
    out = []
    for pattern in patterns:
        out += sorted(glob.glob(os.path.join(REPO, pattern)))
    return out


def _pickles_of_fixtures():
    out = []
    for path in _files("tests/fixtures/pt/*.pt"):
        if zipfile.is_zipfile(path) and os.path.getsize(path) < 100_000:
            with zipfile.ZipFile(path) as zf:
                out += [zf.read(n) for n in zf.namelist() if n.endswith("/data.pkl")]
    return out


def seeds(target: str) -> list[bytes]:
    """The seed inputs of ``target``: committed corpus files plus the repo's fixtures."""
    own = _files(f"fuzz/corpus/{target}/*")
    extra = {
        "tflite": lambda: _files("tests/fixtures/tflite/tf_pad_tanh.tflite",
                                 "tests/fixtures/tflite/tf_small_same_avg.tflite",
                                 "tests/fixtures/tflite/graph/tf_fire_concat_int8_io.tflite",
                                 "tests/fixtures/tflite/graph/tf_mean_keepdims_int8_io.tflite",
                                 "tests/fixtures/tflite/graph/tf_concat_hw_int8_io.tflite"),
        "pt": lambda: [p for p in _files("tests/fixtures/pt/*.pt") if os.path.getsize(p) < 100_000],
        "image": lambda: _files("edgecnn/data/lenet5/samples/*")[:4],
        "spec": lambda: [],
        "onnx": lambda: _files("tests/fixtures/onnx/mixed_*.onnx"),
        "onnx_struct": lambda: [],
        "torchscript": lambda: [],
        "pt_pickle": lambda: [],
        "export_c_names": lambda: [],
        "tflite_struct": lambda: [],
        "export_c_asan": lambda: [],
    }[target]()
    if target == "export_c_asan":  # the engine pops seeds from the end: the tiny model first
        struct = _files("fuzz/corpus/tflite_struct/*")
        own = [f for f in struct if "plain" not in f] + sorted(
            (f for f in struct if "plain" in f), reverse=True)
    blobs = [open(p, "rb").read() for p in own + extra]
    if target == "pt_pickle":
        blobs += _pickles_of_fixtures()
    if not blobs:
        raise RuntimeError(f"no seeds for fuzz target {target}; run fuzz/make_corpus.py")
    return blobs


class Bug(Exception):
    """An input made a parser raise something other than an EdgecnnError."""


def run_one(target: str, data: bytes) -> bool:
    """True if ``data`` parsed, False if it was refused with an EdgecnnError; raises Bug."""
    try:
        TARGETS[target](data)
        return True
    except EdgecnnError:
        return False
    except Exception as e:  # noqa: BLE001 - that is the point
        raise Bug(f"{target}: {type(e).__name__}: {e}") from e
