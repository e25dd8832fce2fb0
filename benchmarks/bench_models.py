"""edgecnn vs LiteRT on LeNet-5 and AlexNet int8, the same .tflite file, one process.

    python benchmarks/bench_models.py [--runs N] [--threads 1 2] [--out DIR] [--json] [--smoke]
                                      [--per-layer] [--tflite NAME=PATH ...]

Builds the two models once into --out (default: a cache folder under the system temp dir):
LeNet-5 from the bundled edgecnn/data/lenet5/lenet5.pt (seeded random weights if absent),
AlexNet from seeded torch-style uniform weights in torchvision's layout (no download), both
calibrated on seeded random inputs and quantized by edgecnn. Then edgecnn.bench.bench runs
edgecnn (cython backend), LiteRT XNNPACK and LiteRT BUILTIN_REF interleaved run by run (every
thread count in the same rounds), and measures the machine floor of each model per thread count
(edgecnn.machine: peak int8 MAC rate of edgecnn's kernel path and streaming bandwidth). First
a summary table: per model and thread count, edgecnn and XNNPACK (median and min ms), their
ratio, the floor and edgecnn's ratio to it, with the CPU, the kernel path and the date; then
each model's full report (--per-layer: every layer's time next to its floor). --tflite adds
any int8 .tflite file under a name (MobileNetV2 or a ResNet once their ops run in edgecnn).
--smoke does a few runs only (CI).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile

import numpy as np

from edgecnn import bench as B
from edgecnn.backends import cython as K
from edgecnn.calibrate import calibrate
from edgecnn.convert import prepare_float_graph
from edgecnn.converters import arch
from edgecnn.quantize import quantize_graph
from edgecnn.tflite.writer import write_tflite

LENET_PT = os.path.join(os.path.dirname(B.__file__), "data", "lenet5", "lenet5.pt")


def torch_style_state_dict(spec: dict, seed: int, classes: int = 1000) -> dict:
    """Conv/linear weights and biases drawn like torch's default init (kaiming_uniform with
    a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))), keyed by the spec's torchvision-style
    layer names (features.N / classifier.N) so the arch matcher binds them. A linear layer
    without "units" (the classifier) gets ``classes`` outputs."""
    rng = np.random.default_rng(seed)
    c, h, w = spec["input"]["channels"], spec["input"]["height"], spec["input"]["width"]
    state, in_features = {}, None
    for i, layer in enumerate(spec["layers"]):
        kind = layer["type"]
        if kind == "adaptive_avgpool":
            h, w = layer["output"]
        if kind not in ("conv", "linear"):
            continue
        if kind == "conv":
            k = layer["kernel"]
            fan_in, shape = c * k * k, (layer["filters"], c, k, k)
            c = layer["filters"]
        else:
            in_features = in_features or c * h * w
            units = layer.get("units", classes)
            fan_in, shape = in_features, (units, in_features)
            in_features = units
        bound = 1.0 / np.sqrt(fan_in)
        prefix = layer.get("name", f"layers.{i}")
        state[prefix + ".weight"] = rng.uniform(-bound, bound, shape).astype(np.float32)
        state[prefix + ".bias"] = rng.uniform(-bound, bound, shape[0]).astype(np.float32)
    return state


def _int8_file(float_graph, path: str, seed: int, calib_count: int) -> str:
    graph = prepare_float_graph(float_graph)
    _, h, w, c = graph.input.shape
    rng = np.random.default_rng(seed)
    batches = (rng.normal(0, 1, (2, h, w, c)).astype(np.float32)
               for _ in range(max(1, calib_count // 2)))
    write_tflite(quantize_graph(graph, calibrate(graph, batches)), path, force=True)
    return path


def build_models(out_dir: str, calib_count: int = 4) -> dict:
    """{"lenet5": path, "alexnet": path}, built if missing."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"lenet5": os.path.join(out_dir, "lenet5_int8.tflite"),
             "alexnet": os.path.join(out_dir, "alexnet_int8.tflite")}
    if not os.path.exists(paths["lenet5"]):
        if os.path.exists(LENET_PT):
            from edgecnn.convert import import_float_graph
            g = import_float_graph(LENET_PT, arch="lenet5")
        else:
            spec = arch.load_spec("lenet5")
            g = arch.graph_from_spec(spec, torch_style_state_dict(spec, 5), "lenet5")
        _int8_file(g, paths["lenet5"], 1, 16)
    if not os.path.exists(paths["alexnet"]):
        spec = arch.load_spec("alexnet")
        g = arch.graph_from_spec(spec, torch_style_state_dict(spec, 2012), "alexnet")
        _int8_file(g, paths["alexnet"], 2, calib_count)
    return paths


