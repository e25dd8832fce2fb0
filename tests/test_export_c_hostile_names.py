"""export-c with hostile names: names from a model never reach generated code unescaped.

A model downloaded from anywhere may name its tensors (and so its layers) with text that
closes a C comment and adds code, splices lines with a backslash-newline, or hides a
trigraph. Every tensor of the bundled LeNet-5 is renamed here with such payloads (the
.tflite is rewritten through the schema's object API, so the names reach export-c exactly
as a hostile file would carry them), its labels are payloads too (model.h/model.c string
literals, README.md), as are the file name and the command line, and the firmware is built
with -Wall -Wextra -Werror and run on the host (plain and ASan/UBSan) and on every Cortex-M
target under QEMU. The payload would create a marker file; it must not exist, the outputs
must equal edgecnn's runtime, the labels and the output's name (ec_model_outputs) must read
back exactly from C, and the per-layer profile (which prints layer names) must print only
printable ASCII.
"""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest

from edgecnn.convert import convert
from edgecnn.demo import data_dir, heldout_set
from edgecnn.export_c import TARGETS, export_c
from edgecnn.export_c import ctext
from edgecnn.model import input_from_float
from edgecnn.preprocess import normalize_pixels
from edgecnn.runtime import Runtime
from edgecnn.tflite import schema
from edgecnn.tflite.reader import load_tflite

MARKER = "/tmp/edgecnn-pwned-marker"


def payloads():
    """Names that would each inject code into a naive generator (one per tensor)."""
    run = f'system("touch {MARKER}")'
    return [
        f"f */ __attribute__((constructor)) static void pwn(void) {{ {run}; }} /*",
        "a*\\\n/ __attribute__((constructor)) static void pwn2(void) { " + run + "; } /*",
        "b*??/\n/ int injected_trigraph = 1; /*",
        "c */\n#include \"/etc/passwd\"\n/*",
        'd"; static const char *x = "',
        "e$calls ${constants} $$",
        "f\r\n\x00\x1b[2J\x07 nul and escapes",
        "g\u202e\u00fc*/ unicode",
        "h" + "*/" * 2000,  # long
        "features.0",  # ordinary names stay readable
        "features_0",  # collides with the line above after sanitizing
    ]


def _rename_tensors(src: str, dst: str) -> None:
    fb = schema.load()
    with open(src, "rb") as f:
        model = fb.ModelT.InitFromPackedBuf(f.read(), 0)
    names = payloads()
    for i, t in enumerate(model.subgraphs[0].tensors):
        t.name = f"{names[i % len(names)]}#{i}".encode("utf-8")
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=schema.FILE_IDENTIFIER)
    with open(dst, "wb") as f:
        f.write(bytes(builder.Output()))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = data_dir()
    folder = tmp_path_factory.mktemp("hostile")
    clean = str(folder / "lenet5.tflite")
    convert(os.path.join(d, "lenet5.pt"), clean, arch="lenet5", calib=[os.path.join(d, "calib")],
            mean=(0.5,), std=(0.5,), labels=tuple(payloads()[:10]))
    path = str(folder / "evil *\\\n??= name*.tflite")  # no "/" in a file name
    _rename_tensors(clean, path)
    graph = load_tflite(path).graph
    images, _ = heldout_set()
    inputs = [input_from_float(graph, normalize_pixels(img, graph.preprocess)) for img in images[:4]]
    rt = Runtime(graph, "reference")
    expected = np.array([rt.invoke(x).ravel() for x in inputs])
    return path, graph, inputs, expected


