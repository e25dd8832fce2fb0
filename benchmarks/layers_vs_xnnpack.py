"""Per-layer edgecnn against XNNPACK: every single-input layer of an int8 .tflite cut out into a
model of its own, both engines timed on it interleaved.

    python benchmarks/layers_vs_xnnpack.py MODEL.tflite [--threads 1 2] [--runs 200] [--kinds]

XNNPACK has no per-layer timer in LiteRT's Python API, so each layer (conv, depthwise, dense,
pool, mean, softmax; ADD and concat read two tensors and are left out) is written as a one-node
.tflite (edgecnn's writer) and both engines run that file: edgecnn's Runtime and LiteRT's
default interpreter, one invoke each per round. Both times include one invoke's fixed cost (the
input copy, LiteRT's set/get_tensor); "empty" rows time a 1x1x1 model to show it. Prints per
layer median and min ms and the ratio of medians; --kinds sums them by kind of layer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from edgecnn import ir
from edgecnn.backends import cython as K
from edgecnn.bench import _litert_engine
from edgecnn.runtime import Runtime
from edgecnn.tflite.reader import load_tflite
from edgecnn.tflite.writer import write_tflite


def kind_of(node) -> str:
    name = type(node).__name__
    if name == "Conv2D":
        kh, kw = node.weight.shape[1:3]
        return "conv1x1" if (kh, kw) == (1, 1) else f"conv{kh}x{kw}"
    return "depthwise" if name == "DepthwiseConv2D" else name.lower()


def one_node_graphs(graph):
    """(name, kind, graph) of each node that reads one tensor."""
    for node in graph.nodes:
        if len(node.inputs) != 1 or graph.tensor(node.inputs[0]).dtype != "int8":
            continue
        yield node.name, kind_of(node), ir.Graph(graph.tensor(node.inputs[0]), (node,),
                                                 (node.output.name,), name=node.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--kinds", action="store_true")
    args = ap.parse_args()
    graph = load_tflite(args.model).graph
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, kind, g) in enumerate(one_node_graphs(graph)):
            path = os.path.join(tmp, f"layer{i}.tflite")
            write_tflite(g, path)
            x = rng.integers(-128, 128, size=g.input.shape).astype(np.int8)
            engines = {}
            for n in args.threads:
                engines[("edgecnn", n)] = Runtime(g, backend="cython", threads=n).invoke
                engines[("xnnpack", n)] = _litert_engine(path, n, ref=False)
            times = {key: [] for key in engines}
            for r in range(args.runs + 5):
                for (engine, n), fn in engines.items():
                    K.set_num_threads(n)
                    t0 = time.perf_counter()
                    fn(x)
                    if r >= 5:
                        times[(engine, n)].append((time.perf_counter() - t0) * 1e3)
            rows.append((name, kind, {k: (statistics.median(v), min(v))
                                      for k, v in times.items()}))
    K.set_num_threads(1)
    head = "".join(f"{f'{n}t edgecnn':>16}{f'{n}t XNNPACK':>16}{'ratio':>7}"
                   for n in args.threads)
    print(f"{args.model}; kernels {K.kernel_isa()}; {args.runs} runs; ms median/min")
    print(f"{'layer':<24}{'kind':<11}{head}")

    def cells(t):
        out = ""
        for n in args.threads:
            e, x = t[("edgecnn", n)], t[("xnnpack", n)]
            out += f"{e[0]:>8.3f}/{e[1]:<7.3f}{x[0]:>8.3f}/{x[1]:<7.3f}{e[0] / x[0]:>7.2f}"
        return out
    for name, kind, t in rows:
        print(f"{name[-23:]:<24}{kind:<11}{cells(t)}")
    if args.kinds:
        print()
        for kind in dict.fromkeys(k for _, k, _ in rows):
            tot = {key: tuple(sum(t[key][j] for _, k, t in rows if k == kind) for j in (0, 1))
                   for key in rows[0][2]}
            count = sum(1 for _, k, _ in rows if k == kind)
            print(f"{'sum':<13}{count:>3} {kind:<7}{cells(tot)}")


if __name__ == "__main__":
    main()
