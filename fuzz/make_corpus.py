"""Write the small seed files in fuzz/corpus/ (deterministic; re-run to regenerate).

tflite/: tiny int8 and float graphs from edgecnn.tflite.writer.to_flatbuffer, with metadata.
pt/:     hand-built zip and legacy state_dicts (a strided tensor, a storage view).
image/:  PNG (L, LA, RGB, RGBA, P with tRNS, 16-bit), JPEG with an EXIF orientation,
         animated GIF, BMP, CMYK TIFF, WebP, PGM; a few dozen to a few hundred bytes each.
spec/:   SPEC.json files: two built-ins and one with every layer type LeNet-5 weights allow.
tflite_struct/: edit programs for fuzz/tflite_struct.py (also the export_c_asan seeds).
onnx/:   the structured ONNX target's three base models (fuzz/onnx_fuzz.py), serialized.
(onnx_struct/ and torchscript/ hold hand-written seeds: choice bytes, and edits of the residual
LeNet's scripted code; this script does not write them.)
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import zipfile

import numpy as np
from PIL import Image

from edgecnn import ir, shapes, ops
from edgecnn.converters.arch import load_spec
from edgecnn.tflite.writer import to_flatbuffer

HERE = os.path.dirname(os.path.abspath(__file__))
Q = ir.QuantParams.per_tensor


def _out(name, scale=None, zp=0, dtype="int8"):
    return ir.Tensor(name, (), dtype, Q(scale, zp) if scale is not None else None)


def _graphs():
    rng = np.random.default_rng(0)
    pre = ir.Preprocess(height=6, width=6, color="L", mean=(0.5,), std=(0.5,))
    x = ir.Tensor("image", (1, 6, 6, 1), "int8", Q(0.02, -5))
    conv = ops.Conv2D("conv1", rng.integers(-127, 128, (2, 3, 3, 1)).astype(np.int8),
                     rng.integers(-99, 99, 2).astype(np.int32),
                     weight_quant=ir.QuantParams(np.array([0.01, 0.02], np.float32),
                                                 np.zeros(2, np.int64)),
                     padding=shapes.same_padding(6, 3, 2) * 2, stride=(2, 2),
                     activation="relu", output=_out("conv1", 0.05, -128))
    layers = [conv, ops.MaxPool2D("pool1", (2, 2), (1, 1), output=_out("pool1", 0.05, -128)),
              ops.Reshape("flatten", output=_out("flatten", 0.05, -128)),
              ops.FullyConnected("fc1", rng.integers(-127, 128, (3, 8)).astype(np.int8),
                                rng.integers(-99, 99, 3).astype(np.int32),
                                weight_quant=Q(0.01, 0), output=_out("fc1", 0.1, 3)),
              ops.Softmax("probs", output=_out("probs", 1 / 256, -128))]
    int8 = shapes.infer_shapes(ir.sequential(x, layers, preprocess=pre,
                                        labels=("a", "b", "c"), name="tiny"))
    xf = ir.Tensor("image", (1, 4, 4, 2), "float32")
    float_layers = [
        ops.Pad("pad", (1, 0, 0, 1)),
        ops.Conv2D("conv1", rng.standard_normal((2, 2, 2, 2)).astype(np.float32),
                  rng.standard_normal(2).astype(np.float32)),
        ops.Activation("tanh", "tanh"),
        ops.AvgPool2D("pool", (2, 2), (2, 2)),
        ops.Reshape("flatten"),
        ops.FullyConnected("fc", rng.standard_normal((2, 8)).astype(np.float32), None),
        ops.Activation("sig", "sigmoid")]
    flt = shapes.infer_shapes(ir.sequential(xf, float_layers, name="tinyf"))
    return {"tiny_int8.tflite": int8, "tiny_float.tflite": flt}


def _g(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _tuple(items):
    return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in items) + b"t"


def _state_dict_pickle():
    pid = b"(" + _s("storage") + _g("torch", "FloatStorage") + _s("0") + _s("cpu") + b"K\x0ctQ"
    tensor = (_g("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + b"K\x02" + _tuple((3, 2))
              + _tuple((1, 3)) + b"\x89" + _g("collections", "OrderedDict") + b")RtRq\x05")
    return (b"\x80\x02" + _g("collections", "OrderedDict") + b")R(" + _s("w") + tensor + _s("b")
            + b"h\x05u.")  # "b" is a memo GET of the first tensor (tied weights)


def _pt_files():
    pkl = _state_dict_pickle()
    storage = np.arange(12, dtype=np.float32).tobytes()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("m/data.pkl", pkl)
        zf.writestr("m/byteorder", "little")
        zf.writestr("m/data/0", storage)
    legacy = b"".join([pickle.dumps(0x1950A86A20F9469CFC6C, 2), pickle.dumps(1001, 2),
                       pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2), pkl,
                       pickle.dumps(["0"], 2), struct.pack("<q", 12), storage])
    return {"tiny_zip.pt": zbuf.getvalue(), "tiny_legacy.pt": legacy}


def _save(img, fmt, **kw):
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def _images():
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8), "RGB")
    gray = rgb.convert("L")
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    frames = [gray, gray.transpose(Image.FLIP_LEFT_RIGHT)]
    out = {
        "gray.png": _save(gray, "PNG"),
        "la.png": _save(gray.convert("LA"), "PNG"),
        "rgb.png": _save(rgb, "PNG"),
        "rgba.png": _save(rgb.convert("RGBA"), "PNG"),
        "palette_trns.png": _save(pal, "PNG", transparency=0),
        "gray16.png": _save(Image.fromarray((np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)), "PNG"),
        "exif.jpg": _save(rgb, "JPEG", exif=exif.tobytes(), quality=50),
        "anim.gif": _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10),
        "rgb.bmp": _save(rgb, "BMP"),
        "cmyk.tif": _save(rgb.convert("CMYK"), "TIFF"),
        "rgb.webp": _save(rgb, "WEBP", lossless=True),
        "gray.pgm": _save(gray, "PPM"),
    }
    return out


def _specs():
    small = {"name": "small", "input": {"height": 32, "width": 32, "channels": 1}, "eps": 1e-3,
             "layers": [{"type": "conv", "filters": 6, "kernel": 5, "stride": 1, "padding": 0},
                        {"type": "relu6"}, {"type": "maxpool", "kernel": 2, "ceil_mode": True},
                        {"type": "conv", "filters": 16, "kernel": [5, 5], "dilation": 1},
                        {"type": "tanh"}, {"type": "avgpool", "kernel": 2, "stride": 2},
                        {"type": "adaptive_avgpool", "output": [5, 5]},
                        {"type": "flatten"}, {"type": "dropout"}, {"type": "linear", "units": 120},
                        {"type": "sigmoid"}, {"type": "identity"}, {"type": "linear", "units": 84},
                        {"type": "linear", "units": 10}, {"type": "softmax"}]}
    out = {f"{name}.json": json.dumps(load_spec(name)).encode()
           for name in ("lenet5", "lenet5-tanh-avg")}
    out["small.json"] = json.dumps(small).encode()
    return out


def _onnx_models():
    """The structured target's base models as files: seeds for the byte-level onnx target."""
    from onnx_fuzz import base_models
    return {f"base{i}.onnx": m.SerializeToString() for i, m in enumerate(base_models())}


def _struct_programs():
    """tflite_struct seeds: each seed model unedited (2 bytes pick it), then a few seeded
    random edit programs (fuzz/tflite_struct.py reads them)."""
    rng = np.random.default_rng(3)
    out = {f"seed{k}_plain": bytes([k, 0]) for k in range(4)}
    out.update({f"random{k}": rng.integers(0, 256, 24, dtype=np.uint8).tobytes() for k in range(4)})
    return out


def main():
    files = {"tflite": {n: to_flatbuffer(g) for n, g in _graphs().items()},
             "pt": _pt_files(), "image": _images(), "spec": _specs(), "onnx": _onnx_models(),
             "tflite_struct": _struct_programs()}
    for target, blobs in files.items():
        folder = os.path.join(HERE, "corpus", target)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, data in blobs.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(blobs)} files, {sum(map(len, blobs.values()))} bytes")


if __name__ == "__main__":
    main()