def _build_and_run(folder, inputs, goals, run):
    if os.path.exists(MARKER):
        os.unlink(MARKER)
    with open(os.path.join(folder, "in.bin"), "wb") as f:
        f.write(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))
    r = subprocess.run(["make", "-s", "-C", str(folder), *goals], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"make failed:\n{r.stdout}\n{r.stderr}"
    r = subprocess.run(run, cwd=folder, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(MARKER), "a payload in a tensor name ran"
    rows = [ln.split() for ln in r.stdout.splitlines() if ln and not ln.startswith("#")]
    return np.array([[int(v) for v in row] for row in rows])


def _generated_text(folder) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.iterdir() if p.is_file()
                   and p.suffix in (".c", ".h", ".mk", ".md", "") and p.name != "in.bin")


HOSTILE_LINE = "edgecnn export-c 'x */ int y; /*' -o fw \\\n??/"


@pytest.mark.parametrize("target", list(TARGETS))
def test_hostile_names_compile_run_and_inject_nothing(hostile, tmp_path, target):
    path, graph, inputs, expected = hostile
    out = tmp_path / "fw"
    export_c(path, out, target=target, command_line=HOSTILE_LINE)
    text = _generated_text(out)
    for p in payloads()[:8]:
        assert p not in text
    for fragment in ("*/ __attribute__", "*\\\n/", "??/", "\x1b", "\x00", "$calls"):
        assert fragment not in text, fragment
    for name in ("model.c", "model.h"):  # outside comments and literals, no trace of a payload
        code = re.sub(r"/\*.*?\*/", " ", (out / name).read_text(), flags=re.S)
        code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', code)  # labels: string literals (c_string)
        for word in ("pwn", "system", "injected", "passwd", "static const char *x"):
            assert word not in code, (name, word)
    if target == "host":
        for program in ("model_test", "model_test_asan"):
            got = _build_and_run(out, inputs, ["all", "asan"], [f"./{program}", "in.bin"])
            np.testing.assert_array_equal(got, expected)
    else:
        got = _build_and_run(out, inputs, ["all"], ["make", "-s", "run"])
        np.testing.assert_array_equal(got, expected)


def test_comment_text_cannot_end_a_comment_or_splice():
    for p in payloads():
        c = ctext.comment(p)
        assert "*" not in c and "\\" not in c and "?" not in c and "\n" not in c
        assert len(c) <= ctext.COMMENT_LIMIT
    assert ctext.comment("features.0") == "features.0"


def test_identifiers_are_edgecnns_own_and_unique():
    ids = {ctext.identifier(i, p) for i, p in enumerate(payloads())}
    assert len(ids) == len(payloads())
    for ident in ids:
        assert ident.replace("_", "").isalnum() and ident[0] == "l"


def test_c_string_round_trips_every_byte(tmp_path):
    text = "".join(chr(c) for c in range(1, 0x250)) + '"\\??/ */'
    src = tmp_path / "s.c"
    src.write_text("#include <stdio.h>\n#include <string.h>\nstatic const char s[] = "
                   + ctext.c_string(text) + ";\nint main(void) { fwrite(s, 1, sizeof s - 1, "
                   "stdout); return 0; }\n")
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "s"),
                    str(src)], check=True)
    got = subprocess.run([str(tmp_path / "s")], capture_output=True, check=True).stdout
    assert got == text.encode("utf-8")


def test_hostile_labels_read_back_exactly_and_profile_prints_ascii(hostile, tmp_path):
    path, graph, inputs, expected = hostile
    out = tmp_path / "fw"
    export_c(path, out)
    (out / "labels.c").write_text(
        '#include <stdio.h>\n#include "model.h"\nint main(void) { int i;\n'
        '    for (i = 0; i < EC_MODEL_LABEL_COUNT; i++) { fputs(ec_model_labels[i], stdout);'
        ' putchar(0); }\n    fputs(ec_model_outputs[0].name, stdout); putchar(0);\n'
        '    return 0; }\n')
    srcs = [str(out / f) for f in ("labels.c", "model.c", "ec_conv.c", "ec_fully_connected.c",
                                    "ec_pool.c", "ec_elementwise.c", "ec_softmax.c")]
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", *srcs, "-lm", "-o",
                    str(out / "labels")], check=True)
    got = subprocess.run([str(out / "labels")], capture_output=True, check=True).stdout
    # a C string ends at its first NUL: each label reads back up to there, byte for byte
    # and the output's name (a payload too: every tensor is renamed), in ec_model_outputs
    assert got.split(b"\0")[:-1] == [name.encode().split(b"\0")[0]
                                     for name in graph.labels + graph.outputs]
    with open(out / "in.bin", "wb") as f:
        f.write(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))
    r = subprocess.run(["make", "-s", "-C", str(out), "EC_PROFILE=1", "run"], capture_output=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    layers = [ln for ln in r.stdout.splitlines() if ln.startswith(b"# layer ")]
    assert len(layers) == 7 and all(32 <= c < 127 for ln in layers for c in ln), layers
    assert not os.path.exists(MARKER)
