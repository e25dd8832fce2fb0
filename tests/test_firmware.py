"""export-c: the generated C99 firmware equals edgecnn's runtime and LiteRT BUILTIN_REF bit for bit,
on the host (plain and ASan/UBSan) and on every Cortex-M target under QEMU (semihosting).

Needs gcc, arm-none-eabi-gcc with newlib and qemu-system-arm (see .ci/run), and tflite-micro
for the arena comparison. One firmware run per target reads all held-out digits from in.bin.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from edgecnn import __version__, ir, ops
from edgecnn.convert import convert
from edgecnn.demo import data_dir, heldout_set
from edgecnn.errors import InputFileError, UsageError
from edgecnn.export_c import TARGETS, export_c, format_export, stubs_dir
from edgecnn.litert import LiteRTRunner
from edgecnn.model import input_from_float
from edgecnn.preprocess import normalize_pixels
from edgecnn.reference import params as P
from edgecnn.runtime import Runtime
from edgecnn.tflite.reader import load_tflite
from edgecnn.tflite.writer import write_tflite
from exact import assert_exact

N_IMAGES = 24
CORTEX_M = [t for t in TARGETS if t != "host"]
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")


@dataclasses.dataclass
class Case:
    path: str
    graph: ir.Graph
    inputs: list
    expected: np.ndarray  # (N, outputs): Runtime "reference", litert-ref


def _write_inputs(folder, inputs):
    with open(os.path.join(folder, "in.bin"), "wb") as f:
        f.write(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))


def _parse(stdout: str, graph: ir.Graph):
    """(outputs (N, K), ticks) from model_test's text: int8 values or float32 bit patterns."""
    rows = [line.split() for line in stdout.splitlines() if line and not line.startswith("#")]
    if graph.output.dtype == "float32":
        out = np.array([[int(v, 16) for v in r] for r in rows], np.uint32).view(np.float32)
    else:
        out = np.array([[int(v) for v in r] for r in rows], np.int64)
    tail = re.search(r"# inferences (\d+) ticks (\d+)", stdout)
    assert tail, f"no summary line in the firmware output:\n{stdout[-500:]}"
    assert int(tail.group(1)) == len(rows)
    return out, int(tail.group(2))


