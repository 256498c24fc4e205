"""Export a materialized model: a timm ``local-dir:``/``hf-hub:`` folder, or a transformers ViT folder.

The timm folder needs no wavehub to load: ``config.json`` names a stock timm architecture with complete
``model_args`` (``num_classes`` only at the top level, where timm lets a caller override it), plus
``model.safetensors`` and a model card. Folders are written into a temp dir and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import ExportError

__all__ = ["model_args_of", "save_timm", "save_transformers", "timm_card"]

_DEFAULT_MEAN, _DEFAULT_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def model_args_of(model) -> tuple[str, dict[str, Any]]:
    """A registered timm ViT name and the kwargs that rebuild exactly this VisionTransformer."""
    from timm.models.vision_transformer import VisionTransformer

    if not isinstance(model, VisionTransformer):
        raise ExportError(f"can only export timm VisionTransformer models, got {type(model).__name__}",
                          "Pass the model returned by wavehub.create_model.")
    pe = model.patch_embed
    blk = model.blocks[0]
    init_values = None
    if hasattr(blk, "ls1") and hasattr(blk.ls1, "gamma"):
        init_values = float(blk.ls1.gamma.detach().flatten()[0])
    args = {
        "img_size": int(pe.img_size[0]), "patch_size": int(pe.patch_size[0]), "in_chans": int(pe.proj.in_channels),
        "embed_dim": int(model.embed_dim), "depth": len(model.blocks), "num_heads": int(blk.attn.num_heads),
        "mlp_ratio": blk.mlp.fc1.out_features / model.embed_dim, "qkv_bias": blk.attn.qkv.bias is not None,
        "class_token": model.cls_token is not None, "global_pool": model.global_pool or "",
        "no_embed_class": bool(getattr(model, "no_embed_class", False)),
        "reg_tokens": int(getattr(model, "num_reg_tokens", 0)),
        "fc_norm": not isinstance(model.fc_norm, torch.nn.Identity),
    }
    if init_values is not None:
        args["init_values"] = init_values
    p = args["patch_size"]
    arch = f"vit_base_patch{p}_224" if p in (8, 14, 16, 32) else "vit_base_patch16_224"
    return arch, args


def _pretrained_cfg(model, arch: str) -> dict[str, Any]:
    src = dict(getattr(model, "pretrained_cfg", None) or {})
    c = model.patch_embed.proj.in_channels
    s = model.patch_embed.img_size[0]
    mean = tuple(src.get("mean", _DEFAULT_MEAN))
    std = tuple(src.get("std", _DEFAULT_STD))
    if len(mean) != c:
        mean, std = (float(sum(mean) / len(mean)),) * c, (float(sum(std) / len(std)),) * c
    return {
        "architecture": arch, "input_size": [c, s, s], "fixed_input_size": True,
        "interpolation": src.get("interpolation", "bicubic"), "crop_pct": float(src.get("crop_pct", 1.0)),
        "crop_mode": src.get("crop_mode", "center"), "mean": list(mean), "std": list(std),
        "num_classes": model.num_classes, "first_conv": "patch_embed.proj", "classifier": "head",
        "license": src.get("license", "apache-2.0"),
    }


def timm_card(model, arch: str, extra: dict | None = None) -> str:
    import yaml

    info = dict(getattr(model, "wavehub_info", None) or {})
    meta = {"library_name": "timm", "license": (getattr(model, "pretrained_cfg", None) or {}).get("license", "apache-2.0"),
            "tags": ["image-classification", "timm", "wavehub", "learngene"], "pipeline_tag": "image-classification"}
    base = info.get("repo_id") or info.get("learngene")
    if base and "/" in str(base):
        meta["base_model"] = base
    meta.update(extra or {})
    _, args = model_args_of(model)
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
        f"# ViT depth {args['depth']}, width {args['embed_dim']} from a learngene", "",
        f"A stock timm `VisionTransformer` materialized by [wavehub](https://github.com/wavehub/wavehub) from "
        f"the learngene `{info.get('learngene', 'unknown')}` (method: {info.get('method', 'n/a')}, sha256 "
        f"`{str(info.get('learngene_sha256'))[:16]}...`). It holds no wavehub code.", "",
        f"- depth {args['depth']}, width {args['embed_dim']}, {args['num_heads']} heads, patch {args['patch_size']}, "
        f"{args['img_size']} px, {model.num_classes} classes",
        f"- parameters: {sum(p.numel() for p in model.parameters()):,}", "",
    ]
    if getattr(model, "wavehub_fit", None):
        lines += ["## Scaler fitting", "", "```json", json.dumps(model.wavehub_fit, indent=2, default=str), "```", ""]
    lines += ["## Usage", "", "```python", "import timm",
              'model = timm.create_model("local-dir:THIS_FOLDER", pretrained=True)   # or "hf-hub:org/repo"',
              "```", "", "Fine-tune with timm's `train.py`: `--model local-dir:THIS_FOLDER --pretrained`.", ""]
    return "\n".join(lines)


def _atomic_dir(out_dir: str | os.PathLike, overwrite: bool, write) -> Path:
    """Write into a temp dir beside ``out_dir`` and rename it into place; never leave a partial folder."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        if not (out / "config.json").is_file():
            raise ExportError(f"{out} exists and is not an exported model folder", "Choose another --out DIR.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def save_timm(model, out_dir: str | os.PathLike, *, card_extra: dict | None = None, overwrite: bool = True) -> Path:
    """A timm folder: ``timm.create_model("local-dir:DIR", pretrained=True)`` rebuilds this exact model."""
    from safetensors.torch import save_file

    arch, args = model_args_of(model)
    cfg = {"architecture": arch, "num_classes": model.num_classes, "num_features": model.num_features,
           "global_pool": args["global_pool"] or None, "model_args": args, "pretrained_cfg": _pretrained_cfg(model, arch)}
    info = getattr(model, "wavehub_info", None)
    if info:
        cfg["wavehub"] = {k: v for k, v in info.items() if k in ("learngene", "learngene_sha256", "method", "init",
                                                                    "repo_id", "seed")}
    sd = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}

    def write(d: Path) -> None:
        save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        (d / "README.md").write_text(timm_card(model, arch, card_extra))
        if getattr(model, "wavehub_fit", None):
            (d / "fit.json").write_text(json.dumps(model.wavehub_fit, indent=2, default=str) + "\n")

    return _atomic_dir(out_dir, overwrite, write)


