"""export-c on a graph with several outputs: a small conv net with three heads (an intermediate
feature map that a later ReLU also reads, class logits after MEAN + FC that SOFTMAX also reads,
and the SOFTMAX as float32 through DEQUANTIZE). The firmware prints one line per output per
record; every output equals edgecnn's reference runtime and LiteRT BUILTIN_REF bit for bit, on
the host (plain and ASan/UBSan, `make check` with --images) and on a Cortex-M4 under QEMU.
model.h gives each output's name, shape, count, dtype, scale, zero point and place in the
arena (the table read back from C), and an output's name cannot inject code.
"""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from edgecnn import ir, ops
from edgecnn.calibrate import calibrate
from edgecnn.errors import UsageError
from edgecnn.convert import prepare_float_graph
from edgecnn.export_c import export_c
from edgecnn.litert import LiteRTRunner
from edgecnn.memory import nbytes
from edgecnn.quantize import quantize_graph
from edgecnn.runtime import Runtime
from edgecnn.tflite.reader import load_tflite
from edgecnn.tflite.writer import write_tflite
from exact import assert_exact

OUTPUTS = ("features", "logits", "probs_f")
HOSTILE = 'o */ __attribute__((constructor)) static void pwn(void) { system("touch /tmp/x"); } /*'


def _float(name: str) -> ir.Tensor:
    return ir.Tensor(name, (), "float32")  # shape inferred


def _build(path: str, names=OUTPUTS) -> ir.Graph:
    """conv 3x3 (the feature map, read again by a ReLU) -> PAD, conv 3x3 s2 + ReLU -> MEAN -> FC
    (logits) -> SOFTMAX -> DEQUANTIZE (float32 probabilities); outputs named ``names``."""
    rng = np.random.default_rng(11)
    f, lg, pf = names
    nodes = (
        ops.Conv2D(f, rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32),
                   rng.normal(0, 0.1, 8).astype(np.float32), padding=(1, 1, 1, 1),
                   inputs=("x",), output=_float(f)),
        ops.Activation("r1", "relu", inputs=(f,), output=_float("r1")),
        ops.Conv2D("c2", rng.normal(0, 0.3, (16, 3, 3, 8)).astype(np.float32),
                   rng.normal(0, 0.1, 16).astype(np.float32), stride=(2, 2),
                   padding=(1, 1, 1, 1), activation="relu", inputs=("r1",), output=_float("c2")),
        ops.Mean("gap", inputs=("c2",), output=_float("gap")),
        ops.FullyConnected(lg, rng.normal(0, 0.5, (5, 16)).astype(np.float32),
                           rng.normal(0, 0.1, 5).astype(np.float32), inputs=("gap",),
                           output=_float(lg)),
        ops.Softmax("probs", inputs=(lg,), output=_float("probs")))
    x = ir.Tensor("x", (1, 8, 8, 3), "float32")
    float_graph = prepare_float_graph(ir.Graph(x, nodes, (f, lg, "probs")))
    batches = [rng.normal(0, 1, (8, 8, 8, 3)).astype(np.float32) for _ in range(2)]
    # calibration runs a single-output graph; the same nodes, so every tensor gets its range
    ranges = calibrate(float_graph.replace(outputs=("probs",)), batches)
    int8 = quantize_graph(float_graph, ranges)
    deq = ops.Dequantize(pf, inputs=("probs",), output=ir.Tensor(pf, (1, 5), "float32"))
    graph = int8.replace(nodes=int8.nodes + (deq,), outputs=(f, lg, pf),
                         preprocess=ir.Preprocess(8, 8, "RGB", mean=(0.5,) * 3, std=(0.25,) * 3))
    write_tflite(graph.check(), path)
    return load_tflite(path).graph


def _inputs(graph, n=6, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, graph.input.shape).astype(np.int8) for _ in range(n)]


def _expected(graph, inputs) -> list:
    """Per record, per output: edgecnn's reference runtime (the spec)."""
    rt = Runtime(graph, "reference")
    return [rt.invoke_all(x) for x in inputs]


def _parse(stdout: str, graph) -> list:
    """model_test's lines, grouped per record: one line per output, in the model's order."""
    lines = [ln.split() for ln in stdout.splitlines() if ln and not ln.startswith("#")]
    outs = graph.output_tensors()
    assert len(lines) % len(outs) == 0, stdout[-500:]
    records = []
    for r in range(0, len(lines), len(outs)):
        rec = []
        for t, line in zip(outs, lines[r:r + len(outs)]):
            if t.dtype == "float32":
                rec.append(np.array([int(v, 16) for v in line], np.uint32).view(np.float32))
            else:
                rec.append(np.array([int(v) for v in line], np.int8))
        records.append(rec)
    return records


