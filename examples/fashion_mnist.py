"""Fashion-MNIST as a plain PyTorch dataset of PIL images, so timm's own transforms and loaders apply.

The examples read the original IDX files (Debian: ``apt-get install dataset-fashion-mnist`` puts them in
/usr/share/datasets/fashion-mnist; set FASHION_MNIST_DIR or pass --data-dir for another copy).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["CLASSES", "DEFAULT_DIR", "FashionMNIST"]

CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DEFAULT_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def _idx(path: Path) -> np.ndarray:
    data = gzip.open(path, "rb").read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class FashionMNIST(torch.utils.data.Dataset):
    """``split`` train|test; ``subset`` = that many images, class-balanced, chosen with ``seed``.

    Items are ``(transform(RGB PIL image), label)``; ``transform`` is set by the caller (timm's
    ``create_loader`` sets it for you). Grayscale is repeated to RGB because the learngene models are RGB.
    """

    def __init__(
        self,
        split: str = "train",
        subset: int | None = None,
        seed: int = 0,
        data_dir: str | os.PathLike = DEFAULT_DIR,
        transform=None,
    ):
        root = Path(data_dir)
        prefix = "train" if split == "train" else "t10k"
        files = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
        if not all(f.is_file() for f in files):
            raise SystemExit(
                f"Fashion-MNIST not found in {root}: run `sudo apt-get install dataset-fashion-mnist` "
                "or pass --data-dir DIR (the four *-ubyte.gz files)"
            )
        self.images, self.labels = _idx(files[0]), _idx(files[1]).astype(np.int64)
        if subset is not None and subset < len(self.labels):
            rng = np.random.default_rng(seed)
            per_class = [rng.permutation(np.flatnonzero(self.labels == c)) for c in range(10)]
            keep = np.concatenate(
                [idx[: subset // 10 + (c < subset % 10)] for c, idx in enumerate(per_class)]
            )
            keep = rng.permutation(keep)
            self.images, self.labels = self.images[keep], self.labels[keep]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i]).convert("RGB")

    def __getitem__(self, i: int):
        img = self.image(i)
        return (self.transform(img) if self.transform is not None else img), int(self.labels[i])
