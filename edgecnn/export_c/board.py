"""What a board needs beside the kernels: model.h's input/output/preprocessing constants and
labels, the exact pixel-to-int8 table, per-layer profiling records, and the check files of
``export-c --images`` (in.bin, expected.txt).

Every string from a model (labels, layer names, image file names) reaches C only through
ctext.c_string() (and is whitelisted with ctext.comment() first where a program prints it).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .. import ir
from ..errors import ImageError, InputFileError, UnsupportedOpError, UsageError
from ..memory import nbytes
from ..model import input_from_float
from ..preprocess import load_images, normalize_pixels
from ..runtime import Runtime, kernels_for
from ..text import printable
from . import ctext


def c_float(v: float) -> str:
    """A float32 value as an exact C99 hex float literal."""
    return float(np.float32(v)).hex() + "f"


def _tensor_macros(prefix: str, t: ir.Tensor, what: str) -> str:
    shape = tuple(t.shape[1:])
    names = ("H", "W", "C") if len(shape) == 3 else ("N",) if len(shape) == 1 else ()
    lines = [f"/* {what}: {t.dtype} {tuple(t.shape)}"
             + (", NHWC without the batch" if len(shape) == 3 else "") + " */"]
    lines += [f"#define {prefix}_{n} {v}" for n, v in zip(names, shape)]
    lines.append(f"#define {prefix}_IS_FLOAT {int(t.dtype == 'float32')}")
    if t.dtype == "int8":
        scale, zp = t.quant.scalar()
        lines.append(f"#define {prefix}_SCALE {c_float(scale)} /* real = (q - zero point) * "
                     "scale */")
        lines.append(f"#define {prefix}_ZERO_POINT {int(zp)}")
    return "\n".join(lines) + "\n"


def pixel_lut(graph: ir.Graph) -> np.ndarray:
    """(C, 256) int8: the model input for an 8-bit pixel value of each channel, through the very
    functions ``infer`` uses (normalize_pixels, then the reference QUANTIZE), so a camera frame
    already at the model's size and color maps to exactly the input edgecnn would compute."""
    pre, t = graph.preprocess, graph.input
    values = np.tile(np.arange(256, dtype=np.uint8)[:, None], (1, pre.channels))
    x = normalize_pixels(values[None], pre)  # (1, 1, 256, C) float32
    scale, zp = t.quant.scalar()
    out = np.empty(x.shape, np.int8)
    kernels_for("reference").quantize_s8(x, scale, zp, out)
    return out.reshape(256, pre.channels).T


OUTPUT_TYPEDEF = """\
/* One entry per model output, in the model's output order (ec_model_outputs[k]). */
typedef struct {
    const char *name;     /* the output tensor's name in the model file (a C string) */
    const void *data;     /* its values after ec_model_invoke(): int8_t or float, in the arena */
    const int32_t *shape; /* rank dimensions, batch first (NHWC for a feature map) */
    int32_t rank;
    int32_t count;        /* values: the product of shape */
    int32_t bytes;        /* count for int8, 4 * count for float32 */
    int32_t is_float;     /* 1: IEEE float32 values; 0: int8 */
    float scale;          /* int8: real = (q - zero_point) * scale; float32: 0 */
    int32_t zero_point;
} ec_model_output_t;
"""


