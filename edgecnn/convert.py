"""``edgecnn convert``: a trained float model -> a standard int8 ``.tflite``.

source file --import--> float graph --fold BN--> --fuse ReLU, split padding--> cross-check
against the source's runtime (LiteRT for a float .tflite, onnxruntime for ONNX) --> calibrate
on images --> quantize (TFLite int8 spec) --> write .tflite with preprocessing and labels in
its metadata.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Optional, Sequence

import numpy as np

from . import calib_stats, ir, shapes
from .calibrate import calibrate_observer
from .crosscheck import CROSSCHECK_IMAGES, CrossCheck, crosscheck, reference_runtime
from .errors import (CalibrationError, DefaultsWarning, InputFileError, ModelFormatError,
                     UnsupportedOpError, UsageError)
from .fold import fold_batchnorm
from .passes import fuse_activations, split_explicit_padding
from .preprocess import expand_image_paths, load_images
from .quantize import quantize_graph
from .tflite.reader import load_tflite
from .tflite.validate import DEFAULT_MAX_MEMORY
from .tflite.writer import write_tflite
from .text import printable

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CALIB_BATCH = 16


@dataclass
class ConvertResult:
    """What ``convert`` made: both graphs, the files written and the calibration it ran."""

    float_graph: ir.Graph  # folded and fused: the float baseline the int8 graph approximates
    int8_graph: ir.Graph
    output_path: str
    calibration_images: int
    skipped_images: list = field(default_factory=list)  # (path, error message)
    calibration: dict = field(default_factory=dict)  # what calib_stats stores next to the model
    calibration_path: Optional[str] = None  # that sidecar file
    crosscheck: Optional[CrossCheck] = None  # None: no runtime for this source format


def import_float_graph(source: str, arch: Optional[str] = None,
                       input_size: Optional[int] = None,
                       max_memory: int = DEFAULT_MAX_MEMORY) -> ir.Graph:
    """Any supported source format -> a float IR graph (shapes inferred, BN not yet folded)."""
    if not os.path.exists(source):
        raise InputFileError(f"{source}: no such file; check the path")
    ext = os.path.splitext(source)[1].lower()
    if ext in (".pt", ".pth", ".ckpt", ".bin", ".tar"):
        from .converters.pytorch import load_pytorch
        return load_pytorch(source, arch, input_size, max_memory)
    if ext == ".tflite":
        graph = load_tflite(source, max_memory).graph
        if graph.is_quantized:
            raise UnsupportedOpError(f"{source} is already an int8 model; run it with "
                                     "'edgecnn infer' or check it with 'edgecnn verify'")
        return graph
    if ext == ".onnx":
        if arch is not None:
            raise UsageError(f"{source}: an ONNX file carries its own layers; drop --arch")
        from .converters.onnx_model import load_onnx
        return load_onnx(source, input_size, max_memory=max_memory)
    raise UnsupportedOpError(f"{source}: unknown model format {ext!r}; edgecnn converts "
                             "PyTorch .pt/.pth, ONNX .onnx and float .tflite files")


def _imagenet_style(graph: ir.Graph, arch: Optional[str]) -> bool:
    """AlexNet by name (--arch or the pickled class), or the 224x224 RGB convention."""
    _, h, w, c = graph.input.shape
    return c == 3 and (arch == "alexnet" or graph.name == "alexnet" or (h, w) == (224, 224))


def default_preprocess(graph: ir.Graph, arch: Optional[str] = None, **overrides) -> ir.Preprocess:
    """Preprocessing from the model's input shape, the architecture's conventions and the
    user's options (those that are not None win). ImageNet-style models get torchvision's
    recipe: resize the shorter side to 256/224 of the crop, center-crop, ImageNet mean/std."""
    _, h, w, c = graph.input.shape
    fields = dict(height=h, width=w, color="L" if c == 1 else "RGB", resize=0,
                  mean=(0.0,), std=(1.0,), invert=False)
    if _imagenet_style(graph, arch):
        fields.update(resize=int(round(max(h, w) * 256 / 224)), mean=IMAGENET_MEAN,
                      std=IMAGENET_STD)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return ir.Preprocess(**fields)


def warn_defaults(graph: ir.Graph, arch: Optional[str], pre: ir.Preprocess, overrides) -> None:
    """Say which preprocessing edgecnn picked itself (ImageNet's recipe) and the flags that
    change it: a 32x32 CIFAR module with AdaptiveAvgPool2d would otherwise silently get
    224x224 crops normalized with ImageNet statistics. Without the ImageNet convention the
    default is pixels in [0, 1], unnormalized: said too, since a model trained on normalized
    inputs would calibrate and run on the wrong range without any error."""
    if not _imagenet_style(graph, arch):
        if overrides.get("mean") is None and overrides.get("std") is None:
            warnings.warn("no --mean/--std given: the model gets pixels scaled to [0, 1], "
                          "unnormalized; pass --mean/--std with your training's normalization "
                          "(e.g. --mean 0.5 --std 0.5)", DefaultsWarning, stacklevel=3)
        return
    why = "--arch alexnet" if "alexnet" in (arch, graph.name) else "a 224x224 RGB input"
    if overrides.get("mean") is None and overrides.get("std") is None:
        warnings.warn(f"no --mean/--std given: using ImageNet's mean {pre.mean} and std "
                      f"{pre.std} ({why}); pass --mean/--std with your training's normalization",
                      DefaultsWarning, stacklevel=3)
    if overrides.get("resize") is None and pre.resize:
        warnings.warn(f"no --resize given: resizing the shorter side to {pre.resize} and "
                      f"center-cropping {pre.height}x{pre.width} (torchvision's ImageNet recipe); "
                      f"pass --resize 0 to resize straight to {pre.height}x{pre.width}",
                      DefaultsWarning, stacklevel=3)


def check_loadable(int8: ir.Graph, source: str) -> None:
    """Refuse to write an int8 model that LiteRT's Prepare (and so edgecnn's loader) would
    refuse: the same rules every loader applies, run before the file exists. Calibration is
    what breaks them: a layer whose calibrated outputs are all but zero gets a scale so small
    that its fused ReLU6 bound or its rescale multiplier leaves int32."""
    from .prepare import prepare_calls
    try:
        prepare_calls(int8)
    except ModelFormatError as e:
        raise CalibrationError(
            f"{source}: the int8 model would not load in LiteRT: {e}. That layer's calibrated "
            "outputs are (nearly) all zero: calibrate on images like the ones the model will "
            "see, with the right --mean/--std, or check that the weights are trained") from None


def check_labels(labels: Sequence[str], graph: ir.Graph) -> None:
    """A label list must name every class, no more and no fewer."""
    classes = graph.output.shape[-1]
    if labels and len(labels) != classes:
        raise UsageError(f"--labels gives {len(labels)} labels but the model has {classes} "
                         f"classes; give one label per line, {classes} lines")


def default_labels(graph: ir.Graph, arch: Optional[str] = None) -> tuple[str, ...]:
    """ImageNet's class names for an ImageNet-style model with 1000 outputs, else none."""
    if not _imagenet_style(graph, arch) or graph.output.shape[-1] != 1000:
        return ()
    path = resources.files("edgecnn") / "data" / "imagenet" / "labels.txt"
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip())


