"""edgecnn's firmware against Arm's CMSIS-NN on Cortex-M4 and Cortex-M55 under QEMU -icount.

    python benchmarks/bench_firmware.py [--models lenet5 ds_cnn resnet8] [--cores m4 m55]
                                        [--anchor DIR] [--cmsis-nn DIR] [--work DIR] [--json]

One table: instructions per inference (QEMU -icount shift=0 counts emulated instructions, not
cycles), flash and RAM of the test program, and how many outputs equal LiteRT BUILTIN_REF and
TFLite Micro, for edgecnn export-c (rounding litert-ref and double) and for CMSIS-NN (-Ofast, its
CMake default), per model and core; then per layer.

CMSIS-NN is built from a CMSIS-NN source tree (its integer sources, compiled where they lie into
a library in the work folder, nothing copied into the project), and driven by a model file that
benchmarks/cmsisnn_gen.py writes per network, the way the anchor's gen_model.py does for LeNet-5
(LiteRT's interpreter reads the model, multipliers as TFLite Micro's Prepare computes them, the
calls TFLite Micro's CMSIS-NN port makes). The tree is --cmsis-nn: for DS-CNN and ResNet-8 a full
checkout of the anchor's commit, e.g.

    git clone https://github.com/ARM-software/CMSIS-NN /tmp/cmsis-nn
    git -C /tmp/cmsis-nn checkout 99f736a63036613032f9b70de36b493bcd7802d4

By default it is the anchor's own subset (../shared/anchors/cmsis-nn/third_party/CMSIS-NN), which
holds only what LeNet-5 needs: an op whose CMSIS-NN function does not link from the tree (a
probe link per function) runs edgecnn's kernel in the CMSIS-NN build instead, marked "*" in the
tables and named under them, so the other layers are still measured against CMSIS-NN. Both programs use edgecnn's model_test.c, port, startup, linker script and
1 KB stack, and the anchor's bench_main.c (SysTick around each invoke, a mark after each layer).
Inputs: LeNet-5 the first 24 held-out digits; DS-CNN and ResNet-8 (MLPerf Tiny, the fixtures in
tests/fixtures/tflite/graph) 8 seeded random int8 tensors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from edgecnn.convert import convert
from edgecnn.demo import data_dir, heldout_set
from edgecnn.export_c import TARGETS, export_c
from edgecnn.export_c.targets import QEMU_FLAGS
from edgecnn.model import input_from_float
from edgecnn.preprocess import normalize_pixels
from edgecnn.tflite.reader import load_tflite

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from cmsisnn_gen import FUNCTIONS, read_model  # noqa: E402  (benchmarks/ is not a package)
from cmsisnn_emit import write_model  # noqa: E402

CORES = {"m4": "cortex-m4", "m55": "cortex-m55"}
CMSIS_ARCH = {"m4": "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16",
              "m55": "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard"}
LINK = ("-Wl,--defsym=EC_STACK_SIZE=1024 -Wl,--gc-sections --specs=nano.specs "
        "--specs=rdimon.specs -nostartfiles -lm")
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tflite", "graph")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    make: callable  # (path) -> writes the int8 .tflite
    inputs: callable  # (path) -> list of int8 input tensors


def make_lenet5(path: str):
    d = data_dir()
    convert(os.path.join(d, "lenet5.pt"), path, arch="lenet5", calib=[os.path.join(d, "calib")],
            labels=tuple(str(i) for i in range(10)), mean=(0.5,), std=(0.5,), force=True)


def lenet5_inputs(path: str) -> list:
    graph = load_tflite(path).graph
    images, _ = heldout_set()
    return [input_from_float(graph, normalize_pixels(img, graph.preprocess)) for img in images[:24]]


def fixture(name: str):
    return lambda path: shutil.copyfile(os.path.join(FIXTURES, name), path)


def random_inputs(path: str) -> list:
    shape = load_tflite(path).graph.input.shape
    rng = np.random.default_rng(12)
    return [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(8)]


MODELS = {m.name: m for m in (
    ModelSpec("lenet5", make_lenet5, lenet5_inputs),
    ModelSpec("ds_cnn", fixture("tf_ds_cnn_int8_io.tflite"), random_inputs),
    ModelSpec("resnet8", fixture("tf_resnet8_int8_io.tflite"), random_inputs))}


def sh(cmd: str, cwd: str, timeout: int = 900, check: bool = True) -> str:
    r = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        sys.exit(f"bench_firmware: `{cmd}` failed in {cwd}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout if check else r.returncode


def qemu(core: str, folder: str, elf: str) -> str:
    t = TARGETS[CORES[core]]
    return sh(f"qemu-system-arm -M {t.board} {QEMU_FLAGS} -kernel {elf}", folder)


def memory(folder: str, elf: str) -> tuple[int, int]:
    """(flash, RAM) of an ELF: .text + .ARM.exidx + .data, and .data + .bss + .stack."""
    out = sh(f"arm-none-eabi-size -A {elf}", folder)
    sec = {m[1]: int(m[2]) for m in re.finditer(r"^(\.[\w.]+)\s+(\d+)", out, re.M)}
    return (sec.get(".text", 0) + sec.get(".ARM.exidx", 0) + sec.get(".data", 0),
            sec.get(".data", 0) + sec.get(".bss", 0) + sec.get(".stack", 0))


def bench_counts(text: str, core: str) -> tuple[float, list]:
    """(instructions per inference, per layer) from bench_main.c's output."""
    per_tick = 1e9 / TARGETS[CORES[core]].core_hz
    digits = [int(v) for v in re.findall(r"^digit \d+ (\d+)", text, re.M)]
    layers = [int(v) for _, v in re.findall(r"^layer (\d+) (\d+)", text, re.M)]
    return (np.mean(digits) * per_tick, [v / len(digits) * per_tick for v in layers])


