"""Distillation data: an endless, deterministic stream of augmented random crops.

Sample ``i`` of step ``s`` is drawn from its own generator seeded by ``(seed, s, i)``, so the stream does not
depend on how many processes share it (rank ``r`` of ``W`` takes samples ``[r·B/W, (r+1)·B/W)`` of each global
batch), and resuming at step ``s`` needs no saved data-loader state: the data position *is* the step.

Sources: ``natural`` — the photographs scikit-image and scikit-learn ship (none from any evaluated dataset;
distilling from a handful of images works, Asano & Saeed 2021), or the *train* split of a wavehub dataset
(``fashion-mnist``, ``mnist``, ``digits``, an ImageFolder path). Test splits are refused.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .errors import BuildError, DatasetNotFoundError

__all__ = ["NATURAL_IMAGES", "natural_images", "CropStream", "ancestry_stream", "make_stream", "describe"]

# scikit-image sample photographs that ship inside the wheel (no download), plus scikit-learn's two.
NATURAL_IMAGES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "brick",
    "grass",
    "gravel",
    "moon",
    "coins",
    "clock",
    "page",
)
_MAX_SIDE = 512


def _to_chw(a: np.ndarray) -> torch.Tensor:
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    t = torch.from_numpy(np.array(a[:, :, :3], copy=True)).permute(2, 0, 1).float()
    side = max(t.shape[1:])
    if side > _MAX_SIDE:  # keep crops cheap; 512 px still leaves plenty of distinct crops
        s = _MAX_SIDE / side
        t = F.interpolate(
            t[None],
            size=(round(t.shape[1] * s), round(t.shape[2] * s)),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )[0]
    return t.clamp_(0, 255).div_(255.0).contiguous()


@functools.lru_cache(maxsize=1)
def natural_images() -> tuple[tuple[str, torch.Tensor], ...]:
    """(name, float RGB ``(3, H, W)`` in [0, 1]) for every shipped sample photograph."""
    try:
        import skimage.data as skd
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise DatasetNotFoundError(
            "the 'natural' distillation images need scikit-image and scikit-learn",
            "pip install scikit-image scikit-learn (or pass --data fashion-mnist)",
        ) from None
    out = [(n, _to_chw(getattr(skd, n)())) for n in NATURAL_IMAGES]
    sk = load_sample_images()
    out += [
        (f"sklearn:{n.rsplit('/', 1)[-1]}", _to_chw(a)) for n, a in zip(sk.filenames, sk.images, strict=True)
    ]
    return tuple(out)


@dataclass
class CropStream:
    """``batch(step, start, stop)`` -> normalized ``(stop-start, 3, S, S)`` images (and labels or None)."""

    images: list[torch.Tensor] = field(repr=False)
    labels: torch.Tensor | None
    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    seed: int = 0
    scale: tuple[float, float] = (0.08, 1.0)
    grey_p: float = 0.2
    in_chans: int = 3
    description: str = ""

    def sample(self, step: int, index: int) -> tuple[torch.Tensor, int]:
        """One augmented crop, a pure function of ``(seed, step, index)``."""
        g = torch.Generator().manual_seed(int(_mix(self.seed, step, index)))
        k = int(torch.randint(len(self.images), (1,), generator=g))
        img = self.images[k]
        _, h, w = img.shape
        u = torch.rand(6, generator=g).tolist()
        area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[0])
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
        cw = max(1, min(w, round(math.sqrt(area * ratio))))
        ch = max(1, min(h, round(math.sqrt(area / ratio))))
        y0, x0 = int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1))
        crop = img[:, y0 : y0 + ch, x0 : x0 + cw][None]
        crop = F.interpolate(
            crop, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False, antialias=True
        )[0]
        if u[4] < 0.5:
            crop = crop.flip(-1)
        if u[5] < self.grey_p or crop.shape[0] != self.in_chans:
            crop = crop.mean(0, keepdim=True).expand(self.in_chans, -1, -1)
        label = int(self.labels[k]) if self.labels is not None else -1
        return crop, label

    def batch(self, step: int, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        xs, ys = zip(*(self.sample(step, i) for i in range(start, stop)), strict=True)
        x = torch.stack(xs)
        m = torch.tensor(_per_chan(self.mean, self.in_chans)).view(1, -1, 1, 1)
        s = torch.tensor(_per_chan(self.std, self.in_chans)).view(1, -1, 1, 1)
        y = torch.tensor(ys) if self.labels is not None else None
        return ((x - m) / s).contiguous(), y


def _per_chan(v: tuple[float, ...], c: int) -> list[float]:
    v = list(v)
    return v if len(v) == c else [float(np.mean(v))] * c


def _mix(*xs: int) -> int:
    """A 63-bit hash of integers (splitmix64-style), stable across processes and Python versions."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def ancestry_stream(anc, data: str, *, img_size: int, seed: int = 0) -> CropStream:
    """:func:`make_stream` with the ancestry's own preprocessing (mean, std, input channels): the crops every
    label-free use of an ancestry (distillation, calibration) feeds it."""
    return make_stream(
        data,
        img_size=img_size,
        mean=anc.mean,
        std=anc.std,
        seed=seed,
        in_chans=int(anc.model_args.get("in_chans", 3)),
    )


def make_stream(
    data: str,
    *,
    img_size: int,
    mean,
    std,
    seed: int = 0,
    in_chans: int = 3,
    scale: tuple[float, float] = (0.08, 1.0),
) -> CropStream:
    """``natural`` or a dataset name / folder (train split only; ``name:test`` is refused)."""
    name, _, split = str(data).partition(":")
    if split and split != "train":
        raise BuildError(
            f"distillation data {data!r} uses the {split!r} split",
            "Distill on a train split or on 'natural'; test splits are what the benchmarks evaluate.",
        )
    if name in ("natural", "skimage", "sample-images"):
        imgs = natural_images()
        return CropStream(
            [t for _, t in imgs],
            None,
            img_size,
            tuple(mean),
            tuple(std),
            seed,
            scale,
            0.2,
            in_chans,
            f"natural: {len(imgs)} sample photographs shipped by scikit-image/scikit-learn "
            f"({', '.join(n for n, _ in imgs)}), random resized crops scale {scale}, flips, 20% grey",
        )
    from .data import load_dataset

    ds = load_dataset(name, "train")
    images = [(ds.images[i].float() / 255.0).reshape(-1, *ds.images.shape[-2:]) for i in range(len(ds))]
    return CropStream(
        images,
        ds.labels.clone(),
        img_size,
        tuple(mean),
        tuple(std),
        seed,
        (0.35, 1.0),
        0.0,
        in_chans,
        f"{name} train split ({len(images)} images), random resized crops scale (0.35, 1.0), flips",
    )


def describe(stream: CropStream) -> str:
    return stream.description
