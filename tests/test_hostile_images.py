"""Hostile and odd images beyond tests/test_preprocess.py: Pillow's real decompression-bomb
limit (not a lowered one), headers declaring huge images over tiny data, 1x1 images, every
remaining Pillow mode, and a calibration folder with bad files (each reported, the rest used).
"""

import io
import os
import struct
import time
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn import ir
from edgecnn.cli import main
from edgecnn.convert import convert
from edgecnn.errors import ImageError, ModelFormatError
from edgecnn.preprocess import load_image

GRAY = ir.Preprocess(height=4, width=4, color="L")
RGB = ir.Preprocess(height=4, width=4, color="RGB")
PT = os.path.join(os.path.dirname(__file__), "fixtures", "pt")


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width, height, color_type=0, depth=8, idat=b""):
    """A PNG whose IHDR declares width x height; the pixel data is ``idat`` (tiny or none)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(idat))
            + _chunk(b"IEND", b""))


def test_pillow_default_bomb_limit_is_an_error_before_decoding(tmp_path):
    assert Image.MAX_IMAGE_PIXELS == 89478485  # Pillow's own default, untouched
    side = 10_000  # 100 M pixels: over the limit, under Pillow's 2x hard error
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    assert path.stat().st_size < 100
    start = time.monotonic()
    with pytest.raises(ImageError) as err:
        load_image(str(path), GRAY)
    text = str(err.value)
    assert "bomb.png" in text and "decompression-bomb limit of 89478485" in text and "\n" not in text
    assert time.monotonic() - start < 1


def test_past_twice_the_limit_pillow_refuses_and_we_name_the_file(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ImageError, match="huge.png"):
        load_image(str(path), GRAY)


def test_huge_width_tiny_data_under_the_limit_is_truncated(tmp_path):
    path = tmp_path / "wide.png"
    path.write_bytes(png_header_only(4_000_000, 2, idat=b"\x00" * 10))
    start = time.monotonic()
    with pytest.raises(ImageError, match="wide.png: cannot decode"):
        load_image(str(path), GRAY)
    assert time.monotonic() - start < 5


def test_tiff_declaring_134m_pixels_in_222_bytes(tmp_path):
    img = Image.new("CMYK", (4, 4))
    buf = io.BytesIO()
    img.save(buf, "TIFF")
    blob = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", blob, 4)[0]
    for k in range(struct.unpack_from("<H", blob, ifd)[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack_from("<H", blob, entry)[0] == 0x0101:  # ImageLength
            blob[entry:entry + 12] = struct.pack("<HHII", 0x0101, 4, 1, 33_554_437)  # LONG
    path = tmp_path / "tall.tif"
    path.write_bytes(bytes(blob))
    start = time.monotonic()
    with pytest.raises(ImageError, match="tall.tif: image is 4x33554437"):
        load_image(str(path), RGB)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "LA", "I;16", "CMYK"])
def test_one_by_one_images_scale_up(tmp_path, mode):
    img = Image.new(mode, (1, 1), 1 if mode in ("1", "P") else None)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    path = tmp_path / f"dot.{fmt.lower()}"
    img.save(path, fmt)
    for pre in (GRAY, RGB, ir.Preprocess(height=3, width=3, color="RGB", resize=5)):
        x = load_image(str(path), pre)
        assert x.shape == (1, pre.height, pre.width, pre.channels) and np.isfinite(x).all()


@pytest.mark.parametrize("mode,fmt", [("YCbCr", "JPEG"), ("LAB", "TIFF"), ("I;16B", "TIFF"),
                                      ("RGBX", "TIFF")])
def test_remaining_modes_convert_or_are_refused_naming_the_file(tmp_path, mode, fmt):
    # (PA and HSV images cannot be written to any file format by Pillow, so no file has them)
    img = Image.new(mode, (3, 2))
    path = tmp_path / f"m.{fmt.lower()}"
    img.save(path, fmt)
    try:
        x = load_image(str(path), RGB)
    except ImageError as e:
        assert str(path) in str(e)
    else:
        assert x.shape == (1, 4, 4, 3)


def test_animated_png_and_webp_take_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (2, 2), (v, v, v)) for v in (200, 10)]
    for fmt in ("PNG", "WEBP"):
        path = tmp_path / f"anim.{fmt.lower()}"
        frames[0].save(path, fmt, save_all=True, append_images=frames[1:], lossless=True)
        x = load_image(str(path), ir.Preprocess(height=2, width=2, color="L"))
        assert np.allclose(x * 255, 200, atol=1)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff",
                                     b"BM" + b"\xff" * 60, b"II*\x00" + b"\xff" * 20])
def test_empty_and_magic_only_files(tmp_path, content):
    path = tmp_path / "bad.img"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="bad.img"):
        load_image(str(path), GRAY)


def test_calibration_folder_with_bad_images_reports_each_and_goes_on(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(3)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), "L").save(calib / f"ok{i}.png")
    (calib / "text.png").write_text("not an image")
    (calib / "cut.jpg").write_bytes((calib / "ok0.png").read_bytes()[:40])
    (calib / "bomb.png").write_bytes(png_header_only(10_000, 10_000))
    out = tmp_path / "m.tflite"
    result = convert(os.path.join(PT, "lenet5_state_dict.pt"), str(out), arch="lenet5",
                     calib=[str(calib)])
    assert result.calibration_images == 6 and out.exists()
    assert sorted(os.path.basename(p) for p, _ in result.skipped_images) == ["bomb.png", "cut.jpg", "text.png"]
    r = CliRunner().invoke(main, ["convert", os.path.join(PT, "lenet5_state_dict.pt"), "--arch", "lenet5",
                                  "--calib", str(calib), "-o", str(tmp_path / "cli.tflite")])
    assert r.exit_code == 0, r.output
    for name in ("bomb.png", "cut.jpg", "text.png"):
        assert f"{name}" in r.output
    assert "calibrated on 6 images" in r.output


def test_calibration_folder_with_only_bad_images_is_an_error(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "text.png").write_text("not an image")
    r = CliRunner().invoke(main, ["convert", os.path.join(PT, "lenet5_state_dict.pt"), "--arch", "lenet5",
                                  "--calib", str(calib), "-o", str(tmp_path / "x.tflite")])
    assert r.exit_code == 2 and not (tmp_path / "x.tflite").exists()
    assert r.output.strip().splitlines()[-1].startswith("error: ")


def test_extreme_aspect_ratio_resize_is_refused_before_allocating(tmp_path):
    path = tmp_path / "strip.png"
    Image.new("L", (80_000, 1)).save(path)  # 80 000 pixels: fine; at shorter side 224: 4 G
    start = time.monotonic()
    with pytest.raises(ImageError, match="strip.png: a 80000x1 image resized to shorter side 224"):
        load_image(str(path), ir.Preprocess(height=224, width=224, color="RGB", resize=224))
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("height,width,resize", [(100_000, 1, 0), (30_000, 30_000, 0), (8, 8, 1 << 20)])
def test_preprocess_settings_from_a_model_file_are_bounded(tmp_path, height, width, resize):
    path = tmp_path / "dot.png"
    Image.new("L", (1, 1)).save(path)
    with pytest.raises(ModelFormatError, match="model preprocess settings"):
        load_image(str(path), ir.Preprocess(height=height, width=width, color="L", resize=resize))
