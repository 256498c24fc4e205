"""Learngene + ViTSpec -> state dict -> stock timm ``VisionTransformer``.

The model is built on the meta device and the composed tensors are *assigned* (``load_state_dict(assign=True)``),
so no random initialization is computed for any weight we overwrite; only the new head is drawn. Composition
happens directly on the requested device and dtype: a CUDA user composes on the GPU.
"""

from __future__ import annotations

from typing import Any

import torch

from .artifact import Learngene
from .constants import IMAGENET_MEAN, IMAGENET_STD
from .errors import SpecError
from .spec import ViTSpec

__all__ = [
    "resolve_spec",
    "check_spec",
    "state_dict_for",
    "bank_choice",
    "wave_source",
    "build_model",
    "init_head",
    "pretrained_cfg_for",
    "stock_architecture",
    "timm_architecture",
]


def resolve_spec(lg: Learngene, depth: int | None = None, width: int | None = None, **fields: Any) -> ViTSpec:
    """A validated spec: unset fields come from the learngene's aux architecture."""
    arch = lg.arch
    depth = arch.depth if depth is None else depth
    width = arch.width if width is None else width
    fields = {k: v for k, v in fields.items() if v is not None}
    try:
        spec = ViTSpec(depth=depth, width=width, **fields)
    except TypeError as e:
        raise SpecError(
            f"unknown model option: {e}", "See `help(wavehub.create_model)` for the options."
        ) from None
    spec = spec.resolve(lg.spec_defaults())
    check_spec(lg, spec)
    return spec


def check_spec(lg: Learngene, spec: ViTSpec) -> None:
    """The method's own limits (template divisibility, TLEG fixed width, WS no growth)."""
    from .methods import get_method

    get_method(lg.method).check_spec(lg.cfg, spec)


def bank_choice(lg: Learngene, spec: ViTSpec, bank: bool | str = True, init: str = "resample"):
    """The bank entry a WAVE target starts from (a :class:`wavehub.bank.Choice`), or None for the aux scalers."""
    from .bank import choose_entry, force_entry

    if isinstance(bank, str):
        return force_entry(lg.cfg, bank, spec.width, spec.grid)
    use = bank and lg.bank and init == "resample"
    return choose_entry(lg.cfg, spec.depth, spec.width, spec.grid) if use else None


def wave_source(lg: Learngene, spec: ViTSpec, bank: bool | str = True, init: str = "resample"):
    """(tensors, typed config, bank choice or None) a WAVE target starts from: the bank entry chosen for its
    size (:func:`wavehub.bank.choose_entry`; ``bank="d8-w384"`` forces one) seen as the aux model, or the
    learngene's own aux model (``bank=False``, or no bank)."""
    from .bank import source_for

    choice = bank_choice(lg, spec, bank, init)
    if choice is None:
        return lg.tensors, lg.cfg, None
    tensors, cfg = source_for(lg.tensors, lg.config, lg.bank[choice.key], choice)
    return tensors, cfg, choice


def _compose(
    lg: Learngene,
    spec: ViTSpec,
    device,
    dtype,
    init: str,
    scalers,
    generator,
    depth_rule: str | None = None,
    bank: bool | str = True,
) -> dict[str, torch.Tensor]:
    from .device import matmul_dtype
    from .methods import get_method

    method = get_method(lg.method)
    # a method with scalers starts from the bank entry chosen for the size (or the aux model)
    tensors, cfg, _ = wave_source(lg, spec, bank, init) if method.has_scalers else (lg.tensors, lg.cfg, None)
    # resample and compose in fp32 on a CPU; round once, at the end
    return method.compose(
        tensors,
        cfg,
        spec,
        device=device,
        dtype=dtype,
        matmul_dtype=matmul_dtype(dtype, device),
        init=init,
        scalers=scalers,
        generator=generator,
        depth_rule=depth_rule,
    )


