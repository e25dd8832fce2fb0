"""edgecnn's firmware against Arm's CMSIS-NN on Cortex-M4 and Cortex-M55 under QEMU -icount.

    python benchmarks/bench_firmware.py [--anchor DIR] [--work DIR] [--cores m4 m55] [--json]

One table: instructions per inference (QEMU -icount shift=0 counts emulated instructions, not
cycles), flash and RAM of the test program, and whether the outputs are bit-exact, for edgecnn
export-c and for CMSIS-NN (-Ofast, its CMake default), per model and core; then per layer.

CMSIS-NN is the anchor in ../shared/anchors/cmsis-nn (its sources, its LeNet-5 harness and its
model generator are used where they lie; nothing is copied into the project). Both programs run
on the same port, startup, linker script and 24 inputs, and are timed the anchor's way
(bench_main.c: SysTick around each invoke, a mark after each layer).

A model is a ModelSpec: how to make its .tflite with edgecnn, the anchor's C harness for it and
its model generator; a depthwise (DS-CNN) or residual (ResNet-8) model joins MODELS once the
graph ops and a CMSIS-NN harness for it exist.
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
from edgecnn.demo import data_dir
from edgecnn.export_c import TARGETS, export_c
from edgecnn.export_c.targets import QEMU_FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORES = {"m4": "cortex-m4", "m55": "cortex-m55"}
CMSIS_ARCH = {"m4": "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16",
              "m55": "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard"}
LINK = ("-Wl,--defsym=EC_STACK_SIZE=1024 -Wl,--gc-sections --specs=nano.specs "
        "--specs=rdimon.specs -nostartfiles -lm")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    make: callable  # (path) -> writes the int8 .tflite
    harness: str  # the anchor's C file running the model on CMSIS-NN (behind model.h)
    generator: str  # the anchor's script: model -> cmsisnn_model_data.h and in.bin
    layers: tuple  # layer labels for the per-layer table


def make_lenet5(path: str):
    d = data_dir()
    convert(os.path.join(d, "lenet5.pt"), path, arch="lenet5", calib=[os.path.join(d, "calib")],
            labels=tuple(str(i) for i in range(10)), mean=(0.5,), std=(0.5,), force=True)


MODELS = {"lenet5": ModelSpec("lenet5", make_lenet5, "cmsisnn_model.c", "gen_model.py",
                              ("conv1 5x5 1->6", "maxpool 2x2", "conv2 5x5 6->16", "maxpool 2x2",
                               "fc 400->120", "fc 120->84", "fc 84->10"))}


def sh(cmd: str, cwd: str, timeout: int = 600) -> str:
    r = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit(f"bench_firmware: `{cmd}` failed in {cwd}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


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
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def build_edgecnn(model: str, core: str, rounding: str, work: str, anchor: str, gen: str):
    """export-c, `make`, and the anchor's per-layer bench (a mark after each kernel call)."""
    d = os.path.join(work, f"ec_{core}_{rounding}")
    shutil.rmtree(d, ignore_errors=True)
    export_c(model, d, target=CORES[core], rounding=rounding)
    sh("make -s", d)
    shutil.copy(os.path.join(gen, "in.bin"), d)
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


