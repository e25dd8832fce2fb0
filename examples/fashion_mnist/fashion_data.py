"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package: the IDX files, read with NumPy
only (the training script and benchmarks/bench_calibration.py share this; neither downloads)."""

import gzip
import sys
from pathlib import Path

import numpy as np

DEBIAN_DATA = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (big-endian dims after a 4-byte magic whose last byte is the rank) as uint8."""
    raw = gzip.decompress(path.read_bytes())
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * rank)
    if data.size != int(np.prod(dims)):
        sys.exit(f"{path}: {data.size} bytes of data for dims {dims}")
    return data.reshape(dims)


def load_split(data_dir: Path, split: str):
    """(uint8 images (N, 28, 28), int64 labels (N,)) of the "train" or "test" split."""
    images_file, labels_file = (Path(data_dir) / name for name in FILES[split])
    for f in (images_file, labels_file):
        if not f.is_file():
            sys.exit(f"{f}: missing. HINT: apt-get install dataset-fashion-mnist")
    return read_idx(images_file), read_idx(labels_file).astype(np.int64)