def init_head(spec: ViTSpec, *, device=None, dtype=None, seed: int = 0) -> dict[str, torch.Tensor]:
    """A fresh classifier, timm's rule (trunc-normal std 0.02, zero bias), drawn from a seeded generator."""
    if spec.num_classes == 0:
        return {}
    device = torch.device(device or "cpu")
    g = torch.Generator(device=device).manual_seed(seed)
    w = torch.empty(spec.num_classes, spec.width, device=device, dtype=dtype or torch.float32)
    torch.nn.init.trunc_normal_(w, std=0.02, generator=g)
    return {"head.weight": w, "head.bias": torch.zeros(spec.num_classes, device=device, dtype=w.dtype)}


def state_dict_for(
    lg: Learngene,
    spec: ViTSpec,
    *,
    device=None,
    dtype=None,
    init: str = "resample",
    scalers: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    depth_rule: str | None = None,
    bank: bool | str = True,
) -> dict[str, torch.Tensor]:
    """Every tensor of the target model, in timm's keys (the head freshly initialized).

    ``depth_rule`` (WAVE only): how aux layers map to target layers, see ``wavehub.methods.resample``.
    ``bank=False`` ignores the learngene's pre-fitted entries (format v2, :mod:`wavehub.bank`)."""
    check_spec(lg, spec)
    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    owned = dict(lg.tensors)
    for key, ts in lg.bank.items():
        owned.update({f"{key}/{k}": v for k, v in ts.items()})
    with torch.no_grad():
        sd = _owned(_compose(lg, spec, device, dtype, init, scalers, g, depth_rule, bank), owned)
        sd.update(init_head(spec, device=device, dtype=dtype, seed=seed))
    return sd


