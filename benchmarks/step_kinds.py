"""Where an int8 model's time goes in edgecnn, by kind of step: stem/3x3 conv, pointwise (1x1)
conv, depthwise, ADD, dense, the rest; per thread count and rounding policy.

    python benchmarks/step_kinds.py MODEL.tflite [--threads 1 2] [--runs 200]
                                     [--rounding litert-ref fp32 ...] [--layers]

Each step of edgecnn's Runtime is timed alone (the same views ``invoke`` wires), thread counts
and policies interleaved round by round so a noisy machine slows them alike; the table gives
each kind's sum of per-step medians and mins, the whole invoke's median and min, and the
invoke minus the steps' sum (Python and copies). --layers adds every step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from edgecnn.backends import cython as K
from edgecnn.runtime import Runtime
from edgecnn.tflite.reader import load_tflite


def kind_of(node) -> str:
    name = type(node).__name__
    if name == "Conv2D":
        kh, kw = node.weight.shape[1:3]
        return "conv1x1" if (kh, kw) == (1, 1) else f"conv{kh}x{kw}"
    if name == "DepthwiseConv2D":
        return "depthwise"
    return name.lower()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounding", nargs="+", default=["litert-ref"])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--layers", action="store_true")
    args = ap.parse_args()
    graph = load_tflite(args.model).graph
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=graph.input.shape).astype(np.int8)
    configs = [(n, r) for r in args.rounding for n in args.threads]
    rts, times, whole = {}, {}, {}
    for n, r in configs:
        K.set_num_threads(n)
        rt = Runtime(graph, backend="cython", rounding=r, threads=n)
        rt.invoke(x)
        rts[(n, r)] = rt
        times[(n, r)] = [[] for _ in rt.steps]
        whole[(n, r)] = []
    kinds = [kind_of(graph.producer(name)) for name, *_ in rts[configs[0]].steps]
    names = [name for name, *_ in rts[configs[0]].steps]
    for _ in range(args.runs):
        for c in configs:
            K.set_num_threads(c[0])
            rt = rts[c]
            t0 = time.perf_counter()
            rt.invoke(x)
            whole[c].append((time.perf_counter() - t0) * 1e3)
            for i, (name, run, ins, out) in enumerate(rt.steps):
                t0 = time.perf_counter()
                run(*ins, out)
                times[c][i].append((time.perf_counter() - t0) * 1e3)
    order = list(dict.fromkeys(kinds))
    print(f"{args.model}; kernels {K.kernel_isa()}; {args.runs} runs; ms (median / min)")
    head = "".join(f"{f'{n}t {r}':>22}" for n, r in configs)
    print(f"{'kind':<14}{'steps':>6}{head}")
    for k in order + ["sum of steps", "invoke"]:
        cells = []
        for c in configs:
            if k == "invoke":
                med, low = statistics.median(whole[c]), min(whole[c])
            else:
                idx = [i for i, kk in enumerate(kinds) if k in (kk, "sum of steps")]
                med = sum(statistics.median(times[c][i]) for i in idx)
                low = sum(min(times[c][i]) for i in idx)
            cells.append(f"{med:>12.3f} /{low:>7.3f}")
        count = kinds.count(k) if k in order else len(kinds) if k == "sum of steps" else 1
        print(f"{k:<14}{count:>6}" + "".join(cells))
    if args.layers:
        for i, name in enumerate(names):
            cells = "".join(f"{statistics.median(times[c][i]):>12.3f} /"
                            f"{min(times[c][i]):>7.3f}" for c in configs)
            print(f"{name[-14:]:<14}{kinds[i][:6]:>6}{cells}")
    K.set_num_threads(1)


if __name__ == "__main__":
    main()
