"""Distillation losses: feature KD on the final tokens and a few intermediate residual streams, logit KD, CE."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.stateless import _reparametrize_module

__all__ = ["Outputs", "feature_layers", "forward_outputs", "feature_loss", "distill_loss", "heldout_loss"]


def feature_layers(depth: int) -> list[int]:
    """Intermediate blocks whose residual stream is matched: about 1/4, 1/2 and 3/4 of the depth."""
    return sorted({i for i in (depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1) if 0 <= i < depth - 1})


@dataclass
class Outputs:
    """What the losses compare: final tokens, chosen block outputs, logits (None without a head)."""

    tokens: torch.Tensor
    mids: dict[int, torch.Tensor]
    logits: torch.Tensor | None


def forward_outputs(
    vit: nn.Module, params: dict[str, torch.Tensor] | None, x: torch.Tensor, layers: list[int]
) -> Outputs:
    """Final tokens (after the final norm), chosen block outputs and logits, with ``params`` swapped in."""
    mids: dict[int, torch.Tensor] = {}
    hooks = [
        vit.blocks[i].register_forward_hook(lambda _m, _i, out, i=i: mids.__setitem__(i, out)) for i in layers
    ]
    try:
        with _reparametrize_module(vit, params, strict=False) if params else nullcontext():
            tokens = vit.forward_features(x)
            logits = vit.forward_head(tokens) if getattr(vit, "num_classes", 0) else None
    finally:
        for h in hooks:
            h.remove()
    return Outputs(tokens, mids, logits)


def feature_loss(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 − cosine) per token + MSE relative to each image's target energy; a per-image mean, so the mean over
    ranks of per-rank losses is the global-batch loss (needed for DDP == 1 process)."""
    a, t = a.float(), t.float()
    cos = 1 - F.cosine_similarity(a, t, dim=-1, eps=1e-6).mean(-1)
    rel = (a - t).pow(2).flatten(1).mean(1) / t.pow(2).flatten(1).mean(1).clamp_min(1e-6)
    return (cos + rel).mean()


def distill_loss(
    s: Outputs, t: Outputs, labels: torch.Tensor | None = None, *, mid_weight: float = 0.5, tau: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Feature KD always; logit KD (KL at temperature τ, ×τ²) when both have heads; CE when labels are given.

    With labels the logit terms are ``0.5·CE + 0.5·KD`` (the DeiT/WAVE α = 0.5), without them pure KD (α = 1,
    TLEG's setting)."""
    parts: dict[str, torch.Tensor] = {"feat_final": feature_loss(s.tokens, t.tokens)}
    loss = parts["feat_final"]
    if s.mids:
        mid = torch.stack([feature_loss(s.mids[i], t.mids[i]) for i in sorted(s.mids)]).mean()
        parts["feat_mid"] = mid
        loss = loss + mid_weight * mid
    if s.logits is not None and t.logits is not None:
        kd = (
            F.kl_div(
                F.log_softmax(s.logits.float() / tau, -1),
                F.log_softmax(t.logits.float() / tau, -1),
                reduction="batchmean",
                log_target=True,
            )
            * tau
            * tau
        )
        parts["kd"] = kd
        if labels is not None:
            parts["ce"] = F.cross_entropy(s.logits.float(), labels)
            loss = loss + 0.5 * kd + 0.5 * parts["ce"]
        else:
            loss = loss + kd
    return loss, {k: float(v.detach()) for k, v in parts.items()}


@torch.no_grad()
def heldout_loss(
    model: nn.Module, teacher: nn.Module, x: torch.Tensor, *, batch_size: int = 32, mid_weight: float = 0.5
) -> float:
    """The distillation loss on held-out images (labels ignored): the number distillation must lower."""
    layers = feature_layers(len(teacher.blocks))
    total, n = 0.0, 0
    params = model.composed() if hasattr(model, "composed") else None
    vit = model.vit if hasattr(model, "vit") else model
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        loss, _ = distill_loss(
            forward_outputs(vit, params, xb, layers),
            forward_outputs(teacher, None, xb, layers),
            mid_weight=mid_weight,
        )
        total += float(loss) * len(xb)
        n += len(xb)
    return total / max(n, 1)
