"""Embedding tensors every method adapts the same way: the patch-embedding conv and the position embedding
(and the shapes of the tensors outside the blocks, for the methods that store them whole).

timm's own rules (``adapt_input_conv``, ``resample_patch_embed``, ``resample_abs_pos_embed``), so a target with
another patch size, channel count or grid gets what timm would give a pretrained checkpoint.
"""

from __future__ import annotations

import torch

from .base import Aux, Target

__all__ = ["outer_shapes", "patch_weight", "resample_pos_embed"]


def outer_shapes(aux: Aux, prefix: str) -> dict[str, tuple[int, ...]]:
    """The aux ViT's tensors outside its blocks (patch and position embedding, final norm, class token) under
    ``prefix``: timm's shapes, stated once for every method that stores these tensors whole."""
    D, P = aux.width, aux.patch_size
    tokens = 1 if aux.has_class_token else 0
    shapes = {
        f"{prefix}patch_embed.proj.weight": (D, aux.in_chans, P, P),
        f"{prefix}patch_embed.proj.bias": (D,),
        f"{prefix}pos_embed": (1, tokens + aux.grid**2, D),
        f"{prefix}norm.weight": (D,),
        f"{prefix}norm.bias": (D,),
    }
    if tokens:
        shapes[f"{prefix}cls_token"] = (1, 1, D)
    return shapes


def patch_weight(w: torch.Tensor, aux: Aux, spec: Target) -> torch.Tensor:
    """(D, C·P·P) -> conv weight (D, C', P', P'), adapting channels and patch size like timm does."""
    c, p = aux.in_chans, aux.patch_size
    conv = w.reshape(w.shape[0], c, p, p)
    if spec.in_chans != c:
        from timm.models._manipulate import adapt_input_conv

        conv = adapt_input_conv(spec.in_chans, conv.float()).to(w.dtype)
    if spec.patch_size != p:
        from timm.layers import resample_patch_embed

        conv = resample_patch_embed(conv.float(), [spec.patch_size, spec.patch_size], verbose=False).to(
            w.dtype
        )
    return conv.contiguous()


def resample_pos_embed(pos: torch.Tensor, aux: Aux, spec: Target) -> torch.Tensor:
    """Aux pos_embed ``(1, prefix + g², C)`` -> the target's prefix and grid (timm's bicubic resampling)."""
    src_prefix = 1 if aux.has_class_token else 0
    dst_prefix = 1 if spec.class_token else 0
    g_src = aux.grid
    prefix, grid = pos[:, :src_prefix], pos[:, src_prefix:]
    if g_src != spec.grid:
        from timm.layers import resample_abs_pos_embed

        grid = resample_abs_pos_embed(
            grid.float(),
            new_size=(spec.grid, spec.grid),
            old_size=(g_src, g_src),
            num_prefix_tokens=0,
            verbose=False,
        ).to(pos.dtype)
    if dst_prefix and not src_prefix:
        prefix = torch.zeros_like(pos[:, :1])
    elif not dst_prefix:
        prefix = pos[:, :0]
    return torch.cat([prefix, grid], dim=1).contiguous()