def _assert_records(got, want, where):
    assert len(got) == len(want), (where, len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        for name, a, b in zip(OUTPUTS, g, w):
            assert_exact(a, b.ravel(), f"{where}: record {i}, output {name}")


def _make(folder, *goals):
    r = subprocess.run(["make", "-s", "-C", str(folder), *goals], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"make {' '.join(goals)}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _run(folder, argv):
    r = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"{argv}: exit {r.returncode}\n{r.stdout[-500:]}\n{r.stderr}"
    return r.stdout


def _write_inputs(folder, inputs):
    with open(os.path.join(folder, "in.bin"), "wb") as f:
        f.write(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))


@pytest.fixture(scope="module")
def three_heads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    path = str(folder / "three_heads.tflite")
    graph = _build(path)
    assert graph.outputs == OUTPUTS and graph.tensor("probs_f").dtype == "float32"
    inputs = _inputs(graph)
    want = _expected(graph, inputs)
    litert = LiteRTRunner(path, "litert-ref")
    _assert_records([[y.ravel() for y in litert.invoke_all(x)] for x in inputs], want,
                    "LiteRT BUILTIN_REF vs edgecnn")
    return path, graph, inputs, want


def test_host_every_output_bit_exact_and_model_h_describes_them(three_heads, tmp_path):
    path, graph, inputs, want = three_heads
    out = tmp_path / "fw"
    export_c(path, out)
    _make(out, "all", "asan")
    _write_inputs(out, inputs)
    for program in ("model_test", "model_test_asan"):
        _assert_records(_parse(_run(out, [f"./{program}", "in.bin"]), graph), want,
                        f"host {program}")
    header = (out / "model.h").read_text()
    assert "#define EC_MODEL_NUM_OUTPUTS 3" in header
    assert "ec_model_output(void)" not in header and "EC_MODEL_OUTPUT_COUNT" not in header
    for k, t in enumerate(graph.output_tensors()):
        assert f"#define EC_MODEL_OUTPUT{k}_COUNT {int(np.prod(t.shape))}" in header
        assert f"#define EC_MODEL_OUTPUT{k}_IS_FLOAT {int(t.dtype == 'float32')}" in header
    # the table read back from C: every field, and each output's bytes equal model_test's
    (out / "table.c").write_text(
        '#include <stdio.h>\n#include <string.h>\n#include "model.h"\n'
        "int main(void) { int k, d;\n    FILE *f = fopen(\"in.bin\", \"rb\");\n"
        "    if (!f || fread(ec_model_input(), 1, EC_MODEL_INPUT_BYTES, f) != "
        "EC_MODEL_INPUT_BYTES) return 1;\n    fclose(f);\n    ec_model_invoke();\n"
        "    for (k = 0; k < EC_MODEL_NUM_OUTPUTS; k++) {\n"
        "        const ec_model_output_t *o = &ec_model_outputs[k];\n"
        "        printf(\"%s|%d|\", o->name, (int)o->rank);\n"
        "        for (d = 0; d < o->rank; d++) printf(\"%d,\", (int)o->shape[d]);\n"
        "        printf(\"|%d|%d|%d|%a|%d|\", (int)o->count, (int)o->bytes, (int)o->is_float,\n"
        "               (double)o->scale, (int)o->zero_point);\n"
        "        for (d = 0; d < o->bytes; d++) printf(\"%02x\", ((const unsigned char *)o->data)[d]);\n"
        "        printf(\"\\n\");\n    }\n    return 0; }\n")
    srcs = ["table.c", "model.c"] + sorted(p.name for p in out.glob("ec_*.c")
                                           if p.name not in ("ec_port_semihost.c",))
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", *srcs, "-lm", "-o", "table"],
                   cwd=out, check=True)
    rows = _run(out, ["./table"]).splitlines()
    assert len(rows) == 3
    for row, t, y in zip(rows, graph.output_tensors(), want[0]):
        name, rank, shape, count, nb, is_float, scale, zp, data = row.split("|")
        assert name == t.name and int(rank) == len(t.shape)
        assert shape == "".join(f"{d}," for d in t.shape)
        assert (int(count), int(nb), int(is_float)) == (y.size, nbytes(t), t.dtype == "float32")
        s, z = t.quant.scalar() if t.dtype == "int8" else (0.0, 0)
        assert float.fromhex(scale) == float(np.float32(s)) and int(zp) == z
        assert bytes.fromhex(data) == np.ascontiguousarray(y).tobytes(), t.name