def prepare_float_graph(graph: ir.Graph) -> ir.Graph:
    """Fold BN, fuse ReLU/ReLU6 and make every padding TFLite-expressible."""
    check_finite_parameters(graph)
    return split_explicit_padding(fuse_activations(fold_batchnorm(shapes.infer_shapes(graph))))


def check_finite_parameters(graph: ir.Graph) -> None:
    """Refuse NaN or infinite weights before any arithmetic on them (calibration would run the
    whole float graph on NaNs, and NumPy would warn before the error)."""
    for node in graph.nodes:
        for attr in ("weight", "bias", "gamma", "beta", "mean", "var"):
            values = getattr(node, attr, None)
            if values is None or np.asarray(values).dtype.kind != "f":
                continue
            bad = np.flatnonzero(~np.isfinite(np.asarray(values).ravel()))
            if bad.size:
                raise ModelFormatError(
                    f"{printable(node.name)}: {attr} holds {bad.size} NaN or infinite values "
                    f"(first at flat index {int(bad[0])}); the model file is corrupt")


def calibration_batches(paths: Sequence[str], pre: ir.Preprocess, skipped: list,
                        batch: int = CALIB_BATCH):
    """Preprocessed calibration images in batches; bad files are recorded and skipped."""
    pending = []
    for path, item in load_images(paths, pre):
        if isinstance(item, Exception):
            skipped.append((path, str(item)))
            continue
        pending.append(item)
        if len(pending) == batch:
            yield np.concatenate(pending)
            pending = []
    if pending:
        yield np.concatenate(pending)


def crosscheck_source(source: str, float_graph: ir.Graph, paths: Sequence[str],
                      pre: ir.Preprocess) -> Optional[CrossCheck]:
    """The float graph against the source's own runtime on the first calibration images."""
    if reference_runtime(source) is None:
        return None
    batches = list(calibration_batches(paths[:CROSSCHECK_IMAGES], pre, []))
    images = np.concatenate(batches) if batches else np.zeros((0,), np.float32)
    return crosscheck(source, float_graph, images)


