"""The generated project's README.md: what to call and when, what the input is, how the numbers
round, how to move the files into STM32CubeIDE, Arduino or Zephyr, and what the program checks.

Names from the model (its file name, labels) enter only through ctext.markdown(); everything
else is edgecnn's own text.
"""

from __future__ import annotations

import math
import os

from . import ctext
from .kernels import PATHS
from ..memory import nbytes

TEST_FILES = ("model_test.c", "ec_port.h", "ec_port_host.c", "ec_port_semihost.c",
              "startup_cortexm.c", "Makefile", "target.mk")


def rounding_lines(report) -> list:
    """How the firmware rounds, and why: one line per distinct choice, naming the layers."""
    by_note = {}
    for layer, note in report.notes:
        by_note.setdefault(note, []).append(layer)
    lines = [f"rounding {report.rounding}:"]
    for note, layers in by_note.items():
        names = ", ".join(ctext.comment(n, limit=30) for n in layers[:4])
        more = f" and {len(layers) - 4} more" if len(layers) > 4 else ""
        lines.append(f"  {note}: {len(layers)} layer(s) ({names}{more})")
    if any(note.startswith("f64 (") for note in by_note):
        lines.append("  (f64 kept in double precision where its integer form was not proved equal:"
                     " soft-float on cores without a double FPU)")
    return lines


def _input_text(graph) -> str:
    t = graph.input
    shape = tuple(t.shape[1:])
    text = [f"- Tensor: `{t.dtype}`, shape `{tuple(t.shape)}`"
            + (" (NHWC: rows, then columns, then channels; batch 1)" if len(shape) == 3 else "")
            + f", `EC_MODEL_INPUT_BYTES` = {nbytes(t):,} bytes at `ec_model_input()`."]
    if t.dtype == "int8":
        scale, zp = t.quant.scalar()
        text.append(f"- Quantization: `real = (q - {zp}) * {float(scale):.9g}` "
                    "(`EC_MODEL_INPUT_SCALE`, `EC_MODEL_INPUT_ZERO_POINT`): "
                    "`q = clamp(round(real / scale) + zero_point, -128, 127)`, "
                    "round half away from zero, in float32.")
    pre = graph.preprocess
    if pre is None:
        text.append("- The model stores no preprocessing: prepare the input as whoever made the "
                    "model did.")
        return "\n".join(text)
    steps = ("grayscale" if pre.color == "L" else "RGB") + " 8-bit pixels; " + (
        f"resize the shorter side to {pre.resize} (bilinear) and center-crop to "
        f"{pre.height}x{pre.width}" if pre.resize else
        f"resize to {pre.height}x{pre.width} (bilinear)")
    text.append(f"- Preprocessing (stored in the model, as `edgecnn infer` applies it): {steps}; "
                "`x = pixel / 255`" + ("; `x = 1 - x`" if pre.invert else "")
                + f"; `x = (x - mean[c]) / std[c]` with mean {tuple(pre.mean)} and std "
                  f"{tuple(pre.std)} (`ec_model_pre_mean`, `ec_model_pre_std`).")
    if t.dtype == "int8":
        text.append("- From a camera frame already at that size and color: "
                    "`input[i] = ec_model_pixel_lut[c][pixel]` for channel `c`; the table is the "
                    "whole chain above for each 8-bit value, computed by edgecnn, so the firmware "
                    "gets exactly the input `edgecnn infer` would.")
    return "\n".join(text)


def _one_output_text(t, k: int, single: bool) -> list:
    macro = "EC_MODEL_OUTPUT" if single else f"EC_MODEL_OUTPUT{k}"
    where = "`ec_model_output()`" if single else f"`ec_model_outputs[{k}].data`"
    name = ctext.markdown(t.name, limit=40)
    text = [f"- {where} ({name}): `{macro}_COUNT` = {math.prod(t.shape):,} values, `{t.dtype}`, "
            f"shape `{tuple(t.shape)}`."]
    if t.dtype == "int8":
        scale, zp = t.quant.scalar()
        text.append(f"  `real = (q - {zp}) * {float(scale):.9g}` (`{macro}_SCALE`, "
                    f"`{macro}_ZERO_POINT`).")
    return text


def _output_text(graph) -> str:
    outs = graph.output_tensors()
    single = len(outs) == 1
    if single:
        text = _one_output_text(outs[0], 0, True)
        if outs[0].dtype == "int8":
            text[-1] += " The largest `q` is the top class."
    else:
        text = [f"The model has {len(outs)} outputs (`EC_MODEL_NUM_OUTPUTS`), in the model's "
                "order; `ec_model_outputs[k]` gives each one's name (a C string), shape, "
                "`count`, `bytes`, `is_float`, `scale`, `zero_point` and `data`, a pointer into "
                "the arena. `EC_MODEL_OUTPUT<k>_COUNT`, `_BYTES`, `_SCALE`, `_ZERO_POINT` and "
                "`_IS_FLOAT` give the same at compile time (to size your own buffers); there is "
                "no `ec_model_output()`, so code written for a single output does not compile "
                "against this model.\n"]
        for k, t in enumerate(outs):
            text += _one_output_text(t, k, False)
    if graph.labels:
        shown = ", ".join(f"{i}: {ctext.markdown(name, limit=40)}"
                          for i, name in enumerate(graph.labels[:20]))
        more = f", and {len(graph.labels) - 20} more" if len(graph.labels) > 20 else ""
        text.append(f"- Labels (`ec_model_labels[i]`, {len(graph.labels)}): {shown}{more}.")
    return "\n".join(text)