def _make(folder, *goals):
    r = subprocess.run(["make", "-s", "-C", str(folder), *goals], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"make {' '.join(goals)} failed:\n{r.stdout}\n{r.stderr}"


def _run(folder, argv, timeout=120):
    r = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{argv[0]} exited {r.returncode}:\n{r.stdout[-500:]}\n{r.stderr}"
    return r.stdout


def _expected(path, graph, inputs, rounding="litert-ref"):
    rt = Runtime(graph, "reference", rounding)
    return np.array([rt.invoke(x).ravel() for x in inputs])


@pytest.fixture(scope="module")
def lenet(tmp_path_factory) -> Case:
    """The bundled LeNet-5 converted with its calibration digits; 24 held-out digits as int8."""
    d = data_dir()
    path = str(tmp_path_factory.mktemp("lenet") / "lenet5.tflite")
    convert(os.path.join(d, "lenet5.pt"), path, arch="lenet5", calib=[os.path.join(d, "calib")],
            labels=tuple(str(i) for i in range(10)), mean=(0.5,), std=(0.5,))
    graph = load_tflite(path).graph
    images, _ = heldout_set()
    inputs = [input_from_float(graph, normalize_pixels(img, graph.preprocess))
              for img in images[:N_IMAGES]]
    expected = _expected(path, graph, inputs)
    litert = LiteRTRunner(path, "litert-ref")
    assert_exact(np.array([litert.invoke(x).ravel() for x in inputs]), expected,
                 "edgecnn runtime vs LiteRT BUILTIN_REF")
    return Case(path, graph, inputs, expected)


def test_param_structs_have_the_python_field_names():
    header = (stubs_dir() / "ec_kernels.h").read_text()
    structs = {m.group(2): re.findall(r"(\w+)(?:\[\w+\])?\s*[,;]",
                                      re.sub(r"/\*.*?\*/", "", m.group(1)))
               for m in re.finditer(r"typedef struct \{(.*?)\} (\w+);", header, re.S)}
    for cls, cname in ((P.ConvParams, "ec_conv_params_t"), (P.PoolParams, "ec_pool_params_t"),
                       (P.SoftmaxParams, "ec_softmax_params_t"),
                       (P.ReluParams, "ec_relu_params_t"), (P.Requant, "ec_requant_t"),
                       (P.AddParams, "ec_add_params_t"), (P.Broadcast, "ec_broadcast_t"),
                       (P.ConcatParams, "ec_concat_params_t"), (P.MeanParams, "ec_mean_params_t"),
                       (P.SoftmaxFloatParams, "ec_softmax_float_params_t")):
        assert structs[cname] == [f.name for f in dataclasses.fields(cls)], cname


@pytest.mark.parametrize("program", ["model_test", "model_test_asan"])
def test_host_bit_exact(lenet, tmp_path, program):
    out = tmp_path / "fw"
    report = export_c(lenet.path, out, command_line="edgecnn export-c lenet5.tflite -o fw")
    _make(out, "all" if program == "model_test" else "asan")
    _write_inputs(out, lenet.inputs)
    got, _ = _parse(_run(out, [f"./{program}", "in.bin"]), lenet.graph)
    assert_exact(got, lenet.expected, f"host {program}")
    assert report.arena_bytes == 5880  # conv1 output (4704) + pool1 output (1176) alive together


@pytest.mark.parametrize("rounding", ["double", "single", "fp32"])
def test_host_other_rounding_policies(lenet, tmp_path, rounding):
    export_c(lenet.path, tmp_path / "fw", rounding=rounding)
    _make(tmp_path / "fw", "all")
    _write_inputs(tmp_path / "fw", lenet.inputs)
    got, _ = _parse(_run(tmp_path / "fw", ["./model_test", "in.bin"]), lenet.graph)
    assert_exact(got, _expected(lenet.path, lenet.graph, lenet.inputs, rounding),
                 f"host, rounding {rounding}")


GRAPH_FILES = sorted(os.path.join("graph", f) for f in os.listdir(os.path.join(FIXTURES, "graph"))
                     if f.endswith("_int8_io.tflite") or f in ("tf_resnet8_float_io.tflite",
                                                               "tf_ds_cnn_float_io.tflite"))


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(FIXTURES) if f.endswith(".tflite"))
                         + GRAPH_FILES)
def test_host_tf_fixtures(tmp_path, name):
    """TensorFlow's own int8 files: PAD, TANH, LOGISTIC, SOFTMAX, AVG pool, float in/out, and
    the graphs: residual ADD, depthwise, concat, MEAN (MLPerf Tiny's models among them)."""
    path = os.path.join(FIXTURES, name)
    graph = load_tflite(path).graph
    rng = np.random.default_rng(7)
    t = graph.input
    inputs = [rng.normal(0, 1, t.shape).astype(np.float32) if t.dtype == "float32" else
              rng.integers(-128, 128, t.shape).astype(np.int8) for _ in range(8)]
    want = _expected(path, graph, inputs)
    litert = LiteRTRunner(path, "litert-ref")
    assert_exact(np.array([litert.invoke(x).ravel() for x in inputs]), want, f"{name}: LiteRT")
    export_c(path, tmp_path / "fw")
    _make(tmp_path / "fw", "all", "asan")
    _write_inputs(tmp_path / "fw", inputs)
    for program in ("model_test", "model_test_asan"):
        got, _ = _parse(_run(tmp_path / "fw", [f"./{program}", "in.bin"]), graph)
        assert_exact(got, want, f"{name} {program}")


