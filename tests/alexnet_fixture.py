"""AlexNet for the tests: torchvision's layout with seeded, torch-default-initialised weights,
and calibration photos.

No pretrained AlexNet can be fetched here and its 244 MB float file is too large to commit,
so the tests build one with torch (seeded; torch's default init, which is what torchvision's
AlexNet uses: no custom init) and save it to a temporary folder.

``build()`` is torchvision's own AlexNet (a pickled module converts only where edgecnn knows
its class's forward()). ``AlexNetBN``, defined here with the same submodule names and order
(``features``, ``avgpool``, ``classifier``) plus a BatchNorm2d after every conv with
non-trivial running statistics, is a user's own class: its pickle is refused, so it is also
saved as TorchScript (traced), which carries its forward().

The photos in edgecnn/data/photos/ come from scikit-image's ``skimage.data`` and
scikit-learn's ``load_sample_images`` (see its PROVENANCE.txt); ``python
tests/alexnet_fixture.py photos`` regenerates them. ``calibration_set`` crops and flips them
(seeded) into as many distinct calibration images as a test wants.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from PIL import Image
from torch import nn

import edgecnn

SEED = 0
PHOTOS = os.path.join(os.path.dirname(edgecnn.__file__), "data", "photos")  # as installed
REPO_PHOTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "edgecnn", "data",
                           "photos")  # where make_photos writes
PHOTO_SHORT_SIDE = 256

# name -> (skimage.data function or "sklearn:<file>", license)
PHOTO_SOURCES = {
    "astronaut": ("astronaut", "public domain (NASA)"),
    "chelsea": ("chelsea", "CC0 (Stefan van der Walt)"),
    "coffee": ("coffee", "CC0 (Rachel Michetti)"),
    "rocket": ("rocket", "public domain (SpaceX)"),
    "hubble_deep_field": ("hubble_deep_field", "public domain (NASA)"),
    "immunohistochemistry": ("immunohistochemistry", "no known copyright restrictions"),
    "retina": ("retina", "CC0 1.0"),
    "camera": ("camera", "CC0 (Lav Varshney)"),
    "coins": ("coins", "no known copyright restrictions"),
    "brick": ("brick", "CC0 (CC0Textures)"),
    "gravel": ("gravel", "CC0 (CC0Textures)"),
    "clock": ("clock", "public domain (Stefan van der Walt)"),
    "china": ("sklearn:china.jpg",
              "CC BY 2.0, danielbuechele (flickr.com/photos/danielbuechele/6061409035)"),
    "flower": ("sklearn:flower.jpg",
               "CC BY 2.0, vultilion (flickr.com/photos/vultilion/6056698931)"),
}


def _features(bn: bool) -> nn.Sequential:
    layers, c_in = [], 3
    for c, k, s, p, pool in [(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                             (256, 3, 1, 1, False), (256, 3, 1, 1, True)]:
        layers.append(nn.Conv2d(c_in, c, kernel_size=k, stride=s, padding=p))
        if bn:
            layers.append(nn.BatchNorm2d(c))
        layers.append(nn.ReLU(inplace=True))
        if pool:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        c_in = c
    return nn.Sequential(*layers)


class AlexNet(nn.Module):
    """torchvision.models.AlexNet's layout (torchvision 0.24): the same submodules, in order."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, bn: bool = False):
        super().__init__()
        self.features = _features(bn)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class AlexNetBN(AlexNet):
    """AlexNet with a BatchNorm2d after every conv (before its ReLU)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__(num_classes, dropout, bn=True)


def build(bn: bool = False, seed: int = SEED):
    """A seeded torchvision AlexNet (or AlexNetBN with non-trivial running stats and eps 1e-3
    on the last BN, so the file's eps must be used), in eval mode."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
    from torchvision_fixtures import import_torchvision
    tv_alexnet = import_torchvision().models.AlexNet
    torch.manual_seed(seed)
    model = AlexNetBN() if bn else tv_alexnet(num_classes=1000)
    if bn:
        g = torch.Generator().manual_seed(seed + 1)
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.05 + 0.5 * torch.rand(n, generator=g))
            m.num_batches_tracked.fill_(100)
        bns[-1].eps = 1e-3
    return model.eval()


