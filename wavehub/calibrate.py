"""Calibrated WAVE extraction: make the template SVD see the inputs the weights really get.

The data-free NKP-SVD minimizes the weight error ``‖W − Ŵ‖``, as if every input channel mattered equally. In
DINOv2 they do not: after LayerNorm some residual channels carry orders of magnitude more RMS than others, so
errors in their columns dominate the output error. Before extraction we
re-parameterize every block exactly (the aux model's function does not change):

- the LayerNorm affine (γ, β) of ``norm1``/``norm2`` moves into the following ``qkv``/``fc1`` (``W·diag(γ)``,
  ``b + W·β``), so the SVD sees the effective weight;
- with calibration images, each input channel ``c`` is also scaled by ``r_c`` = its RMS after normalization
  (``W·diag(γ·r)``), and the LayerNorm weight becomes ``1/r`` so the product is unchanged. The SVD then
  minimizes the output error for inputs of the measured per-channel scale.

Calibration helps at the aux size but depth/width-resampled targets probe worse than from a plain learngene
with more templates (benchmarks/README.md §5), so the bundled default stays plain: calibration is an option of
``wavehub extract``, not the default.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["FOLDED", "IMAGES", "IMG_SIZE", "input_rms", "fold_norms", "describe"]

# (norm, the linear layer it feeds) in every block
FOLDED = (("norm1", "attn.qkv"), ("norm2", "mlp.fc1"))
IMAGES, IMG_SIZE = 256, 112  # default calibration crops and their size (px)


@torch.no_grad()
def input_rms(
    anc,
    data: str = "natural",
    *,
    images: int = IMAGES,
    img_size: int = IMG_SIZE,
    seed: int = 0,
    batch: int = 32,
) -> dict[str, torch.Tensor]:
    """Per-channel RMS of every block's LayerNorm output *before* its affine, on ``images`` crops of ``data``
    (``natural`` = the sample photographs scikit-image ships: none from any evaluated dataset), keyed
    ``blocks.{i}.norm1``. Deterministic for a seed."""
    from .distill_data import ancestry_stream
    from .errors import DatasetNotFoundError

    try:
        stream = ancestry_stream(anc, data, img_size=img_size, seed=seed)
    except DatasetNotFoundError as e:  # the build-time remedy names --data; here the flag is --calibrate
        raise DatasetNotFoundError(
            f"calibration data {data!r}: {e.message}",
            "pip install 'wavehub[build]' (or pass --calibrate fashion-mnist)",
        ) from None
    model = anc.model(img_size=img_size).float().eval()
    sums: dict[str, tuple[torch.Tensor, int]] = {}  # key -> (sum of squares per channel, tokens seen)

    def hook(key: str):
        def f(_mod, inp):
            h = inp[0].float()
            sq, n = sums.get(key, (0, 0))
            sums[key] = (
                sq + F.layer_norm(h, h.shape[-1:]).pow(2).sum(dim=(0, 1)),
                n + h.shape[0] * h.shape[1],
            )

        return f

    handles = [
        getattr(b, n).register_forward_pre_hook(hook(f"blocks.{i}.{n}"))
        for i, b in enumerate(model.blocks)
        for n, _ in FOLDED
    ]
    try:
        for start in range(0, images, batch):
            x = torch.stack([stream.sample(0, i)[0] for i in range(start, min(images, start + batch))])
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {k: (sq / n).sqrt().clamp_min(1e-6) for k, (sq, n) in sums.items()}


def fold_norms(
    sd: dict[str, torch.Tensor], depth: int, rms: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """A copy of ``sd`` (timm keys) with each LayerNorm affine folded into the linear layer it feeds and, with
    ``rms``, its input channels scaled by the RMS (norm weight ``1/r``, bias 0). Function-preserving."""
    out = dict(sd)
    for i in range(depth):
        for norm, lin in FOLDED:
            g, b = sd[f"blocks.{i}.{norm}.weight"].float(), sd[f"blocks.{i}.{norm}.bias"].float()
            r = torch.ones_like(g) if rms is None else rms[f"blocks.{i}.{norm}"].to(g)
            W = sd[f"blocks.{i}.{lin}.weight"].float()
            out[f"blocks.{i}.{lin}.bias"] = sd[f"blocks.{i}.{lin}.bias"].float() + W @ b
            out[f"blocks.{i}.{lin}.weight"] = W * (g * r)[None, :]
            out[f"blocks.{i}.{norm}.weight"] = 1.0 / r
            out[f"blocks.{i}.{norm}.bias"] = torch.zeros_like(b)
    return out


def describe(data: str, images: int, img_size: int, seed: int) -> dict[str, Any]:
    """What a calibrated learngene's recipe records."""
    return {
        "data": data,
        "images": images,
        "img_size": img_size,
        "seed": seed,
        "statistic": "per-channel RMS of each LayerNorm output before its affine (norm1 -> qkv, norm2 -> fc1)",
    }