def values(text: str) -> list:
    return [ln.strip() for ln in text.splitlines() if ln and not ln.startswith("#")]


def references(model: str, inputs: list) -> dict:
    """Output lines of LiteRT BUILTIN_REF and of TFLite Micro (its Python interpreter)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro.python.tflite_micro import runtime as tflm
    ref = Interpreter(model_path=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    i, o = ref.get_input_details()[0]["index"], ref.get_output_details()[0]["index"]
    micro = tflm.Interpreter.from_file(model)
    lines = {"LiteRT": [], "TFLM": []}
    for x in inputs:
        ref.set_tensor(i, x.reshape(ref.get_input_details()[0]["shape"]))
        ref.invoke()
        micro.set_input(x.reshape(ref.get_input_details()[0]["shape"]), 0)
        micro.invoke()
        for key, y in (("LiteRT", ref.get_tensor(o)), ("TFLM", micro.get_output(0))):
            lines[key].append(" ".join(str(int(v)) for v in np.asarray(y).ravel()))
    return lines


def build_edgecnn(model: str, core: str, rounding: str, work: str, anchor: str, in_bin: str):
    """export-c, `make`, and the anchor's per-layer bench (a mark after each kernel call)."""
    d = os.path.join(work, f"ec_{core}_{rounding}")
    shutil.rmtree(d, ignore_errors=True)
    export_c(model, d, target=CORES[core], rounding=rounding)
    sh("make -s", d)
    shutil.copy(in_bin, os.path.join(d, "in.bin"))
    src = open(os.path.join(d, "model.c")).read().replace(
        '#include "model.h"', '#include "model.h"\nvoid bench_mark(int layer);', 1)
    head, body = src.split("void ec_model_invoke(void) {", 1)
    k = iter(range(1000))
    body = re.sub(r"^(    ec_[a-z0-9_]+\(.*\);.*)$", lambda m: f"{m[1]}\n    bench_mark({next(k)});",
                  body, flags=re.M)
    with open(os.path.join(d, "model_bench.c"), "w") as f:
        f.write(head + "void ec_model_invoke(void) {" + body)
    kernels = " ".join(sorted(n for n in os.listdir(d) if n.startswith("ec_") and n.endswith(".c")
                              and n != "ec_port_host.c"))
    t = TARGETS[CORES[core]]
    sh(f"arm-none-eabi-gcc -std=c99 -O2 {CMSIS_ARCH[core]} -ffunction-sections -fdata-sections "
       f"-I. model_bench.c {kernels} startup_cortexm.c {anchor}/bench_main.c -L. -T "
       f"{t.linker_script} {LINK} -o bench.elf", d)
    return d


def cmsis_library(core: str, work: str, nn: str) -> str:
    """libcmsisnn.a: every integer source of the CMSIS-NN tree ``nn`` (the _f16 / _f32 float
    kernels need headers CMSIS-NN leaves to CMSIS-DSP) compiled once per core at -Ofast; a
    library, so a link takes only the objects the model calls."""
    d = os.path.join(work, f"cmsisnn_{core}")
    lib = os.path.join(d, "libcmsisnn.a")
    if os.path.exists(lib):
        return lib
    os.makedirs(d, exist_ok=True)
    objs = []
    for root, _, files in os.walk(os.path.join(nn, "Source")):
        for f in sorted(files):
            if f.endswith(".c") and not f.endswith(("_f16.c", "_f32.c")):
                obj = os.path.join(d, f[:-2] + ".o")
                sh(f"arm-none-eabi-gcc -Ofast {CMSIS_ARCH[core]} -ffunction-sections "
                   f"-fdata-sections -I{nn}/Include -c {os.path.join(root, f)} -o {obj}", d)
                objs.append(obj)
    sh(f"arm-none-eabi-ar rcs {lib} {' '.join(sorted(objs))}", d)
    return lib


