"""Image loading: every Pillow mode, the resize/crop arithmetic, folders with bad files.

Images are built in tmp_path with Pillow; expected values are written out by hand where the
arithmetic is simple and taken from the same Pillow call where the step *is* Pillow's.
"""

import io

import numpy as np
import pytest
from PIL import Image

from edgecnn import ir
from edgecnn.errors import ImageError, InputFileError, ModelFormatError
from edgecnn.preprocess import expand_image_paths, load_image, load_images

GRAY = ir.Preprocess(height=1, width=3, color="L")
RGB = ir.Preprocess(height=1, width=3, color="RGB")


def save(tmp_path, img, name, **kwargs):
    path = tmp_path / name
    img.save(path, **kwargs)
    return str(path)


def as_bytes(x):
    """The 8-bit values a (0, 1)-scaled float32 result came from."""
    return np.rint(np.asarray(x, np.float64) * 255).astype(np.int64)


def row(values, mode="L"):
    return Image.fromarray(np.array([values], np.uint8), mode)


# ---- modes ------------------------------------------------------------------------------

def test_gray_png_is_x_over_255_in_nhwc(tmp_path):
    path = save(tmp_path, row([0, 128, 255]), "g.png")
    x = load_image(path, GRAY)
    assert x.dtype == np.float32 and x.shape == (1, 1, 3, 1)
    np.testing.assert_array_equal(x[0, 0, :, 0], np.array([0, 128, 255], np.float32) / 255)


def test_invert_then_normalize_per_channel(tmp_path):
    path = save(tmp_path, Image.fromarray(np.full((1, 3, 3), 51, np.uint8), "RGB"), "c.png")
    pre = ir.Preprocess(height=1, width=3, color="RGB", invert=True,
                        mean=(0.5, 0.0, 0.8), std=(0.5, 0.2, 1.0))
    x = load_image(path, pre)
    v = np.float32(1) - np.float32(51) / np.float32(255)  # 0.8
    expected = (v - np.array([0.5, 0.0, 0.8], np.float32)) / np.array([0.5, 0.2, 1.0], np.float32)
    np.testing.assert_array_equal(x[0, 0, 0], expected)


def test_mean_std_of_length_one_broadcast_over_rgb(tmp_path):
    path = save(tmp_path, Image.fromarray(np.full((1, 3, 3), 255, np.uint8), "RGB"), "w.png")
    x = load_image(path, ir.Preprocess(height=1, width=3, color="RGB", mean=(0.5,), std=(0.25,)))
    np.testing.assert_array_equal(x, np.full((1, 1, 3, 3), 2.0, np.float32))


def test_rgb_to_gray_uses_pillow_luma(tmp_path):
    img = Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8), "RGB")
    x = load_image(save(tmp_path, img, "rgb.png"), GRAY)
    # ITU-R 601-2: 299/1000, 587/1000, 114/1000 of 255.
    np.testing.assert_array_equal(as_bytes(x[0, 0, :, 0]), [76, 150, 29])


def test_gray_to_rgb_replicates(tmp_path):
    x = load_image(save(tmp_path, row([10, 20, 30]), "g.png"), RGB)
    assert x.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(as_bytes(x[0, 0]), [[10] * 3, [20] * 3, [30] * 3])


def test_rgba_composites_on_black(tmp_path):
    px = np.array([[[200, 100, 50, 128], [9, 9, 9, 0], [10, 20, 30, 255]]], np.uint8)
    x = load_image(save(tmp_path, Image.fromarray(px, "RGBA"), "a.png"), RGB)
    # round(c * a / 255): 200*128/255 = 100.4, 100*128/255 = 50.2, 50*128/255 = 25.1
    np.testing.assert_array_equal(as_bytes(x[0, 0]), [[100, 50, 25], [0, 0, 0], [10, 20, 30]])


def test_gray_alpha_composites_on_black(tmp_path):
    px = np.array([[[255, 51], [100, 0], [7, 255]]], np.uint8)
    x = load_image(save(tmp_path, Image.fromarray(px, "LA"), "la.png"), GRAY)
    np.testing.assert_array_equal(as_bytes(x[0, 0, :, 0]), [51, 0, 7])


def test_palette_expands_through_palette(tmp_path):
    img = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    x = load_image(save(tmp_path, img, "p.png"), RGB)
    np.testing.assert_array_equal(as_bytes(x[0, 0]), [[255, 0, 0], [0, 255, 0], [0, 0, 255]])


