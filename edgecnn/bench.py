"""``edgecnn bench``: edgecnn's kernels against LiteRT on the same int8 file, in one process.

Engines: ``edgecnn`` (the cython backend, litert-ref rounding, so bit-exact with BUILTIN_REF),
``litert`` (LiteRT's default path, XNNPACK) and ``litert-ref`` (BUILTIN_REF, the golden
reference, slow: it runs ``ref_runs`` times only). Engines and thread counts are run
interleaved, one invoke each per round, so a noisy machine slows all of them alike; a run is
one ``invoke`` from Python including the input and output copies, as an application sees it.

Floor: per thread count, the machine floor of the model for edgecnn's kernel path
(``edgecnn.machine``: measured peak int8 MAC rate and streaming bandwidth, per layer MACs /
peak + weight bytes / bandwidth) and edgecnn's ratio to it. ``per_layer`` also times each of
edgecnn's steps alone (median of ``runs``) next to that layer's floor.

Memory: ``rss_bytes`` is each engine's peak resident-set growth while it is built and run
once at the first thread count, measured in a fresh process of its own
(``edgecnn.peak_memory``: in this process the figure would depend on what ran before; for
edgecnn: the file read into the graph, packed weight copies, arenas, scratch; for LiteRT: the
interpreter with its file and XNNPACK's packed weights). ``arena_bytes`` is edgecnn's planned
activation arenas alone.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from . import litert, machine, peak_memory
from .errors import UsageError
from .tflite.validate import DEFAULT_MAX_MEMORY

ENGINES = ("edgecnn", "litert", "litert-ref")


@dataclass
class EngineTimes:
    engine: str
    threads: int
    times_ms: list

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    @property
    def max_ms(self) -> float:
        return max(self.times_ms)

    def to_dict(self) -> dict:
        return {"engine": self.engine, "threads": self.threads, "runs": len(self.times_ms),
                "median_ms": self.median_ms, "min_ms": self.min_ms, "max_ms": self.max_ms}


@dataclass
class BenchReport:
    model_path: str
    kernel_isa: str
    litert_version: str
    runs: int
    times: list = field(default_factory=list)  # EngineTimes, per engine and thread count
    rss_bytes: dict = field(default_factory=dict)  # engine -> peak RSS growth, build + run
    arena_bytes: int = 0  # edgecnn's planned activation arenas
    exact_vs_ref: bool = True  # edgecnn's output equals BUILTIN_REF's on the bench input
    floors: dict = field(default_factory=dict)  # threads -> machine.Floor
    layer_ms: dict = field(default_factory=dict)  # threads -> {layer name: (median, min) ms}

    def get(self, engine: str, threads: int) -> EngineTimes:
        for t in self.times:
            if t.engine == engine and t.threads == threads:
                return t
        raise KeyError((engine, threads))

    @property
    def thread_counts(self) -> list:
        return sorted({t.threads for t in self.times})

    def ratio(self, threads: int) -> float:
        """edgecnn median / LiteRT XNNPACK median (below 1: edgecnn is faster)."""
        return self.get("edgecnn", threads).median_ms / self.get("litert", threads).median_ms

    def floor_ratio(self, threads: int) -> float:
        """edgecnn median / the machine floor (1 would be the hardware's limit)."""
        return self.get("edgecnn", threads).median_ms / (self.floors[threads].seconds * 1e3)

    def to_dict(self) -> dict:
        per_threads = {}
        for n in self.thread_counts:
            per_threads[str(n)] = {"edgecnn_ms": self.get("edgecnn", n).median_ms,
                                   "litert_ms": self.get("litert", n).median_ms,
                                   "ratio": self.ratio(n)}
            if n in self.floors:
                per_threads[str(n)].update(floor=self.floors[n].to_dict(),
                                           floor_ratio=self.floor_ratio(n))
            if n in self.layer_ms:
                per_threads[str(n)]["layer_ms"] = {k: {"median_ms": v[0], "min_ms": v[1]}
                                                   for k, v in self.layer_ms[n].items()}
        return {"model": self.model_path, "kernel_isa": self.kernel_isa,
                "litert_version": self.litert_version, "runs": self.runs,
                "threads": per_threads, "engines": [t.to_dict() for t in self.times],
                "rss_bytes": dict(self.rss_bytes), "arena_bytes": self.arena_bytes,
                "exact_vs_ref": self.exact_vs_ref}


def _litert_engine(path: str, threads: int, ref: bool) -> Callable[[np.ndarray], np.ndarray]:
    interpreter = litert._interpreter_module()
    kwargs = {"num_threads": threads}
    if ref:
        kwargs["experimental_op_resolver_type"] = interpreter.OpResolverType.BUILTIN_REF
    with litert._quiet_native_stderr():
        it = interpreter.Interpreter(model_path=path, **kwargs)
        it.allocate_tensors()
    i_in = it.get_input_details()[0]["index"]
    i_out = it.get_output_details()[0]["index"]

    def run(x):
        it.set_tensor(i_in, x)
        it.invoke()
        return it.get_tensor(i_out)
    return run


def _edgecnn_layer_ms(rt, x: np.ndarray, runs: int) -> dict:
    """{layer name: (median, min) ms} of each step of an edgecnn Runtime run alone, in graph
    order, its buffers wired as Runtime wires them (a reshape is a view: no step)."""
    steps = rt.steps
    times = {name: [] for name, *_ in steps}
    for _ in range(runs):
        rt.invoke(x)  # the same data as a real run (the arena is reused by later layers)
        for name, run, ins, out in steps:
            t0 = time.perf_counter()
            run(*ins, out)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def bench(model_path: str, threads: Sequence[int] = (1, 2), runs: int = 100, warmup: int = 5,
          ref_runs: int = 3, seed: int = 0, max_memory: int = DEFAULT_MAX_MEMORY,
          floor: bool = True, per_layer: bool = False, memory: bool = True) -> BenchReport:
    """Time edgecnn, LiteRT XNNPACK and LiteRT BUILTIN_REF on ``model_path`` (see module doc).

    ``runs`` timed invokes per engine and thread count after ``warmup`` untimed ones;
    BUILTIN_REF gets ``min(ref_runs, runs)`` (0 skips it). ``floor`` measures the machine
    floor per thread count; ``per_layer`` times edgecnn's steps one by one as well; ``memory``
    measures each engine's peak memory in a fresh process.
    """
    from .backends import cython as K
    from .runtime import Runtime
    from .tflite.reader import load_tflite

    if runs < 1 or warmup < 0 or any(int(n) < 1 for n in threads):
        raise UsageError("bench: runs must be 1 or more, warmup 0 or more and threads 1 or more")
    litert._interpreter_module()
    graph = load_tflite(model_path, max_memory).graph
    want = graph.input
    rng = np.random.default_rng(seed)
    if want.dtype == "int8":
        x = rng.integers(-128, 128, size=want.shape).astype(np.int8)
    else:
        x = rng.normal(0, 1, size=want.shape).astype(np.float32)
    report = BenchReport(model_path, K.kernel_isa(), litert.litert_version(), runs)

    engines, runtimes = {}, {}
    for n in threads:
        rt = Runtime(graph, backend="cython", threads=int(n))
        first = rt.invoke(x)
        report.arena_bytes = rt.arena_bytes
        engines[("edgecnn", n)] = rt.invoke
        runtimes[n] = rt
        run = _litert_engine(model_path, int(n), ref=False)
        run(x)
        engines[("litert", n)] = run
    n_ref = min(ref_runs, runs)
    if n_ref > 0:
        ref = _litert_engine(model_path, 1, ref=True)
        report.exact_vs_ref = bool(np.array_equal(ref(x), first))
    if memory:
        for e in ENGINES if n_ref > 0 else ENGINES[:2]:
            grown = peak_memory.peak_growth(model_path, e, int(threads[0]))
            if grown is not None:
                report.rss_bytes[e] = grown
    probe = machine.Probe(machine.weight_bytes(graph)) if floor else None
    every = max(1, runs // 10)  # floor trials spread over the rounds: the quietest moments
    timed = {}
    for n in threads:
        timed[n] = {e: EngineTimes(e, int(n), []) for e in ("edgecnn", "litert")}
        if n_ref > 0:
            timed[n]["litert-ref"] = EngineTimes("litert-ref", int(n), [])
    for i in range(warmup + runs):  # one round: every thread count, every engine
        for n in threads:
            K.set_num_threads(int(n))  # process-wide: the edgecnn runtime of this count
            for e in timed[n]:
                if e == "litert-ref" and (i < warmup or i >= warmup + n_ref):
                    continue
                fn = ref if e == "litert-ref" else engines[(e, n)]
                t0 = time.perf_counter()
                fn(x)
                dt = (time.perf_counter() - t0) * 1e3
                if i >= warmup:
                    timed[n][e].times_ms.append(dt)
            if probe and i % every == 0:
                probe.peak_trial(int(n))
                probe.stream_trial(int(n))
    for n in threads:
        report.times.extend(timed[n].values())
        if floor:
            report.floors[int(n)] = machine.model_floor(graph, int(n), probe)
        if per_layer:
            K.set_num_threads(int(n))
            report.layer_ms[int(n)] = _edgecnn_layer_ms(runtimes[n], x, runs)
    K.set_num_threads(1)
    return report


def format_bench(report: BenchReport) -> str:
    """A plain-text table: per thread count and engine, median/min/max ms, and the ratio."""
    lines = [f"kernels: {report.kernel_isa}; {report.litert_version}; {report.runs} runs; "
             f"edgecnn {'bit-exact' if report.exact_vs_ref else 'DIFFERS'} vs BUILTIN_REF",
             f"{'threads':>7}  {'engine':<18} {'median ms':>10} {'min ms':>9} {'max ms':>9}"]
    names = {"edgecnn": "edgecnn", "litert": "LiteRT XNNPACK", "litert-ref": "LiteRT BUILTIN_REF"}
    for n in report.thread_counts:
        for t in report.times:
            if t.threads == n:
                lines.append(f"{n:>7}  {names[t.engine]:<18} {t.median_ms:>10.3f} "
                             f"{t.min_ms:>9.3f} {t.max_ms:>9.3f}")
        lines.append(f"{n:>7}  {'ratio edgecnn/XNNPACK':<18} {report.ratio(n):>8.2f}")
        if n in report.floors:
            f = report.floors[n]
            lines.append(f"{n:>7}  {'machine floor':<18} {f.seconds * 1e3:>10.3f}   "
                         f"({f.isa}: {f.peak_macs / 1e9:.0f} G int8 MAC/s, "
                         f"{f.bandwidth / 1e9:.1f} GB/s streamed)")
            lines.append(f"{n:>7}  {'ratio edgecnn/floor':<18} {report.floor_ratio(n):>8.2f}")
    mem = ", ".join(f"{e} {b / 2**20:.1f} MiB" for e, b in report.rss_bytes.items())
    lines.append(f"peak RSS growth at build + first run (fresh process each): {mem}; edgecnn arenas "
                 f"{report.arena_bytes / 2**10:.1f} KiB")
    for n in report.thread_counts:
        if n in report.layer_ms:
            lines.append("")
            lines.extend(format_layers(report, n))
    return "\n".join(lines)


def format_layers(report: BenchReport, threads: int) -> list:
    """Per layer at one thread count: edgecnn's median and min ms, the floor, the ratio."""
    floors = {f.name: f for f in report.floors[threads].layers} if threads in report.floors else {}
    lines = [f"per layer, {threads} thread{'s' if threads > 1 else ''}:",
             f"  {'layer':<22} {'type':<20} {'MACs':>11} {'weight B':>10} {'median ms':>10} "
             f"{'min ms':>8} {'floor ms':>9} {'x floor':>8}"]
    for name, (med, low) in report.layer_ms[threads].items():
        f = floors.get(name)
        kind, macs, wb = (f.type, f"{f.macs:,}", f"{f.weight_bytes:,}") if f else ("", "", "")
        fl = f"{f.seconds * 1e3:>9.3f}" if f else f"{'':>9}"
        ratio = f"{med / (f.seconds * 1e3):>8.2f}" if f and f.seconds > 0 else f"{'-':>8}"
        lines.append(f"  {name[:22]:<22} {kind[:20]:<20} {macs:>11} {wb:>10} {med:>10.3f} "
                     f"{low:>8.3f} {fl} {ratio}")
    return lines