def _use_code(graph) -> str:
    """The README's example: the single-output call, or a loop over the outputs."""
    if len(graph.outputs) == 1:
        return """const int8_t *out = ec_model_output();    /* EC_MODEL_OUTPUT_COUNT values (float if
                                             EC_MODEL_OUTPUT_IS_FLOAT) */"""
    return """for (int k = 0; k < EC_MODEL_NUM_OUTPUTS; k++) {
    const ec_model_output_t *o = &ec_model_outputs[k];   /* model output order */
    const int8_t *values = o->data;       /* o->count values (float if o->is_float) */
}"""


def readme_text(report, graph, images: int, files) -> str:
    """``files``: what export-c wrote; its C sources and headers but the test harness's are
    what an application adds."""
    t = report.target
    app = [f for f in files if f.endswith((".c", ".h")) and f not in TEST_FILES]
    kernels = " ".join(f for f in app if f.startswith("ec_") and f.endswith(".c"))
    model = ctext.markdown(os.path.basename(report.model), limit=80)
    check = (f"`make check` runs the program on `in.bin` ({images} image(s) from `--images`, "
             "listed in `in.txt`) and compares its outputs with `expected.txt`, which edgecnn's "
             "reference runtime computed: they must be equal, byte for byte."
             if images else
             "Export with `--images DIR` to get `in.bin` (your images, preprocessed and quantized) "
             "and `expected.txt`; `make check` then compares the firmware with edgecnn.")
    rounding = "\n".join("    " + line for line in rounding_lines(report))
    code = ("host toolchain: not counted" if t.is_host else
            f"~{report.code_bytes:,} bytes estimated with this harness; `make size` gives it")
    ticks = ("microseconds of CPU time on the host" if t.is_host else
             "the DWT cycle counter on real Cortex-M3 and up, else SysTick ticks of the core "
             "clock, which under QEMU `-icount shift=0` are instructions times core Hz / 1e9")
    return f"""# {model} as C99 firmware (edgecnn export-c, target {t.name})

## Use it

```c
#include "model.h"

if (ec_model_init() != 0) {{ /* kernels and model from different edgecnn versions */ }}
/* per inference: */
int8_t *in = ec_model_input();            /* EC_MODEL_INPUT_BYTES bytes */
/* ... fill it (see Input) ... */
ec_model_invoke();                        /* runs every layer; blocks until done */
{_use_code(graph)}
```

`ec_model_init()` once at start-up; `ec_model_invoke()` as often as you have inputs, one at a
time (one static arena of {report.arena_bytes:,} bytes holds every activation; nothing
allocates, nothing is reentrant). Input and outputs live in that arena: read or copy the
outputs before you write the next input: the planner may place them in the same bytes.

## Input

{_input_text(graph)}

## Output

{_output_text(graph)}

## In your project

Add these files to your sources: {", ".join(f"`{f}`" for f in app)}. Leave out the
test harness ({", ".join(f"`{f}`" for f in TEST_FILES)}, the `*.ld` linker scripts): your
board's startup code, linker script and I/O replace them. Compile as C99 or later, with `-O2`
and the compiler's `-mcpu` for your core: the kernels pick their path from the core's feature
macros (`__ARM_FEATURE_MVE`: Helium on Cortex-M55/M85; `__ARM_FEATURE_DSP`: SMLAD on
Cortex-M4/M7/M33; plain C elsewhere), so the same files serve any core. This export was
planned for {t.name}: {PATHS[t.kernel_path]}.

- **STM32CubeIDE**: copy the `.c` files into `Core/Src` and the `.h` files into `Core/Inc`
  (or any source folder of the project); CubeIDE's `-mcpu=cortex-m4/m7/m33` and `-O2` (Release)
  select the DSP path. Call `ec_model_init()` after `HAL_Init()`, then invoke from your loop.
- **Arduino**: put the files in the sketch folder (or its `src/` folder) next to the `.ino`;
  include `"model.h"` inside `extern "C" {{ }}` from C++ code. On Cortex-M4 boards (Nano 33 BLE,
  Portenta M4) the DSP path compiles in; on AVR boards the model must fit their RAM.
- **Zephyr**: in `CMakeLists.txt`, `target_sources(app PRIVATE model.c {kernels})` and
  `target_include_directories(app PRIVATE .)`; a model with float input or output needs
  `CONFIG_FPU=y` on cores with an FPU.

## Memory

- Flash: {report.weights_bytes:,} bytes of weights and parameters, plus the kernels' code
  ({code}).
- RAM: the {report.arena_bytes:,}-byte arena (activations and kernel scratch) plus your stack
  (the kernels use a few hundred bytes; `make stack` lists it per function).

## Numbers

The firmware computes what edgecnn's reference runtime computes, bit for bit, under the
rounding chosen at export:

{rounding}

`--rounding litert-ref` (the default) matches LiteRT's reference kernels (`BUILTIN_REF`);
`--rounding double` matches TensorFlow Lite Micro and CMSIS-NN. Both run in integers only.

## Check and measure (this folder's harness)

- `make` builds `model_test` for {t.name}{"" if t.is_host else f" (QEMU board {t.board})"};
  `make run` runs it on `in.bin`; it prints one line per model output per input record (the
  outputs in the model's order, int8 as decimals, float32 as hex bit patterns), the last line
  the tick count and its unit: {ticks}.
- `make EC_PROFILE=1 run` builds `model_test_profile` and adds the ticks of each layer.
- {check}
"""
