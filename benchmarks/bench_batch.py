"""Throughput on many images: edgecnn's batched kernels (N images per call) vs LiteRT.

    python benchmarks/bench_batch.py [--batch 16] [--threads 1 2] [--runs N] [--models alexnet]

A kernel-level capability, not yet wired into ``infer``: this script runs a prepared plan's
steps itself, conv and dense layers through ``run_batch`` (N images per call: a dense layer
reads each weight byte once per 16 images instead of once per image), every other step image
by image. It checks that the batch's outputs equal edgecnn's one-image runtime bit for bit,
then times, interleaved round by round at each thread count: edgecnn batched, edgecnn one
image at a time (Runtime.invoke), and LiteRT XNNPACK on the same file, one invoke per image
(the files bench_models.py builds have a fixed batch of 1, which XNNPACK cannot resize).
Prints images per second (from the median round).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_models import build_models, cpu_description  # noqa: E402

from edgecnn import ir  # noqa: E402
from edgecnn.backends import cython as K  # noqa: E402
from edgecnn.bench import _litert_engine  # noqa: E402
from edgecnn.runtime import Runtime  # noqa: E402
from edgecnn.tflite.reader import load_tflite  # noqa: E402


class BatchedPlan:
    """A Runtime's prepared steps run on N images: per-tensor (N, ...) buffers."""

    def __init__(self, rt: Runtime, n: int):
        self.n, self.rt = n, rt
        plan = rt.plan
        self.buffers = {plan.graph.input.name: np.zeros((n,) + tuple(plan.graph.input.shape[1:]),
                                                        plan.buffers[plan.graph.input.name].dtype)}
        self.calls = []
        for s in plan.steps:
            src = self.buffers[s.layer.inputs[0]]
            shape = (n,) + tuple(s.layer.output.shape[1:])
            if s.view_only:
                self.buffers[s.layer.output.name] = src.reshape(shape)
                continue
            dst = np.zeros(shape, plan.buffers[s.layer.output.name].dtype)
            self.buffers[s.layer.output.name] = dst
            x, y = src.reshape((n,) + s.in_shape), dst.reshape((n,) + s.out_shape)
            if isinstance(s.layer, (ir.Conv2D, ir.FullyConnected)):
                self.calls.append((s.run.run_batch, x, y))
            else:
                self.calls.append((self._each(s.run), x, y))
        self.output = self.buffers[plan.graph.output.name]

    @staticmethod
    def _each(run):
        def loop(x, y):
            for b in range(x.shape[0]):
                run(x[b], y[b])
        return loop

    def run(self, images: np.ndarray) -> np.ndarray:
        self.buffers[self.rt.plan.graph.input.name][...] = images
        for fn, x, y in self.calls:
            fn(x, y)
        return self.output


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=20, help="timed rounds (one batch each)")
    ap.add_argument("--models", nargs="+", default=["alexnet"])
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "edgecnn-bench"))
    args = ap.parse_args(argv)
    paths = build_models(args.out)
    name, _ = cpu_description()
    print(f"CPU: {name} ({os.cpu_count()} logical CPUs); kernel path {K.kernel_isa()}; "
          f"batch {args.batch}; {args.runs} rounds")
    print(f"{'model':<9} {'threads':>7} {'edgecnn batched':>16} {'edgecnn 1 by 1':>15} "
          f"{'LiteRT XNNPACK':>15} {'batched/LiteRT':>15}   (images/s, median round)")
    for m in args.models:
        graph = load_tflite(paths[m]).graph
        want = graph.input
        rng = np.random.default_rng(0)
        shape = (args.batch,) + tuple(want.shape[1:])
        images = (rng.integers(-128, 128, size=shape).astype(np.int8) if want.dtype == "int8"
                  else rng.normal(0, 1, size=shape).astype(np.float32))
        engines = {}
        for n in args.threads:
            rt = Runtime(graph, backend="cython", threads=n)
            batched = BatchedPlan(rt, args.batch)
            got = batched.run(images).copy()
            for b in range(args.batch):
                one = rt.invoke(images[b:b + 1])
                if not np.array_equal(got[b:b + 1], one):
                    raise SystemExit(f"{m}: batched output of image {b} differs from invoke")
            lite = _litert_engine(paths[m], n, ref=False)
            engines[n] = {"batched": lambda b=batched: b.run(images),
                          "one": lambda r=rt: [r.invoke(images[i:i + 1])
                                               for i in range(args.batch)],
                          "litert": lambda f=lite: [f(images[i:i + 1])
                                                    for i in range(args.batch)]}
        times = {(n, e): [] for n in args.threads for e in ("batched", "one", "litert")}
        for i in range(args.runs + 2):  # two warm-up rounds
            for n in args.threads:
                K.set_num_threads(n)
                for e, fn in engines[n].items():
                    t0 = time.perf_counter()
                    fn()
                    if i >= 2:
                        times[(n, e)].append(time.perf_counter() - t0)
        for n in args.threads:
            ips = {e: args.batch / statistics.median(times[(n, e)]) for e in engines[n]}
            print(f"{m:<9} {n:>7} {ips['batched']:>16.1f} {ips['one']:>15.1f} "
                  f"{ips['litert']:>15.1f} {ips['batched'] / ips['litert']:>15.2f}")
    K.set_num_threads(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