def _owned(sd: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copy every tensor that is still the learngene's own memory (a Weight Selection at the teacher's width
    selects nothing; a TLEG shared tensor or an extra already in the target dtype is passed through): training
    the model would otherwise edit the loaded learngene in place, and every later model built from it would
    start from those trained weights."""
    src = {t.untyped_storage().data_ptr() for t in tensors.values()}
    return {k: v.clone() if v.untyped_storage().data_ptr() in src else v for k, v in sd.items()}


# Registered timm ViTs by (patch size, width): the name an exported config.json gives timm to rebuild from.
_TIMM_BY_PATCH_WIDTH = {
    (16, 192): "vit_tiny_patch16_224",
    (16, 384): "vit_small_patch16_224",
    (16, 768): "vit_base_patch16_224",
    (16, 1024): "vit_large_patch16_224",
    (32, 384): "vit_small_patch32_224",
    (32, 768): "vit_base_patch32_224",
    (8, 384): "vit_small_patch8_224",
    (8, 768): "vit_base_patch8_224",
    (14, 384): "vit_small_patch14_dinov2",
    (14, 768): "vit_base_patch14_dinov2",
    (14, 1024): "vit_large_patch14_dinov2",
}
_TIMM_BY_PATCH = {
    16: "vit_base_patch16_224",
    8: "vit_base_patch8_224",
    32: "vit_base_patch32_224",
    14: "vit_small_patch14_dinov2",
}


def timm_architecture(patch_size: int, width: int | None = None) -> str:
    """The registered timm ViT of this patch size and width (same patch size only, when timm has no such width).

    The exported ``model_args`` set every size field on top of it (depth, heads, image size, LayerScale off), so
    timm rebuilds exactly the exported model; the name says the family: ``vit_small_patch14_dinov2`` for a
    patch-14, width-384 model of any depth."""
    p = int(patch_size)
    return _TIMM_BY_PATCH_WIDTH.get((p, int(width or 0))) or _TIMM_BY_PATCH.get(p, "vit_base_patch16_224")


def stock_architecture(spec: ViTSpec) -> str:
    """The timm architecture name for a spec (see :func:`timm_architecture`)."""
    return timm_architecture(spec.patch_size, spec.width)


def pretrained_cfg_for(lg: Learngene, spec: ViTSpec) -> dict[str, Any]:
    cfg = lg.cfg
    data = cfg.data
    mean = data.mean if data.mean is not None else IMAGENET_MEAN if spec.in_chans == 3 else (0.449,)
    std = data.std if data.std is not None else IMAGENET_STD if spec.in_chans == 3 else (0.226,)
    return {
        "architecture": stock_architecture(spec),
        "input_size": (spec.in_chans, spec.img_size, spec.img_size),
        "fixed_input_size": True,
        "interpolation": data.interpolation if data.interpolation is not None else "bicubic",
        # 1.0 = the whole image, as wavehub's own data pipeline and extraction see it (timm's 0.875 would crop)
        "crop_pct": float(data.crop_pct if data.crop_pct is not None else 1.0),
        # squash = resize the whole image to input_size (as wavehub.data does); with crop_pct 1.0 it needs no
        # crop, so timm's transform and transformers' processor agree on every aspect ratio (a center crop's
        # offset is rounded by torchvision but floored by transformers: a 1-px shift on some images)
        "crop_mode": data.crop_mode if data.crop_mode is not None else "squash",
        "mean": tuple(mean)[: spec.in_chans]
        if spec.in_chans == 3
        else (float(sum(mean) / len(mean)),) * spec.in_chans,
        "std": tuple(std)[: spec.in_chans]
        if spec.in_chans == 3
        else (float(sum(std) / len(std)),) * spec.in_chans,
        "num_classes": spec.num_classes,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": cfg.license,
        "source": "wavehub",
        "tag": cfg.name,
    }


def build_model(
    lg: Learngene,
    spec: ViTSpec,
    *,
    device=None,
    dtype=None,
    init: str = "resample",
    scalers: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    depth_rule: str | None = None,
    bank: bool | str = True,
    **timm_kwargs: Any,
):
    """A stock ``timm.models.VisionTransformer`` with the composed weights (no wavehub modules inside).

    ``timm_kwargs`` (drop_path_rate, drop_rate, ...) go to the constructor; options that would add parameters
    the learngene does not provide are refused with a SpecError. ``depth_rule`` (WAVE): "prefix" | "stretch"."""
    from timm.models.vision_transformer import VisionTransformer

    from .methods import get_method
    from .methods.resample import resolve_depth_rule

    device = torch.device(device) if device is not None else torch.device("cpu")
    method = get_method(lg.method)
    if method.depth_rule:
        depth_rule = resolve_depth_rule(depth_rule)  # recorded below; unknown names fail before composing
    elif depth_rule is not None:
        raise SpecError(
            f"depth_rule applies to WAVE learngenes; {lg.name!r} is a {lg.method.upper()} learngene",
            "Drop depth_rule=...",
        )
    sd = state_dict_for(
        lg,
        spec,
        device=device,
        dtype=dtype,
        init=init,
        scalers=scalers,
        seed=seed,
        depth_rule=depth_rule,
        bank=bank,
    )
    kwargs = spec.timm_kwargs() | timm_kwargs
    try:
        with torch.device("meta"):  # every weight is overwritten below: timm's init would be wasted work
            model = VisionTransformer(**{"weight_init": "skip", **kwargs})
    except (TypeError, AssertionError, ValueError) as e:
        raise SpecError(
            f"timm cannot build this ViT: {e}", "Check the extra timm options you passed."
        ) from None
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    if missing or unexpected:
        raise SpecError(
            f"the options passed add or remove parameters the learngene does not provide "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})",
            "Drop options such as init_values, reg_tokens, qk_norm or no_embed_class.",
        )
    for name, buf in list(model.named_buffers()):
        if buf.is_meta:
            raise SpecError(
                f"timm option created buffer {name} that wavehub cannot fill", "Drop that option."
            )
    model.pretrained_cfg = pretrained_cfg_for(lg, spec)
    model.default_cfg = model.pretrained_cfg
    model.wavehub_info = {
        "learngene": lg.name,
        "learngene_sha256": lg.sha256,
        "method": lg.method,
        "source": lg.source,
        "repo_id": lg.cfg.repo_id,
        "init": init if method.has_scalers else lg.method,
        "spec": {k: v for k, v in vars(spec).items()},
        "seed": seed,
    }
    if method.depth_rule:
        model.wavehub_info["depth_rule"] = depth_rule
    if method.has_scalers:
        choice = bank_choice(lg, spec, bank, init)  # the norms and pos_embed came from it in any case
        model.wavehub_info["bank"] = (
            None
            if choice is None
            else {
                "entry": choice.key,
                "rule": choice.rule,
                "pos_embed": choice.pos_embed,
                "bank_sha256": lg.cfg.bank.sha256,
            }
        )
    return model