def test_palette_transparent_index_becomes_black(tmp_path):
    img = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    img.putpalette([255, 255, 255, 40, 50, 60, 7, 8, 9] + [0] * (253 * 3))
    x = load_image(save(tmp_path, img, "pt.png", transparency=0), RGB)
    np.testing.assert_array_equal(as_bytes(x[0, 0]), [[0, 0, 0], [40, 50, 60], [7, 8, 9]])


def test_cmyk_uses_pillow_conversion(tmp_path):
    img = Image.fromarray(np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255]]], np.uint8),
                          "CMYK")
    x = load_image(save(tmp_path, img, "k.tif"), RGB)
    np.testing.assert_array_equal(as_bytes(x[0, 0]), [[255, 255, 255], [0, 255, 255], [0, 0, 0]])


def test_bilevel(tmp_path):
    img = row([0, 255, 0]).convert("1")
    x = load_image(save(tmp_path, img, "b.png"), GRAY)
    np.testing.assert_array_equal(as_bytes(x[0, 0, :, 0]), [0, 255, 0])


def test_16bit_png_keeps_the_high_byte(tmp_path):
    wide = np.array([[0, 255, 256, 0x12FF, 0x8080, 65535]], np.uint16)
    path = save(tmp_path, Image.fromarray(wide), "16.png")
    with Image.open(path) as img:
        assert img.mode == "I;16"
    x = load_image(path, ir.Preprocess(height=1, width=6, color="L"))
    np.testing.assert_array_equal(as_bytes(x[0, 0, :, 0]), [0, 0, 1, 0x12, 0x80, 255])


def test_32bit_int_clips_to_16bit_range_then_high_byte(tmp_path):
    img = Image.fromarray(np.array([[-5, 70000, 0x4000]], np.int32), "I")
    x = load_image(save(tmp_path, img, "i.tif"), GRAY)
    np.testing.assert_array_equal(as_bytes(x[0, 0, :, 0]), [0, 255, 0x40])


def test_float_image_is_refused(tmp_path):
    path = save(tmp_path, Image.fromarray(np.zeros((1, 3), np.float32), "F"), "f.tif")
    with pytest.raises(ImageError, match="f.tif.*float"):
        load_image(path, GRAY)


def test_exif_orientation_is_applied(tmp_path):
    px = np.zeros((16, 32), np.uint8)
    px[:, :16] = 255  # left half white, as stored
    img = Image.fromarray(px, "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the left half ends on top
    path = save(tmp_path, img, "rot.jpg", exif=exif.tobytes(), quality=95)
    x = as_bytes(load_image(path, ir.Preprocess(height=32, width=16, color="L")))
    assert x.shape == (1, 32, 16, 1)
    assert x[0, 2:14, :, 0].min() > 240 and x[0, 18:30, :, 0].max() < 15


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("L", (3, 1), v) for v in (200, 40, 90)]
    path = save(tmp_path, frames[0], "anim.gif", save_all=True, append_images=frames[1:])
    with Image.open(path) as img:
        assert img.n_frames == 3
    x = load_image(path, GRAY)
    np.testing.assert_array_equal(as_bytes(x[0, 0, :, 0]), [200, 200, 200])


# ---- broken files -----------------------------------------------------------------------

def test_truncated_png_names_the_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise, "L").save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cut.png: cannot decode"):
        load_image(str(path), ir.Preprocess(height=64, width=64))


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\n")
    with pytest.raises(ImageError, match="notes.png: cannot decode.*not an image format"):
        load_image(str(path), GRAY)


def test_zero_size_image(tmp_path):
    path = tmp_path / "empty.pgm"
    path.write_bytes(b"P5\n0 0\n255\n")
    with pytest.raises(ImageError, match="empty.pgm"):
        load_image(str(path), GRAY)


def test_decompression_bomb_limit_is_kept(tmp_path, monkeypatch):
    path = save(tmp_path, Image.new("L", (64, 64)), "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match="big.png"):
        load_image(path, GRAY)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="nope.png"):
        load_image(str(tmp_path / "nope.png"), GRAY)


# ---- resize and crop --------------------------------------------------------------------

def columns(width, height=4):
    """Each pixel holds 10 * its column index: crops are visible in the values."""
    return Image.fromarray(np.tile(np.arange(width, dtype=np.uint8) * 10, (height, 1)), "L")


def test_center_crop_even_margin(tmp_path):
    path = save(tmp_path, columns(8), "c8.png")  # 8x4; shorter side already 4: no resize
    x = as_bytes(load_image(path, ir.Preprocess(height=4, width=4, resize=4)))
    np.testing.assert_array_equal(x[0, 0, :, 0], [20, 30, 40, 50])  # offset (8 - 4) // 2 = 2


