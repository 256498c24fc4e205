"""Export a materialized model: a timm ``local-dir:``/``hf-hub:`` folder, or a transformers ViT folder.

The timm folder needs no wavehub to load: ``config.json`` names a stock timm architecture with complete
``model_args`` (``num_classes`` only at the top level, where timm lets a caller override it, and where
transformers' TimmWrapper does not collide with it), plus ``model.safetensors`` and a model card.

The transformers folder is a ``ViTForImageClassification`` whose logits equal the timm model's, and a
``preprocessor_config.json`` that reproduces timm's eval transform (resize shortest edge to
``floor(size / crop_pct)``, center crop, normalize). A model transformers' ViT cannot represent exactly is
refused with an ExportError pointing to the timm folder, which transformers loads through TimmWrapper.

Folders follow :mod:`wavehub.outdir`: checked before any work, written beside and swapped in, and a folder
that is not a previous export of the same format is replaced only with ``force=True``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from .errors import ExportError

__all__ = [
    "data_config_of",
    "model_args_of",
    "processor_config",
    "save_timm",
    "save_transformers",
    "timm_card",
]

_logger = logging.getLogger(__name__)
# PIL resampling codes, which both timm (through torchvision) and transformers' processors use.
_RESAMPLE = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}
_TIMM_REMEDY = (
    "Use save_timm(model, DIR) (or --format timm): transformers loads that folder through "
    "AutoModelForImageClassification (TimmWrapper), timm through create_model('local-dir:DIR')."
)


def _is_identity(m) -> bool:
    return isinstance(m, torch.nn.Identity)


def _square(v, what: str) -> int:
    a, b = (v, v) if isinstance(v, int) else tuple(v)
    if a != b:
        raise ExportError(
            f"non-square {what} {tuple(v)} is not supported by the export",
            "Materialize a square model (img_size=N, patch_size=P).",
        )
    return int(a)


def model_args_of(model) -> tuple[str, dict[str, Any]]:
    """A registered timm ViT name and the kwargs that rebuild exactly this VisionTransformer.

    The kwargs are checked by rebuilding the model on the meta device: a model with parts the kwargs cannot
    describe (custom blocks, activation or norm layers) raises an ExportError instead of saving a folder
    that would load into a different network.
    """
    from timm.layers import LayerNorm
    from timm.models.vision_transformer import Block, VisionTransformer

    if not isinstance(model, VisionTransformer):
        raise ExportError(
            f"can only export timm VisionTransformer models, got {type(model).__name__}",
            "Pass the model returned by wavehub.create_model.",
        )
    pe = model.patch_embed
    blk = model.blocks[0]
    if not all(type(b) is Block for b in model.blocks):
        raise ExportError("the model has non-standard transformer blocks", "Export a model built by wavehub.")
    act = blk.mlp.act
    if not (isinstance(act, torch.nn.GELU) and act.approximate == "none"):
        raise ExportError(
            f"activation {act!r} cannot be described in config.json",
            "Materialize without act_layer (the default exact GELU).",
        )
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    if any(type(m) is not LayerNorm or m.eps != 1e-6 for m in norms):
        raise ExportError(
            "norm layers other than timm's LayerNorm(eps=1e-6) cannot be described in config.json",
            "Materialize without norm_layer.",
        )
    args: dict[str, Any] = {
        "img_size": _square(pe.img_size, "img_size"),
        "patch_size": _square(pe.patch_size, "patch_size"),
        "in_chans": int(pe.proj.in_channels),
        "embed_dim": int(model.embed_dim),
        "depth": len(model.blocks),
        "num_heads": int(blk.attn.num_heads),
        "mlp_ratio": blk.mlp.fc1.out_features / model.embed_dim,
        "qkv_bias": blk.attn.qkv.bias is not None,
        "class_token": model.cls_token is not None,
        "global_pool": model.global_pool or "",
        "no_embed_class": bool(getattr(model, "no_embed_class", False)),
        "reg_tokens": int(getattr(model, "num_reg_tokens", 0)),
        "fc_norm": not _is_identity(model.fc_norm),
    }
    if not _is_identity(blk.ls1):
        args["init_values"] = float(blk.ls1.gamma.detach().flatten()[0])
    extras = {
        "qk_norm": not _is_identity(blk.attn.q_norm),
        "pre_norm": not _is_identity(model.norm_pre),
        "final_norm": not (_is_identity(model.norm) and _is_identity(model.fc_norm)),
        "proj_bias": blk.attn.proj.bias is not None,
        "scale_attn_norm": not _is_identity(blk.attn.norm),
        "scale_mlp_norm": not _is_identity(getattr(blk.mlp, "norm", torch.nn.Identity())),
        "dynamic_img_size": bool(getattr(model, "dynamic_img_size", False)),
    }
    defaults = {
        "qk_norm": False,
        "pre_norm": False,
        "final_norm": True,
        "proj_bias": True,
        "scale_attn_norm": False,
        "scale_mlp_norm": False,
        "dynamic_img_size": False,
    }
    args.update({k: v for k, v in extras.items() if v != defaults[k]})
    if model.pos_embed is None:
        args["pos_embed"] = "none"
    from .materialize import timm_architecture  # the one name rule (model_args override every size field)

    arch = timm_architecture(args["patch_size"], args["embed_dim"])
    if "dinov2" in arch:
        args.setdefault(
            "init_values", 0.0
        )  # the dinov2 entrypoints default to LayerScale; 0 = none (timm drops None)
    _check_rebuilds(model, arch, args)
    return arch, args


def _check_rebuilds(model, arch: str, args: dict[str, Any]) -> None:
    import timm

    try:
        with torch.device("meta"):
            ref = timm.create_model(
                arch, pretrained=False, num_classes=model.num_classes, weight_init="skip", **args
            )
    except Exception as e:  # noqa: BLE001 - any failure means the config would not load either
        raise ExportError(
            f"timm cannot rebuild this model from its config: {e}", "Export a model built by wavehub."
        ) from e
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))[:3]
        raise ExportError(
            f"the exported config would rebuild a different model (differs at {diff})",
            "Export a model built by wavehub.create_model without custom layer options.",
        )


def data_config_of(model) -> dict[str, Any]:
    """The eval data config timm uses for this model (``resolve_data_config``), at the model's real input size.

    Exports write exactly this, so timm on the exported folder and transformers' processor see the same
    preprocessing as ``timm.data.create_transform(**resolve_data_config({}, model=model))`` on the original.
    """
    from timm.data import resolve_data_config

    dc = resolve_data_config({}, model=model)
    c = int(model.patch_embed.proj.in_channels)
    s = _square(model.patch_embed.img_size, "img_size")
    mean, std = tuple(float(v) for v in dc["mean"]), tuple(float(v) for v in dc["std"])
    if len(mean) != c:  # e.g. a 1-channel model with a 3-channel default
        mean, std = (sum(mean) / len(mean),) * c, (sum(std) / len(std),) * c
    interp = dc.get("interpolation") or "bicubic"
    if interp not in _RESAMPLE:
        raise ExportError(
            f"interpolation {interp!r} has no fixed resampling filter",
            f"Set model.pretrained_cfg['interpolation'] to one of {sorted(_RESAMPLE)}.",
        )
    return {
        "input_size": (c, s, s),
        "interpolation": interp,
        "crop_pct": float(dc.get("crop_pct") or 0.875),
        "crop_mode": dc.get("crop_mode") or "center",
        "mean": mean,
        "std": std,
    }


def processor_config(dc: dict[str, Any]) -> dict[str, Any]:
    """A transformers image-processor config equal to timm's eval transform for data config ``dc``.

    timm resizes (``squash``: both edges to ``floor(size / crop_pct)``; ``center``: the shortest edge), then
    center-crops ``size``, converts to a tensor and normalizes. Squash with ``crop_pct=1.0`` (what wavehub
    materializes) is ``ViTImageProcessor``'s resize-only pipeline; anything that crops uses
    ``BitImageProcessor`` (what DINOv2 uses on the Hub), whose crop offset is floored where torchvision
    rounds half to even: a crop whose leftover ``scaled - size`` is 3 mod 4 pixels lands one pixel away.
    """
    _, h, w = dc["input_size"]
    crop_pct, mode = dc["crop_pct"], dc["crop_mode"]
    sh, sw = math.floor(h / crop_pct), math.floor(w / crop_pct)
    common = {
        "do_resize": True,
        "resample": _RESAMPLE[dc["interpolation"]],
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(dc["mean"]),
        "image_std": list(dc["std"]),
        "do_convert_rgb": dc["input_size"][0] == 3,
    }
    if mode == "squash" and (sh, sw) == (h, w):
        return {"image_processor_type": "ViTImageProcessor", "size": {"height": h, "width": w}, **common}
    if mode == "center":
        size = {"shortest_edge": sh} if h == w else {"height": sh, "width": sw}
    elif mode == "squash":
        size = {"height": sh, "width": sw}
    else:
        raise ExportError(
            f"timm crop_mode {mode!r} has no transformers image-processor equivalent",
            "Set model.pretrained_cfg['crop_mode'] = 'squash' (or 'center') before exporting.",
        )
    if (sh - h) % 4 == 3 or (sw - w) % 4 == 3:
        _logger.warning(
            "crop of %d px from %d px: transformers' processor will crop 1 px off timm's center", h, sh
        )
    return {
        "image_processor_type": "BitImageProcessor",
        "size": size,
        "do_center_crop": True,
        "crop_size": {"height": h, "width": w},
        **common,
    }


def _pretrained_cfg(model, arch: str, dc: dict[str, Any]) -> dict[str, Any]:
    src = dict(getattr(model, "pretrained_cfg", None) or {})
    return {
        "architecture": arch,
        "input_size": list(dc["input_size"]),
        "fixed_input_size": True,
        "interpolation": dc["interpolation"],
        "crop_pct": dc["crop_pct"],
        "crop_mode": dc["crop_mode"],
        "mean": list(dc["mean"]),
        "std": list(dc["std"]),
        "num_classes": model.num_classes,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": src.get("license", "apache-2.0"),
    }


def timm_card(model, arch: str, extra: dict | None = None, *, library: str = "timm") -> str:
    """A Hub model card (YAML metadata that ``huggingface_hub.ModelCard`` parses) for an exported model."""
    import yaml

    info = dict(getattr(model, "wavehub_info", None) or {})
    tags = ["image-classification", library, "wavehub", "learngene"] + (["vit"] if library != "timm" else [])
    meta = {
        "library_name": library,
        "license": (getattr(model, "pretrained_cfg", None) or {}).get("license", "apache-2.0"),
        "tags": tags,
        "pipeline_tag": "image-classification",
    }
    base = info.get("repo_id") or info.get("learngene")
    if base and "/" in str(base):
        meta["base_model"] = str(base)
    meta.update(extra or {})
    _, args = model_args_of(model)
    if library == "timm":
        usage = [
            "import timm",
            "",
            'model = timm.create_model("local-dir:THIS_FOLDER", pretrained=True)  # or "hf-hub:org/repo"',
            "cfg = timm.data.resolve_data_config({}, model=model)",
            "transform = timm.data.create_transform(**cfg)",
        ]
        tail = [
            "",
            "Fine-tune with timm's `train.py`: `--model local-dir:THIS_FOLDER --pretrained --num-classes N`.",
        ]
    else:
        usage = [
            "from transformers import AutoImageProcessor, AutoModelForImageClassification",
            "",
            'model = AutoModelForImageClassification.from_pretrained("THIS_FOLDER")',
            'processor = AutoImageProcessor.from_pretrained("THIS_FOLDER")',
        ]
        tail = []
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).strip(),
        "---",
        "",
        f"# ViT depth {args['depth']}, width {args['embed_dim']} from a learngene",
        "",
        f"A {'stock timm `VisionTransformer`' if library == 'timm' else 'transformers `ViTForImageClassification`'} "
        f"materialized by [wavehub](https://github.com/wavehub/wavehub) from the learngene "
        f"`{info.get('learngene', 'unknown')}` (method: {info.get('method', 'n/a')}, sha256 "
        f"`{str(info.get('learngene_sha256'))[:16]}...`). It holds no wavehub code.",
        "",
        f"- depth {args['depth']}, width {args['embed_dim']}, {args['num_heads']} heads, patch {args['patch_size']}, "
        f"{args['img_size']} px, {model.num_classes} classes",
        f"- parameters: {sum(p.numel() for p in model.parameters()):,}",
        "",
    ]
    if getattr(model, "wavehub_fit", None):
        lines += [
            "## Scaler fitting",
            "",
            "```json",
            json.dumps(model.wavehub_fit, indent=2, default=str),
            "```",
            "",
        ]
    lines += ["## Usage", "", "```python", *usage, "```", *tail, ""]
    return "\n".join(lines)


def _write_folder(out_dir: str | os.PathLike, kind: str, force: bool, overwrite: bool, write) -> Path:
    """Write through the output-folder policy (:mod:`wavehub.outdir`): beside, then one swap into place."""
    from . import outdir

    with outdir.writing(out_dir, kind, force=force, overwrite=overwrite) as tmp:
        write(tmp)
    return Path(out_dir)


def _labels(model, label_names) -> list[str]:
    if label_names is None:
        return [f"LABEL_{i}" for i in range(model.num_classes)]
    names = [str(n) for n in label_names]
    if len(names) != model.num_classes:
        raise ExportError(
            f"{len(names)} label names for a {model.num_classes}-class head",
            "Pass one name per class, or none.",
        )
    return names


def save_timm(
    model,
    out_dir: str | os.PathLike,
    *,
    label_names: list[str] | None = None,
    card_extra: dict | None = None,
    overwrite: bool = True,
    force: bool = False,
) -> Path:
    """A timm folder: ``timm.create_model("local-dir:DIR", pretrained=True)`` rebuilds this exact model.

    Push it with ``huggingface_hub.upload_folder`` and it loads as ``hf-hub:org/repo``; transformers loads it
    through ``AutoModelForImageClassification`` (TimmWrapper).
    """
    from safetensors.torch import save_file

    from . import outdir

    outdir.check(out_dir, "timm", force=force, overwrite=overwrite)
    arch, args = model_args_of(model)
    dc = data_config_of(model)
    cfg = {
        "architecture": arch,
        "num_classes": model.num_classes,
        "num_features": model.num_features,
        "global_pool": args["global_pool"] or None,
        "model_args": args,
        "pretrained_cfg": _pretrained_cfg(model, arch, dc),
    }
    if label_names is not None:
        cfg["label_names"] = _labels(model, label_names)
    info = getattr(model, "wavehub_info", None)
    if info:
        cfg["wavehub"] = {
            k: v
            for k, v in info.items()
            if k
            in ("learngene", "learngene_sha256", "method", "init", "depth_rule", "repo_id", "seed", "bank")
        }
    sd = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    card = timm_card(model, arch, card_extra)

    def write(d: Path) -> None:
        save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        (d / "README.md").write_text(card)
        if getattr(model, "wavehub_fit", None):
            (d / "fit.json").write_text(json.dumps(model.wavehub_fit, indent=2, default=str) + "\n")

    return _write_folder(out_dir, "timm", force, overwrite, write)


def _hf_unsupported(model, args: dict) -> str | None:
    """Why transformers' ViT cannot compute exactly this model's logits, or None if it can."""
    blk = model.blocks[0]
    if not args["class_token"] or args["global_pool"] != "token":
        return "transformers' ViT classifies from the class token; this model pools with global_pool=" + repr(
            args["global_pool"]
        )
    if args["fc_norm"]:
        return "transformers' ViT has no fc_norm"
    if _is_identity(model.norm):
        return "transformers' ViT always applies a final LayerNorm (this model has final_norm=False)"
    if args["reg_tokens"] or args["no_embed_class"] or model.pos_embed is None:
        return (
            "transformers' ViT needs a learned position embedding over [CLS, patches] and no register tokens"
        )
    if not _is_identity(model.norm_pre) or not _is_identity(
        getattr(model.patch_embed, "norm", torch.nn.Identity())
    ):
        return "transformers' ViT has no pre-norm / patch-embedding norm"
    if (
        not _is_identity(blk.attn.q_norm)
        or not _is_identity(blk.attn.norm)
        or not _is_identity(getattr(blk.mlp, "norm", torch.nn.Identity()))
    ):
        return "transformers' ViT has no qk-norm or inner attention/MLP norms"
    if len({float(m.eps) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}) != 1:
        return "transformers' ViT uses one layer_norm_eps for every norm"
    if model.num_classes == 0:
        return "the model has no classifier head (num_classes=0)"
    return None


def _hf_state_dict(model) -> dict[str, torch.Tensor]:
    """timm keys -> transformers ViT keys (the serialized "legacy" names every 4.x/5.x version reads).

    Missing biases become zeros and layer scale is folded into the projection it scales: both exact.
    """
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    D = model.embed_dim

    def lin(prefix: str, out: int, gamma: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = sd[prefix + ".weight"], sd.get(prefix + ".bias", torch.zeros(out))
        if gamma is not None:
            w, b = w * gamma[:, None], b * gamma
        return w, b

    pb = sd.get("patch_embed.proj.bias", torch.zeros(D))
    hf = {
        "vit.embeddings.cls_token": sd["cls_token"],
        "vit.embeddings.position_embeddings": sd["pos_embed"],
        "vit.embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
        "vit.embeddings.patch_embeddings.projection.bias": pb,
        "vit.layernorm.weight": sd["norm.weight"],
        "vit.layernorm.bias": sd["norm.bias"],
        "classifier.weight": sd["head.weight"],
        "classifier.bias": sd.get("head.bias", torch.zeros(model.num_classes)),
    }
    for i, blk in enumerate(model.blocks):
        b, h = f"blocks.{i}.", f"vit.encoder.layer.{i}."
        g1 = sd.get(b + "ls1.gamma")
        g2 = sd.get(b + "ls2.gamma")
        qkv_w, qkv_b = lin(b + "attn.qkv", 3 * D)
        (q, k, v), (qb, kb, vb) = qkv_w.split(D), qkv_b.split(D)
        parts = {  # transformers module -> (weight, bias)
            "layernorm_before": (sd[b + "norm1.weight"], sd[b + "norm1.bias"]),
            "attention.attention.query": (q, qb),
            "attention.attention.key": (k, kb),
            "attention.attention.value": (v, vb),
            "attention.output.dense": lin(b + "attn.proj", D, g1),
            "layernorm_after": (sd[b + "norm2.weight"], sd[b + "norm2.bias"]),
            "intermediate.dense": lin(b + "mlp.fc1", blk.mlp.fc1.out_features),
            "output.dense": lin(b + "mlp.fc2", D, g2),
        }
        for name, (w, bias) in parts.items():
            hf[f"{h}{name}.weight"], hf[f"{h}{name}.bias"] = w, bias
    return {k: v.contiguous().clone() for k, v in hf.items()}


def save_transformers(
    model,
    out_dir: str | os.PathLike,
    *,
    label_names: list[str] | None = None,
    overwrite: bool = True,
    force: bool = False,
) -> Path:
    """A ``ViTForImageClassification`` folder + ``preprocessor_config.json`` (AutoModel/AutoImageProcessor).

    Logits equal the timm model's (fp32); the processor reproduces timm's eval transform. Models transformers'
    ViT cannot represent exactly (avg pooling, registers, ...) raise ExportError: export them with save_timm.
    """
    from safetensors.torch import save_file

    from . import outdir

    outdir.check(out_dir, "transformers", force=force, overwrite=overwrite)
    arch, args = model_args_of(model)
    why = _hf_unsupported(model, args)
    if why:
        raise ExportError(f"transformers' ViT cannot represent this model: {why}", _TIMM_REMEDY)
    dc = data_config_of(model)
    hf = _hf_state_dict(model)
    labels = _labels(model, label_names)
    config = {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        "hidden_size": args["embed_dim"],
        "num_hidden_layers": args["depth"],
        "num_attention_heads": args["num_heads"],
        "intermediate_size": model.blocks[0].mlp.fc1.out_features,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": float(model.norm.eps),
        "image_size": args["img_size"],
        "patch_size": args["patch_size"],
        "num_channels": args["in_chans"],
        "qkv_bias": True,
        "encoder_stride": args["patch_size"],
        "id2label": {str(i): n for i, n in enumerate(labels)},
        "label2id": {n: i for i, n in enumerate(labels)},
        "torch_dtype": "float32",
    }
    processor = processor_config(dc)
    card = timm_card(model, arch, library="transformers")

    def write(d: Path) -> None:
        save_file(hf, d / "model.safetensors", metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (d / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
        (d / "README.md").write_text(card)

    return _write_folder(out_dir, "transformers", force, overwrite, write)