def test_host_fp32_is_litert_default_path(tmp_path):
    """export-c --rounding fp32 on a file with MEAN and SOFTMAX (the Fire concat): the C
    firmware's outputs are LiteRT's default path's (XNNPACK's MEAN, the float SOFTMAX)."""
    path = os.path.join(FIXTURES, "graph", "tf_fire_concat_int8_io.tflite")
    graph = load_tflite(path).graph
    rng = np.random.default_rng(8)
    inputs = [rng.integers(-128, 128, graph.input.shape).astype(np.int8) for _ in range(8)]
    litert = LiteRTRunner(path, "litert")
    want = np.array([litert.invoke(x).ravel() for x in inputs])
    assert_exact(_expected(path, graph, inputs, "fp32"), want, "runtime fp32 vs LiteRT default")
    export_c(path, tmp_path / "fw", rounding="fp32")
    _make(tmp_path / "fw", "all")
    _write_inputs(tmp_path / "fw", inputs)
    got, _ = _parse(_run(tmp_path / "fw", ["./model_test", "in.bin"]), graph)
    assert_exact(got, want, "export-c fp32 vs LiteRT default")


def _elf_sizes(folder):
    out = subprocess.run(["arm-none-eabi-size", "-A", "model_test.elf"], cwd=folder,
                         capture_output=True, text=True, check=True).stdout
    sec = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\w+)\s+(\d+)", out, re.M)}
    flash = sec.get(".text", 0) + sec.get(".ARM.exidx", 0) + sec.get(".data", 0)
    return flash, sec.get(".data", 0) + sec.get(".bss", 0) + sec.get(".stack", 0)


@pytest.mark.parametrize("target", CORTEX_M)
def test_cortex_m_under_qemu_bit_exact(lenet, tmp_path, target):
    out = tmp_path / "fw"
    report = export_c(lenet.path, out, target=target)
    _make(out)  # `make` alone builds the project
    flash, ram = _elf_sizes(out)
    assert flash <= report.flash_bytes <= TARGETS[target].flash_bytes, (flash, report.flash_bytes)
    assert ram <= report.ram_bytes <= TARGETS[target].ram_bytes, (ram, report.ram_bytes)
    _write_inputs(out, lenet.inputs)
    stdout = _run(out, ["make", "-s", "run"], timeout=180)  # QEMU's exit status is main's
    got, ticks = _parse(stdout, lenet.graph)
    assert_exact(got, lenet.expected, f"{target} under QEMU")
    per_inference = ticks * 1e9 / TARGETS[target].core_hz / len(lenet.inputs)  # -icount shift=0
    assert 1e5 < per_inference < 3e7, f"{target}: {per_inference:.0f} emulated instructions"


@pytest.mark.parametrize("name", ["tf_resnet8_int8_io", "tf_ds_cnn_int8_io"])
def test_graph_models_on_cortex_m4_bit_exact(tmp_path, name):
    """A residual and a depthwise-separable model (MLPerf Tiny's ResNet-8 and DS-CNN, written
    by TensorFlow's converter) run under QEMU on Cortex-M4 as LiteRT BUILTIN_REF runs them."""
    path = os.path.join(FIXTURES, "graph", name + ".tflite")
    graph = load_tflite(path).graph
    rng = np.random.default_rng(11)
    inputs = [rng.integers(-128, 128, graph.input.shape).astype(np.int8) for _ in range(2)]
    want = _expected(path, graph, inputs)
    litert = LiteRTRunner(path, "litert-ref")
    assert_exact(np.array([litert.invoke(x).ravel() for x in inputs]), want, f"{name}: LiteRT")
    export_c(path, tmp_path / "fw", target="cortex-m4")
    _make(tmp_path / "fw")
    _write_inputs(tmp_path / "fw", inputs)
    got, _ = _parse(_run(tmp_path / "fw", ["make", "-s", "run"], timeout=300), graph)
    assert_exact(got, want, f"{name} on cortex-m4 under QEMU")