def cpu_description() -> tuple[str, str]:
    """(model name, flags) from /proc/cpuinfo, or what platform knows."""
    name, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model") and name in ("", platform.machine(),
                                                                   platform.processor()):
                    name = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = value.strip()
    except OSError:
        pass
    return name, flags


def summary_table(reports: dict) -> list:
    """One line per model and thread count: the numbers the targets are stated in."""
    lines = [f"{'model':<9} {'threads':>7} {'edgecnn ms':>17} {'XNNPACK ms':>17} {'ratio':>6} "
             f"{'floor ms':>9} {'x floor':>8} {'peak RSS MiB edgecnn/LiteRT':>28}",
             f"{'':<9} {'':>7} {'median   min':>17} {'median   min':>17}"]
    for m, r in reports.items():
        rss = f"{r.rss_bytes.get('edgecnn', 0) / 2**20:.1f} / {r.rss_bytes.get('litert', 0) / 2**20:.1f}"
        for n in r.thread_counts:
            e, x = r.get("edgecnn", n), r.get("litert", n)
            floor = r.floors[n].seconds * 1e3
            lines.append(f"{m:<9} {n:>7} {e.median_ms:>9.3f} {e.min_ms:>7.3f} "
                         f"{x.median_ms:>9.3f} {x.min_ms:>7.3f} {r.ratio(n):>6.2f} "
                         f"{floor:>9.3f} {r.floor_ratio(n):>8.2f} {rss:>28}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="*", default=["lenet5", "alexnet"],
                    help="bundled models to time: lenet5, alexnet (none: only --tflite files)")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "edgecnn-bench"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="a few runs only (CI)")
    ap.add_argument("--per-layer", action="store_true", help="time each edgecnn layer alone")
    ap.add_argument("--tflite", nargs="+", default=[], metavar="NAME=PATH",
                    help="more int8 .tflite files to time, each under a name")
    args = ap.parse_args(argv)
    runs = 3 if args.smoke else args.runs
    paths = build_models(args.out)
    unknown = [m for m in args.models if m not in paths]
    if unknown:
        ap.error(f"--models {' '.join(unknown)}: bundled models are {', '.join(paths)}; "
                 "time other files with --tflite NAME=PATH")
    for item in args.tflite:
        name, sep, path = item.partition("=")
        if not sep or not os.path.isfile(path):
            ap.error(f"--tflite {item!r}: give NAME=PATH of an existing .tflite file")
        paths[name] = path
        args.models.append(name)
    name, flags = cpu_description()
    reports = {m: B.bench(paths[m], threads=tuple(args.threads), runs=runs,
                          warmup=1 if args.smoke else max(5, runs // 20),
                          per_layer=args.per_layer)
               for m in args.models}
    if args.json:
        print(json.dumps({m: r.to_dict() for m, r in reports.items()}, indent=2))
        return 0
    print(f"edgecnn vs LiteRT, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"CPU: {name} ({os.cpu_count()} logical CPUs), Python {sys.version.split()[0]}")
    print(f"kernel path: {K.kernel_isa()} (this CPU runs {', '.join(K.supported_isas())}"
          f"{'' if not K.amx_missing() else '; no AMX: ' + K.amx_missing()})")
    print(f"flags: {flags}")
    print(f"command: python benchmarks/bench_models.py {' '.join(argv or sys.argv[1:])}")
    print()
    print("\n".join(summary_table(reports)))
    for m, r in reports.items():
        print()
        print(f"== {m}: {paths[m]}")
        print(B.format_bench(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