def test_images_then_make_check_one_line_per_output(three_heads, tmp_path):
    path, graph, _, _ = three_heads
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(images / f"{i}.png")
    out = tmp_path / "fw"
    export_c(path, out, images=[str(images)])
    assert len((out / "expected.txt").read_text().splitlines()) == 3 * 3  # images x outputs
    assert "check: 3 inferences, outputs equal expected.txt" in _make(out, "check")
    readme = (out / "README.md").read_text()
    assert "3 outputs (`EC_MODEL_NUM_OUTPUTS`)" in readme
    assert "one line per model output per input record" in readme


def test_cortex_m4_under_qemu_every_output_bit_exact(three_heads, tmp_path):
    path, graph, inputs, want = three_heads
    out = tmp_path / "fw"
    export_c(path, out, target="cortex-m4")
    _make(out)
    _write_inputs(out, inputs[:3])
    stdout = _run(out, ["make", "-s", "run"])
    _assert_records(_parse(stdout, graph), want[:3], "cortex-m4 under QEMU")
    assert re.search(r"# inferences 3 ticks \d+", stdout), stdout[-300:]
    prof = _run(out, ["make", "-s", "EC_PROFILE=1", "run"])  # the same outputs, and per layer
    _assert_records(_parse(prof, graph), want[:3], "cortex-m4 EC_PROFILE=1")
    layers = re.findall(r"^# layer \d+ ticks \d+ (\w+)", prof, re.M)
    # the PAD before the second conv runs as that conv's padding (merge_zero_point_padding)
    assert layers == ["Conv2D", "ReLU", "Conv2D", "Mean", "FullyConnected", "Softmax",
                      "Dequantize"], layers


def test_budgets_count_every_output(three_heads, tmp_path):
    """--ram below the arena (which holds all three outputs at the end) is refused."""
    path, _, _, _ = three_heads
    arena = export_c(path, tmp_path / "fw").arena_bytes
    assert arena >= 512 + 5 + 20  # the feature map, the logits and the float32 probabilities
    with pytest.raises(UsageError, match=f"needs [0-9,]+ bytes of RAM \\({arena:,} arena"):
        export_c(path, tmp_path / "fw2", target="cortex-m4", ram_budget=arena)


def test_an_output_name_cannot_inject_code(tmp_path):
    names = (HOSTILE, 'l"; int injected = 1; static const char *y = "', "p*\\\n/ ??/ $calls")
    path = str(tmp_path / "hostile.tflite")
    graph = _build(path, names)
    inputs = _inputs(graph, n=2)
    want = _expected(graph, inputs)
    out = tmp_path / "fw"
    export_c(path, out)
    for name in ("model.c", "model.h"):
        code = re.sub(r"/\*.*?\*/", " ", (out / name).read_text(), flags=re.S)
        code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', code)  # names: string literals only
        # (identifiers carry a sanitized part of a name, "l5_l___int_injected": not code)
        for word in ("void pwn", "system(", "int injected", "*y", "$calls", "??/"):
            assert word not in code, (name, word)
    _make(out, "all")
    _write_inputs(out, inputs)
    _assert_records(_parse(_run(out, ["./model_test", "in.bin"]), graph), want, "hostile names")
    (out / "names.c").write_text(
        '#include <stdio.h>\n#include "model.h"\nint main(void) { int k;\n'
        "    for (k = 0; k < EC_MODEL_NUM_OUTPUTS; k++) { fputs(ec_model_outputs[k].name, stdout);"
        " putchar(0); }\n    return 0; }\n")
    srcs = ["names.c", "model.c"] + sorted(p.name for p in out.glob("ec_*.c")
                                           if p.name != "ec_port_semihost.c")
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", *srcs, "-lm", "-o", "names"],
                   cwd=out, check=True)
    got = subprocess.run([str(out / "names")], capture_output=True, check=True).stdout
    assert got.split(b"\0")[:-1] == [n.encode() for n in graph.outputs] == [n.encode()
                                                                           for n in names]