def _hf_unsupported(model, args: dict) -> str | None:
    if not args["class_token"] or args["global_pool"] != "token":
        return "transformers' ViT classifies from the class token; this model uses global_pool=" + repr(args["global_pool"])
    if args["fc_norm"]:
        return "transformers' ViT has no fc_norm"
    if "init_values" in args:
        return "transformers' ViT has no layer scale"
    if args["reg_tokens"] or args["no_embed_class"]:
        return "transformers' ViT has no register tokens / no_embed_class"
    if model.num_classes == 0:
        return "the model has no classifier head (num_classes=0)"
    if not args["qkv_bias"]:
        return "qkv_bias=False"
    return None


def save_transformers(model, out_dir: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """A ``ViTForImageClassification`` folder + ``preprocessor_config.json`` (AutoModel/AutoImageProcessor)."""
    from safetensors.torch import save_file

    arch, args = model_args_of(model)
    why = _hf_unsupported(model, args)
    if why:
        raise ExportError(f"transformers' ViT cannot represent this model: {why}",
                          "Use save_timm(model, DIR) (or --format timm): transformers loads that folder through "
                          "AutoModelForImageClassification (TimmWrapper).")
    D, L = args["embed_dim"], args["depth"]
    pc = _pretrained_cfg(model, arch)
    sd = model.state_dict()
    hf: dict[str, torch.Tensor] = {
        "vit.embeddings.cls_token": sd["cls_token"], "vit.embeddings.position_embeddings": sd["pos_embed"],
        "vit.embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
        "vit.embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
        "vit.layernorm.weight": sd["norm.weight"], "vit.layernorm.bias": sd["norm.bias"],
        "classifier.weight": sd["head.weight"], "classifier.bias": sd["head.bias"],
    }
    for i in range(L):
        b, h = f"blocks.{i}.", f"vit.encoder.layer.{i}."
        q, k, v = sd[b + "attn.qkv.weight"].split(D)
        qb, kb, vb = sd[b + "attn.qkv.bias"].split(D)
        hf.update({
            h + "layernorm_before.weight": sd[b + "norm1.weight"], h + "layernorm_before.bias": sd[b + "norm1.bias"],
            h + "attention.attention.query.weight": q, h + "attention.attention.query.bias": qb,
            h + "attention.attention.key.weight": k, h + "attention.attention.key.bias": kb,
            h + "attention.attention.value.weight": v, h + "attention.attention.value.bias": vb,
            h + "attention.output.dense.weight": sd[b + "attn.proj.weight"],
            h + "attention.output.dense.bias": sd[b + "attn.proj.bias"],
            h + "layernorm_after.weight": sd[b + "norm2.weight"], h + "layernorm_after.bias": sd[b + "norm2.bias"],
            h + "intermediate.dense.weight": sd[b + "mlp.fc1.weight"], h + "intermediate.dense.bias": sd[b + "mlp.fc1.bias"],
            h + "output.dense.weight": sd[b + "mlp.fc2.weight"], h + "output.dense.bias": sd[b + "mlp.fc2.bias"],
        })
    hf = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in hf.items()}
    config = {
        "architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": D,
        "num_hidden_layers": L, "num_attention_heads": args["num_heads"],
        "intermediate_size": model.blocks[0].mlp.fc1.out_features, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
        "layer_norm_eps": float(model.norm.eps), "image_size": args["img_size"], "patch_size": args["patch_size"],
        "num_channels": args["in_chans"], "qkv_bias": True, "encoder_stride": args["patch_size"],
        "id2label": {str(i): f"LABEL_{i}" for i in range(model.num_classes)},
        "label2id": {f"LABEL_{i}": i for i in range(model.num_classes)}, "torch_dtype": "float32",
    }
    resample = {"bicubic": 3, "bilinear": 2, "nearest": 0}.get(pc["interpolation"], 3)
    size = args["img_size"]  # ViTImageProcessor resizes straight to the model size (timm's crop_pct=1.0 transform)
    processor = {
        "image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
        "resample": resample, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": pc["mean"], "image_std": pc["std"], "do_convert_rgb": args["in_chans"] == 3,
    }

    def write(d: Path) -> None:
        save_file(hf, d / "model.safetensors", metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (d / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
        (d / "README.md").write_text(timm_card(model, arch, {"library_name": "transformers"}).replace(
            'timm.create_model("local-dir:THIS_FOLDER", pretrained=True)   # or "hf-hub:org/repo"',
            'transformers.AutoModelForImageClassification.from_pretrained("THIS_FOLDER")').replace(
            "import timm", "import transformers"))

    return _atomic_dir(out_dir, overwrite, write)
