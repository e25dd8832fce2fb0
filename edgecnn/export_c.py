"""``edgecnn export-c``: an int8 .tflite as a C99 firmware project (host or Cortex-M under QEMU).

The model is read and prepared exactly as the Python runtime prepares it, with a recording
backend in place of the kernels: every kernel call records the parameters prepare derived
(multipliers, shifts, clamps, tables), so the C gets the very numbers the Python runtime uses.
The C kernels (firmware_stubs/) are the twins of edgecnn/reference/*.py; with the same rounding
policy the firmware equals ``Runtime(graph, "reference", rounding)`` bit for bit.

Memory: one static arena. A greedy planner (largest tensor first, lowest offset that overlaps no
tensor alive at the same time, as TFLite Micro's GreedyMemoryPlanner) places every activation;
a reshape aliases its input. Weights and parameters are ``const`` (flash); nothing allocates.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, ir
from .errors import InputFileError, UnsupportedOpError, UsageError
from .prepare import prepare
from .reference import params as P
from .reference.quantize import activation_lut
from .tflite.reader import load_tflite

STACK_BYTES = 1024  # reserved by the linker scripts; `make stack` measures < 400 on the deepest path
RUNTIME_STATIC_BYTES = 256  # model_test's line buffer and the port's state (.data + .bss)
ALIGN = 8  # arena offsets: float tensors need 4, 8 keeps doubles possible
KERNEL_SRCS = ("ec_conv.c", "ec_fully_connected.c", "ec_pool.c", "ec_elementwise.c",
               "ec_softmax.c")
COMMON_FILES = ("Makefile", "ec_kernels.h", "ec_port.h", "fixedpoint.h", "model_test.c",
                "ec_port_host.c", "ec_port_semihost.c", "startup_cortexm.c") + KERNEL_SRCS
QEMU_FLAGS = ("-nographic -monitor none -serial none -semihosting-config enable=on,target=native "
              "-icount shift=0")


@dataclass(frozen=True)
class Target:
    name: str
    cpu: str = ""  # -mcpu; empty for the host
    board: str = ""  # QEMU -M
    linker_script: str = ""
    float_flags: str = ""
    flash_bytes: int = 0  # 0: no limit (host)
    ram_bytes: int = 0
    core_hz: int = 0  # QEMU's core clock: SysTick ticks * 1e9 / core_hz = instructions (icount 0)
    code_bytes: int = 0  # kernels, runtime, libc/libm/soft-float: LeNet-5 measured at -O2 with
    # arm-none-eabi-gcc 12.2 plus ~2 KB for the kernels LeNet does not link (softmax, quantize)

    @property
    def is_host(self) -> bool:
        return not self.cpu


TARGETS = {t.name: t for t in (
    Target("host", code_bytes=0),
    Target("cortex-m0", "cortex-m0", "microbit", "microbit.ld", "-mfloat-abi=soft",
           256 << 10, 16 << 10, 16_000_000, 14_000),
    Target("cortex-m3", "cortex-m3", "mps2-an385", "mps2.ld", "-mfloat-abi=soft",
           4 << 20, 4 << 20, 25_000_000, 10_000),
    Target("cortex-m4", "cortex-m4", "mps2-an386", "mps2.ld",
           "-mfloat-abi=hard -mfpu=fpv4-sp-d16", 4 << 20, 4 << 20, 25_000_000, 9_000),
    Target("cortex-m7", "cortex-m7", "mps2-an500", "mps2.ld", "-mfloat-abi=hard -mfpu=fpv5-d16",
           4 << 20, 4 << 20, 25_000_000, 7_000),
    Target("cortex-m33", "cortex-m33", "mps2-an505", "mps2_an505.ld",
           "-mfloat-abi=hard -mfpu=fpv5-sp-d16", 4 << 20, 2 << 20, 20_000_000, 8_500),
    Target("cortex-m55", "cortex-m55", "mps3-an547", "mps3_an547.ld", "-mfloat-abi=hard",
           512 << 10, 512 << 10, 32_000_000, 7_000),
)}


@dataclass(frozen=True)
class PlanRow:
    layer: str
    op: str
    tensor: str
    shape: tuple
    bytes: int
    offset: int
    alias_of: str = ""  # a reshape: the tensor whose bytes it reuses


@dataclass
class ExportReport:
    model: str
    out_dir: str
    target: Target
    rounding: str
    weights_bytes: int  # const data: weights, biases, requantization arrays, tables
    code_bytes: int  # estimate for the target (0 on the host)
    arena_bytes: int
    stack_bytes: int
    rows: list
    files: list = field(default_factory=list)

    @property
    def flash_bytes(self) -> int:
        return self.weights_bytes + self.code_bytes

    @property
    def ram_bytes(self) -> int:
        return self.arena_bytes + self.stack_bytes + RUNTIME_STATIC_BYTES


def stubs_dir() -> Path:
    """firmware_stubs/: the installed package data, or the source tree in a checkout."""
    try:
        from importlib import resources
        path = Path(str(resources.files("edgecnn.firmware_stubs")))
        if (path / "ec_kernels.h").exists():
            return path
    except (ImportError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "firmware_stubs"


# ---- reading the model through prepare ---------------------------------------------------------

class _Recorder:
    """A kernel backend that records calls: prepare binds it; each step's run() is then called
    once with placeholder buffers to capture the kernel name and the prepared parameters."""

    def __init__(self):
        self.calls = []

    def activation_lut(self, *args):
        return activation_lut(*args)

    def __getattr__(self, name):
        if name.startswith("bind_") or name.startswith("__") or name == "set_num_threads":
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def _record_steps(graph: ir.Graph, rounding: str):
    rec = _Recorder()
    plan = prepare(graph, rec, rounding)
    steps = []
    for step in plan.steps:
        if step.view_only:
            steps.append((step, None, None))
            continue
        step.run(None, None)
        name, args = rec.calls.pop()
        steps.append((step, name, args[1:-1]))  # drop the (input, output) placeholders
    return steps


# ---- arena planning ------------------------------------------------------------------------------

def _nbytes(t: ir.Tensor) -> int:
    return math.prod(t.shape) * (4 if t.dtype == "float32" else 1)


def plan_arena(graph: ir.Graph, steps) -> tuple[list, dict, int]:
    """(rows, offsets by tensor name, arena bytes). Lifetimes in step indices: the input lives
    from before step 0, the output until after the last step (the caller reads it)."""
    root = {graph.input.name: graph.input.name}
    first = {graph.input.name: -1}
    last = {graph.input.name: -1}
    tensors = {graph.input.name: graph.input}
    for i, (step, _, _) in enumerate(steps):
        layer = step.layer
        src = root[layer.inputs[0]]
        last[src] = i
        out = layer.output
        if step.view_only:
            root[out.name] = src
            continue
        root[out.name] = out.name
        tensors[out.name] = out
        first[out.name], last[out.name] = i, i
    last[root[graph.output.name]] = len(steps)
    placed = []  # (offset, size, first, last)
    offsets = {}
    for name in sorted(tensors, key=lambda n: (-_nbytes(tensors[n]), first[n])):
        size = -(-_nbytes(tensors[name]) // ALIGN) * ALIGN
        offset = 0
        for o, s, f, l in sorted(placed):
            if f <= last[name] and first[name] <= l and o < offset + size and offset < o + s:
                offset = max(offset, -(-(o + s) // ALIGN) * ALIGN)
        placed.append((offset, size, first[name], last[name]))
        offsets[name] = offset
    arena = max((o + s for o, s, _, _ in placed), default=0)
    rows = [PlanRow("(input)", "input", graph.input.name, graph.input.shape,
                    _nbytes(graph.input), offsets[graph.input.name])]
    for step, _, _ in steps:
        out = step.layer.output
        r = root[out.name]
        rows.append(PlanRow(step.layer.name, type(step.layer).__name__, out.name, out.shape,
                            _nbytes(out), offsets[r], r if r != out.name else ""))
    return rows, {n: offsets[root[n]] for n in root}, max(arena, ALIGN)


# ---- C code generation ---------------------------------------------------------------------------

def c_name(name: str) -> str:
    """A layer or tensor name as a C identifier: features.0 -> features_0."""
    out = "".join(ch if ch.isalnum() else "_" for ch in name)
    return out if out and not out[0].isdigit() else "l_" + out


def _c_double(v: float) -> str:
    return float(v).hex()  # C99 hex float literal: exact, no decimal round trip


class _Constants:
    """const arrays in flash, 4-byte aligned, counted for the flash report."""

    CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t",
              np.dtype(np.float64): "double"}

    def __init__(self):
        self.chunks = []
        self.bytes = 0

    def add(self, name: str, values, dtype) -> str:
        a = np.ascontiguousarray(values, dtype).ravel()
        ctype = self.CTYPES[np.dtype(dtype)]
        fmt = _c_double if a.dtype == np.float64 else str
        per_line = 4 if a.dtype == np.float64 else 16
        lines = [", ".join(fmt(v) for v in a[i:i + per_line].tolist())
                 for i in range(0, a.size, per_line)]
        body = ",\n    ".join(lines)
        self.chunks.append(f"static const {ctype} {name}[{a.size}] EC_ALIGN(4) = {{\n    {body}}};\n")
        self.bytes += a.nbytes
        return name

    def text(self) -> str:
        return "".join(self.chunks)


def _struct(ctype: str, name: str, fields: dict) -> str:
    body = ", ".join(f".{k} = {v}" for k, v in fields.items())
    return f"static const {ctype} {name} = {{{body}}};\n"


def _dims(shape) -> tuple:
    s = tuple(shape[1:])
    return s if len(s) == 3 else (1, 1, math.prod(s))


def _check_accumulator(layer, w: np.ndarray, b: np.ndarray):
    """The C kernels accumulate in int32 as TFLite does: refuse a layer that could overflow."""
    per_out = np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1) * 255
    worst = int((per_out + np.abs(b.astype(np.int64))).max())
    if worst >= 1 << 31:
        raise UnsupportedOpError(f"{layer.name}: the int32 accumulator could reach {worst}; the C "
                                 "kernels accumulate in int32 like TFLite and cannot run it")


def _requant(consts, cname: str, rq: P.Requant, channels: int, lines: list) -> str:
    """Per-tensor arrays (length 1) are broadcast: the C kernels index them per channel."""
    rq = P.Requant(*(np.broadcast_to(a, (channels,)) for a in (rq.multiplier, rq.shift,
                                                                  rq.real_scale)),
                   rq.policy, rq.output_offset, rq.act_min, rq.act_max)
    uses_m0 = rq.policy in (P.POLICY_DOUBLE, P.POLICY_SINGLE)
    fields = {
        "multiplier": consts.add(f"{cname}_multiplier", rq.multiplier, np.int32) if uses_m0 else "0",
        "shift": consts.add(f"{cname}_shift", rq.shift, np.int32) if uses_m0 else "0",
        "real_scale": "0" if uses_m0 else consts.add(f"{cname}_real_scale", rq.real_scale,
                                                     np.float64),
        "policy": rq.policy, "output_offset": rq.output_offset, "act_min": rq.act_min,
        "act_max": rq.act_max}
    lines.append(_struct("ec_requant_t", f"{cname}_requant", fields))
    return f"&{cname}_requant"


def _params(ctype: str, cname: str, p, lines: list) -> str:
    lines.append(_struct(ctype, f"{cname}_params", {k: int(getattr(p, k))
                                                    for k in p.__dataclass_fields__}))
    return f"&{cname}_params"


def _layer_call(step, kernel, args, consts, layers, src, dst) -> str:
    """The C statement for one step; parameter records go to ``layers``, arrays to ``consts``."""
    layer = step.layer
    cn = c_name(layer.name)
    i8, o8 = f"(const int8_t *)({src})", f"(int8_t *)({dst})"
    if kernel in ("conv2d_s8", "max_pool_s8", "avg_pool_s8", "pad_s8"):
        for which, shape in (("in", step.in_shape), ("out", step.out_shape)):
            layers.append(_struct("ec_dims_t", f"{cn}_{which}", dict(zip("hwc", shape))))
    if kernel == "conv2d_s8":
        w, b, p, rq = args
        _check_accumulator(layer, w, b)
        wn, bn = consts.add(f"{cn}_weight", w, np.int8), consts.add(f"{cn}_bias", b, np.int32)
        pp, rp = _params("ec_conv_params_t", cn, p, layers), _requant(consts, cn, rq, w.shape[0],
                                                                       layers)
        return (f"ec_conv2d_s8({i8}, &{cn}_in, {wn}, {w.shape[1]}, {w.shape[2]}, {bn}, {pp}, "
                f"{rp}, {o8}, &{cn}_out);")
    if kernel == "fully_connected_s8":
        w, b, p, rq = args
        _check_accumulator(layer, w, b)
        wn, bn = consts.add(f"{cn}_weight", w, np.int8), consts.add(f"{cn}_bias", b, np.int32)
        pp, rp = _params("ec_fc_params_t", cn, p, layers), _requant(consts, cn, rq, w.shape[0],
                                                                       layers)
        return (f"ec_fully_connected_s8({i8}, {w.shape[1]}, {wn}, {bn}, {pp}, {rp}, {o8}, "
                f"{w.shape[0]});")
    if kernel in ("max_pool_s8", "avg_pool_s8"):
        pp = _params("ec_pool_params_t", cn, args[0], layers)
        return f"ec_{kernel}({i8}, &{cn}_in, {pp}, {o8}, &{cn}_out);"
    if kernel == "pad_s8":
        top, left, value = args
        return f"ec_pad_s8({i8}, &{cn}_in, {top}, {left}, {value}, {o8}, &{cn}_out);"
    n = math.prod(step.in_shape)
    if kernel == "softmax_s8":
        return f"ec_softmax_s8({i8}, {n}, {_params('ec_softmax_params_t', cn, args[0], layers)}, {o8});"
    if kernel == "relu_s8_params":
        return f"ec_relu_s8_params({i8}, {n}, {_params('ec_relu_params_t', cn, args[0], layers)}, {o8});"
    if kernel == "lut_s8":
        return f"ec_lut_s8({i8}, {n}, {consts.add(f'{cn}_lut', args[0], np.int8)}, {o8});"
    if kernel == "quantize_s8":
        scale, zp = args
        return f"ec_quantize_s8((const float *)({src}), {n}, (float){_c_double(scale)}, {zp}, {o8});"
    if kernel == "dequantize_s8":
        scale, zp = args
        return f"ec_dequantize_s8({i8}, {n}, (float){_c_double(scale)}, {zp}, (float *)({dst}));"
    raise UnsupportedOpError(f"{layer.name}: export-c has no C kernel for {kernel}")


# ---- the project ---------------------------------------------------------------------------------

def _provenance(model_path: str, digest: str, target: Target, rounding: str,
                command_line: str) -> str:
    safe = (command_line or "(library call)").replace("*/", "* /")
    return (f"/* Generated by edgecnn {__version__} export-c; do not edit.\n"
            f" * source model: {os.path.basename(model_path)} (sha256 {digest})\n"
            f" * target: {target.name}, rounding: {rounding}\n"
            f" * command line: {safe}\n */")


def _target_mk(target: Target) -> dict:
    if target.is_host:
        return dict(target="host", cc="cc", size="size", opt="-O2", arch_flags="",
                    port_srcs="ec_port_host.c", program="model_test", ldflags="-lm",
                    run="./model_test in.bin")
    ldflags = (f"-L. -T {target.linker_script} -Wl,--defsym=EC_STACK_SIZE={STACK_BYTES} "
               "-Wl,--gc-sections --specs=nano.specs --specs=rdimon.specs -nostartfiles -lm")
    return dict(target=target.name, cc="arm-none-eabi-gcc", size="arm-none-eabi-size", opt="-O2",
                arch_flags=f"-mcpu={target.cpu} -mthumb {target.float_flags}",
                port_srcs="ec_port_semihost.c startup_cortexm.c", program="model_test.elf",
                ldflags=ldflags,
                run=f"timeout 600 qemu-system-arm -M {target.board} {QEMU_FLAGS} -kernel "
                    "model_test.elf")


def _check_out_dir(out_dir: str, force: bool):
    if os.path.isfile(out_dir):
        raise InputFileError(f"{out_dir} is a file; give a folder for the firmware project")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise InputFileError(f"{out_dir} exists and is not empty; pass --force to overwrite it")


def _check_fits(report: ExportReport):
    t = report.target
    if t.is_host:
        return
    for what, need, have in (("flash", report.flash_bytes, t.flash_bytes),
                             ("RAM", report.ram_bytes, t.ram_bytes)):
        if need > have:
            raise UsageError(
                f"{os.path.basename(report.model)} needs {need:,} bytes of {what} but {t.name} "
                f"({t.board}) has {have:,}; pick a larger target or a smaller model")


def export_c(model_path, out_dir, target: str = "host", rounding: str = "litert-ref",
             force: bool = False, command_line: str = "") -> ExportReport:
    """Write a C99 project for ``model_path`` into ``out_dir``; ``make -C out_dir`` builds it.

    Raises UsageError for an unknown target or rounding, or a model that does not fit the
    target's flash or RAM; InputFileError for a non-empty out_dir without ``force``.
    """
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    if rounding not in P.MODEL_POLICIES:
        raise UsageError(f"unknown rounding {rounding!r}; use one of {', '.join(P.MODEL_POLICIES)}")
    model_path, out_dir = os.fspath(model_path), os.fspath(out_dir)
    _check_out_dir(out_dir, force)
    tgt = TARGETS[target]
    graph = load_tflite(model_path).graph
    with open(model_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    steps = _record_steps(graph, rounding)
    rows, offsets, arena = plan_arena(graph, steps)
    consts, layers, calls = _Constants(), [], []
    for step, kernel, args in steps:
        if kernel is None:
            continue
        src = f"ec_arena.bytes + {offsets[step.layer.inputs[0]]}"
        dst = f"ec_arena.bytes + {offsets[step.layer.output.name]}"
        calls.append(f"    {_layer_call(step, kernel, args, consts, layers, src, dst)}"
                     f"  /* {step.layer.name} */\n")
    report = ExportReport(model_path, out_dir, tgt, rounding, consts.bytes, tgt.code_bytes, arena,
                          0 if tgt.is_host else STACK_BYTES, rows)
    _check_fits(report)

    out, inp = graph.output, graph.input
    prov = _provenance(model_path, digest, tgt, rounding, command_line)
    plan_comment = "\n".join(f" *   {r.offset:>8} +{r.bytes:<8} {r.tensor} {r.shape}"
                             + (f" (alias of {r.alias_of})" if r.alias_of else "") for r in rows)
    fill = dict(
        provenance=prov, format_version=1, input_bytes=_nbytes(inp),
        input_desc=f"{inp.dtype} {inp.shape}", output_count=math.prod(out.shape),
        output_desc=f"{out.dtype} {out.shape}", output_is_float=int(out.dtype == "float32"),
        arena_bytes=arena, plan_comment=plan_comment, constants=consts.text(),
        layers="".join(layers), input_offset=offsets[inp.name], output_offset=offsets[out.name],
        calls="".join(calls), **_target_mk(tgt))
    stubs = stubs_dir()
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name in COMMON_FILES:
        shutil.copyfile(stubs / name, os.path.join(out_dir, name))  # follows the fixedpoint.h link
        written.append(name)
    if not tgt.is_host:
        for name in ("sections.ld", tgt.linker_script):
            shutil.copyfile(stubs / "boards" / name, os.path.join(out_dir, name))
            written.append(name)
    for name in ("model.h", "model.c", "target.mk"):
        template = string.Template((stubs / "templates" / f"{name}.in").read_text())
        Path(out_dir, name).write_text(template.substitute(fill))
        written.append(name)
    report.files = written
    return report


def format_export(report: ExportReport) -> str:
    """The human summary export-c prints: memory, then the arena plan per layer."""
    t = report.target
    code = ("host toolchain" if t.is_host else f"~{report.code_bytes:,} estimated")
    lines = [f"wrote {len(report.files)} files to {report.out_dir} (target {t.name}, rounding "
             f"{report.rounding}); build with: make -C {report.out_dir}",
             f"flash: {report.flash_bytes:,} bytes = {report.weights_bytes:,} weights and "
             f"parameters + code ({code})",
             f"RAM:   {report.ram_bytes:,} bytes = {report.arena_bytes:,} arena + "
             f"{report.stack_bytes:,} stack + {RUNTIME_STATIC_BYTES} runtime statics"]
    if not t.is_host:
        lines[-1] += f" (limits on {t.board}: flash {t.flash_bytes:,}, RAM {t.ram_bytes:,})"
    lines.append("arena plan:")
    lines.append(f"  {'layer':<20} {'op':<15} {'shape':<18} {'bytes':>8} {'offset':>8}")
    for r in report.rows:
        alias = f"  alias of {r.alias_of}" if r.alias_of else ""
        lines.append(f"  {r.layer:<20} {r.op:<15} {str(tuple(r.shape)):<18} {r.bytes:>8,} "
                     f"{r.offset:>8,}{alias}")
    return "\n".join(lines)
