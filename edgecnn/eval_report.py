"""``edgecnn.evaluate(...)``: the Python entry of ``edgecnn evaluate``, and its text report."""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

from . import layer_report as L
from .annotate import require_int8, require_preprocess
from .datasets import open_dataset
from .errors import UsageError
from .evaluation import (EvalReport, EvalSpec, Evaluator, check_spec, default_workers,
                         reduce_results, run_local)
from .tflite.reader import load_tflite
from .tflite.validate import DEFAULT_MAX_MEMORY

ENGINES = ("local", "ray")


def evaluate(model: str, data: str, float_source: Optional[str] = None, *,
             arch: Optional[str] = None, input_size: Optional[int] = None,
             float_engine: str = "edgecnn", per_layer: bool = False, workers: Optional[int] = None,
             engine: str = "local", ray_address: Optional[str] = None,
             backend: str = "cython", rounding: str = "litert-ref",
             progress: Optional[Callable[[int, int], None]] = None,
             max_memory: int = DEFAULT_MAX_MEMORY, **preprocess_flags) -> EvalReport:
    """What int8 costs on labelled ``data`` (what ``edgecnn evaluate`` runs).

    ``model``: the int8 ``.tflite``. ``data``: a folder with one sub-folder per class, a CSV
    of ``path,label`` or an ``.npz`` with ``x`` and ``y`` (datasets.py). ``float_source``:
    the file ``convert`` started from (``arch``/``input_size`` as given to convert), run as
    edgecnn's float graph, or with ``float_engine="litert"`` a float ``.tflite`` in LiteRT.
    ``per_layer``: float-vs-int8 SQNR, cosine, errors per tensor (needs ``float_source``).
    ``workers``: processes (default: every core); ``engine="ray"`` runs on Ray Data instead
    (``ray_address``: an existing cluster, else a local Ray). ``preprocess_flags``
    (``color``, ``resize``, ``mean``, ``std``, ``invert``, and ``input_size``) are for files
    that store no preprocessing. ``progress(n, total)`` is called as ``n`` more of ``total``
    images finish.

    >>> report = edgecnn.evaluate("lenet.tflite", "digits/", "lenet.pt", arch="lenet5",
    ...                           per_layer=True)  # doctest: +SKIP
    >>> report.int8_top1, report.float_top1, report.agreement  # doctest: +SKIP
    """
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: give 1 or more")
    require_int8(model, max_memory)
    graph = load_tflite(model, max_memory).graph
    pre = require_preprocess(graph, model, input_size=input_size, **preprocess_flags)
    classes = graph.output.shape[-1]
    dataset = open_dataset(data, classes, graph.labels)
    if input_size is None and float_source is not None and pre.height == pre.width:
        input_size = pre.height  # the float source at the size it was converted at
    spec = EvalSpec(os.fspath(model), pre, float_source, arch, input_size, float_engine,
                    per_layer, backend, rounding, max_memory)
    check_spec(spec)
    probe = Evaluator(spec)  # builds both sides here first: errors surface before any worker
    if dataset.kind == "npz":
        dataset.load(0, pre)  # a float x of the wrong shape fails once, here, not per item
    names = [graph.labels[c] if c < len(graph.labels) else str(c) for c in range(classes)]
    workers = workers or default_workers()
    step = None if progress is None else (lambda n: progress(n, len(dataset)))
    start = time.perf_counter()
    if engine == "ray":
        from .ray_engine import run_ray
        results, used = run_ray(spec, dataset, workers, ray_address, step), workers
    else:
        results, used = run_local(spec, dataset, workers, step, probe)
    report = reduce_results(spec, dataset, results, probe.matches, probe.unmatched, names)
    report.run = {"engine": engine, "workers": used, "seconds": time.perf_counter() - start,
                  "parallelism": "Ray actors" if engine == "ray" else (
                      "processes" if used > 1 else "this process")}
    return report


def _pct(v: Optional[float]) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def format_report(r: EvalReport, max_matrix: int = 20) -> str:
    """The text ``edgecnn evaluate`` prints."""
    run = r.run
    lines = [f"{r.model} on {r.data} ({r.data_kind}; {r.label_mapping}): {r.images} images, "
             f"{run.get('workers')} worker(s) ({run.get('parallelism')}, engine "
             f"{run.get('engine')}), {run.get('seconds', 0):.1f} s"]
    if r.int8_top1 is not None:
        lines.append(f"int8   top-1 {_pct(r.int8_top1)}   top-5 {_pct(r.int8_top5)}")
    if r.float_source and r.float_top1 is not None:
        lines.append(f"float  top-1 {_pct(r.float_top1)}   top-5 {_pct(r.float_top5)}   "
                     f"({r.float_source}, {r.float_engine})")
        lines.append(f"int8 - float top-1: {100 * (r.int8_top1 - r.float_top1):+.2f} points")
    if r.float_source:
        lines.append(f"float/int8 top-1 agreement {_pct(r.agreement)} ({r.agree_count}/"
                     f"{r.images}; float: {r.float_source}, {r.float_engine})")
    if r.per_class:
        lines.append("per class: " + ("images, int8 top-1, float top-1" if r.float_source
                                      else "images, int8 top-1"))
        for c in r.per_class:
            f = f"  {_pct(c['float_top1']):>8}" if r.float_source else ""
            lines.append(f"  {c['label'][:16]:<16} {c['images']:>6}  {_pct(c['int8_top1']):>8}{f}")
    if r.confusion is not None:
        lines.append(_confusion_text(r, max_matrix))
    if r.layers or r.unmatched:
        lines.append("per layer (float vs int8 over all images; drop = SQNR lost in this layer):")
        lines.append(L.format_rows(r.layers, r.unmatched))
    if r.skipped:
        lines.append(f"{len(r.skipped)} images could not be read (left out of every figure); "
                     f"first: {r.skipped[0][1]}")
    return "\n".join(lines)


def _confusion_text(r: EvalReport, max_matrix: int) -> str:
    classes, m = r.confusion_classes, r.confusion
    names = [r.class_names[c][:6] for c in classes]
    if len(classes) > max_matrix:
        pairs = [(int(m[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes))
                 if i != j and m[i, j]]
        pairs.sort(reverse=True)
        top = ", ".join(f"{r.class_names[classes[i]]} -> {r.class_names[classes[j]]} {n}"
                        for n, i, j in pairs[:10])
        return (f"confusion matrix (int8): {len(classes)} classes, too many to print (see --json "
                f"or --html); most confused (true -> predicted): {top or 'none'}")
    width = max(6, max(len(n) for n in names) + 1, len(str(int(m.max()))) + 1)
    head = "confusion matrix (int8; rows true, columns predicted):\n" + " " * 8 + "".join(
        f"{n:>{width}}" for n in names)
    rows = [f"  {names[i]:<6}" + "".join(f"{int(v):>{width}}" for v in m[i])
            for i in range(len(classes))]
    return head + "\n" + "\n".join(rows)
