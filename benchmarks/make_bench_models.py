"""Write the big int8 benchmark models (MobileNetV2 1.0/224 and a ResNet-18 at 224) with
TensorFlow's own converter into a cache folder. Too big to commit; needs TensorFlow (only
this script does: the benchmarks read the files).

    pip install tensorflow-cpu
    python benchmarks/make_bench_models.py CACHE_DIR [--models mobilenet_v2 resnet18] [--force]

Files (int8 input and output, batch 1, 1000 classes):
- ``mobilenet_v2_1.0_224_int8.tflite``: keras.applications.MobileNetV2(alpha=1.0, 224x224x3,
  weights=None).
- ``resnet18_224_int8.tflite``: torchvision's ResNet-18 geometry built in Keras (7x7/2 conv
  with padding 3, 3x3/2 max pool with padding 1, BasicBlocks 64-128-256-512 x 2 with a 1x1/2
  conv + BatchNorm projection, global average pool, dense 1000). Each explicit padding is a
  ZeroPadding2D before a VALID layer; the converter folds those equal to SAME's and keeps a PAD
  before each stride-2 layer (torchvision pads 1 on both sides, SAME would pad 0 and 1).

Weights are seeded and realistic as in tests/fixtures/make_tf_graph_fixtures.py (whose
seeded_model this script uses): He-normal kernels, BatchNorm statistics from a
training-mode pass. Calibration: the converter settings of tests/fixtures/make_tf_fixtures.py
(64 seeded uniform [-1, 1) samples). ``CACHE_DIR/bench_models.json`` records, per file, the
bytes, sha256, ops, TensorFlow version, date and conversion time. An existing file is kept
unless --force.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "fixtures"))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from make_tf_fixtures import convert, io_types, ops_of  # noqa: E402
from make_tf_graph_fixtures import seeded_model  # noqa: E402

SEED = 20241127
L = tf.keras.layers


def mobilenet_v2(batch):
    return tf.keras.applications.MobileNetV2(input_tensor=L.Input((224, 224, 3), batch_size=batch),
                                             alpha=1.0, weights=None, classes=1000)


def conv_bn(x, filters, kernel, stride, relu=True):
    """torchvision's Conv2d(padding=kernel // 2, bias=False) + BatchNorm2d(eps=1e-5) [+ ReLU]."""
    if kernel > 1:
        x = L.ZeroPadding2D(kernel // 2)(x)
    x = L.Conv2D(filters, kernel, stride, padding="valid", use_bias=False)(x)
    x = L.BatchNormalization(epsilon=1e-5)(x)
    return L.ReLU()(x) if relu else x


def basic_block(x, filters, stride):
    y = conv_bn(conv_bn(x, filters, 3, stride), filters, 3, 1, relu=False)
    if stride != 1 or x.shape[-1] != filters:
        x = conv_bn(x, filters, 1, stride, relu=False)
    return L.ReLU()(L.Add()([x, y]))


def resnet18(batch):
    x0 = L.Input((224, 224, 3), batch_size=batch)
    x = conv_bn(x0, 64, 7, 2)
    x = L.MaxPooling2D(3, 2)(L.ZeroPadding2D(1)(x))  # zeros are safe after ReLU (x >= 0)
    for filters, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = basic_block(basic_block(x, filters, stride), filters, 1)
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(x0, L.Dense(1000)(x), name="resnet18")


MODELS = {"mobilenet_v2": ("mobilenet_v2_1.0_224_int8", mobilenet_v2),
          "resnet18": ("resnet18_224_int8", resnet18)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="cache folder for the .tflite files")
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    ap.add_argument("--force", action="store_true", help="rewrite files that exist")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    index_path = os.path.join(args.out, "bench_models.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {}
    for k, key in enumerate(sorted(args.models)):
        name, build = MODELS[key]
        path = os.path.join(args.out, name + ".tflite")
        if os.path.exists(path) and not args.force:
            print(f"{path}: exists (--force rewrites it)")
            continue
        t0 = time.perf_counter()
        data = convert(seeded_model(build, 1, SEED + k), True, SEED + k)
        seconds = time.perf_counter() - t0
        with open(path, "wb") as f:
            f.write(data)
        ops = ops_of(data)
        index[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                       "io": io_types(data), "ops": ops, "tensorflow": tf.__version__,
                       "date": datetime.date.today().isoformat(), "seed": SEED + k,
                       "convert_seconds": round(seconds, 1),
                       "script": "benchmarks/make_bench_models.py"}
        print(f"{path}: {len(data)} bytes, {io_types(data)}, {len(ops)} ops "
              f"({', '.join(sorted(set(ops)))}), {seconds:.0f} s", flush=True)
        with open(index_path, "w") as f:
            json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
