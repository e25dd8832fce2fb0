"""int8 ADD / MEAN / CONCATENATION kernels: edgecnn's backends against LiteRT on one op.

    python benchmarks/bench_graph_ops.py [--runs N] [--json]

Shapes from ResNet-50 (residual ADDs of 56x56x256 ... 7x7x2048), ResNet-8 (32x32x16), a
per-channel ADD, MobileNetV2's global average pool (MEAN over 7x7x1280) and a SqueezeNet-style
concat. Each row times, interleaved run by run: the Cython ADD loop on every ISA path this CPU
runs (bound once, as the runtime binds it), the firmware C kernel compiled for the host (-O2,
through ctypes; tests/c_backend.py), the NumPy spec, LiteRT BUILTIN_REF and LiteRT's default
path (XNNPACK; a different rounding, shown for scale). Single thread everywhere. Times are the
median and the minimum in microseconds; the CPU is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edgecnn.backends import cython as K
from edgecnn.backends import reference as R
from edgecnn.reference.params import (broadcast_shape, concat_shape, make_add_params,
                                      make_concat_params, make_mean_params, mean_shape)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import c_backend as C  # noqa: E402
from litert_models import (Spec, add_options, concatenation_options, reducer_options,  # noqa: E402
                           single_op_model)

ADD_Q = (0.031, -7, 0.047, 12, 0.06, -3)


def _interpreter(model: bytes, reference: bool):
    fd, path = tempfile.mkstemp(suffix=".tflite")
    with os.fdopen(fd, "wb") as f:
        f.write(model)
    kwargs = dict(experimental_op_resolver_type=OpResolverType.BUILTIN_REF) if reference else {}
    interp = Interpreter(model_path=path, num_threads=1, **kwargs)
    os.unlink(path)
    interp.allocate_tensors()
    return interp


def _litert_runner(model: bytes, inputs, reference: bool):
    interp = _interpreter(model, reference)
    for detail, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(detail["index"], x)
    return interp.invoke


def add_case(shape1, shape2):
    out_shape = broadcast_shape(shape1, shape2)
    rng = np.random.default_rng(0)
    x1 = rng.integers(-128, 128, shape1).astype(np.int8)
    x2 = rng.integers(-128, 128, shape2).astype(np.int8)
    p = make_add_params(*ADD_Q, "relu")
    out = np.empty(out_shape, np.int8)
    s1, zp1, s2, zp2, s_out, zp_out = ADD_Q
    kind, opts = add_options("relu")
    model = single_op_model("ADD", [Spec(shape1, np.int8, s1, zp1), Spec(shape2, np.int8, s2, zp2)],
                            [Spec(out_shape, np.int8, s_out, zp_out)], kind, opts, version=2)
    runners = {}
    for isa in K.supported_isas():
        K.force_isa(isa)
        bound = K.bind_add_s8(p, shape1, shape2)
        runners[f"cython-{isa}"] = lambda b=bound: b(x1, x2, out)
    K.force_isa("auto")
    runners["c-firmware"] = lambda: C.add_s8(x1, x2, p, out)
    runners["numpy-spec"] = lambda: R.add_s8(x1, x2, p, out)
    runners["litert-ref"] = _litert_runner(model, (x1, x2), True)
    runners["litert-xnnpack"] = _litert_runner(model, (x1, x2), False)
    return runners


def mean_case(h, w, c):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    q = (0.05, -3, 0.02, 4)
    p = make_mean_params((1, h, w, c), [1, 2], *q)
    out = np.empty(c, np.int8)
    kind, opts = reducer_options(True)
    model = single_op_model(
        "MEAN", [Spec((1, h, w, c), np.int8, q[0], q[1]),
                 Spec((2,), np.int32, data=np.array([1, 2], np.int32))],
        [Spec(mean_shape((1, h, w, c), [1, 2], True), np.int8, q[2], q[3])], kind, opts,
        version=2)
    return {"cython": lambda: K.mean_s8(x, p, out), "c-firmware": lambda: C.mean_s8(x, p, out),
            "numpy-spec": lambda: R.mean_s8(x, p, out),
            "litert-ref": _litert_runner(model, (x[None],), True),
            "litert-xnnpack": _litert_runner(model, (x[None],), False)}


def concat_case(shapes, axis):
    rng = np.random.default_rng(2)
    xs = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes]
    out = np.empty(concat_shape(shapes, axis), np.int8)
    p = make_concat_params([(0.05, 1)] * len(xs), (0.05, 1))
    kind, opts = concatenation_options(axis)
    model = single_op_model("CONCATENATION", [Spec(s, np.int8, 0.05, 1) for s in shapes],
                            [Spec(out.shape, np.int8, 0.05, 1)], kind, opts, version=2)
    return {"cython": lambda: K.concat_s8(xs, axis, p, out),
            "c-firmware": lambda: C.concat_s8(xs, axis, p, out),
            "numpy-spec": lambda: R.concat_s8(xs, axis, p, out),
            "litert-ref": _litert_runner(model, xs, True),
            "litert-xnnpack": _litert_runner(model, xs, False)}


CASES = [
    ("ADD 56x56x256 (ResNet-50)", lambda: add_case((56, 56, 256), (56, 56, 256))),
    ("ADD 28x28x512", lambda: add_case((28, 28, 512), (28, 28, 512))),
    ("ADD 7x7x2048", lambda: add_case((7, 7, 2048), (7, 7, 2048))),
    ("ADD 32x32x16 (ResNet-8)", lambda: add_case((32, 32, 16), (32, 32, 16))),
    ("ADD 56x56x64 + (64,)", lambda: add_case((56, 56, 64), (64,))),
    ("MEAN 7x7x1280 (MobileNetV2)", lambda: mean_case(7, 7, 1280)),
    ("MEAN 7x7x2048 (ResNet-50)", lambda: mean_case(7, 7, 2048)),
    ("CONCAT 56x56x(64+64) axis 3", lambda: concat_case([(1, 56, 56, 64)] * 2, 3)),
]


def measure(runners: dict, runs: int) -> dict:
    for fn in runners.values():
        fn()
    times = {name: [] for name in runners}
    for _ in range(runs):  # interleaved: every engine once per round
        for name, fn in runners.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e6)
    return {name: (float(np.median(v)), float(np.min(v))) for name, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = {name: measure(make(), args.runs) for name, make in CASES}
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor()) if os.path.exists(
        "/proc/cpuinfo") else platform.processor()
    print(f"CPU: {cpu}; {args.runs} interleaved runs; microseconds, median / min")
    for name, res in results.items():
        print(f"\n{name}")
        for engine, (med, low) in res.items():
            print(f"  {engine:<22} {med:10.1f} / {low:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