def test_center_crop_odd_margin_floors(tmp_path):
    path = save(tmp_path, columns(7), "c7.png")
    x = as_bytes(load_image(path, ir.Preprocess(height=4, width=4, resize=4)))
    np.testing.assert_array_equal(x[0, 0, :, 0], [10, 20, 30, 40])  # offset (7 - 4) // 2 = 1


def test_shorter_side_resize_truncates_the_longer_side(tmp_path):
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (10, 21), dtype=np.uint8), "L")  # 21 wide, 10 high
    path = save(tmp_path, img, "r.png")
    x = as_bytes(load_image(path, ir.Preprocess(height=5, width=5, resize=5)))
    # Shorter side 10 -> 5, longer 5 * 21 // 10 = 10; crop left (10 - 5) // 2 = 2.
    expected = np.asarray(img.resize((10, 5), Image.BILINEAR).crop((2, 0, 7, 5)))
    np.testing.assert_array_equal(x[0, :, :, 0], expected)


def test_portrait_resize_and_crop(tmp_path):
    rng = np.random.default_rng(2)
    img = Image.fromarray(rng.integers(0, 256, (30, 12, 3), dtype=np.uint8), "RGB")  # 12 x 30
    path = save(tmp_path, img, "p.png")
    x = as_bytes(load_image(path, ir.Preprocess(height=6, width=8, color="RGB", resize=8)))
    # 12 -> 8, 30 -> 8 * 30 // 12 = 20; crop top (20 - 6) // 2 = 7, left 0.
    expected = np.asarray(img.resize((8, 20), Image.BILINEAR).crop((0, 7, 8, 13)))
    np.testing.assert_array_equal(x[0], expected)


def test_direct_resize_when_resize_is_zero(tmp_path):
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (9, 13), dtype=np.uint8), "L")
    path = save(tmp_path, img, "d.png")
    x = as_bytes(load_image(path, ir.Preprocess(height=4, width=6)))
    np.testing.assert_array_equal(x[0, :, :, 0], np.asarray(img.resize((6, 4), Image.BILINEAR)))


def test_bad_preprocess_settings():
    with pytest.raises(ModelFormatError, match="resize 20 is smaller than the 32x32 crop"):
        load_image("unused.png", ir.Preprocess(height=32, width=32, resize=20))
    with pytest.raises(ModelFormatError, match="mean has 2 values"):
        load_image("unused.png", ir.Preprocess(height=4, width=4, color="RGB", mean=(0.1, 0.2)))
    with pytest.raises(ModelFormatError, match="color 'RGBA'"):
        load_image("unused.png", ir.Preprocess(height=4, width=4, color="RGBA"))


# ---- folders ----------------------------------------------------------------------------

def make_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    row([1, 2, 3]).save(folder / "b.png")
    row([4, 5, 6]).save(folder / "A.PNG")
    (folder / "c.jpg").write_text("broken")
    (folder / "readme.txt").write_text("skip me")
    (folder / "sub").mkdir()
    row([7, 8, 9]).save(folder / "sub" / "deep.png")
    return folder


def test_expand_folder_sorted_non_recursive_images_only(tmp_path):
    folder = make_folder(tmp_path)
    extra = tmp_path / "given.dat"
    extra.write_text("x")
    paths = expand_image_paths([str(extra), str(folder)])
    assert paths == [str(extra)] + [str(folder / n) for n in ("A.PNG", "b.png", "c.jpg")]


def test_expand_missing_path(tmp_path):
    with pytest.raises(InputFileError, match="missing"):
        expand_image_paths([str(tmp_path / "missing")])


def test_expand_empty_folder_names_it(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ImageError, match="empty: folder holds no image files"):
        expand_image_paths([str(tmp_path / "empty")])


def test_load_images_yields_errors_and_goes_on(tmp_path):
    folder = make_folder(tmp_path)
    results = list(load_images([str(folder)], GRAY))
    assert [p for p, _ in results] == [str(folder / n) for n in ("A.PNG", "b.png", "c.jpg")]
    np.testing.assert_array_equal(as_bytes(results[0][1][0, 0, :, 0]), [4, 5, 6])
    np.testing.assert_array_equal(as_bytes(results[1][1][0, 0, :, 0]), [1, 2, 3])
    assert isinstance(results[2][1], ImageError) and "c.jpg" in str(results[2][1])


def test_load_images_missing_path_raises_before_yielding(tmp_path):
    with pytest.raises(InputFileError):
        next(load_images([str(tmp_path / "gone")], GRAY))
