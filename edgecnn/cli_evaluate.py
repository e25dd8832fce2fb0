"""``edgecnn evaluate`` and ``edgecnn set-preprocess`` (registered on the group in cli.py)."""

from __future__ import annotations

import click

from .cli import ROUNDINGS, _read_labels, max_memory_option
from .cli_common import Progress, emit_json, preprocess_flags, preprocess_options


@click.command()
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path())
@click.option("--float", "float_source", type=click.Path(dir_okay=False),
              help="The float model convert started from (.pt, .onnx, float .tflite): float "
                   "top-1, agreement, per-layer comparison.")
@click.option("--arch", help="For a --float state_dict: the architecture given to convert.")
@click.option("--float-engine", type=click.Choice(["edgecnn", "litert"]), default="edgecnn",
              show_default=True, help="Run --float as edgecnn's float graph (the graph convert "
              "quantized) or, for a float .tflite, in LiteRT's reference kernels.")
@click.option("--per-layer", is_flag=True, help="SQNR, cosine, max error per tensor (needs "
              "--float).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write a "
              "self-contained report page (charts need edgecnn[report]).")
@click.option("--json", "as_json", is_flag=True, help="All numbers as one JSON object.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes (Ray actors with --engine "
              "ray) [default: every core].")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local processes, or Ray Data (pip install 'edgecnn[ray]').")
@click.option("--ray-address", help="Join this Ray cluster (HOST:6379 or 'auto') instead of "
              "starting a local Ray [default: $RAY_ADDRESS].")
@click.option("--backend", type=click.Choice(["cython", "reference"]), default="cython",
              show_default=True)
@click.option("--rounding", type=click.Choice(ROUNDINGS), default="litert-ref", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite the --html file.")
@preprocess_options
def evaluate(model, data, float_source, arch, float_engine, per_layer, html_path, as_json,
             workers, engine, ray_address, backend, rounding, force, max_memory, **flags):
    """Accuracy of an int8 .tflite on labelled data, against its float source.

    DATA is a folder with one sub-folder per class, a CSV of path,label, or an .npz with x
    (uint8 images, or float32 preprocessed NHWC inputs) and y (class indices). A folder of
    images without class sub-folders is unlabelled: agreement and per-layer figures only.

    \b
    Examples:
      edgecnn evaluate lenet.tflite digits/ --float lenet.pt --arch lenet5
      edgecnn evaluate lenet.tflite digits/ --float lenet.pt --arch lenet5 --per-layer --html r.html
      edgecnn evaluate model.tflite val.csv --json --workers 8
      edgecnn evaluate model.tflite val/ --engine ray --ray-address auto
    """
    from .eval_report import evaluate as run_evaluate, format_report
    from .fileio import check_writable
    from .html_report import _matplotlib
    pre_flags = preprocess_flags(flags)
    if html_path:
        check_writable(html_path, force)
        _matplotlib()  # a missing extra fails before the work, not after
    per_layer = per_layer or bool(html_path and float_source)
    with Progress("evaluating", 0) as bar:
        report = run_evaluate(model, data, float_source, arch=arch, float_engine=float_engine,
                              per_layer=per_layer, workers=workers, engine=engine,
                              ray_address=ray_address, backend=backend, rounding=rounding,
                              progress=bar.update, max_memory=max_memory, **pre_flags)
    text = format_report(report)
    if html_path:
        from .html_report import write_html
        write_html(report, text, html_path, force=force)
    if as_json:
        out = report.to_dict()
        if html_path:
            out["html"] = html_path
        emit_json(out)
    else:
        click.echo(text)
        if html_path:
            click.echo(f"wrote {html_path}")


@click.command("set-preprocess")
@max_memory_option
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The new .tflite (the input is never changed in place without --force).")
@click.option("--labels", type=click.Path(dir_okay=False), help="Text file, one label per line.")
@click.option("--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("--json", "as_json", is_flag=True)
@preprocess_options
def set_preprocess(model, output, labels, force, as_json, max_memory, **flags):
    """Store preprocessing (and labels) in a .tflite that has none, e.g. TensorFlow's
    converter's, so infer and verify --images need only the file.

    \b
    Examples:
      edgecnn set-preprocess tf_model.tflite -o model.tflite --mean 0.5 --std 0.5 --labels labels.txt
      edgecnn set-preprocess mobilenet.tflite -o m.tflite --resize 256 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
    """
    import dataclasses

    from .annotate import require_preprocess, set_preprocess as run_set
    from .tflite.reader import load_tflite
    graph = load_tflite(model, max_memory).graph
    pre = require_preprocess(graph, model, **preprocess_flags(flags))
    written = run_set(model, output, pre, _read_labels(labels), force=force,
                      max_memory=max_memory)
    if as_json:
        emit_json({"output": output, "preprocess": dataclasses.asdict(written.preprocess),
                   "labels": len(written.labels)})
    else:
        click.echo(f"wrote {output}: input {pre.height}x{pre.width} {pre.color}"
                   + (f", resize {pre.resize} + center crop" if pre.resize else "")
                   + f", mean {pre.mean}, std {pre.std}, invert {pre.invert}; "
                   + (f"{len(written.labels)} labels" if written.labels else "no labels"))