def build_cmsis(spec: ModelSpec, core: str, work: str, anchor: str, gen: str, harness_dir: str):
    """CMSIS-NN -Ofast from the anchor's sources, with edgecnn's test program, port and startup."""
    d = os.path.join(work, f"nn_{core}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name in ("model_test.c", "ec_port_semihost.c", "startup_cortexm.c", "ec_port.h"):
        shutil.copy(os.path.join(harness_dir, name), d)
    t = TARGETS[CORES[core]]
    for name in (t.linker_script, "sections.ld"):
        shutil.copy(os.path.join(harness_dir, name), d)
    shutil.copy(os.path.join(anchor, "model.h"), d)
    shutil.copy(os.path.join(gen, "in.bin"), d)
    nn = os.path.join(anchor, "third_party", "CMSIS-NN")
    flags = (f"-Ofast {CMSIS_ARCH[core]} -ffunction-sections -fdata-sections -I{nn}/Include "
             f"-I{gen} -I{anchor}")
    srcs = sorted(os.path.join(root, f) for root, _, files in os.walk(os.path.join(nn, "Source"))
                  for f in files if f.endswith(".c"))
    objs = []
    for src in srcs:
        obj = os.path.join(d, os.path.basename(src)[:-2] + ".o")
        sh(f"arm-none-eabi-gcc {flags} -c {src} -o {obj}", d)
        objs.append(obj)
    harness = os.path.join(anchor, spec.harness)
    sh(f"arm-none-eabi-gcc {flags} -c {harness} -o model.o", d)
    sh(f"arm-none-eabi-gcc {flags} -DBENCH_LAYERS -c {harness} -o model_bench.o", d)
    common = f"-std=c99 -O2 {CMSIS_ARCH[core]} -ffunction-sections -fdata-sections -I."
    tail = f"ec_port_semihost.c startup_cortexm.c {' '.join(objs)} -L. -T {t.linker_script} {LINK}"
    sh(f"arm-none-eabi-gcc {common} model_test.c model.o {tail} -o model_test.elf", d)
    sh(f"arm-none-eabi-gcc {common} {anchor}/bench_main.c model_bench.o {tail} -o bench.elf", d)
    return d


def run(spec: ModelSpec, cores, work: str, anchor: str) -> list:
    model = os.path.join(work, f"{spec.name}.tflite")
    spec.make(model)
    gen = os.path.join(work, "gen")
    sh(f"{sys.executable} {os.path.join(anchor, spec.generator)} {model} {gen} 24", work)
    rows = []
    for core in cores:
        for rounding in ("litert-ref", "double"):
            d = build_edgecnn(model, core, rounding, work, anchor, gen)
            out = qemu(core, d, "model_test.elf")
            instr, layers = bench_counts(qemu(core, d, "bench.elf"), core)
            rows.append(dict(model=spec.name, core=core, impl=f"edgecnn export-c ({rounding})",
                             instructions=instr, layers=layers, memory=memory(d, "model_test.elf"),
                             outputs=values(out)))
        d = build_cmsis(spec, core, work, anchor, gen, os.path.join(work, f"ec_{core}_litert-ref"))
        instr, layers = bench_counts(qemu(core, d, "bench.elf"), core)
        rows.append(dict(model=spec.name, core=core, impl="CMSIS-NN -Ofast", instructions=instr,
                         layers=layers, memory=memory(d, "model_test.elf"),
                         outputs=values(qemu(core, d, "model_test.elf"))))
        litert = open(os.path.join(gen, "ref_litert.txt")).read().split("\n")
        tflm = os.path.join(gen, "ref_tflm.txt")
        tflm = open(tflm).read().split("\n") if os.path.exists(tflm) else []
        for row in rows[-3:]:
            row["= LiteRT"] = sum(a == b for a, b in zip(row["outputs"], litert))
            row["= TFLM"] = sum(a == b for a, b in zip(row["outputs"], tflm)) if tflm else None
    return rows


def table(rows: list, specs: dict) -> str:
    lines = ["| model | core | implementation | instructions / inference | flash B | RAM B | "
             "outputs = LiteRT BUILTIN_REF | = TFLite Micro |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        n = len(r["outputs"])
        tflm = "-" if r["= TFLM"] is None else f"{r['= TFLM']}/{n}"
        lines.append(f"| {r['model']} | {r['core']} | {r['impl']} | {r['instructions']:,.0f} | "
                     f"{r['memory'][0]:,} | {r['memory'][1]:,} | {r['= LiteRT']}/{n} | {tflm} |")
    for name, spec in specs.items():
        mine = [r for r in rows if r["model"] == name and r["impl"] != "edgecnn export-c (double)"]
        lines += ["", f"per layer, {name} (instructions per inference):", "",
                  "| layer | " + " | ".join(f"{r['core']} {r['impl']}" for r in mine) + " |",
                  "|---|" + "---:|" * len(mine)]
        for k, label in enumerate(spec.layers):
            lines.append(f"| {label} | " + " | ".join(
                f"{r['layers'][k]:,.0f}" if k < len(r["layers"]) else "-" for r in mine) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor", default=os.path.join(REPO, "..", "shared", "anchors", "cmsis-nn"),
                    help="the CMSIS-NN anchor folder (default: ../shared/anchors/cmsis-nn)")
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
    os.makedirs(args.work, exist_ok=True)
    specs = {m: MODELS[m] for m in args.models}
    rows = [r for spec in specs.values() for r in run(spec, args.cores, args.work, anchor)]
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "outputs"} for r in rows], indent=2))
        return
    print("edgecnn firmware vs CMSIS-NN: QEMU -icount shift=0 (emulated instructions, not cycles); "
          "flash = .text + .ARM.exidx + .data, RAM = .data + .bss + 1 KB stack of the test program")
    print(table(rows, specs))


if __name__ == "__main__":
    main()
