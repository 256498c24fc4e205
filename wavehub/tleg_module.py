"""TLEG's trainable aux model for distillation (``wavehub build --method tleg``), the counterpart of
:class:`~wavehub.wave_module.WaveModel`: a stock timm ViT whose block weights come from trainable
``θ_base``/``θ_ilayer`` tensors through :func:`wavehub.methods.tleg.compose_state_dict`."""

from __future__ import annotations

import torch
from torch import nn

from .config import LearngeneConfig
from .methods import tleg
from .spec import ViTSpec

__all__ = ["TlegModel"]


class TlegModel(nn.Module):
    """TLEG's aux net: ``θ_base``/``θ_ilayer`` per block parameter and shared tensors, all trainable."""

    def __init__(self, vit: nn.Module, tensors: dict[str, torch.Tensor], cfg: LearngeneConfig, spec: ViTSpec):
        super().__init__()
        self.vit, self.cfg, self.spec = vit, cfg, spec
        self.names = sorted(tensors)
        self.params = nn.ParameterDict(
            {k.replace(".", "__"): nn.Parameter(v.detach().clone().float()) for k, v in tensors.items()}
        )
        for n, p in self.vit.named_parameters():
            p.requires_grad_(n.startswith("head"))

    def tensors(self) -> dict[str, torch.Tensor]:
        """The learngene's tensors by name (the trainable parameters themselves)."""
        return {k: self.params[k.replace(".", "__")] for k in self.names}

    def composed(self) -> dict[str, torch.Tensor]:
        """Every templated timm weight, recomposed from the current tensors (differentiable)."""
        return tleg.compose_state_dict(self.tensors(), self.cfg, self.spec)