def output_blocks(outputs) -> tuple[str, str]:
    """(model.h declarations, model.c definitions) for the model's outputs. ``outputs``:
    (tensor, C address expression of its first byte) per graph output, in order.

    Every model gets EC_MODEL_NUM_OUTPUTS, the EC_MODEL_OUTPUT<k>_* macros (compile-time sizes
    for the application's buffers) and the ``ec_model_outputs`` table; a single-output model
    keeps EC_MODEL_OUTPUT_* and ``ec_model_output()`` as before. A multi-output model has no
    ``ec_model_output()``: code written for one output stops at compile time instead of
    reading the wrong tensor. Tensor names reach C only as ctext.c_string() literals and
    ctext.comment() text."""
    decl = [f"#define EC_MODEL_NUM_OUTPUTS {len(outputs)}\n"]
    defs = []
    rows = []
    for k, (t, address) in enumerate(outputs):
        if t.dtype not in ("int8", "float32"):
            raise UnsupportedOpError(f"output {printable(t.name)!r} is {t.dtype}; export-c "
                                     "writes firmware for int8 and float32 outputs")
        decl.append(_tensor_macros(f"EC_MODEL_OUTPUT{k}", t,
                                   f"output {k}, {ctext.comment(t.name)}")
                    + f"#define EC_MODEL_OUTPUT{k}_COUNT {math.prod(t.shape)}\n"
                    f"#define EC_MODEL_OUTPUT{k}_BYTES {nbytes(t)}\n")
        shape = ", ".join(str(int(d)) for d in t.shape) or "1"
        defs.append(f"static const int32_t ec_model_output{k}_shape[{max(1, len(t.shape))}] = "
                    f"{{{shape}}};\n")
        scale, zp = t.quant.scalar() if t.dtype == "int8" else (0.0, 0)
        rows.append(f"    {{{ctext.c_string(t.name)}, (const void *)({address}), "
                    f"ec_model_output{k}_shape, {len(t.shape)}, {math.prod(t.shape)}, "
                    f"{nbytes(t)}, {int(t.dtype == 'float32')}, {c_float(scale)}, {int(zp)}}}")
    if len(outputs) == 1:
        t, address = outputs[0]
        decl.append("/* The single output, as EC_MODEL_OUTPUT<k>_* with k = 0 and as "
                    "ec_model_output(). */\n" + _tensor_macros("EC_MODEL_OUTPUT", t, "output")
                    + f"#define EC_MODEL_OUTPUT_COUNT {math.prod(t.shape)}\n")
        defs.append(f"const void *ec_model_output(void) {{ return {address}; }}\n")
    decl.append(OUTPUT_TYPEDEF + "extern const ec_model_output_t "
                "ec_model_outputs[EC_MODEL_NUM_OUTPUTS];\n")
    if len(outputs) == 1:
        decl.append("/* The output tensor lives in the arena: fill the input, invoke, read it. */\n"
                    "const void *ec_model_output(void);\n")
    defs.append(f"const ec_model_output_t ec_model_outputs[{len(outputs)}] = {{\n"
                + ",\n".join(rows) + "};\n")
    return "\n".join(decl), "".join(defs)


