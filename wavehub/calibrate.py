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

With ``method="als"`` the full second moment of the inputs of qkv, proj, fc1 and fc2 is measured instead
(:func:`input_covariance`) and the templates and scalers are refined for the output error on those inputs
(:func:`wavehub.methods.kron.weighted_nkp`), after the LayerNorm affine is folded as above.

RMS calibration helps at the aux size but depth/width-resampled targets probe worse than from a plain learngene
with more templates (benchmarks/README.md §5), so the bundled default stays plain: calibration is an option of
``wavehub extract``, not the default.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .constants import CALIB_DAMPING, CALIB_IMAGES, CALIB_IMG_SIZE, CALIB_ITERS

__all__ = [
    "FOLDED",
    "INPUTS",
    "IMAGES",
    "IMG_SIZE",
    "input_rms",
    "input_covariance",
    "damp",
    "fold_norms",
    "describe",
]

# (norm, the linear layer it feeds) in every block
FOLDED = (("norm1", "attn.qkv"), ("norm2", "mlp.fc1"))
IMAGES, IMG_SIZE = CALIB_IMAGES, CALIB_IMG_SIZE  # default calibration crops and their size (px)


#: the linear layers whose inputs :func:`input_covariance` measures, with the module that sees that input
#: first (a LayerNorm's input is normalized here without its affine, which :func:`fold_norms` moves on)
INPUTS = {"qkv": "norm1", "proj": "attn.proj", "fc1": "norm2", "fc2": "mlp.fc2"}


@torch.no_grad()
def _visit_inputs(anc, data: str, types, visit, *, images: int, img_size: int, seed: int, batch: int) -> None:
    """Run ``images`` crops of ``data`` through the ancestry and call ``visit(type, layer, x)`` with the input
    each linear layer of ``types`` gets, as the folded weights see it (LayerNorm outputs before the affine)."""
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

    def hook(kind: str, layer: int):
        def f(_mod, inp):
            h = inp[0].float()
            visit(kind, layer, F.layer_norm(h, h.shape[-1:]) if INPUTS[kind].startswith("norm") else h)

        return f

    handles = [
        b.get_submodule(INPUTS[kind]).register_forward_pre_hook(hook(kind, i))
        for i, b in enumerate(model.blocks)
        for kind in types
    ]
    try:
        for start in range(0, images, batch):
            x = torch.stack([stream.sample(0, i)[0] for i in range(start, min(images, start + batch))])
            model(x)
    finally:
        for h in handles:
            h.remove()


def input_rms(anc, data: str = "natural", **crops: int) -> dict[str, torch.Tensor]:
    """Per-channel RMS of every block's LayerNorm output *before* its affine, on the crops of ``data``
    (``natural`` = the sample photographs scikit-image ships: none from any evaluated dataset; ``crops``: the
    options of :func:`input_covariance`), keyed ``blocks.{i}.norm1``. Deterministic for a seed."""
    cov = input_covariance(anc, data, types=("qkv", "fc1"), **crops)
    return {
        f"blocks.{i}.{INPUTS[kind]}": c.diagonal().sqrt().float().clamp_min(1e-6)
        for kind, stack in cov.items()
        for i, c in enumerate(stack)
    }


def input_covariance(
    anc,
    data: str = "natural",
    *,
    images: int = IMAGES,
    img_size: int = IMG_SIZE,
    seed: int = 0,
    batch: int = 32,
    types: tuple[str, ...] = tuple(INPUTS),
) -> dict[str, torch.Tensor]:
    """Second moment ``E[x xᵀ]`` (float64) of the inputs of every block's qkv, proj, fc1 and fc2 on ``images``
    crops of ``data`` (or of ``types`` only), as the weights of :func:`fold_norms` (without ``rms``) see them:
    ``{type: (L, d, d)}``. What :func:`wavehub.methods.kron.weighted_nkp` weighs the reconstruction error with."""
    acc: dict[tuple[str, int], tuple[torch.Tensor, int]] = {}

    def visit(kind: str, layer: int, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).double()
        c, n = acc.get((kind, layer), (0, 0))
        acc[(kind, layer)] = (c + x.T @ x, n + x.shape[0])

    _visit_inputs(anc, data, types, visit, images=images, img_size=img_size, seed=seed, batch=batch)
    depth = 1 + max(layer for _, layer in acc)
    return {
        kind: torch.stack([acc[(kind, i)][0] / acc[(kind, i)][1] for i in range(depth)]) for kind in types
    }


def damp(cov: dict[str, torch.Tensor], damping: float) -> dict[str, torch.Tensor]:
    """``C + damping · mean(diag C) · I`` per layer: the output error plus ``damping`` times the plain weight
    error (in the units of an average input channel), so directions the calibration crops never excite keep
    the data-free solution instead of whatever the fit leaves there."""
    if not damping:
        return cov
    out = {}
    for kind, c in cov.items():
        eye = torch.eye(c.shape[-1], dtype=c.dtype)
        out[kind] = c + damping * c.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye
    return out


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


def describe(
    data: str,
    images: int,
    img_size: int,
    seed: int,
    method: str = "rms",
    iters: int = CALIB_ITERS,
    damping: float = CALIB_DAMPING,
) -> dict[str, Any]:
    """What a calibrated learngene's recipe records (an RMS recipe keeps its original keys)."""
    out: dict[str, Any] = {"data": data, "images": images, "img_size": img_size, "seed": seed}
    if method == "als":
        out.update(method="als", iters=iters, damping=damping)
        out["statistic"] = (
            "second moment of the inputs of qkv/proj/fc1/fc2 (LayerNorm affine folded into qkv/fc1)"
        )
    else:
        out["statistic"] = (
            "per-channel RMS of each LayerNorm output before its affine (norm1 -> qkv, norm2 -> fc1)"
        )
    return out