def _fc_model(tmp_path, n_in, n_out, name="big_fc.tflite"):
    q = ir.QuantParams.per_tensor
    x = ir.Tensor("x", (1, n_in), "int8", q(0.05, 0))
    y = ir.Tensor("y", (1, n_out), "int8", q(0.1, 0))
    fc = ops.FullyConnected("fc", np.ones((n_out, n_in), np.int8), np.zeros(n_out, np.int32),
                           weight_quant=q(0.01, 0), inputs=("x",), output=y)
    path = str(tmp_path / name)
    write_tflite(ir.Graph(x, (fc,), ("y",)), path)
    return path


def test_too_large_model_is_refused_with_one_line(tmp_path):
    flash_hog = _fc_model(tmp_path, 300, 1024)  # 307 KB of weights > the micro:bit's 256 KB
    with pytest.raises(UsageError, match=r"needs [\d,]+ bytes of flash \(.*\) but cortex-m0") as e:
        export_c(flash_hog, tmp_path / "m0", target="cortex-m0")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "m0").exists()  # nothing written
    export_c(flash_hog, tmp_path / "m3", target="cortex-m3")  # 4 MB of SSRAM on the MPS2
    ram_hog = _fc_model(tmp_path, 16000, 4, "wide_input.tflite")  # a 16 KB input alone
    with pytest.raises(UsageError, match=r"bytes of RAM \(.*\) but cortex-m0"):
        export_c(ram_hog, tmp_path / "m0", target="cortex-m0", force=True)


def test_refuses_a_non_empty_folder_without_force(lenet, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InputFileError, match="--force"):
        export_c(lenet.path, tmp_path)
    export_c(lenet.path, tmp_path, force=True)
    with pytest.raises(UsageError, match="unknown target"):
        export_c(lenet.path, tmp_path / "x", target="cortex-m85")


def test_generated_code_carries_provenance_and_plan(lenet, tmp_path):
    line = "edgecnn export-c lenet5.tflite -o fw --target cortex-m4"
    report = export_c(lenet.path, tmp_path, target="cortex-m4", command_line=line)
    model_c = (tmp_path / "model.c").read_text()
    digest = hashlib.sha256(open(lenet.path, "rb").read()).hexdigest()
    for text in (f"edgecnn {__version__}", digest, line, "rounding: litert-ref"):
        assert text in model_c
    assert "malloc" not in model_c and "EC_ALIGN(4)" in model_c
    assert (tmp_path / "fixedpoint.h").read_text() == (stubs_dir() / "fixedpoint.h").read_text()
    text = format_export(report)
    assert "flash:" in text and "RAM:" in text and "shares features.5" in text
    assert [r.node for r in report.rows][1:] == [node.name for node in lenet.graph.nodes]


TFLM_SNIPPET = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1], arena_size=1 << 20)
x = np.fromfile(sys.argv[2], np.int8).reshape(-1, *it.get_input_details(0)["shape"][1:])
for xi in x:
    it.set_input(xi[None], 0)
    it.invoke()
    print(" ".join(str(v) for v in it.get_output(0).ravel()), flush=True)
it.print_allocations()
"""


def test_tflite_micro_agrees_and_needs_a_larger_arena(lenet, tmp_path):
    """TFLite Micro rounds with the all-integer `double` policy; --rounding double matches it."""
    export_c(lenet.path, tmp_path / "fw", rounding="double")
    _make(tmp_path / "fw", "all")
    _write_inputs(tmp_path / "fw", lenet.inputs)
    ours, _ = _parse(_run(tmp_path / "fw", ["./model_test", "in.bin"]), lenet.graph)
    argv = [sys.executable, "-c", TFLM_SNIPPET, lenet.path, str(tmp_path / "fw" / "in.bin")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    tflm = np.array([[int(v) for v in ln.split()] for ln in lines[:len(lenet.inputs)]])
    assert_exact(ours, tflm, "export-c --rounding double vs TFLite Micro")
    tflm_arena = int(re.search(r"Arena allocation total (\d+) bytes", r.stdout + r.stderr)[1])
    report = export_c(lenet.path, tmp_path / "m0", target="cortex-m0")
    assert report.arena_bytes < tflm_arena
