"""What every ``edgecnn`` command shares besides the error mapping in cli.py: the preprocessing
flags (defined once), JSON output that knows it was written, warnings as one line each, and a
progress line with a count and an ETA."""

from __future__ import annotations

import json
import sys
import time

import click

from .errors import EdgecnnWarning

PREPROCESS_FLAGS = ("input_size", "color", "resize", "mean", "std", "invert")


def _float_list(ctx, param, text):
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give one number or comma-separated numbers "
                                 "(e.g. 0.485,0.456,0.406)") from None


def preprocess_options(fn):
    """--input-size/--color/--resize/--mean/--std/--invert, the same on every command."""
    options = [
        click.option("--input-size", type=click.IntRange(min=1),
                     help="Square input size (default: from the arch or model)."),
        click.option("--color", type=click.Choice(["L", "RGB"]),
                     help="Image color mode the model takes."),
        click.option("--resize", type=click.IntRange(min=0),
                     help="Resize the shorter side to this, then center-crop (0: resize straight "
                          "to the input size)."),
        click.option("--mean", callback=_float_list,
                     help="Per-channel mean after scaling pixels to [0, 1] (e.g. 0.5)."),
        click.option("--std", callback=_float_list, help="Per-channel std (e.g. 0.5)."),
        click.option("--invert", is_flag=True, default=None,
                     help="Use 1 - x (dark digits on white)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def preprocess_flags(kwargs: dict) -> dict:
    """Pop the preprocessing flags out of a command's keyword arguments."""
    return {k: kwargs.pop(k) for k in PREPROCESS_FLAGS}


def emit_json(obj) -> None:
    """Print ``obj`` as the command's JSON document; an error after this adds no second one."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["edgecnn_json_written"] = True
        warnings_seen = ctx.meta.get("edgecnn_warnings")
        if isinstance(obj, dict) and warnings_seen and "warnings" not in obj:
            obj = dict(obj, warnings=list(warnings_seen))
    click.echo(json.dumps(obj, indent=2))


def error_json(ctx, message: str, exit_code: int) -> None:
    """On an error with --json, stdout still carries one JSON object (unless one was printed)."""
    if ctx.meta.get("edgecnn_json_written") or "--json" not in ctx.meta.get("edgecnn_args", ()):
        return
    click.echo(json.dumps({"error": message, "exit_code": exit_code,
                           "command": ctx.invoked_subcommand}))


def show_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the CLI: edgecnn's warnings as 'warning: ...' lines."""
    if issubclass(category, EdgecnnWarning):
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.meta.setdefault("edgecnn_warnings", []).append(str(message))
        click.echo(f"warning: {message}", err=True)
        return
    sys.stderr.write(f"{filename}:{lineno}: {category.__name__}: {message}\n")


class Progress:
    """``label: 120/2000 images (6%), 3 s, ETA 47 s`` on stderr. On a terminal the line is
    redrawn at most 5 times a second; in a log (CI) a line is written every 10%."""

    def __init__(self, label: str, total: int, unit: str = "images", stream=None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self._next_tenth = 1
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def text(self) -> str:
        elapsed = time.perf_counter() - self.start
        share = self.done / self.total if self.total else 1.0
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta_text = "ETA ?" if eta != eta else f"ETA {_duration(eta)}"
        return (f"{self.label}: {self.done}/{self.total} {self.unit} ({100 * share:.0f}%), "
                f"{_duration(elapsed)}, {eta_text}")

    def update(self, n: int, total=None) -> None:
        """``n`` more done (of ``total``, when the caller learns it only now)."""
        if total is not None:
            self.total = total
        self.done += n
        now = time.perf_counter()
        if self._tty:
            if now - self._last >= 0.2 or self.done >= self.total:
                self.stream.write("\r" + self.text() + "\x1b[K")
                self.stream.flush()
                self._last = now
        elif self.total and self.done * 10 >= self._next_tenth * self.total:
            self._next_tenth = self.done * 10 // self.total + 1
            self.stream.write(self.text() + "\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._tty and self.done:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def export_dict(report) -> dict:
    """``export-c --json``: an export_c.ExportReport as plain data."""
    return {"model": report.model, "out_dir": report.out_dir, "target": report.target.name,
            "rounding": report.rounding, "files": list(report.files),
            "flash_bytes": report.flash_bytes, "ram_bytes": report.ram_bytes,
            "weights_bytes": report.weights_bytes, "code_bytes": report.code_bytes,
            "arena_bytes": report.arena_bytes, "stack_bytes": report.stack_bytes,
            "kernels": report.target.kernel_path, "images": report.images,
            "layer_rounding": [{"node": node, "rounding": note} for node, note in report.notes],
            "arena_plan": [{"node": r.node, "op": r.op, "tensor": r.tensor,
                            "shape": list(r.shape), "bytes": r.bytes, "offset": r.offset,
                            "shares": r.shares}
                           for r in report.rows]}
