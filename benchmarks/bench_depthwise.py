"""edgecnn's depthwise kernel vs LiteRT XNNPACK on single-op DEPTHWISE_CONV_2D int8 models.

    python benchmarks/bench_depthwise.py [--runs N] [--threads 1 2] [--isa NAME] [--json]
                                         [--smoke] [--mixed]

MobileNetV2's depthwise shapes (3x3, ReLU6, SAME, per-channel int8 weights): 112x112x96 s2,
56x56x144, 28x28x192, 14x14x384, 7x7x960. Each layer is one .tflite file made in memory; LiteRT
runs it with its default interpreter (XNNPACK) at the given thread count, edgecnn runs the
bound Cython kernel (bind_depthwise_conv2d_s8) on the same weights and input, under policy
litert-ref (double rounding, what BUILTIN_REF computes) and fp32 (what XNNPACK computes).
The three run interleaved, call by call; the table gives the median and the minimum in
microseconds and the ratio of medians (edgecnn / XNNPACK; below 1 is faster). Before timing,
each layer's outputs are checked: litert-ref against BUILTIN_REF and fp32 against XNNPACK,
bit for bit (the "exact" column). Timings on a shared machine are noisy: rerun when quiet.

--mixed times MobileNetV2's block pattern instead: a pointwise conv (bind_conv2d_s8, 1x1, C/6 ->
C channels) then the depthwise layer, called alternately, against each called alone. The two
kernels live in different extension modules, each with its own worker pool (threadpool.h):
a pair slower than the sum of its parts at 2 threads shows one pool's spinning workers
delaying the other's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from litert_models import (Spec, depthwise_conv2d_options, run,  # noqa: E402
                           same_padding, single_op_model)

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from edgecnn.backends import cython as K  # noqa: E402
from edgecnn.reference.params import ConvParams, DepthwiseParams, make_requant  # noqa: E402

LAYERS = [(112, 96, 2), (56, 144, 1), (28, 192, 1), (14, 384, 1), (7, 960, 1)]  # H=W, C, stride


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_layer(h: int, c: int, stride: int, seed: int = 0) -> dict:
    """Seeded weights, scales and input of one depthwise layer, and its .tflite bytes."""
    rng = np.random.default_rng([seed, h, c, stride])
    oh, pad = same_padding(h, 3, stride)
    w = rng.integers(-127, 128, size=(3, 3, c)).astype(np.int8)
    s_in, zp_in, zp_out = 0.05, -3, -100
    s_w = rng.uniform(0.002, 0.02, size=c).astype(np.float32)
    s_out = float(s_in * s_w.mean() * 127 * 3 / 4)  # outputs spread over int8, some clamped
    bias = rng.integers(-2000, 2000, size=c).astype(np.int32)
    x = rng.integers(-128, 128, size=(h, h, c)).astype(np.int8)
    kind, opts = depthwise_conv2d_options((stride, stride), (1, 1), "same", "relu6", 1)
    model = single_op_model(
        "DEPTHWISE_CONV_2D",
        [Spec((1, h, h, c), np.int8, s_in, zp_in), Spec((1, 3, 3, c), np.int8, s_w, 0, data=w,
                                                        axis=3),
         Spec((c,), np.int32, (np.float32(s_in) * s_w).astype(np.float32), 0, data=bias)],
        [Spec((1, oh, oh, c), np.int8, s_out, zp_out)], kind, opts, version=3)
    p = DepthwiseParams(stride, stride, pad, pad, 1, 1, 1, -zp_in)
    rqs = {pol: make_requant(s_in, s_w, s_out, zp_out, "relu6", "depthwise", pol)
           for pol in ("litert-ref", "fp32")}
    return dict(name=f"{h}x{h}x{c} s{stride}", model=model, w=w, bias=bias, x=x, p=p, rqs=rqs,
                out_shape=(oh, oh, c))


def bench_layer(layer: dict, threads: int, runs: int) -> dict:
    fd, path = tempfile.mkstemp(suffix=".tflite")
    with os.fdopen(fd, "wb") as f:
        f.write(layer["model"])
    try:
        interp = Interpreter(model_path=path, num_threads=threads)
        interp.allocate_tensors()
    finally:
        os.unlink(path)
    inp, outp = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    interp.set_tensor(inp, layer["x"][None])
    K.set_num_threads(threads)
    x = layer["x"]
    outs = {pol: np.empty(layer["out_shape"], np.int8) for pol in layer["rqs"]}
    runs_by = {pol: K.bind_depthwise_conv2d_s8(layer["w"], layer["bias"], layer["p"], rq, x.shape,
                                               layer["out_shape"])
               for pol, rq in layer["rqs"].items()}
    engines = [(pol, (lambda r=r, o=outs[pol]: r(x, o))) for pol, r in runs_by.items()]
    engines.append(("xnnpack", interp.invoke))
    for _, call in engines:  # warm up: first-call costs, workers started, caches filled
        for _ in range(3):
            call()
    times = {name: [] for name, _ in engines}
    for _ in range(runs):
        for name, call in engines:
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    exact = bool(np.array_equal(outs["fp32"], interp.get_tensor(outp)[0]))
    result = {"layer": layer["name"], "threads": threads, "exact_fp32_vs_xnnpack": exact}
    for name, ts in times.items():
        us = np.array(ts) * 1e6
        result[name] = {"median_us": float(np.median(us)), "min_us": float(us.min())}
    return result


def _median_min(call, runs: int) -> tuple[float, float]:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e6), float(np.min(ts) * 1e6)


def bench_mixed(layer: dict, threads: int, runs: int) -> dict:
    """Pointwise conv then depthwise, alternately, vs each alone (litert-ref policy)."""
    rng = np.random.default_rng(1)
    h, w, c = layer["x"].shape
    cin = max(8, c // 6)
    xin = rng.integers(-128, 128, size=(h, w, cin)).astype(np.int8)
    K.set_num_threads(threads)
    conv = K.bind_conv2d_s8(rng.integers(-127, 128, size=(c, 1, 1, cin)).astype(np.int8),
                         np.zeros(c, np.int32), ConvParams(1, 1, 0, 0, 1, 1, 3),
                         make_requant(0.05, np.full(c, 0.01), 0.1, 0, "relu6", "conv"),
                         xin.shape, (h, w, c))
    dw = K.bind_depthwise_conv2d_s8(layer["w"], layer["bias"], layer["p"],
                                    layer["rqs"]["litert-ref"], (h, w, c), layer["out_shape"])
    mid, out = np.empty((h, w, c), np.int8), np.empty(layer["out_shape"], np.int8)

    def pair():
        conv(xin, mid)
        dw(mid, out)
    for f in (pair, pair):
        f()
    alone_conv = _median_min(lambda: conv(xin, mid), runs)
    alone_dw = _median_min(lambda: dw(mid, out), runs)
    both = _median_min(pair, runs)
    return {"layer": layer["name"], "threads": threads, "conv": alone_conv, "dw": alone_dw,
            "pair": both}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="a few runs only (CI)")
    ap.add_argument("--isa", default="auto",
                    help="pin edgecnn's SIMD path (avx512vnni, avx2, neon-sdot, neon, generic)")
    ap.add_argument("--mixed", action="store_true",
                    help="pointwise conv + depthwise alternately vs each alone")
    args = ap.parse_args()
    K.force_isa(args.isa)
    runs = 5 if args.smoke else args.runs
    layers = [make_layer(*shape) for shape in LAYERS]
    if args.mixed:
        print(f"# {cpu_name()}: microseconds, median / min (conv 1x1 C/6 -> C, then depthwise)")
        print(f"{'layer':16s} {'thr':>3s}  {'conv alone':>11s}  {'dw alone':>11s}  "
              f"{'conv + dw':>11s}  {'sum alone':>11s}")
        for threads in args.threads:
            for layer in layers:
                r = bench_mixed(layer, threads, runs)
                a, b, ab = r["conv"], r["dw"], r["pair"]
                print(f"{r['layer']:16s} {threads:3d}  {a[0]:5.0f} / {a[1]:4.0f}  {b[0]:5.0f} / "
                      f"{b[1]:4.0f}  {ab[0]:5.0f} / {ab[1]:4.0f}  {a[0] + b[0]:5.0f} / "
                      f"{a[1] + b[1]:4.0f}")
        K.set_num_threads(1)
        return
    exact_ref = {}
    for layer in layers:  # litert-ref = BUILTIN_REF, bit for bit, once per layer
        out = np.empty(layer["out_shape"], np.int8)
        K.bind_depthwise_conv2d_s8(layer["w"], layer["bias"], layer["p"],
                                   layer["rqs"]["litert-ref"], layer["x"].shape,
                                   layer["out_shape"])(layer["x"], out)
        exact_ref[layer["name"]] = bool(np.array_equal(out, run(layer["model"], layer["x"][None])[0]))
    results = []
    for threads in args.threads:
        for layer in layers:
            r = bench_layer(layer, threads, runs)
            r["exact_litert_ref_vs_builtin_ref"] = exact_ref[layer["name"]]
            results.append(r)
    K.set_num_threads(1)
    header = {"cpu": cpu_name(), "cores": os.cpu_count(), "isa": K.kernel_isa(),
              "date": datetime.datetime.now().isoformat(timespec="seconds"), "runs": runs}
    if args.json:
        print(json.dumps({**header, "results": results}, indent=1))
        return
    print(f"# {header['cpu']}, {header['cores']} cores, edgecnn path {header['isa']}, "
          f"{header['date']}, {runs} interleaved runs")
    print("# microseconds, median / min; ratio = edgecnn median / XNNPACK median")
    print(f"{'layer':16s} {'thr':>3s}  {'edgecnn litert-ref':>18s}  {'edgecnn fp32':>14s}  "
          f"{'XNNPACK':>13s}  {'ratio ref':>9s}  {'ratio fp32':>10s}  exact")
    for r in results:
        ref, f32, xnn = r["litert-ref"], r["fp32"], r["xnnpack"]
        exact = "yes" if r["exact_litert_ref_vs_builtin_ref"] and r["exact_fp32_vs_xnnpack"] else "NO"
        print(f"{r['layer']:16s} {r['threads']:3d}  {ref['median_us']:9.0f} / {ref['min_us']:6.0f}"
              f"  {f32['median_us']:6.0f} / {f32['min_us']:5.0f}  {xnn['median_us']:5.0f} / "
              f"{xnn['min_us']:5.0f}  {ref['median_us'] / xnn['median_us']:9.2f}  "
              f"{f32['median_us'] / xnn['median_us']:10.2f}  {exact}")


if __name__ == "__main__":
    main()
