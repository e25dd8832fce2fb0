"""``edgecnn evaluate``: what int8 costs, measured on labelled data.

Every image is preprocessed once and fed to the int8 model (edgecnn's kernels) and, given the
float source, to the float model; each image gives its top-5 on both sides and, with
``per_layer``, float-vs-int8 statistics per tensor (layer_report.py). All of an image's
numbers depend on that image only (the float side runs one image at a time too), so any
split of the work gives the same per-image results, and the reduction (``reduce_results``)
walks them in dataset order: the local engine with any number of processes and the Ray
engine (ray_engine.py) give identical reports.

Parallelism: worker **processes**, one per core by default, each loading the model once.
Decoding and preprocessing images (Pillow, NumPy) and the float reference graph hold the GIL,
and a small model's int8 layers are too small to split across the kernels' threads (LeNet-5
runs on one core at 2 threads), so threads would leave cores idle; processes run the whole
per-image pipeline in parallel. Each worker runs the kernels and BLAS on one thread. A worker
takes seconds to start (spawn, imports, models), so the first chunk runs here and is timed,
and processes start only when they save more than that (``run_local``).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import ir, layer_report as L
from .errors import ImageError, InputFileError, UsageError
from .model import input_from_float
from .runtime import Runtime
from .tflite.reader import load_tflite
from .tflite.validate import DEFAULT_MAX_MEMORY

TOP = 5
FLOAT_ENGINES = ("edgecnn", "litert")


@dataclass(frozen=True)
class EvalSpec:
    """Everything a worker needs to build its Evaluator (picklable; paths, not models)."""

    model_path: str
    preprocess: ir.Preprocess
    float_source: Optional[str] = None
    arch: Optional[str] = None
    input_size: Optional[int] = None
    float_engine: str = "edgecnn"
    per_layer: bool = False
    backend: str = "cython"
    rounding: str = "litert-ref"
    max_memory: int = DEFAULT_MAX_MEMORY


class FloatSide:
    """The float model: edgecnn's float graph of the source (the graph ``convert`` quantized),
    or a float ``.tflite`` in LiteRT's reference kernels with every tensor kept."""

    def __init__(self, spec: EvalSpec):
        from .convert import import_float_graph, prepare_float_graph
        raw = import_float_graph(spec.float_source, spec.arch, spec.input_size, spec.max_memory)
        self.graph = prepare_float_graph(raw)
        self.engine = spec.float_engine
        if self.engine == "litert":
            from .litert import LiteRTRunner
            self.index = load_tflite(spec.float_source, spec.max_memory).tensor_index
            self.runner = LiteRTRunner(spec.float_source, "litert-ref")
            self.alias = L.float_aliases(raw, {t.name for t in self.graph.tensors()})
            self.shapes = {t.name: t.shape for t in raw.tensors()}
        else:
            self.alias = {}
            self.shapes = {t.name: t.shape for t in self.graph.tensors()}

    def run(self, x: np.ndarray, keep: set) -> tuple[np.ndarray, dict]:
        """Output (1, classes) and the float tensors named in ``keep``."""
        if self.engine == "litert":
            out = self.runner.invoke(x)
            return out, {name: self.runner.tensor(self.index[name]) for name in keep}
        from .float_runtime import run_float
        kept = {}

        def observe(name, value):
            if name in keep:
                kept[name] = value.copy()

        return run_float(self.graph, x, observe if keep else None), kept


def _top(values: np.ndarray) -> np.ndarray:
    """Indices of the TOP largest values, best first, ties to the lower index; -1 pads."""
    v = np.asarray(values, np.float64).reshape(-1)
    top = np.full(TOP, -1, np.int64)
    order = np.argsort(-v, kind="stable")[:TOP]
    top[:order.size] = order
    return top