def linkable(function: str, core: str, lib: str, ec_dir: str) -> bool:
    """Whether a call to CMSIS-NN's ``function`` links from the tree's library."""
    d = os.path.dirname(lib)
    with open(os.path.join(d, "probe.c"), "w") as f:
        f.write(f"void {function}(void);\nint main(void) {{ {function}(); return 0; }}\n")
    t = TARGETS[CORES[core]]
    return sh(f"arm-none-eabi-gcc -O2 {CMSIS_ARCH[core]} probe.c {lib} "
              f"{ec_dir}/startup_cortexm.c {ec_dir}/ec_port_semihost.c -L{ec_dir} "
              f"-T {t.linker_script} {LINK} -o probe.elf", d, check=False) == 0


def build_cmsis(model: str, core: str, work: str, anchor: str, nn: str, lib: str, in_bin: str,
                ec_dir: str):
    """CMSIS-NN -Ofast (the tree ``nn``, its library ``lib``) with edgecnn's test program, port
    and startup; returns (folder, the op kinds edgecnn's kernels stood in for)."""
    layers, det, it = read_model(model)
    kinds = {l.kind for l in layers if l.kind in FUNCTIONS}
    missing = {k for k in kinds if not linkable(FUNCTIONS[k], core, lib, ec_dir)}
    d = os.path.join(work, f"nn_{core}")
    shutil.rmtree(d, ignore_errors=True)
    write_model(model, d, layers, det, it, missing)
    t = TARGETS[CORES[core]]
    for name in os.listdir(ec_dir):  # edgecnn's harness, port, startup, linker script (and
        if name.endswith((".ld", ".h")) or name in ("model_test.c", "ec_port_semihost.c",  # the
                                                    "startup_cortexm.c"):  # stand-ins' kernels)
            if name != "model.h":
                shutil.copy(os.path.join(ec_dir, name), d)
    kernels = ""
    if missing:
        kernels = " ".join(n for n in sorted(os.listdir(ec_dir)) if n.startswith("ec_")
                           and n.endswith(".c") and n not in ("ec_port_host.c", "ec_port_semihost.c"))
        for n in kernels.split():
            shutil.copy(os.path.join(ec_dir, n), d)
    shutil.copy(in_bin, os.path.join(d, "in.bin"))
    flags = f"-Ofast {CMSIS_ARCH[core]} -ffunction-sections -fdata-sections -I{nn}/Include -I."
    sh(f"arm-none-eabi-gcc {flags} -c cmsisnn_model.c -o model.o", d)
    sh(f"arm-none-eabi-gcc {flags} -DBENCH_LAYERS -c cmsisnn_model.c -o model_bench.o", d)
    common = f"-std=c99 -O2 {CMSIS_ARCH[core]} -ffunction-sections -fdata-sections -I."
    tail = (f"{kernels} ec_port_semihost.c startup_cortexm.c {lib} -L. "
            f"-T {t.linker_script} {LINK}")
    sh(f"arm-none-eabi-gcc {common} model_test.c model.o {tail} -o model_test.elf", d)
    sh(f"arm-none-eabi-gcc {common} {anchor}/bench_main.c model_bench.o {tail} -o bench.elf", d)
    return d, missing


def run(spec: ModelSpec, cores, work: str, anchor: str, nn: str) -> tuple[list, list]:
    """(table rows, layer labels) for one model."""
    libs = {core: cmsis_library(core, work, nn) for core in cores}
    work = os.path.join(work, spec.name)
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, f"{spec.name}.tflite")
    spec.make(model)
    inputs = spec.inputs(model)
    in_bin = os.path.join(work, "in.bin")
    with open(in_bin, "wb") as f:
        f.write(b"".join(np.ascontiguousarray(x, np.int8).tobytes() for x in inputs))
    refs = references(model, inputs)
    layers = [l for l in read_model(model)[0] if l.kind != "reshape"]
    rows = []
    for core in cores:
        for rounding in ("litert-ref", "double"):
            d = build_edgecnn(model, core, rounding, work, anchor, in_bin)
            instr, per_layer = bench_counts(qemu(core, d, "bench.elf"), core)
            rows.append(dict(model=spec.name, core=core, impl=f"edgecnn export-c ({rounding})",
                             instructions=instr, layers=per_layer,
                             memory=memory(d, "model_test.elf"),
                             outputs=values(qemu(core, d, "model_test.elf")), stand_in=[]))
        d, missing = build_cmsis(model, core, work, anchor, nn, libs[core], in_bin,
                                 os.path.join(work, f"ec_{core}_double"))
        instr, per_layer = bench_counts(qemu(core, d, "bench.elf"), core)
        impl = "CMSIS-NN -Ofast" + (f" + edgecnn {', '.join(sorted(missing))}" if missing else "")
        rows.append(dict(model=spec.name, core=core, impl=impl, instructions=instr,
                         layers=per_layer, memory=memory(d, "model_test.elf"),
                         outputs=values(qemu(core, d, "model_test.elf")),
                         stand_in=sorted(missing)))
    for row in rows:
        for key, want in refs.items():
            row[f"= {key}"] = sum(a == b for a, b in zip(row["outputs"], want))
    labels = [f"{l.kind} {'x'.join(str(int(v)) for v in layer_shape(l))}" for l in layers]
    return rows, [(label, l.kind) for label, l in zip(labels, layers)]


