"""What distillation trains and learns from: the initial learngene (the method's ``distill_init``), the aux model
(:class:`~wavehub.wave_module.WaveModel` with trainable templates for methods with scalers,
:class:`~wavehub.tleg_module.TlegModel` otherwise) and the frozen teacher."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import nn

from ..artifact import Learngene
from ..config import AuxArch, LearngeneConfig
from ..errors import BuildError
from ..spec import ViTSpec
from ..tleg_module import TlegModel
from ..wave_module import WaveModel
from .config import BuildConfig

__all__ = ["aux_spec", "distillable", "initial_learngene", "make_aux", "teacher"]


def aux_spec(arch: dict, num_classes: int) -> ViTSpec:
    """The aux model's ViTSpec: the ancestry's architecture with ``num_classes`` outputs."""
    a = AuxArch.from_dict(arch)
    fields = a.spec_defaults()  # the fields a target inherits are the aux model's own
    return ViTSpec(
        depth=a.depth, width=a.width, num_heads=a.num_heads, num_classes=num_classes, **fields
    ).resolve({})


def distillable(name: str):
    """The registry's method called ``name`` if ``wavehub build`` can train it; else a BuildError."""
    from ..methods import METHODS

    method = METHODS.get(name)
    if method is None or not method.distillable:
        can = ", ".join(f"--method {n}" for n, m in METHODS.items() if m.distillable)
        raise BuildError(f"unknown build method {name!r}", f"Use {can}.")
    return method


def initial_learngene(cfg: BuildConfig, anc, arch: dict) -> Learngene:
    """The aux model's starting point: data-free extraction or random, as a (not yet saved) Learngene."""
    from ..ancestry import prepared_state
    from ..methods.wave import parse_templates

    method = distillable(cfg.method)
    g = torch.Generator().manual_seed(cfg.seed)
    state = prepared_state(anc, arch) if cfg.init == "extract" else None
    t, block = method.distill_init(
        AuxArch.from_dict(arch),
        state,
        generator=g,
        template_size=cfg.template_size,
        templates=parse_templates(cfg.templates),
        bias_templates=cfg.bias_templates,
    )
    lcfg: dict[str, Any] = {"aux": arch, cfg.method: block}
    lcfg.update(serves=method.serves(LearngeneConfig.from_dict(lcfg, cfg.method)))
    return Learngene(cfg.method, lcfg, {k: v.float() for k, v in t.items()})


def make_aux(lg: Learngene, spec: ViTSpec, device: torch.device) -> nn.Module:
    """The trainable aux model at the ancestry's size, starting from ``lg``."""
    from ..materialize import build_model
    from ..methods import get_method

    if get_method(lg.method).has_scalers:
        return WaveModel.from_learngene(lg, spec, init="resample", train_templates=True, device=device)
    vit = build_model(lg, spec, device=device)
    return TlegModel(vit, {k: v.to(device) for k, v in lg.tensors.items()}, lg.cfg, spec)


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