class Evaluator:
    """One worker's models: built once, then ``run_items`` over any items."""

    def __init__(self, spec: EvalSpec):
        self.spec = spec
        self.graph = load_tflite(spec.model_path, spec.max_memory).graph.replace(
            preprocess=spec.preprocess)
        self.runtime = Runtime(self.graph, spec.backend, spec.rounding,
                               preserve_all=spec.per_layer, threads=1)
        self.float = FloatSide(spec) if spec.float_source else None
        if self.float is not None and (tuple(self.float.graph.input.shape[1:])
                                       != tuple(self.graph.input.shape[1:])):
            raise UsageError(f"--float {spec.float_source} takes input "
                             f"{tuple(self.float.graph.input.shape[1:])} but {spec.model_path} "
                             f"takes {tuple(self.graph.input.shape[1:])}: pass the source "
                             "convert started from, with the same --arch/--input-size")
        self.matches, self.unmatched = [], []
        if self.float is not None and spec.per_layer:
            self.matches, self.unmatched = L.match_tensors(self.graph, self.float.shapes,
                                                           self.float.alias)
        self._keep = {m.float_name for m in self.matches}

    def run_input(self, x: np.ndarray):
        """One preprocessed input -> (int8 top, float top, per-tensor STATS)."""
        q_out = self.runtime.invoke(input_from_float(self.graph, x))
        q_top = _top(_real(self.graph.output, q_out))
        f_top = np.full(TOP, -1, np.int64)
        stats = np.zeros((len(self.matches), len(L.STATS)))
        if self.float is not None:
            f_out, kept = self.float.run(x, self._keep)
            f_top = _top(f_out)
            for j, m in enumerate(self.matches):
                stats[j] = L.item_stats(kept[m.float_name],
                                        L.dequantize(m, self.runtime.tensor(m.name)))
        return q_top, f_top, stats

    def run_items(self, indices, load: Callable[[int], np.ndarray]) -> dict:
        """Results for ``indices``; ``load(i)`` gives item i's input or raises for a bad image."""
        out = {"index": [], "int8_top": [], "float_top": [], "stats": [], "errors": []}
        with one_blas_thread():
            for i in indices:
                try:
                    x = load(i)
                except (ImageError, InputFileError) as e:
                    out["errors"].append((int(i), str(e)))
                    continue
                q, f, s = self.run_input(x)
                out["index"].append(int(i))
                out["int8_top"].append(q)
                out["float_top"].append(f)
                out["stats"].append(s)
        return out