def save(model, folder: str, stem: str, traced: bool = False) -> dict:
    """Save the full pickled module and its state_dict (and a TorchScript trace):
    {"module": path, "state_dict": path[, "traced": path]}."""
    os.makedirs(folder, exist_ok=True)
    paths = {"module": os.path.join(folder, stem + "_full.pt"),
             "state_dict": os.path.join(folder, stem + "_state_dict.pt")}
    torch.save(model, paths["module"])
    torch.save(model.state_dict(), paths["state_dict"])
    if traced:
        paths["traced"] = os.path.join(folder, stem + "_traced.pt")
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 224, 224)), paths["traced"])
    return paths


def torch_forward(model, x_nhwc: np.ndarray) -> np.ndarray:
    """torch's output for NHWC float32 inputs."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()


# ---- photos -----------------------------------------------------------------------------

def photo_paths() -> list[str]:
    return sorted(os.path.join(PHOTOS, n) for n in os.listdir(PHOTOS) if n.endswith(".jpg"))


def calibration_set(folder: str, count: int, seed: int = SEED) -> list[str]:
    """``count`` JPEGs in ``folder``: the shipped photos first as they are, then seeded random
    crops (35-100% of the shorter side, any position) with random horizontal flips."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [Image.open(p).convert("RGB") for p in photo_paths()]
    out = []
    for i in range(count):
        img = photos[i % len(photos)]
        if i >= len(photos):
            w, h = img.size
            side = int(min(w, h) * rng.uniform(0.35, 1.0))
            aspect = rng.uniform(0.75, 1.33)
            cw, ch = min(w, int(side * aspect)), side
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            img = img.crop((left, top, left + cw, top + ch))
            if rng.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        path = os.path.join(folder, f"calib_{i:03d}.jpg")
        img.save(path, quality=90)
        out.append(path)
    return out


def _source_image(source: str) -> np.ndarray:
    if source.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image
        return load_sample_image(source.split(":", 1)[1])
    import skimage.data
    return getattr(skimage.data, source)()


def make_photos(folder: str = REPO_PHOTOS) -> None:
    """Write the shipped photos: shorter side 256 (Lanczos), JPEG quality 85, + PROVENANCE.txt."""
    import platform

    import PIL
    import skimage
    import sklearn
    os.makedirs(folder, exist_ok=True)
    lines = []
    for name, (source, license_) in PHOTO_SOURCES.items():
        arr = _source_image(source)
        img = Image.fromarray(arr)
        img = img.convert("RGB" if img.mode not in ("L",) else "L")
        w, h = img.size
        s = PHOTO_SHORT_SIDE / min(w, h)
        img = img.resize((max(PHOTO_SHORT_SIDE, round(w * s)), max(PHOTO_SHORT_SIDE, round(h * s))),
                         Image.LANCZOS)
        img.save(os.path.join(folder, name + ".jpg"), quality=85)
        where = (f"sklearn.datasets.load_sample_image({source.split(':')[1]!r})"
                 if source.startswith("sklearn:") else f"skimage.data.{source}()")
        size = f"{img.size[0]}x{img.size[1]}"
        lines.append(f"{name + '.jpg':<26}{size} {img.mode:<4}{where}; {license_}")
    with open(os.path.join(folder, "PROVENANCE.txt"), "w", encoding="utf-8") as f:
        f.write("Real photos for calibration and infer tests, written by "
                "'python tests/alexnet_fixture.py photos'. Do not edit by hand.\n\n"
                f"Each: the sample image, shorter side resized to {PHOTO_SHORT_SIDE} "
                "(Pillow LANCZOS), saved as JPEG quality 85 (grayscale ones stay L).\n\n"
                + "\n".join(lines) + "\n\n"
                f"versions  scikit-image {skimage.__version__}, scikit-learn "
                f"{sklearn.__version__}, Pillow {PIL.__version__}, Python "
                f"{platform.python_version()}\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["photos"]:
        sys.exit("usage: python tests/alexnet_fixture.py photos")
    make_photos()
