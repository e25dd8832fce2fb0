"""Anything that is an image -> the model's float input, through the one preprocessing pipeline.

``predict`` and ``evaluate`` accept, besides image files:
- a Pillow image (its first frame);
- a numpy image, HxW (grey) or HxWxC with C = 1, 3 or 4 (grey, RGB, RGBA), either uint8
  pixels in [0, 255] or float pixels in [0, 1]. Float pixels become 8-bit as an image file
  would hold them, ``round_half_away(x * 255)``, so a float image and the same image saved as
  a PNG give the model the same input. Floats outside [0, 1] are refused: they look like an
  already normalized tensor, which belongs in ``model.run()``.
Arrays then go through Pillow exactly like a decoded file (colour conversion, resize and crop,
normalization: preprocess.py's steps 3 to 6), so nothing depends on where the pixels came from.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from . import ir
from .errors import ImageError, UsageError
from .preprocess import image_to_input, load_image
from .reference.fixedpoint import round_half_away

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def is_path(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


def array_to_pixels(a: np.ndarray, where: str) -> np.ndarray:
    """A numpy image as uint8 (H, W) or (H, W, C) (module docstring)."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in _MODES):
        raise UsageError(f"{where}: a numpy image is HxW or HxWxC with C = 1, 3 or 4, got shape "
                         f"{a.shape}; a batch is NxHxWxC or a list")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind == "f":
        if a.size and not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
            raise UsageError(f"{where}: float pixels must lie in [0, 1] (got {a.min():g} to "
                             f"{a.max():g}); pass uint8 pixels, or feed an already normalized "
                             "tensor to model.run()")
        return round_half_away(a.astype(np.float64) * 255.0).astype(np.uint8)
    raise UsageError(f"{where}: numpy images are uint8 or float, got {a.dtype}")


def array_to_image(a: np.ndarray, where: str) -> Image.Image:
    pixels = array_to_pixels(a, where)
    return Image.fromarray(pixels, "L" if pixels.ndim == 2 else _MODES[pixels.shape[2]])


def to_input(obj, pre: ir.Preprocess, where: str = "image") -> np.ndarray:
    """A path, Pillow image or numpy image -> float32 ``(1, H, W, C)`` model input."""
    if is_path(obj):
        return load_image(os.fspath(obj), pre)
    if isinstance(obj, Image.Image):
        try:
            obj.seek(0)
        except EOFError:
            raise ImageError(f"{where}: the Pillow image has no frames") from None
        return image_to_input(obj, pre, where)
    if isinstance(obj, np.ndarray):
        return image_to_input(array_to_image(obj, where), pre, where)
    raise UsageError(f"{where}: expected an image path (str or pathlib.Path), a PIL image or a "
                     f"numpy image, got {type(obj).__name__}")


def describe(obj, index: int) -> str:
    """How an item of a batch is named in results and errors."""
    return os.fspath(obj) if is_path(obj) else f"image[{index}]"


def split_batch(images) -> tuple[list, bool]:
    """``(items, is_batch)``: a list/tuple or an NxHxWxC array is a batch of images."""
    if isinstance(images, (list, tuple)):
        return list(images), True
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images), True
    return [images], False


