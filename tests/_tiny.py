"""Tiny learngenes for tests (importable as `_tiny` from any test: tests/ is on sys.path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from wavehub.artifact import Learngene
from wavehub.config import AuxArch

TINY_ARCH = dict(
    depth=2,
    width=128,
    num_heads=2,
    mlp_ratio=4.0,
    patch_size=8,
    img_size=32,
    in_chans=3,
    class_token=True,
    global_pool="token",
)


def timm_vit(arch: Mapping[str, Any], **kwargs: Any):
    """A stock timm ViT of an aux-architecture dict, built without wavehub (so tests can compare against it).

    The dict's keys are timm's own names but for ``width`` (timm's ``embed_dim``); headless unless ``kwargs``
    (any other timm keyword) says ``num_classes``."""
    from timm.models.vision_transformer import VisionTransformer

    a = {k: v for k, v in arch.items() if k != "width"}
    return VisionTransformer(**({"embed_dim": arch["width"], "num_classes": 0} | a | kwargs))


def tiny_timm_vit(seed: int = 0, **over):
    """A random tiny timm ViT with the TINY_ARCH shape (an 'ancestry' for tests)."""
    torch.manual_seed(seed)
    m = timm_vit(TINY_ARCH | over)
    # random non-trivial norms/biases so tests see them move
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("bias") or "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)
    return m.eval()


def tiny_wave(templates: int = 4, seed: int = 0, name: str = "tiny-wave", **arch_over) -> Learngene:
    from wavehub.methods import wave

    arch = TINY_ARCH | arch_over
    g = torch.Generator().manual_seed(seed)
    t, wcfg = wave.random_learngene(
        AuxArch.from_dict(arch), template_size=64, templates=templates, generator=g
    )
    for k in t:  # non-zero biases/norm deviations so every code path carries signal
        if k.endswith(".bias") or "norm" in k:
            t[k] = t[k] + 0.05 * torch.randn(t[k].shape, generator=g)
    cfg = {
        "name": name,
        "aux": arch,
        "wave": wcfg,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "ancestry": {"id": "random", "license": "apache-2.0"},
    }
    return Learngene("wave", cfg, t)


def tiny_extracted(
    templates: int = 16, seed: int = 0, name: str = "tiny-extracted"
) -> tuple[Learngene, object]:
    from wavehub.methods import wave

    vit = tiny_timm_vit(seed)
    sd = {k: v.detach() for k, v in vit.state_dict().items()}
    t, wcfg = wave.extract(sd, AuxArch.from_dict(TINY_ARCH), template_size=64, templates=templates)
    cfg = {"name": name, "aux": TINY_ARCH, "wave": wcfg, "mean": [0.5] * 3, "std": [0.5] * 3}
    return Learngene("wave", cfg, t), vit


def tiny_tleg(seed: int = 0) -> tuple[Learngene, object]:
    from wavehub.methods import tleg

    vit = tiny_timm_vit(seed)
    t = tleg.least_squares({k: v.detach() for k, v in vit.state_dict().items()}, AuxArch.from_dict(TINY_ARCH))
    return Learngene(
        "tleg", {"name": "tiny-tleg", "aux": TINY_ARCH, "tleg": {}, "mean": [0.5] * 3, "std": [0.5] * 3}, t
    ), vit


def tiny_select(seed: int = 0, depth: int = 3) -> tuple[Learngene, object]:
    vit = tiny_timm_vit(seed, depth=depth)
    t = {f"teacher.{k}": v.detach().clone() for k, v in vit.state_dict().items()}
    arch = TINY_ARCH | {"depth": depth}
    return Learngene(
        "select", {"name": "tiny-select", "aux": arch, "select": {}, "mean": [0.5] * 3, "std": [0.5] * 3}, t
    ), vit


def fit_on_a_dataset(lg: Learngene, depth: int, subset: int, steps: int, **create_kw: Any):
    """``create_model(fit=...)`` on a torch ``Dataset`` (a Fashion-MNIST subset at 32 px), width 128, with no
    held-out evaluation: the quickest fit through the public entry point."""
    import wavehub
    from wavehub.data import load_dataset

    ds = load_dataset("fashion-mnist", "train", img_size=32, subset=subset, seed=0)
    return wavehub.create_model(
        lg,
        depth=depth,
        width=128,
        fit=ds,
        progress=False,
        fit_options=dict(steps=steps, batch_size=16, eval_data=None),
        **create_kw,
    )