def board_blocks(graph: ir.Graph, profile_names: list) -> tuple[str, str]:
    """(declarations for model.h, definitions for model.c). The arrays are const and separate
    symbols, so a program that does not use them does not link them (--gc-sections)."""
    inp = graph.input
    decl = [_tensor_macros("EC_MODEL_INPUT", inp, "input")]
    defs = []
    pre = graph.preprocess
    if pre is None:
        decl.append("/* The model stores no preprocessing: fill the input as its maker did. */\n")
    else:
        c = pre.channels
        mean = np.broadcast_to(np.asarray(pre.mean, np.float32), (c,))
        std = np.broadcast_to(np.asarray(pre.std, np.float32), (c,))
        decl.append(
            "/* Preprocessing (stored in the model; what `edgecnn infer` does to an image file):\n"
            f" * read as {'grayscale' if pre.color == 'L' else 'RGB'} 8-bit pixels, "
            + (f"resize the shorter side to {pre.resize} (bilinear) and center-crop"
               if pre.resize else "resize (bilinear)")
            + f" to {pre.height}x{pre.width};\n * x = pixel / 255"
            + (", x = 1 - x" if pre.invert else "")
            + ", x = (x - mean[c]) / std[c] in float32, then quantize to the input"
              " (round half away\n * from zero). ec_model_pixel_lut[c][pixel] is that whole chain"
              " for one pixel, exactly. */\n"
            f"#define EC_MODEL_PRE_CHANNELS {c}\n#define EC_MODEL_PRE_HEIGHT {pre.height}\n"
            f"#define EC_MODEL_PRE_WIDTH {pre.width}\n"
            f"#define EC_MODEL_PRE_RESIZE {pre.resize} /* 0: resize straight to the size */\n"
            f"#define EC_MODEL_PRE_INVERT {int(pre.invert)}\n"
            "extern const float ec_model_pre_mean[EC_MODEL_PRE_CHANNELS];\n"
            "extern const float ec_model_pre_std[EC_MODEL_PRE_CHANNELS];\n")
        defs.append(f"const float ec_model_pre_mean[{c}] = {{{', '.join(map(c_float, mean))}}};\n"
                    f"const float ec_model_pre_std[{c}] = {{{', '.join(map(c_float, std))}}};\n")
        if inp.dtype == "int8":
            decl.append("extern const int8_t ec_model_pixel_lut[EC_MODEL_PRE_CHANNELS][256];\n")
            rows = ",\n    ".join("{" + ", ".join(str(v) for v in row.tolist()) + "}"
                                  for row in pixel_lut(graph))
            defs.append(f"const int8_t ec_model_pixel_lut[{c}][256] = {{\n    {rows}}};\n")
    labels = list(graph.labels)
    decl.append(f"#define EC_MODEL_LABEL_COUNT {len(labels)} /* class names, by output index */\n")
    if labels:
        decl.append("extern const char *const ec_model_labels[EC_MODEL_LABEL_COUNT];\n")
        defs.append("const char *const ec_model_labels[" + str(len(labels)) + "] = {\n    "
                    + ",\n    ".join(ctext.c_string(name) for name in labels) + "};\n")
    n = len(profile_names)
    decl.append("\n/* Built with EC_PROFILE=1: the port's ticks spent in each layer, summed over\n"
                " * invocations, and each layer's op and name (printable ASCII). */\n"
                "#ifndef EC_PROFILE\n#define EC_PROFILE 0\n#endif\n#if EC_PROFILE\n"
                f"#define EC_MODEL_LAYER_COUNT {n}\nextern uint32_t ec_model_layer_ticks[{n}];\n"
                f"extern const char *const ec_model_layer_names[{n}];\n#endif\n")
    defs.append("#if EC_PROFILE\n"
                f"uint32_t ec_model_layer_ticks[{n}];\n"
                f"const char *const ec_model_layer_names[{n}] = {{\n    "
                + ",\n    ".join(ctext.c_string(ctext.comment(name)) for name in profile_names)
                + "};\nstatic uint32_t ec_profile_last;\n"
                "#define EC_PROFILE_START() (ec_profile_last = ec_port_ticks())\n"
                "#define EC_PROFILE_MARK(k) (ec_model_layer_ticks[k] += ec_port_ticks() - "
                "ec_profile_last, ec_profile_last = ec_port_ticks())\n#else\n"
                "#define EC_PROFILE_START() ((void)0)\n#define EC_PROFILE_MARK(k) ((void)0)\n"
                "#endif\n")
    return "\n".join(decl), "".join(defs)


def image_inputs(graph: ir.Graph, model_path: str, paths) -> tuple[list, list]:
    """(model inputs, image paths) for ``--images``: each file through the model's stored
    preprocessing and input quantization. A file that does not decode stops the export."""
    if graph.preprocess is None:
        raise UsageError(f"{os.path.basename(model_path)} stores no preprocessing (it was not "
                         "written by edgecnn convert); --images needs it, write in.bin yourself")
    inputs, names = [], []
    for path, x in load_images(paths, graph.preprocess):
        if isinstance(x, (ImageError, InputFileError)):
            raise x
        inputs.append(input_from_float(graph, x))
        names.append(path)
    return inputs, names


def output_line(y: np.ndarray) -> str:
    """One output the way model_test prints it: int8 decimals, or float32 bit patterns in hex."""
    flat = np.asarray(y).ravel()
    if flat.dtype == np.float32:
        return " ".join(f"0x{v:08x}" for v in flat.view(np.uint32).tolist())
    return " ".join(str(int(v)) for v in flat.tolist())


def write_check_files(out_dir: str, graph: ir.Graph, inputs: list, names: list,
                      rounding: str) -> None:
    """in.bin (the input records), expected.txt (edgecnn's reference runtime, line for line what
    model_test prints: one line per output, in the model's output order, per record) and
    in.txt (which image each record is)."""
    rt = Runtime(graph, "reference", rounding)
    with open(os.path.join(out_dir, "in.bin"), "wb") as f:
        for x in inputs:
            f.write(np.ascontiguousarray(x).tobytes())
    with open(os.path.join(out_dir, "expected.txt"), "w") as f:
        f.writelines(output_line(y) + "\n" for x in inputs for y in rt.invoke_all(x))
    width = max(1, math.ceil(math.log10(len(names) + 1)))
    with open(os.path.join(out_dir, "in.txt"), "w") as f:
        f.writelines(f"{i:>{width}} {ctext.comment(os.path.basename(n), limit=120)}\n"
                     for i, n in enumerate(names))