def unreadable_calibration(skipped: list, shown: int = 3) -> str:
    """The one-line error when every calibration file failed: which, and why (the first few)."""
    def one(path, err):
        reason = err[len(path) + 2:] if err.startswith(f"{path}: ") else err
        return f"{printable(os.path.basename(path), 60)} ({printable(reason, 100)})"
    listed = ", ".join(one(p, e) for p, e in skipped[:shown])
    more = f", and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"no calibration inputs: all {len(skipped)} files were unreadable: {listed}{more}; "
            "pass --calib with images Pillow can decode")


def check_output(output: str, force: bool) -> None:
    """Refuse to overwrite an existing file unless forced (checked before any work starts);
    the calibration record written beside the model (calib_stats) counts as output too."""
    if os.path.exists(output) and not force:
        raise InputFileError(f"{output} exists; pass --force to overwrite it")
    if os.path.isdir(output):
        raise InputFileError(f"{output} is a folder; give the output .tflite file name")
    sidecar = calib_stats.sidecar_path(output)
    if os.path.exists(sidecar) and not force:
        raise InputFileError(f"{sidecar} exists (the calibration record of an earlier convert); "
                             "pass --force to overwrite it")


def convert(source: str, output: str, *, arch: Optional[str] = None,
            calib: Optional[Sequence[str]] = None, method: str = "minmax",
            input_size: Optional[int] = None, labels: Sequence[str] = (), force: bool = False,
            progress: Optional[Callable[[int], None]] = None,
            max_memory: int = DEFAULT_MAX_MEMORY, ignore_mismatch: bool = False,
            **preprocess_overrides) -> ConvertResult:
    """Convert a float model to a standard int8 ``.tflite`` (what ``edgecnn convert`` runs).

    ``source``: a PyTorch ``.pt``/``.pth`` (a state_dict needs ``arch``: ``"lenet5"``,
    ``"alexnet"``, ... or a spec ``.json``), an ``.onnx`` or a float ``.tflite``.
    ``calib``: image files or folders to calibrate on (100-200 like the ones the model will
    see). ``method``: ``"minmax"``, ``"percentile"`` or ``"mse"``. ``labels``: one per class.
    ``preprocess_overrides``: ``color``, ``resize``, ``mean``, ``std``, ``invert`` (stored in
    the model, so ``infer`` needs only the image). Writes ``output`` and, beside it, the
    calibration record ``<output stem>.calib.json``; refuses to overwrite either unless
    ``force``. A float ``.tflite`` or ONNX source is first run in LiteRT or onnxruntime on the
    first calibration images and compared with edgecnn's float graph: a difference beyond
    float tolerance raises ``MismatchError`` (exit 1) unless ``ignore_mismatch``. Settings edgecnn picks itself come as ``DefaultsWarning``, doubtful calibration
    data as ``CalibrationWarning``. Returns a ``ConvertResult`` (float and int8 graphs, paths,
    images used and skipped, the cross-check).

    >>> import edgecnn
    >>> edgecnn.convert("lenet.pt", "lenet.tflite", arch="lenet5", calib=["digits/"],
    ...                 mean=(0.5,), std=(0.5,))  # doctest: +SKIP
    """
    check_output(output, force)
    float_graph = prepare_float_graph(import_float_graph(source, arch, input_size, max_memory))
    pre = default_preprocess(float_graph, arch, **preprocess_overrides)
    if pre.channels != float_graph.input.shape[3]:
        raise UnsupportedOpError(f"--color {pre.color} gives {pre.channels} channels but the model "
                                 f"takes {float_graph.input.shape[3]}")
    check_labels(labels, float_graph)
    if not calib:
        raise CalibrationError("convert needs representative images: pass --calib DIR "
                               "(100 or so images like the ones the model will see)")
    warn_defaults(float_graph, arch, pre, preprocess_overrides)
    paths = expand_image_paths(calib)
    check = crosscheck_source(source, float_graph, paths, pre)
    if check is not None and not ignore_mismatch:
        check.raise_if_mismatch(source)
    skipped: list = []
    try:
        observer = calibrate_observer(float_graph, calibration_batches(paths, pre, skipped),
                                      method, progress=progress)
    except CalibrationError:
        if skipped:
            raise CalibrationError(unreadable_calibration(skipped)) from None
        raise
    used = len(paths) - len(skipped)
    calib_stats.warn(calib_stats.calibration_warnings(paths, used, pre))
    labels = tuple(labels) or default_labels(float_graph, arch)
    ranges = observer.ranges()
    int8 = quantize_graph(float_graph, ranges).replace(preprocess=pre, labels=labels)
    check_loadable(int8, source)
    write_tflite(int8, output, force=force)
    record = calib_stats.to_dict(observer, ranges, output, used)
    record_path = calib_stats.write(record, output, force=True)  # checked with the model above
    return ConvertResult(float_graph.replace(preprocess=pre, labels=labels), int8, output,
                         used, skipped, record, record_path, check)