def one_blas_thread():
    """BLAS on one thread while images run one at a time: the float graph's per-image matrix
    products are small, and OpenBLAS splitting them over threads made the float side 3x slower
    on an idle 2-core machine and 30x slower on a busy one (measured here). Parallelism comes
    from worker processes instead."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


def _real(t: ir.Tensor, raw: np.ndarray) -> np.ndarray:
    if t.dtype == "int8":
        scale, zp = t.quant.scalar()
        return (raw.astype(np.float64) - zp) * scale
    return raw


# --- the local engine: worker processes -----------------------------------------------------

_WORKER: dict = {}


def _init_worker(spec: EvalSpec, dataset) -> None:
    _WORKER["evaluator"] = Evaluator(spec)
    _WORKER["dataset"] = dataset


def _run_chunk(indices):
    ev, data = _WORKER["evaluator"], _WORKER["dataset"]
    return ev.run_items(indices, lambda i: data.load(i, ev.spec.preprocess))


@contextmanager
def _single_threaded_children():
    """Worker processes inherit these: one BLAS/OpenMP thread each, as many processes as cores."""
    keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def chunks(n: int, workers: int, most: int = 64) -> list:
    """Consecutive index ranges, small enough to keep every worker busy to the end."""
    size = max(1, min(most, n // max(1, workers * 8)))
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


# What starting worker processes costs: two LeNet-5 workers (spawn, imports, models) took
# 2.8-3.1 s to come up on this project's shared 2-core machine.
POOL_STARTUP = 2.5  # seconds


def run_local(spec: EvalSpec, dataset, workers: int,
              progress: Optional[Callable[[int], None]] = None,
              evaluator: Optional[Evaluator] = None) -> tuple[list, int]:
    """``(per-chunk results, processes used)`` over the whole dataset.

    The first chunk runs in this process (with ``evaluator`` when given) and is timed; the
    rest goes to ``workers`` processes only when what they save, ``rest * (1 - 1/workers)``,
    exceeds POOL_STARTUP."""
    parts = chunks(len(dataset), workers)
    ev = evaluator or Evaluator(spec)
    load = (lambda i: dataset.load(i, spec.preprocess))
    start = time.perf_counter()
    results = [ev.run_items(parts[0], load)]
    if progress is not None:
        progress(len(parts[0]))
    per_item = (time.perf_counter() - start) / len(parts[0])
    rest = parts[1:]
    processes = min(workers, len(rest))
    saved = per_item * sum(map(len, rest)) * (1 - 1 / max(1, processes))
    if processes <= 1 or saved <= POOL_STARTUP:
        for part in rest:
            results.append(ev.run_items(part, load))
            if progress is not None:
                progress(len(part))
        return results, 1
    # spawn, not fork: never fork a process whose kernel or BLAS threads may be running. A
    # worker that fails (bad model, crash) breaks the pool and raises here, never hangs.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_init_worker,
                             initargs=(spec, dataset)) as pool:
        with _single_threaded_children():  # processes start as tasks are submitted
            futures = [pool.submit(_run_chunk, part) for part in rest]
        try:
            for fut in as_completed(futures):
                res = fut.result()
                results.append(res)
                if progress is not None:
                    progress(len(res["index"]) + len(res["errors"]))
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return results, processes


# --- the report -----------------------------------------------------------------------------

@dataclass
class EvalReport:
    """What ``evaluate`` measured: accuracy (None on unlabelled data), float/int8 agreement,
    the int8 confusion matrix, per-class accuracy, per-layer rows (layer_report.LayerRow),
    tensors that could not be compared, unreadable images, and how the run went (``run``)."""

    model: str
    data: str
    data_kind: str
    label_mapping: str
    images: int
    class_names: list  # per output index
    int8_top1: Optional[float] = None  # None: unlabelled data (agreement and layers only)
    int8_top5: Optional[float] = None
    float_source: Optional[str] = None
    float_engine: Optional[str] = None
    float_top1: Optional[float] = None
    float_top5: Optional[float] = None
    agreement: Optional[float] = None
    agree_count: int = 0
    confusion_classes: list = field(default_factory=list)  # output indices shown
    confusion: Optional[np.ndarray] = None  # rows true, columns int8 prediction
    per_class: list = field(default_factory=list)  # dicts: class, label, images, int8, float
    layers: list = field(default_factory=list)  # layer_report.LayerRow
    unmatched: list = field(default_factory=list)  # (tensor, reason)
    skipped: list = field(default_factory=list)  # (item, error)
    run: dict = field(default_factory=dict)  # engine, workers, seconds: not part of the numbers

    def numbers(self) -> dict:
        """Everything measured, without how it ran (engines must agree on exactly this)."""
        d = self.to_dict()
        d.pop("run")
        return d

    def to_dict(self) -> dict:
        """Everything as plain data for JSON (``evaluate --json``)."""
        return {
            "model": self.model, "data": self.data, "data_kind": self.data_kind,
            "label_mapping": self.label_mapping, "images": self.images,
            "int8": {"top1": self.int8_top1, "top5": self.int8_top5},
            "float": None if self.float_source is None else {
                "source": self.float_source, "engine": self.float_engine,
                "top1": self.float_top1, "top5": self.float_top5},
            "agreement": self.agreement,
            "confusion": None if self.confusion is None else {
                "classes": self.confusion_classes,
                "labels": [self.class_names[c] for c in self.confusion_classes],
                "matrix": self.confusion.tolist()},
            "per_class": self.per_class,
            "layers": [r.to_dict() for r in self.layers],
            "unmatched_tensors": [{"tensor": n, "reason": r} for n, r in self.unmatched],
            "skipped_images": [{"image": p, "error": e} for p, e in self.skipped],
            "run": self.run}


def reduce_results(spec: EvalSpec, dataset, results: list, matches, unmatched,
                   class_names: list) -> EvalReport:
    """Per-item results (any order, any split) -> the report, walking items in dataset order."""
    index = np.array([i for r in results for i in r["index"]], np.int64)
    order = np.argsort(index, kind="stable")
    index = index[order]
    n = index.size
    skipped = sorted(e for r in results for e in r["errors"])
    if n == 0:
        raise UsageError(f"{dataset.source}: no image could be read ({len(skipped)} failed; "
                         f"first: {skipped[0][1] if skipped else 'none'})")

    def stacked(key, shape):
        rows = [v for r in results for v in r[key]]
        return np.stack(rows)[order] if rows else np.zeros((0,) + shape)

    q_top = stacked("int8_top", (TOP,)).astype(np.int64)
    f_top = stacked("float_top", (TOP,)).astype(np.int64)
    report = EvalReport(spec.model_path, dataset.source, dataset.kind, dataset.mapping, int(n),
                        class_names, skipped=[(dataset.name(i), e) for i, e in skipped])
    if spec.float_source:
        agree = q_top[:, 0] == f_top[:, 0]
        report.float_source, report.float_engine = spec.float_source, spec.float_engine
        report.agreement, report.agree_count = float(agree.mean()), int(agree.sum())
    if dataset.labelled:
        _accuracy(report, dataset.labels[index], q_top, f_top if spec.float_source else None)
    if matches:
        report.layers = L.rows_from_stats(matches, L.reduce_stats(stacked(
            "stats", (len(matches), len(L.STATS)))))
    report.unmatched = list(unmatched)
    return report


def _hits(top: np.ndarray, truth: np.ndarray):
    return top[:, 0] == truth, (top == truth[:, None]).any(axis=1)


def _accuracy(report: EvalReport, truth: np.ndarray, q_top: np.ndarray, f_top) -> None:
    """Top-1/top-5, the int8 confusion matrix (over the classes that occur) and per class."""
    q_hit1, q_hit5 = _hits(q_top, truth)
    report.int8_top1, report.int8_top5 = float(q_hit1.mean()), float(q_hit5.mean())
    f_hit1 = None
    if f_top is not None:
        f_hit1, f_hit5 = _hits(f_top, truth)
        report.float_top1, report.float_top5 = float(f_hit1.mean()), float(f_hit5.mean())
    shown = sorted(set(truth.tolist()) | set(q_top[:, 0].tolist()))
    pos = {c: k for k, c in enumerate(shown)}
    confusion = np.zeros((len(shown), len(shown)), np.int64)
    np.add.at(confusion, ([pos[c] for c in truth], [pos[c] for c in q_top[:, 0]]), 1)
    report.confusion_classes, report.confusion = shown, confusion
    for c in sorted(set(truth.tolist())):
        sel = truth == c
        report.per_class.append({
            "class": c, "label": report.class_names[c], "images": int(sel.sum()),
            "int8_top1": float(q_hit1[sel].mean()),
            "float_top1": None if f_hit1 is None else float(f_hit1[sel].mean())})


def check_spec(spec: EvalSpec) -> None:
    """Check the float options before any worker starts."""
    if spec.float_engine not in FLOAT_ENGINES:
        raise UsageError(f"--float-engine {spec.float_engine!r}: use one of "
                         f"{', '.join(FLOAT_ENGINES)}")
    if spec.float_engine == "litert" and not (spec.float_source or "").lower().endswith(".tflite"):
        raise UsageError("--float-engine litert runs a float .tflite; give --float MODEL.tflite "
                         "or use the default engine (edgecnn's float graph)")
    if spec.per_layer and not spec.float_source:
        raise UsageError("--per-layer compares with the float model: give --float SOURCE (the "
                         "file convert started from)")
