"""Train the Fashion-MNIST CNN that benchmarks/bench_calibration.py quantizes.

Data: Debian's ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``):
the real Fashion-MNIST (Xiao, Rasul, Vollgraf, Zalando 2017, MIT), 60,000 training and
10,000 test images, 28x28 grey, in the IDX files of /usr/share/datasets/fashion-mnist/.
This script never downloads anything.

Preprocessing is what ``edgecnn infer`` does to a 28x28 grey PNG with ``--mean 0.5 --std 0.5``:
    x = (u8 / 255 - 0.5) / 0.5          # float32, (N, 1, 28, 28), in [-1, 1]

The network is small but not LeNet-small, and has BatchNorm after every convolution (edgecnn
folds it, which widens the per-channel weight ranges), so calibration has something to get
wrong. Training uses the whole training split; the test split is only evaluated, once, at the
end (no tuning on it).

Usage:
    python examples/fashion_mnist/train_fashion_mnist.py [--data DIR] [--out DIR]
"""

import argparse
import datetime
import hashlib
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_data import CLASSES, DEBIAN_DATA, FILES, load_split  # noqa: E402

HERE = Path(__file__).resolve().parent


def sha256_files(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for split in ("train", "test"):
        for name in FILES[split]:
            digest.update((data_dir / name).read_bytes())
    return digest.hexdigest()


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                    nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 64))  # 28->14->7->3
        self.classifier = nn.Sequential(nn.Linear(64 * 3 * 3, 128), nn.ReLU(), nn.Dropout(0.3),
                                        nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def normalize(u8: np.ndarray) -> torch.Tensor:
    x = (u8.astype(np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(x[:, None])


@torch.no_grad()
def top1(model, x, y):
    model.eval()
    pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return (pred == y).float().mean().item()


def train(x, y, epochs, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = FashionCNN()
    opt = torch.optim.AdamW(model.parameters(), weight_decay=1e-4)
    batch = 128
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5  # clothes are left-right symmetric
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {total / len(x):.4f}", flush=True)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEBIAN_DATA,
                        help="folder with the four IDX .gz files (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)  # fixed reduction order: reruns on one machine give the same weights
    train_u8, train_y = load_split(args.data, "train")
    test_u8, test_y = load_split(args.data, "test")
    start = time.perf_counter()
    model = train(normalize(train_u8), torch.from_numpy(train_y), args.epochs, args.seed)
    seconds = time.perf_counter() - start
    acc = top1(model, normalize(test_u8), torch.from_numpy(test_y))

    args.out.mkdir(parents=True, exist_ok=True)
    pt = args.out / "fashion_cnn.pt"
    torch.save(model.state_dict(), pt)
    (args.out / "labels.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    command = ("python examples/fashion_mnist/train_fashion_mnist.py "
               + " ".join(shlex.quote(a) for a in sys.argv[1:])).strip()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    (args.out / "PROVENANCE.txt").write_text(f"""\
Fashion-MNIST CNN for edgecnn's calibration benchmark, written by
examples/fashion_mnist/train_fashion_mnist.py. Do not edit by hand.

data source     Debian package dataset-fashion-mnist (0.0~git20200523.55506a9-1), the real
                Fashion-MNIST (Zalando SE 2017, MIT): 60,000 train + 10,000 test, 28x28 grey
data sha256     {sha256_files(args.data)} (train images, train labels, t10k images, t10k labels)
preprocessing   x = (u8 / 255 - 0.5) / 0.5, NCHW (N, 1, 28, 28); no resize, no inversion
model           3 x [conv 3x3 pad 1 (32, 64, 64), BatchNorm, ReLU, maxpool 2] -> 64x3x3,
                fc 576-128, ReLU, dropout 0.3, fc 128-10 (logits; no softmax)
training        all 60,000 training images; AdamW (weight decay 1e-4) + OneCycle (max lr 3e-3),
                batch 128, {args.epochs} epochs, random horizontal flips, torch seed {args.seed},
                1 CPU thread, {seconds:.0f} s
command         {command}
versions        torch {torch.__version__}, numpy {np.__version__}, Python {platform.python_version()}
date            {date}
fashion_cnn.pt  sha256 {hashlib.sha256(pt.read_bytes()).hexdigest()}
test top-1      {acc:.4f} (float, torch, the 10,000 test images, evaluated once after training)
""")
    print(f"training time {seconds:.1f} s; test top-1 (float, torch): {acc:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
