"""Image files to model input: the one preprocessing pipeline ``infer`` and ``calibrate`` share.

The bundled models were trained on exactly these steps; change none of them lightly.

1. Open with Pillow. Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) stays
   as Pillow sets it, and an image over it is an error before any pixel is decoded (Pillow
   itself only warns between 1x and 2x the limit: a 222-byte TIFF declaring 134 M pixels
   would allocate 0.5 GB and decode for half a minute); truncated files are errors
   (``LOAD_TRUNCATED_IMAGES`` is not touched).
2. Take the first frame of animated images (GIF, APNG, WebP, multi-page TIFF).
3. Apply the EXIF orientation (``ImageOps.exif_transpose``), so a phone photo is upright.
4. Reduce to 8-bit ``pre.color`` ("L" or "RGB"):
   - 16-bit and 32-bit integer gray ("I;16*", "I") is clipped to [0, 65535] and scaled by
     ``>> 8`` (keep the high byte), which is what Pillow itself does to 16-bit RGB PNGs, so
     16-bit gray and 16-bit color agree. Float images ("F") are refused: their range is unknown.
   - Anything with transparency (RGBA, LA, PA, a palette or gray image with a tRNS entry) is
     composited on **black**: ``c' = round(c * a / 255)``, so transparent pixels become 0.
   - Palette images are expanded through their palette; CMYK, YCbCr, LAB, HSV and bilevel
     images use Pillow's own conversion to RGB (no ICC color management).
   - RGB to L uses Pillow's ITU-R 601-2 luma ``L = R*299/1000 + G*587/1000 + B*114/1000``;
     L to RGB copies the gray value into the three channels.
5. Resize with ``Image.BILINEAR``. If ``pre.resize > 0``: scale so the shorter side is
   ``pre.resize`` (the longer side becomes ``resize * long // short``, torchvision's
   truncation), then center crop to ``(pre.height, pre.width)`` at offset
   ``((H - height) // 2, (W - width) // 2)``. Otherwise resize straight to
   ``(pre.width, pre.height)`` (no-op when the image already has that size).
6. To float32: ``x / 255``; if ``pre.invert``: ``1 - x``; then ``(x - mean[c]) / std[c]``
   per channel (mean and std of length 1 apply to every channel).

The result is float32 NHWC ``(1, height, width, channels)``, the float graph's input.
"""

from __future__ import annotations

import os
import struct
import warnings
from typing import Iterator, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import ir
from .errors import EdgecnnError, ImageError, InputFileError, ModelFormatError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                    ".ppm")

MAX_SIDE = 1 << 15  # model input sides and resize targets (settings come from model files)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# What Pillow's decoders raise on corrupt, truncated or hostile input (TypeError,
# KeyError and ZeroDivisionError come from plugins reading nonsense header fields: found by
# fuzz/run_all.py --targets image).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error,
                  TypeError, KeyError, ZeroDivisionError, Image.DecompressionBombError)


def expand_image_paths(paths: Sequence[str]) -> list[str]:
    """Files as given (any extension); folders expanded to their image files, sorted, non-recursive."""
    result = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(name for name in os.listdir(path)
                           if name.lower().endswith(IMAGE_EXTENSIONS)
                           and os.path.isfile(os.path.join(path, name)))
            if not names:
                raise ImageError(
                    f"{path}: folder holds no image files (looked for "
                    f"{', '.join(IMAGE_EXTENSIONS)}); point to a folder of images")
            result.extend(os.path.join(path, name) for name in names)
        elif os.path.exists(path):
            result.append(path)
        else:
            raise InputFileError(f"{path}: no such file or folder; check the path")
    return result


def load_image(path: str, pre: ir.Preprocess) -> np.ndarray:
    """Read one image file as float32 ``(1, pre.height, pre.width, pre.channels)``."""
    _check_preprocess(pre)
    if not os.path.isfile(path):
        raise InputFileError(f"{path}: no such file; check the path")
    try:
        with warnings.catch_warnings():
            # The bomb warning becomes our error (_check_pixels); Pillow's UserWarnings about
            # corrupt metadata it skips (EXIF, TIFF tags) would break the one-line contract:
            # the image either decodes or fails with an ImageError naming the file.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)
            img = Image.open(path)
            with img:
                img.seek(0)  # first frame of animated images
                _check_pixels(img, path)
                img.load()
                return image_to_input(img, pre, path)
    except PermissionError as exc:
        raise InputFileError(f"{path}: cannot read the file ({exc.strerror}); check its "
                             f"permissions") from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(f"{path}: cannot decode the image ({_reason(exc)}); re-save it as "
                         f"PNG or JPEG") from exc


def image_to_input(img: Image.Image, pre: ir.Preprocess, where: str) -> np.ndarray:
    """A decoded Pillow image (its first frame) -> float32 ``(1, height, width, channels)``:
    steps 3 to 6 of the module docstring. ``where`` names the image in errors."""
    _check_preprocess(pre)
    img = ImageOps.exif_transpose(img)
    if img.width == 0 or img.height == 0:
        raise ImageError(f"{where}: image has zero size ({img.width}x{img.height})")
    img = _to_color(img, pre.color, where)
    img = _resize_and_crop(img, pre, where)
    return normalize_pixels(np.asarray(img), pre)


