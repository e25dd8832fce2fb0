"""Labelled data for ``evaluate``: an ImageFolder tree, a CSV of ``path,label`` or an ``.npz``.

- **Folder**: one sub-folder per class holding its images (torchvision's ImageFolder layout;
  images directly in the folder are ignored, sub-sub-folders are not searched). A folder with
  images and no class sub-folders is **unlabelled**: no accuracy, but the float/int8
  agreement and the per-layer comparison.
- **CSV**: rows ``path,label``; relative paths are relative to the CSV's folder; a first row
  ``path,label`` (or ``image,label``, ``file,label``) is a header.
- **.npz**: ``x`` and ``y``. ``x`` uint8 is images (N, H, W) or (N, H, W, C), preprocessed
  like image files (resize, crop, normalization); ``x`` float32 is already preprocessed model
  input (N, H, W, C), fed as is. ``y`` holds class indices.

Class names (folder names, CSV labels) become output indices by the first rule that fits:
1. every name is one of the model's stored labels -> that label's index;
2. every name is a whole number below the class count -> that number;
3. the model stores no labels -> sorted name order, as torchvision's ImageFolder numbers them;
otherwise it is an error naming the classes that do not fit (a wrong mapping would report
a meaningless accuracy).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from . import ir
from .errors import InputFileError, UsageError
from .image_input import array_to_image
from .preprocess import IMAGE_EXTENSIONS, image_to_input, load_image

_HEADERS = ("path", "image", "file", "filename")
MAX_CSV_BYTES = 1 << 30


@dataclass
class Dataset:
    """Labelled items (image paths, or rows of an npz) and how their labels were mapped."""

    source: str
    kind: str  # "folder" | "csv" | "npz"
    labels: np.ndarray  # int64 output index per item
    mapping: str  # how class names became output indices, for the report
    paths: Optional[list] = None  # folder and csv
    _npz: Optional[np.ndarray] = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def labelled(self) -> bool:
        return bool(self.labels.size) and bool((self.labels >= 0).all())

    def name(self, i: int) -> str:
        return self.paths[i] if self.paths is not None else f"{self.source}[{i}]"

    def raw(self, i: int):
        """Item ``i`` as stored: an image path, or a row of the npz's ``x``."""
        if self.paths is not None:
            return self.paths[i]
        if self._npz is None:  # loaded lazily: a worker process unpickles only the path
            self._npz = _read_npz(self.source)[0]
        return self._npz[i]

    def load(self, i: int, pre: ir.Preprocess) -> np.ndarray:
        """Item ``i`` as float32 (1, H, W, C) model input."""
        return item_to_input(self.raw(i), self.name(i), pre)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_npz"] = None
        return state


def item_to_input(raw, name: str, pre: ir.Preprocess) -> np.ndarray:
    """A raw item (``Dataset.raw``) -> float32 (1, H, W, C) model input."""
    if isinstance(raw, str):
        return load_image(raw, pre)
    if raw.dtype == np.uint8:
        return image_to_input(array_to_image(raw, name), pre, name)
    want = (pre.height, pre.width, pre.channels)
    if raw.shape != want:
        raise UsageError(f"{name}: float x holds preprocessed inputs of shape {raw.shape} per "
                         f"item but the model takes {want} (NHWC); store NHWC, or uint8 pixels "
                         "to have them preprocessed")
    return np.ascontiguousarray(raw[None], np.float32)


def open_dataset(path: str, num_classes: int, model_labels: Sequence[str] = ()) -> Dataset:
    """Read the item list and labels of DATA (module docstring); images are read later."""
    if os.path.isdir(path):
        names, paths = _image_folder(path)
        if names is None:
            return Dataset(path, "images", np.full(len(paths), -1, np.int64),
                           "unlabelled (no class sub-folders)", paths)
        labels, mapping = _map_names(names, num_classes, model_labels, path)
        return Dataset(path, "folder", labels, mapping, paths)
    if not os.path.isfile(path):
        raise InputFileError(f"{path}: no such file or folder; give a folder of class "
                             "sub-folders, a CSV of path,label or an .npz with x and y")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        names, paths = _csv(path)
        labels, mapping = _map_names(names, num_classes, model_labels, path)
        return Dataset(path, "csv", labels, mapping, paths)
    if ext == ".npz":
        x, y = _read_npz(path)
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise UsageError(f"{path}: y holds class {int(y.min() if y.min() < 0 else y.max())} "
                             f"but the model has {num_classes} classes (0..{num_classes - 1})")
        return Dataset(path, "npz", y, "class indices from y", None, x)
    raise UsageError(f"{path}: unknown data format {ext!r}; give a folder of class sub-folders, "
                     "a .csv of path,label or an .npz with x and y")


