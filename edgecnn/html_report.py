"""``evaluate --html report.html``: one self-contained page, no network fetch.

Charts are drawn by matplotlib (``pip install "edgecnn[report]"``) into inline SVG with text
as paths, so the page needs no font, script or stylesheet from anywhere:

1. per-layer SQNR (float vs int8), one bar per tensor; the worst tensor and the largest drop
   in a second colour;
2. the activation histograms calibration saw (``MODEL.calib.json``, calib_stats.py), log
   counts, with the range the method chose and the range int8 covers (from the model's scale
   and zero point) as vertical lines;
3. the int8 confusion matrix as a heat map (row-normalized colour, counts written in cells
   when there are at most 30 classes).

The colours are fixed (``COLORS``) so a test can find each chart in a screenshot.
"""

from __future__ import annotations

import html
import io
import math

import numpy as np

from . import calib_stats
from .errors import EdgecnnError
from .evaluation import EvalReport
from .fileio import write_atomic
from .layer_report import format_rows
from .tflite.reader import load_tflite

COLORS = {"sqnr": "#1f6fb2", "flagged": "#d62728", "histogram": "#f28e2b",
          "chosen": "#2ca02c", "int8": "#7b3294"}
CONFUSION_CMAP = "Greens"
MAX_HISTOGRAMS = 40
_CSS = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#eee}td:first-child{text-align:left}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}
section{margin:28px 0}svg{max-width:100%;height:auto}.note{color:#666}"""


def _matplotlib():
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    except ImportError:
        raise EdgecnnError('--html needs matplotlib: pip install "edgecnn[report]"') from None
    return Figure


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline in HTML


def sqnr_chart(report: EvalReport) -> str:
    Figure = _matplotlib()
    rows = report.layers
    if not rows:
        return "<p class=note>no per-layer comparison: run evaluate with --float SOURCE " \
               "--per-layer</p>"
    finite = [r.sqnr_db for r in rows if r.sqnr_db is not None and math.isfinite(r.sqnr_db)]
    top = max(finite, default=60.0) + 5
    values = [top if r.sqnr_db is None else r.sqnr_db for r in rows]
    colors = [COLORS["flagged"] if r.flags else COLORS["sqnr"] for r in rows]
    fig = Figure(figsize=(max(6.0, 0.45 * len(rows) + 2), 4.0))
    ax = fig.subplots()
    ax.bar(range(len(rows)), values, color=colors)
    ax.set_xticks(range(len(rows)), [r.name for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("SQNR (dB), float vs int8")
    for k, r in enumerate(rows):
        if r.flags:
            ax.annotate(", ".join(r.flags), (k, values[k]), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=7, color=COLORS["flagged"])
    ax.set_title("per-tensor SQNR (higher is better; bars at the top: int8 equals float)")
    return _svg(fig)


def histogram_charts(record, model_graph) -> str:
    if record is None:
        return ("<p class=note>no calibration record next to the model (&lt;model&gt;.calib.json, "
                "written by edgecnn convert since this version)</p>")
    Figure = _matplotlib()
    quant = {t.name: t.quant.scalar() for t in model_graph.tensors()
             if t.dtype == "int8" and t.quant is not None}
    names = [t.name for t in model_graph.tensors() if t.name in record["tensors"]]
    names = names[:MAX_HISTOGRAMS]
    if not names:
        return "<p class=note>the calibration record names none of this model's tensors</p>"
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(12, 2.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, name in zip(axes, names):
        h = record["tensors"][name]["histogram"]
        w = float(h["width"])
        neg, pos = np.asarray(h["neg"], float), np.asarray(h["pos"], float)
        edges = np.concatenate([-w * np.arange(len(neg), 0, -1), w * np.arange(len(pos))])
        counts = np.concatenate([neg[::-1], pos])
        if counts.size:
            ax.bar(edges, counts, width=w, align="edge", color=COLORS["histogram"], log=True)
        if h["zeros"]:
            ax.bar([0], [h["zeros"]], width=w / 2, color=COLORS["histogram"], log=True)
        lo, hi = record["tensors"][name]["range"]
        ax.axvline(lo, color=COLORS["chosen"], lw=1.2)
        ax.axvline(hi, color=COLORS["chosen"], lw=1.2)
        if name in quant:
            scale, zp = quant[name]
            for v in ((-128 - zp) * scale, (127 - zp) * scale):
                ax.axvline(v, color=COLORS["int8"], lw=1, ls="--")
        ax.set_title(name[:40], fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names):]:
        ax.axis("off")
    fig.suptitle(f"activation histograms from calibration ({record.get('method')}, "
                 f"{record.get('images')} images): green = chosen range, purple dashed = int8 "
                 "range", fontsize=10)
    return _svg(fig)


def confusion_chart(report: EvalReport) -> str:
    if report.confusion is None:
        return "<p class=note>unlabelled data: no confusion matrix</p>"
    Figure = _matplotlib()
    m = np.asarray(report.confusion, float)
    n = m.shape[0]
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = min(12.0, max(4.0, 0.45 * n + 2))
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap=CONFUSION_CMAP, vmin=0, vmax=1)
    labels = [report.class_names[c][:14] for c in report.confusion_classes]
    if n <= 60:
        ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("int8 prediction")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, label="share of the true class")
    ax.set_title("confusion matrix (int8)")
    return _svg(fig)


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(report: EvalReport, text: str) -> str:
    """The whole page for ``report``; ``text`` is the command's text output."""
    graph = load_tflite(report.model).graph
    record = calib_stats.read(report.model)
    pct = (lambda v: "-" if v is None else f"{100 * v:.2f}%")
    summary = _table(["", "top-1", "top-5"],
                     [["int8", pct(report.int8_top1), pct(report.int8_top5)]]
                     + ([["float", pct(report.float_top1), pct(report.float_top5)]]
                        if report.float_source else []))
    agree = (f"<p>float/int8 top-1 agreement: {pct(report.agreement)} "
             f"({report.agree_count}/{report.images})</p>" if report.float_source else "")
    title = html.escape(f"edgecnn evaluate: {report.model}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_CSS}</style></head><body>
<h1>{title}</h1>
<p>{html.escape(report.data)} ({html.escape(report.label_mapping)}), {report.images} images</p>
{summary}{agree}
<section id="sqnr"><h2>Per-layer SQNR</h2>{sqnr_chart(report)}</section>
<section id="histograms"><h2>Calibration activation ranges</h2>
{histogram_charts(record, graph)}</section>
<section id="confusion"><h2>Confusion matrix</h2>{confusion_chart(report)}</section>
<section id="layers"><h2>Per-layer table</h2><pre>{html.escape(
        format_rows(report.layers, report.unmatched)) if report.layers else "-"}</pre></section>
<section id="text"><h2>Full report</h2><pre>{html.escape(text)}</pre></section>
</body></html>
"""


def write_html(report: EvalReport, text: str, path, force: bool = False) -> str:
    write_atomic(path, render(report, text).encode("utf-8"), force=force)
    return str(path)