def layer_shape(l):
    w = getattr(l, "w", None)
    return w.shape if w is not None else ()


def table(rows: list, labels: dict) -> str:
    lines = ["| model | core | implementation | instructions / inference | flash B | RAM B | "
             "outputs = LiteRT BUILTIN_REF | = TFLite Micro |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        n = len(r["outputs"])
        star = " *" if r["stand_in"] else ""
        lines.append(f"| {r['model']} | {r['core']} | {r['impl']}{star} | "
                     f"{r['instructions']:,.0f} | {r['memory'][0]:,} | {r['memory'][1]:,} | "
                     f"{r['= LiteRT']}/{n} | {r['= TFLM']}/{n} |")
    stand = sorted({k for r in rows for k in r["stand_in"]})
    if stand:
        lines += ["", f"\\* CMSIS-NN build with edgecnn's kernels for {', '.join(stand)}: the "
                  "CMSIS-NN tree (--cmsis-nn) lacks " + ", ".join(FUNCTIONS[k] for k in stand)
                  + " (or what they call): NOT a CMSIS-NN measurement for those layers (they "
                  "run edgecnn's kernels); only the other layers are CMSIS-NN's."]
    for name, layer_labels in labels.items():
        mine = [r for r in rows if r["model"] == name and r["impl"] != "edgecnn export-c (double)"]
        lines += ["", f"per layer, {name} (instructions per inference):", "",
                  "| layer | " + " | ".join(f"{r['core']} {r['impl']}" for r in mine) + " |",
                  "|---|" + "---:|" * len(mine)]
        for k, (label, kind) in enumerate(layer_labels):
            cells = []
            for r in mine:
                v = f"{r['layers'][k]:,.0f}" if k < len(r["layers"]) else "-"
                cells.append(v + (" *" if kind in r["stand_in"] else ""))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def default_anchor() -> str:
    for up in (REPO, os.path.dirname(REPO)):
        path = os.path.join(os.path.dirname(up), "shared", "anchors", "cmsis-nn")
        if os.path.isdir(path):
            return path
    return os.path.join(os.path.dirname(REPO), "shared", "anchors", "cmsis-nn")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor", default=default_anchor(),
                    help="the CMSIS-NN anchor folder (default: shared/anchors/cmsis-nn next to "
                         "the checkout, or next to its parent for a worktree)")
    ap.add_argument("--cmsis-nn", dest="nn", default=None,
                    help="a CMSIS-NN source tree (default: the anchor's third_party/CMSIS-NN, "
                         "only LeNet-5's kernels)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "edgecnn-bench-fw"))
    ap.add_argument("--cores", nargs="+", default=list(CORES), choices=list(CORES))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    anchor = os.path.abspath(args.anchor)
    if not os.path.isfile(os.path.join(anchor, "bench_main.c")):
        sys.exit(f"bench_firmware: no CMSIS-NN anchor in {anchor}; pass --anchor DIR")
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_firmware: {tool} is missing (apt-get install gcc-arm-none-eabi "
                     "libnewlib-arm-none-eabi qemu-system-arm)")
    nn = os.path.abspath(args.nn or os.path.join(anchor, "third_party", "CMSIS-NN"))
    if not os.path.isfile(os.path.join(nn, "Include", "arm_nnfunctions.h")):
        sys.exit(f"bench_firmware: no CMSIS-NN tree in {nn} (Include/arm_nnfunctions.h); "
                 "pass --cmsis-nn DIR")
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)  # CMSIS-NN is rebuilt from this tree
    os.makedirs(work)
    rows, labels = [], {}
    for name in args.models:
        r, labels[name] = run(MODELS[name], args.cores, work, anchor, nn)
        rows += r
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "outputs"} for r in rows], indent=2))
        return
    print("edgecnn firmware vs CMSIS-NN: QEMU -icount shift=0 (emulated instructions, not cycles); "
          "flash = .text + .ARM.exidx + .data, RAM = .data + .bss + 1 KB stack of the test program")
    print(table(rows, labels))


if __name__ == "__main__":
    main()