def _image_folder(root: str):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    names, paths = [], []
    for c in classes:
        folder = os.path.join(root, c)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)
                       and os.path.isfile(os.path.join(folder, f)))
        names += [c] * len(files)
        paths += [os.path.join(folder, f) for f in files]
    if not paths:
        flat = sorted(f for f in os.listdir(root) if f.lower().endswith(IMAGE_EXTENSIONS)
                      and os.path.isfile(os.path.join(root, f)))
        if flat:
            return None, [os.path.join(root, f) for f in flat]
        raise InputFileError(f"{root}: no images, neither in class sub-folders (the "
                             f"ImageFolder layout: {root}/<class>/<image>) nor in the folder")
    return names, paths


def _csv(path: str):
    if os.path.getsize(path) > MAX_CSV_BYTES:
        raise InputFileError(f"{path}: over {MAX_CSV_BYTES >> 20} MB; split it")
    base = os.path.dirname(os.path.abspath(path))
    names, paths = [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 2:
                    raise UsageError(f"{path}:{n}: expected 'path,label', got {len(row)} "
                                     "fields")
                image, label = row[0].strip(), row[1].strip()
                if n == 1 and image.lower() in _HEADERS:
                    continue
                paths.append(image if os.path.isabs(image) else os.path.join(base, image))
                names.append(label)
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror}") from None
    if not paths:
        raise UsageError(f"{path}: no rows; write one 'path,label' line per image")
    return names, paths


def _read_npz(path: str):
    try:
        with np.load(path, allow_pickle=False) as d:
            if "x" not in d.files or "y" not in d.files:
                raise UsageError(f"{path}: needs arrays 'x' and 'y', found {sorted(d.files)}")
            x, y = d["x"], d["y"]
    except (OSError, ValueError) as e:
        raise InputFileError(f"{path}: not a readable .npz ({str(e).splitlines()[0]})") from None
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
        raise UsageError(f"{path}: y must be integer class indices, one per item of x (x has "
                         f"{len(x)} items, y shape {y.shape} dtype {y.dtype})")
    if x.dtype != np.uint8 and x.dtype != np.float32:
        raise UsageError(f"{path}: x is {x.dtype}; give uint8 pixels or float32 preprocessed "
                         "inputs")
    if x.ndim not in (3, 4):
        raise UsageError(f"{path}: x has shape {x.shape}; give (N, H, W) or (N, H, W, C)")
    return x, y.astype(np.int64)


def _map_names(names: list, num_classes: int, model_labels: Sequence[str], where: str):
    """Class names -> output indices by the rules of the module docstring."""
    distinct = sorted(set(names))
    by_label = {label: i for i, label in enumerate(model_labels)}
    if model_labels and all(n in by_label for n in distinct):
        table, how = by_label, "class names matched to the model's labels"
    elif all(n.isdigit() and int(n) < num_classes for n in distinct):
        table, how = {n: int(n) for n in distinct}, "class names are output indices"
    elif not model_labels:
        if len(distinct) > num_classes:
            raise UsageError(f"{where}: {len(distinct)} classes but the model has {num_classes}")
        table = {n: i for i, n in enumerate(distinct)}
        how = ("sorted class names numbered 0.. (torchvision ImageFolder order; the model "
               "stores no labels)")
    else:
        unknown = [n for n in distinct if n not in by_label]
        raise UsageError(f"{where}: classes {unknown[:5]}{' ...' if len(unknown) > 5 else ''} are "
                         f"neither among the model's {len(model_labels)} labels nor output "
                         "indices; name the classes (folders, CSV labels) as the model's labels "
                         "or by output index")
    return np.array([table[n] for n in names], np.int64), how
