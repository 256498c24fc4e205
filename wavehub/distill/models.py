"""The aux models being distilled and their starting point: WAVE's :class:`~wavehub.methods.wave_module.WaveModel`
(trainable templates) or :class:`TlegModel`, the frozen teacher, and the initial learngene."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import nn

from ..artifact import Learngene
from ..errors import BuildError
from ..spec import ViTSpec
from .config import BuildConfig

__all__ = ["TlegModel", "aux_spec", "initial_learngene", "make_aux", "teacher"]


class TlegModel(nn.Module):
    """TLEG's aux net: ``θ_base``/``θ_ilayer`` per block parameter and shared tensors, all trainable."""

    def __init__(self, vit: nn.Module, tensors: dict[str, torch.Tensor], cfg: dict, spec: ViTSpec):
        super().__init__()
        self.vit, self.cfg, self.spec = vit, cfg, spec
        self.names = sorted(tensors)
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.detach().clone().float())
                                        for k, v in tensors.items()})
        for n, p in self.vit.named_parameters():
            p.requires_grad_(n.startswith("head"))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: self.params[k.replace(".", "__")] for k in self.names}

    def composed(self) -> dict[str, torch.Tensor]:
        from ..methods import tleg

        return tleg.compose_state_dict(self.tensors(), self.cfg, self.spec)


def aux_spec(arch: dict, num_classes: int) -> ViTSpec:
    return ViTSpec(depth=arch["depth"], width=arch["width"], num_heads=arch["num_heads"],
                   head_dim=arch["width"] // arch["num_heads"], mlp_ratio=arch["mlp_ratio"],
                   patch_size=arch["patch_size"], img_size=arch["img_size"], in_chans=arch["in_chans"],
                   num_classes=num_classes, global_pool=arch["global_pool"], class_token=arch["class_token"]).resolve({})


def initial_learngene(cfg: BuildConfig, anc, arch: dict) -> Learngene:
    """The aux model's starting point: data-free extraction or random, as a (not yet saved) Learngene."""
    from ..extract import _ancestry_state, _serves, parse_templates
    from ..methods import tleg, wave

    g = torch.Generator().manual_seed(cfg.seed)
    lcfg: dict[str, Any] = {"aux": arch}
    if cfg.method == "wave":
        templates = parse_templates(cfg.templates)
        if cfg.init == "extract":
            t, wcfg = wave.extract(_ancestry_state(anc, arch), arch, template_size=cfg.template_size,
                                   templates=templates, bias_templates=cfg.bias_templates)
        else:
            t, wcfg = wave.random_learngene(arch, template_size=cfg.template_size, templates=templates,
                                            bias_templates=cfg.bias_templates, generator=g)
        lcfg["wave"] = wcfg
    elif cfg.method == "tleg":
        lcfg["tleg"] = {"coefficient": "l/L (0-indexed l, L = target depth)",
                        "source": "distillation (wavehub build)"}
        if cfg.init == "extract":
            t = tleg.extract(_ancestry_state(anc, arch), arch)
        else:
            t = {}  # TLEG's own init: linear ~ trunc-normal(0.02), biases 0, LN base 1/0, LN ilayer 0
            for k, shape in tleg.expected_shapes({"aux": arch}).items():
                if "norm" in k and k.endswith("weight"):
                    t[k] = torch.ones(shape) if (".base." in k or k.startswith("shared.")) else torch.zeros(shape)
                elif k.endswith("bias"):
                    t[k] = torch.zeros(shape)
                else:
                    t[k] = torch.nn.init.trunc_normal_(torch.empty(shape), std=0.02, generator=g)
    else:
        raise BuildError(f"unknown build method {cfg.method!r}", "Use --method wave or --method tleg.")
    lcfg["serves"] = _serves(cfg.method, lcfg)
    return Learngene(cfg.method, lcfg, {k: v.float() for k, v in t.items()})


def make_aux(lg: Learngene, spec: ViTSpec, device: torch.device) -> nn.Module:
    from ..materialize import build_model

    if lg.method == "wave":
        from ..methods.wave_module import WaveModel

        return WaveModel.from_learngene(lg, spec, init="resample", train_templates=True, device=device)
    vit = build_model(lg, spec, device=device)
    return TlegModel(vit, {k: v.to(device) for k, v in lg.tensors.items()}, lg.config, spec)


def teacher(spec_str: str, anc, img_size: int, device: torch.device) -> nn.Module:
    """The frozen ancestry at the distillation resolution, with its classifier when it has one."""
    if anc.has_classifier:
        import timm

        name = spec_str
        if os.path.isdir(spec_str):
            name = "local-dir:" + spec_str
        elif spec_str.startswith("timm:"):
            name = spec_str[5:]
        m = timm.create_model(name, pretrained=True)
        head = {k: v.detach().float() for k, v in m.state_dict().items() if k.startswith("head.")}
        anc = dataclasses.replace(anc, state_dict={**anc.state_dict, **head})
    t = anc.model(device, img_size=img_size)
    for p in t.parameters():
        p.requires_grad_(False)
    return t.eval()

