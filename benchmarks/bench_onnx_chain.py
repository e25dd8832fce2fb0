"""How long ONNX import and conversion take as a graph grows: a Conv then a chain of N Relus
(issue 14's audit measured 57 s for 5,000 and 255 s for 10,000 when shape inference was
quadratic). Prints seconds for import (load_onnx), the float passes, and a whole `convert` on
4 calibration images; linear import means doubling N doubles the time.

    python benchmarks/bench_onnx_chain.py [N ...]     # default: 5000 10000
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from edgecnn.convert import convert, prepare_float_graph
from edgecnn.converters.onnx_model import load_onnx


def chain(path: str, n: int) -> None:
    w = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["r0"])] + [
        helper.make_node("Relu", [f"r{i}"], [f"r{i + 1}" if i + 1 < n else "y"])
        for i in range(n)]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")])
    with open(path, "wb") as f:
        f.write(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
                .SerializeToString())


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [5000, 10000]
    with tempfile.TemporaryDirectory() as tmp:
        calib = os.path.join(tmp, "calib")
        os.makedirs(calib)
        for i in range(4):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(os.path.join(calib, f"{i}.png"))
        for n in sizes:
            path = os.path.join(tmp, f"chain{n}.onnx")
            chain(path, n)
            t0 = time.perf_counter()
            graph = load_onnx(path)
            t1 = time.perf_counter()
            prepare_float_graph(graph)
            t2 = time.perf_counter()
            convert(path, os.path.join(tmp, f"chain{n}.tflite"), calib=[calib])
            t3 = time.perf_counter()
            print(f"{n:6d} Relus ({os.path.getsize(path) / 1e3:.0f} KB): import {t1 - t0:.2f} s, "
                  f"float passes {t2 - t1:.2f} s, whole convert (with the onnxruntime "
                  f"cross-check) {t3 - t2:.2f} s")


if __name__ == "__main__":
    main()
