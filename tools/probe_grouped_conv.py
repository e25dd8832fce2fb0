"""Which runtimes run a grouped CONV_2D (filter [Cout, KH, KW, Cin / groups]), and exactly?

Writes single-op CONV_2D files (int8 per-channel and float32) whose filter has Cin / groups
input channels, runs each in LiteRT BUILTIN_REF, LiteRT's default interpreter (XNNPACK) and
TFLite Micro, and compares with a grouped conv built from edgecnn's spec: one ordinary conv
per group (conv2d_s8 / conv2d_f32 on the group's channel slices), outputs concatenated.
The last case is tie-heavy (power-of-two scales) so the int8 results also tell which rounding
policy each runtime applies. Prints a report; asserts nothing (an investigation, not a test).

    python tools/probe_grouped_conv.py
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from litert_models import Spec, conv2d_options, run, same_padding, single_op_model  # noqa: E402

from edgecnn.reference.conv import conv2d_s8  # noqa: E402
from edgecnn.reference.float_ops import conv2d_f32  # noqa: E402
from edgecnn.reference.params import ConvParams, make_requant  # noqa: E402


def tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime
    fd, path = tempfile.mkstemp(suffix=".tflite")
    os.write(fd, model)
    os.close(fd)
    try:
        interp = runtime.Interpreter.from_file(path, arena_size=16 << 20)
        interp.set_input(x, 0)
        interp.invoke()
        return np.array(interp.get_output(0))
    finally:
        os.unlink(path)


def grouped_s8(x, w, bias, p, rq, groups):
    """x (H, W, Cin), w (Cout, KH, KW, Cin / groups): one spec conv per group."""
    cin_g, cout_g = x.shape[2] // groups, w.shape[0] // groups
    oh = (x.shape[0] + 2 * p.pad_top - w.shape[1]) // p.stride_h + 1
    ow = (x.shape[1] + 2 * p.pad_left - w.shape[2]) // p.stride_w + 1
    parts = []
    for g in range(groups):
        sl = slice(g * cout_g, (g + 1) * cout_g)
        sub = dataclasses.replace(rq, multiplier=rq.multiplier[sl], shift=rq.shift[sl],
                                  real_scale=rq.real_scale[sl])
        out = np.empty((oh, ow, cout_g), np.int8)
        conv2d_s8(np.ascontiguousarray(x[:, :, g * cin_g:(g + 1) * cin_g]), w[sl], bias[sl], p,
                  sub, out)
        parts.append(out)
    return np.concatenate(parts, axis=-1)


def grouped_f32(x, w, b, groups, pads):
    cin_g, cout_g = x.shape[3] // groups, w.shape[0] // groups
    return np.concatenate([conv2d_f32(x[..., g * cin_g:(g + 1) * cin_g],
                                      w[g * cout_g:(g + 1) * cout_g],
                                      b[g * cout_g:(g + 1) * cout_g], (1, 1), pads)
                           for g in range(groups)], axis=-1)


def attempt(name, fn, check):
    try:
        print(f"  {name:16s} runs; {check(fn())}")
    except Exception as e:  # a runtime that refuses the file says why
        print(f"  {name:16s} REFUSED: {str(e).splitlines()[0][:160]}")


def case(rng, cin, cout, groups, ties=False, h=8):
    oh, pad = same_padding(h, 3, 1)
    kind, opts = conv2d_options((1, 1), (1, 1), "same", "none")
    if ties:
        wt = rng.integers(-4, 5, size=(cout, 3, 3, cin // groups)).astype(np.int8)
        s_in, s_w, s_out, zp_in = 2.0 ** -6, np.full(cout, 2.0 ** -7, np.float32), 2.0 ** -10, -3
        bias = rng.integers(-64, 65, cout).astype(np.int32)
        x = np.clip(rng.integers(-4, 5, size=(1, h, h, cin)) + zp_in, -128, 127).astype(np.int8)
    else:
        wt = rng.integers(-127, 128, size=(cout, 3, 3, cin // groups)).astype(np.int8)
        s_in, s_w, s_out, zp_in = 0.05, rng.uniform(0.002, 0.02, cout).astype(np.float32), 0.5, -7
        bias = rng.integers(-3000, 3000, cout).astype(np.int32)
        x = rng.integers(-128, 128, size=(1, h, h, cin)).astype(np.int8)
    model = single_op_model(
        "CONV_2D", [Spec((1, h, h, cin), np.int8, s_in, zp_in),
                    Spec(wt.shape, np.int8, s_w, 0, data=wt),
                    Spec((cout,), np.int32, np.float32(s_in) * s_w, 0, data=bias)],
        [Spec((1, oh, oh, cout), np.int8, s_out, 0)], kind, opts, version=6)  # 6: grouped
    p = ConvParams(1, 1, pad, pad, 1, 1, -zp_in)
    expected = {pol: grouped_s8(x[0], wt, bias, p, make_requant(s_in, s_w, s_out, 0, "none",
                                                                "conv", pol), groups)
                for pol in ("double", "fp32", "single")}

    def verdict(y):
        return "equals the per-group spec under " + (", ".join(
            pol for pol, e in expected.items() if np.array_equal(y[0], e)) or "no policy")

    print(f"--- int8 CONV_2D Cin {cin}, Cout {cout}, groups {groups}, filter {wt.shape}"
          + (" (tie-heavy)" if ties else ""))
    attempt("BUILTIN_REF", lambda: run(model, x), verdict)
    attempt("default/XNNPACK", lambda: run(model, x, reference=False), verdict)
    attempt("TFLite Micro", lambda: tflm(model, x), verdict)
    if ties:
        return
    wf = rng.normal(size=wt.shape).astype(np.float32)
    bf = rng.normal(size=cout).astype(np.float32)
    xf = rng.normal(size=x.shape).astype(np.float32)
    fmodel = single_op_model("CONV_2D", [Spec((1, h, h, cin), np.float32),
                                         Spec(wt.shape, np.float32, data=wf),
                                         Spec((cout,), np.float32, data=bf)],
                             [Spec((1, oh, oh, cout), np.float32)], kind, opts, version=6)
    ef = grouped_f32(xf, wf, bf, groups, (pad, pad, pad, pad))
    print("--- float32, same shapes")
    for name, fn in [("BUILTIN_REF", lambda: run(fmodel, xf)),
                     ("default/XNNPACK", lambda: run(fmodel, xf, reference=False)),
                     ("TFLite Micro", lambda: tflm(fmodel, xf))]:
        attempt(name, fn, lambda y: f"max |diff| vs the per-group float conv {np.abs(y - ef).max():.1e}")


def main():
    rng = np.random.default_rng(5)
    for cin, cout, groups in [(8, 12, 2), (12, 12, 4), (6, 9, 3)]:
        case(rng, cin, cout, groups)
    case(rng, 8, 8, 2, ties=True)


if __name__ == "__main__":
    main()
