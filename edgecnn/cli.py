"""The ``edgecnn`` command: a thin click group over the library. Commands parse, call, print.

Exit codes, mapped here and only here: 0 success, 1 a cross-check found a mismatch,
2 bad usage or bad input (every EdgecnnError), each as one line on stderr unless --debug.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

import click

from . import __version__
from .cli_common import (emit_json, error_json, export_dict, preprocess_flags,
                         preprocess_options, show_warning)
from .errors import EdgecnnError, EdgecnnWarning, InputFileError, MismatchError
from .text import layer_label, printable

ROUNDINGS = ("litert-ref", "double", "single", "fp32")


class _Group(click.Group):
    def parse_args(self, ctx, args):
        ctx.meta["edgecnn_args"] = tuple(args)  # for --json on errors, before options parse
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.simplefilter("always", EdgecnnWarning)
            warnings.showwarning = show_warning  # "warning: ..." lines, kept for --json
            try:
                return super().invoke(ctx)
            except EdgecnnError as e:
                if ctx.obj and ctx.obj.get("debug"):
                    traceback.print_exc()
                click.echo(f"error: {printable(e)}", err=True)
                error_json(ctx, str(e), e.exit_code)
                ctx.exit(e.exit_code)
            except click.ClickException as e:  # bad usage: click prints the line on stderr
                error_json(ctx, e.format_message(), e.exit_code)
                raise
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                ctx.exit(130)


def _budget(ctx, param, text):
    """--flash / --ram: a size such as 256K, or 0 (no budget) when not given."""
    return 0 if text is None else _size(ctx, param, text)


def _size(ctx, param, text):
    """'4G', '512M', '100k' or plain bytes -> bytes."""
    if text is None:
        from .tflite.validate import DEFAULT_MAX_MEMORY
        return DEFAULT_MAX_MEMORY
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        number, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
        value = int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise click.BadParameter(f"{text!r}: give a size such as 4G, 512M or 1000000") from None
    if value <= 0:
        raise click.BadParameter(f"{text!r}: the ceiling must be positive")
    return value


max_memory_option = click.option(
    "--max-memory", callback=_size, metavar="SIZE",
    help="Refuse a model whose tensors would need more than SIZE (e.g. 8G) [default: 4G].")


def _read_labels(path):
    if path is None:
        return ()
    try:
        with open(path, encoding="utf-8") as f:
            return tuple(line.strip() for line in f if line.strip())
    except OSError as e:
        raise InputFileError(f"{path}: cannot read labels ({e.strerror})") from None


class _progress:
    """A click progress bar on stderr that appears at the first update, so an error raised
    before any work starts stays a single line."""

    def __init__(self, label, length):
        self._args = dict(length=length, label=label, file=sys.stderr, show_pos=True, width=30)
        self._bar = None

    def update(self, n):
        if self._bar is None:
            self._bar = click.progressbar(**self._args).__enter__()
        self._bar.update(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Examples:\n\n  edgecnn demo\n\n  edgecnn convert lenet.pt --arch lenet5 "
                    "--calib calib/ -o lenet.tflite\n\n  edgecnn infer lenet.tflite digit.png")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.version_option(__version__, prog_name="edgecnn")
@click.pass_context
def main(ctx, debug):
    """int8 CNNs for CPUs and microcontrollers, checked bit for bit against LiteRT."""
    ctx.obj = {"debug": debug}


@main.command()
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--arch", help="For a state_dict: lenet5 (-tanh, -avg, -tanh-avg), alexnet, "
                             "resnet18/34/50, mobilenet_v2, squeezenet1_0/1_1 (torchvision "
                             "layouts), or a SPEC.json.")
@click.option("--calib", multiple=True, type=click.Path(), help="Folder or files of "
              "representative images (repeatable).")
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "mse"]),
              default="minmax", show_default=True,
              help="minmax: observed range; percentile: clip the 0.01% tails; mse: the range "
                   "with the least int8 error over each tensor's histogram.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output .tflite "
              "[default: MODEL with .int8.tflite]")
@preprocess_options
@click.option("--labels", type=click.Path(dir_okay=False), help="Text file, one label per line.")
@click.option("--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("--ignore-mismatch", is_flag=True, help="Write the model even when the float "
              "cross-check against the source's runtime (LiteRT, onnxruntime) finds a "
              "difference beyond float tolerance.")
@click.option("--json", "as_json", is_flag=True, help="What was written, as JSON.")
def convert(model, arch, calib, calib_method, output, labels, force, ignore_mismatch, max_memory,
            as_json, **flags):
    """Convert a float model (.pt state_dict or TorchScript, .onnx, float .tflite) to a
    standard int8 .tflite.

    Also writes OUT.calib.json beside it: the calibration histograms evaluate --html draws.

    \b
    Examples:
      edgecnn convert lenet.pt --arch lenet5 --calib calib/ --mean 0.5 --std 0.5 -o lenet.tflite
      edgecnn convert model_traced.pt --calib calib/ -o model.tflite   # torch.jit.save
      edgecnn convert resnet18.onnx --calib photos/ --calib-method mse -o resnet18.tflite
      edgecnn convert resnet18_state_dict.pt --arch resnet18 --calib photos/
    """
    import dataclasses

    from .convert import check_output, convert as run_convert
    from .preprocess import expand_image_paths
    output = output or os.path.splitext(model)[0] + ".int8.tflite"
    check_output(output, force)
    n = len(expand_image_paths(calib)) if calib else 0
    with _progress("calibrating", n) as bar:
        result = run_convert(model, output, arch=arch, calib=calib, method=calib_method,
                             labels=_read_labels(labels), force=force, progress=bar.update,
                             max_memory=max_memory, ignore_mismatch=ignore_mismatch,
                             **preprocess_flags(flags))
    for path, err in result.skipped_images:
        click.echo(f"skipped {printable(err)}", err=True)
    pre = result.int8_graph.preprocess
    n_labels = len(result.int8_graph.labels)
    check = result.crosscheck
    if as_json:
        emit_json({"output": output, "calibration_record": result.calibration_path,
                   "int8_ops": len(result.int8_graph.nodes), "method": calib_method,
                   "calibration_images": result.calibration_images,
                   "skipped_images": [{"image": p, "error": e} for p, e in result.skipped_images],
                   "preprocess": dataclasses.asdict(pre), "labels": n_labels,
                   "crosscheck": None if check is None else check.to_dict()})
        return
    if check is not None:
        click.echo(check.describe())
    click.echo(f"wrote {output}: {len(result.int8_graph.nodes)} int8 ops, calibrated on "
               f"{result.calibration_images} images ({calib_method}); input "
               f"{pre.height}x{pre.width} {pre.color}"
               + (f", resize {pre.resize} + center crop" if pre.resize else "")
               + f", mean {pre.mean}, std {pre.std}; "
               + (f"{n_labels} labels" if n_labels else "no labels (pass --labels)"))


@main.command()
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True)
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="One JSON list, an object per image "
              "(unreadable images carry their error).")
@click.option("--backend", type=click.Choice(["cython", "reference", "litert"]), default="cython",
              show_default=True)
@click.option("--rounding", type=click.Choice(ROUNDINGS), default="litert-ref", show_default=True)
@click.option("--threads", default=1, show_default=True, help="Threads for the kernels.")
@preprocess_options
def infer(model, images, top_k, as_json, backend, rounding, threads, max_memory, **flags):
    """Classify images (files or folders) with an int8 .tflite.

    The preprocessing flags are for files that store none (TensorFlow's converter's) and
    override what a file stores.

    \b
    Examples:
      edgecnn infer lenet.tflite digit.png more_digits/ --top-k 3
      edgecnn infer lenet.tflite digits/ --json
      edgecnn infer tf_model.tflite cat.jpg --mean 0.5 --std 0.5
    """
    from .annotate import require_int8, resolve_preprocess
    from .model import load
    from .preprocess import expand_image_paths, load_images
    require_int8(model, max_memory)
    m = load(model, backend=backend, rounding=rounding, threads=threads, max_memory=max_memory)
    pre = resolve_preprocess(m.graph, model, **preprocess_flags(flags))
    if pre is not None:
        m.graph = m.graph.replace(preprocess=pre)
    paths = expand_image_paths(images)
    results, failed = [], 0
    for path, item in load_images(paths, m.preprocess):
        if isinstance(item, Exception):
            failed += 1
            click.echo(f"error: {printable(item)}", err=True)
            results.append({"image": path, "error": str(item)})
            continue
        top = m.top_k(m.scores(m.run(m.input_from_float(item))), top_k)
        results.append({"image": path, "top": [p.to_dict() for p in top]})
        if not as_json:
            click.echo(f"{printable(path)}: "
                       + ", ".join(f"{printable(p.label)} {p.score:.3f}" for p in top))
    if as_json:
        emit_json(results)
    if failed:
        click.echo(f"error: {failed} of {len(paths)} images could not be read", err=True)
        sys.exit(2)


def format_verify(report) -> str:
    unit = "LSB"
    path = {"litert-ref": " BUILTIN_REF", "litert": " default (XNNPACK)"}.get(report.against, "")
    lines = [f"{report.model}: edgecnn ({report.backend}, rounding {report.rounding}) vs "
             f"{report.litert}{path}, {report.inputs} inputs ({report.input_source})",
             f"{'tensor':<28} {'op':<22} {'shape':<18} {'max diff':>9} {'exact':>8}"]
    for r in report.rows:
        diff = f"{r.max_diff:g} {'abs' if r.dtype == 'float32' else unit}"
        lines.append(f"{layer_label(r.name, 25):<28} {r.op[:22]:<22} {str(r.shape):<18} {diff:>9} "
                     f"{100 * r.exact_share:7.2f}%")
    if report.against != "litert-ref":
        lines.append(f"top-1 agreement: {report.top1_agree}/{report.inputs} "
                     f"({100 * report.top1_agree / report.inputs:.1f}%)")
    if report.tolerance is None:
        lines.append(f"REPORT: the outputs differ by up to {report.max_diff:g} LSB; XNNPACK "
                     "rescales in float32 with ties to even, which --rounding fp32 reproduces "
                     "(--tolerance N turns this report into a check)")
        return "\n".join(lines)
    verdict = "bit-exact" if report.tolerance == 0 else f"within {report.tolerance} LSB"
    lines.append(f"{'PASS' if report.ok else 'FAIL'}: contract is {verdict}; max difference "
                 f"{report.max_diff:g}")
    return "\n".join(lines)


@main.command()
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--images", multiple=True, type=click.Path(), help="Images or folders (repeatable); "
              "default: seeded random int8 inputs.")
@click.option("--against", type=click.Choice(["litert-ref", "litert", "tflm"]),
              default="litert-ref", show_default=True,
              help="LiteRT's reference kernels (every tensor), its default XNNPACK path, or "
                   "TensorFlow Lite Micro (output).")
@click.option("--rounding", type=click.Choice(ROUNDINGS), default="litert-ref", show_default=True)
@click.option("--backend", type=click.Choice(["cython", "reference"]), default="cython",
              show_default=True)
@click.option("--tolerance", type=int, help="Allowed LSB difference [default: 0 against "
              "litert-ref, tflm, or litert with fp32 rounding; against litert with another "
              "rounding the difference is reported, not checked].")
@click.option("--count", default=20, show_default=True, help="Random inputs when no --images.")
@click.option("--json", "as_json", is_flag=True)
@preprocess_options
def verify(model, images, against, rounding, backend, tolerance, count, as_json, max_memory,
           **flags):
    """Compare every tensor with LiteRT on the same inputs; exit 1 on a mismatch.

    The preprocessing flags feed --images to a file that stores no preprocessing.

    \b
    Examples:
      edgecnn verify lenet.tflite --images test_images/
      edgecnn verify lenet.tflite --against litert --rounding fp32 --json
      edgecnn verify lenet.tflite --against tflm
      edgecnn verify tf_model.tflite --images photos/ --mean 0.5 --std 0.5
    """
    from .annotate import require_int8, require_preprocess
    from .verify import verify as run_verify
    require_int8(model, max_memory)
    flags = preprocess_flags(flags)
    pre = None
    if any(v is not None for v in flags.values()):
        from .tflite.reader import load_tflite
        pre = require_preprocess(load_tflite(model, max_memory).graph, model, **flags)
    report = run_verify(model, images or None, against, rounding, backend, tolerance, count,
                        max_memory=max_memory, preprocess=pre)
    for path, err in report.skipped:
        click.echo(f"skipped {printable(err)}", err=True)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(format_verify(report))
    if not report.ok:
        raise MismatchError(f"{model}: edgecnn and LiteRT differ by up to {report.max_diff:g} "
                            f"(allowed {report.tolerance}); see the table above")


@main.command()
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--arch", help="For a .pt state_dict: the architecture.")
@click.option("--input-size", type=int)
@click.option("--json", "as_json", is_flag=True)
def summary(model, arch, input_size, as_json, max_memory):
    """Per layer: output shape, parameters, MACs, receptive field, memory.

    \b
    Examples:
      edgecnn summary lenet.tflite
      edgecnn summary lenet.pt --arch lenet5
    """
    from .convert import import_float_graph
    from .summary import format_summary, summarize
    from .tflite.reader import load_tflite
    if model.lower().endswith(".tflite"):
        if not os.path.exists(model):
            raise InputFileError(f"{model}: no such file; check the path")
        graph = load_tflite(model, max_memory).graph
    else:
        graph = import_float_graph(model, arch, input_size, max_memory)
    s = summarize(graph)
    if as_json:
        emit_json(s.to_dict())
    else:
        click.echo(format_summary(s))


@main.command()
@click.option("-o", "--out", type=click.Path(file_okay=False), default="edgecnn-demo",
              show_default=True, help="Folder for the converted model.")
@click.option("--force", is_flag=True, help="Overwrite a model left by an earlier demo.")
@click.option("--json", "as_json", is_flag=True,
              help="The figures as JSON (the steps go to stderr).")
def demo(out, force, as_json):
    """Bundled LeNet-5: convert, infer sample digits, verify against LiteRT, print figures."""
    import dataclasses

    from .demo import run_demo
    echo = (lambda text: click.echo(text, err=True)) if as_json else click.echo
    figures = run_demo(out, force, echo=echo, progress=_progress)
    if as_json:
        emit_json(dataclasses.asdict(figures))
    if not figures.verify_ok:
        raise MismatchError(f"the bundled model is not bit-exact against LiteRT "
                            f"(max difference {figures.verify_max_diff:g} LSB)")


@main.command("export-c")
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the generated C project.")
@click.option("--target", type=click.Choice(["host", "cortex-m0", "cortex-m3", "cortex-m4",
                                             "cortex-m7", "cortex-m33", "cortex-m55"]),
              default="host", show_default=True)
@click.option("--rounding", type=click.Choice(ROUNDINGS), default="litert-ref", show_default=True,
              help="litert-ref matches LiteRT's reference kernels; double is TFLite Micro's.")
@click.option("--force", is_flag=True, help="Write into a non-empty output folder.")
@click.option("--images", "images", multiple=True, type=click.Path(exists=True),
              help="Images (files or folders, repeatable) for in.bin, with the model's stored "
                   "preprocessing, and expected.txt for `make check`.")
@click.option("--flash", "flash_budget", callback=_budget, metavar="SIZE",
              help="Flash the model must fit in (e.g. 256K); refused with the figures if not.")
@click.option("--ram", "ram_budget", callback=_budget, metavar="SIZE",
              help="RAM the model must fit in (arena, stack, statics).")
@click.option("--json", "as_json", is_flag=True, help="Memory, files and the arena plan as JSON.")
def export_c(model, out_dir, target, rounding, force, images, flash_budget, ram_budget,
             max_memory, as_json):
    """Generate C99 firmware (kernels, weights, one static arena) for a .tflite.

    \b
    Examples:
      edgecnn export-c lenet.tflite -o fw/ --target host && make -C fw
      edgecnn export-c lenet.tflite -o fw/ --target cortex-m4 --images digits/
      make -C fw check
      edgecnn export-c lenet.tflite -o fw/ --target cortex-m4 --flash 128K --ram 16K
    """
    import shlex

    from .annotate import require_int8
    from .export_c import export_c as run_export, format_export
    require_int8(model, max_memory)
    report = run_export(model, out_dir, target=target, rounding=rounding, force=force,
                        command_line=shlex.join(["edgecnn"] + sys.argv[1:]), max_memory=max_memory,
                        images=images, flash_budget=flash_budget, ram_budget=ram_budget)
    if as_json:
        emit_json(export_dict(report))
    else:
        click.echo(format_export(report))



@main.command()
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--threads", "threads", multiple=True, type=int,
              help="Thread count to time (repeatable) [default: 1 and 2].")
@click.option("--runs", default=100, show_default=True, help="Timed invokes per engine.")
@click.option("--warmup", default=5, show_default=True)
@click.option("--ref-runs", default=3, show_default=True,
              help="Invokes of LiteRT's (slow) reference kernels; 0 leaves them out.")
@click.option("--per-layer", is_flag=True,
              help="Also time each of edgecnn's layers alone, next to its machine floor.")
@click.option("--json", "as_json", is_flag=True)
def bench(model, threads, runs, warmup, ref_runs, per_layer, as_json, max_memory):
    """Latency of edgecnn vs LiteRT (XNNPACK and reference kernels) on the same file, interleaved,
    and the machine floor (peak int8 MAC rate and streaming bandwidth, measured here).

    \b
    Examples:
      edgecnn bench alexnet.tflite --threads 1 --threads 2
      edgecnn bench alexnet.tflite --threads 1 --per-layer
      edgecnn bench lenet.tflite --runs 1000 --json
    """
    from .annotate import require_int8
    from .bench import bench as run_bench, format_bench
    if not os.path.exists(model):
        raise InputFileError(f"{model}: no such file; check the path")
    require_int8(model, max_memory)
    report = run_bench(model, threads=threads or (1, 2), runs=runs, warmup=warmup,
                       ref_runs=ref_runs, max_memory=max_memory, per_layer=per_layer)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(format_bench(report))


from .cli_evaluate import evaluate, set_preprocess  # noqa: E402  (they import from this module)

main.add_command(evaluate)
main.add_command(set_preprocess)