def load_images(paths: Sequence[str], pre: ir.Preprocess
                ) -> Iterator[tuple[str, Union[np.ndarray, EdgecnnError]]]:
    """Yield ``(path, array)`` per image, or ``(path, error)`` for a file that fails.

    Paths are expanded first (folders to their images), so a missing path or an empty folder
    raises before anything is yielded. A bad file yields its ImageError (or InputFileError
    for an unreadable one) instead of raising, so callers report it and go on.
    """
    _check_preprocess(pre)
    for path in expand_image_paths(paths):
        try:
            yield path, load_image(path, pre)
        except (ImageError, InputFileError) as exc:
            yield path, exc


def _check_pixels(img: Image.Image, path: str) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit and img.width * img.height > limit:
        raise ImageError(f"{path}: image is {img.width}x{img.height} = {img.width * img.height} "
                         f"pixels, over Pillow's decompression-bomb limit of {limit} "
                         "(PIL.Image.MAX_IMAGE_PIXELS); shrink it first")


def _check_preprocess(pre: ir.Preprocess) -> None:
    where = "model preprocess settings"
    if pre.color not in ("L", "RGB"):
        raise ModelFormatError(f"{where}: color {pre.color!r} is not 'L' or 'RGB'")
    if pre.height < 1 or pre.width < 1 or pre.resize < 0:
        raise ModelFormatError(
            f"{where}: input size {pre.height}x{pre.width} with resize {pre.resize} is invalid; "
            f"height and width must be positive and resize 0 or more")
    if max(pre.height, pre.width, pre.resize) > MAX_SIDE or \
            pre.height * pre.width > (Image.MAX_IMAGE_PIXELS or MAX_SIDE ** 2):
        raise ModelFormatError(
            f"{where}: input size {pre.height}x{pre.width} with resize {pre.resize} is over "
            f"{MAX_SIDE} pixels a side or over Pillow's decompression-bomb limit in all")
    if 0 < pre.resize < max(pre.height, pre.width):
        raise ModelFormatError(
            f"{where}: resize {pre.resize} is smaller than the {pre.height}x{pre.width} crop; "
            f"use resize >= {max(pre.height, pre.width)} or 0")
    for label, values in (("mean", pre.mean), ("std", pre.std)):
        if len(values) not in (1, pre.channels):
            raise ModelFormatError(
                f"{where}: {label} has {len(values)} values but color {pre.color} has "
                f"{pre.channels} channel(s); give 1 or {pre.channels}")
    if any(s == 0 for s in pre.std):
        raise ModelFormatError(f"{where}: std {pre.std} contains 0; every std must be nonzero")


def _to_color(img: Image.Image, color: str, path: str) -> Image.Image:
    """Reduce any Pillow mode to 8-bit ``color`` (module docstring, step 4)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img).astype(np.int64)
        img = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), "L")
    elif img.mode == "F":
        raise ImageError(f"{path}: 32-bit float images are not supported; save it as an 8-bit "
                         f"or 16-bit image")
    if "A" in img.getbands() or "a" in img.getbands() or img.has_transparency_data:
        img = _composite_on_black(img.convert("RGBA"))
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    return img if img.mode == color else img.convert(color)


def _composite_on_black(rgba: Image.Image) -> Image.Image:
    """RGBA to RGB over black: ``round(c * a / 255)``, exact (a half never occurs: 255 is odd)."""
    px = np.asarray(rgba).astype(np.uint32)
    rgb = (px[..., :3] * px[..., 3:4] + 127) // 255
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _resize_and_crop(img: Image.Image, pre: ir.Preprocess, path: str) -> Image.Image:
    if pre.resize == 0:
        return img.resize((pre.width, pre.height), Image.BILINEAR)
    w, h = img.size
    if w <= h:
        size = (pre.resize, pre.resize * h // w)
    else:
        size = (pre.resize * w // h, pre.resize)
    limit = Image.MAX_IMAGE_PIXELS
    if limit and size[0] * size[1] > limit:  # a 1x80000 strip resized to 224 is 4 G pixels
        raise ImageError(f"{path}: a {w}x{h} image resized to shorter side {pre.resize} would be "
                         f"{size[0]}x{size[1]} pixels, over Pillow's decompression-bomb limit "
                         f"of {limit}; crop it to a less extreme aspect ratio")
    img = img.resize(size, Image.BILINEAR)
    left = (size[0] - pre.width) // 2
    top = (size[1] - pre.height) // 2
    return img.crop((left, top, left + pre.width, top + pre.height))


def normalize_pixels(pixels: np.ndarray, pre: ir.Preprocess) -> np.ndarray:
    """uint8 pixels already at the model's size and color (H, W) or (H, W, C) -> float32
    (1, H, W, C): the last step of ``load_image``, for images held in arrays."""
    x = np.asarray(pixels, dtype=np.float32) / np.float32(255)
    if x.ndim == 2:
        x = x[:, :, None]
    if pre.invert:
        x = np.float32(1) - x
    mean = np.asarray(pre.mean, np.float32)
    std = np.asarray(pre.std, np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x[None], dtype=np.float32)


def _reason(exc: BaseException) -> str:
    """Pillow's message, first line only, without the path (the caller names the file)."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format Pillow recognizes"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
