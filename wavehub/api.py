"""The public Python API: create_model, from_learngene, load_learngene, list_learngenes, pull.

The top layer: it resolves through ``wavehub.hub`` (network and verification only), loads through
``wavehub.artifact``, materializes, fits and exports. Nothing below imports it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .artifact import Learngene
from .artifact import load_learngene as _load_folder
from .constants import CONFIG_FILE, TENSOR_FILE
from .errors import ArgumentError, LearngeneNotFoundError

__all__ = [
    "create_model",
    "from_learngene",
    "load_learngene",
    "list_learngenes",
    "resolve_path",
    "pull",
    "known_architecture",
]

_LOADED: dict[tuple, Learngene] = {}  # (path, size, mtime) -> Learngene: skip re-hashing a file we verified


def resolve_path(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    offline: bool | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Name / ``name@rev`` / ``hf-hub:org/repo`` / ``local-dir:PATH`` / path -> a local learngene folder."""
    from . import hub

    return hub.resolve(str(name_or_path), revision=revision, offline=offline, force=force, progress=progress)


def load_learngene(
    name_or_path: str | os.PathLike | Learngene,
    *,
    revision: str | None = None,
    offline: bool | None = None,
    progress: bool = True,
) -> Learngene:
    """Resolve (local path -> bundled -> HF cache -> Hub), validate and load a learngene."""
    if isinstance(name_or_path, Learngene):
        return name_or_path
    from . import hub

    # the hub hashes what it fetched (the digest comes back), the loader then does not hash it again
    t = hub.parse_name(str(name_or_path), revision)
    folder, digest = hub.resolve_target(t, offline=offline, progress=progress)
    tensor_file = folder / TENSOR_FILE if folder.is_dir() else folder
    try:
        st = tensor_file.stat()
    except OSError as e:
        raise LearngeneNotFoundError(f"no learngene at {folder}", path=folder) from e
    cfg = tensor_file.with_name(CONFIG_FILE)
    key = (
        str(tensor_file.resolve()),
        st.st_size,
        st.st_mtime_ns,
        cfg.stat().st_mtime_ns if cfg.exists() else 0,
    )
    lg = _LOADED.get(key)
    if lg is None:
        lg = _load_folder(folder, source=str(name_or_path), sha256=digest)
        _LOADED.clear()  # keep one: a zoo user works with one learngene at a time, and they can be large
        _LOADED[key] = lg
    return lg


def from_learngene(
    learngene: str | os.PathLike | Learngene,
    depth: int | None = None,
    width: int | None = None,
    num_classes: int = 1000,
    *,
    revision: str | None = None,
    offline: bool | None = None,
    device: Any = None,
    dtype: Any = None,
    init: str = "resample",
    seed: int = 0,
    num_heads: int | None = None,
    mlp_ratio: float | None = None,
    patch_size: int | None = None,
    img_size: int | None = None,
    in_chans: int | None = None,
    global_pool: str | None = None,
    class_token: bool | None = None,
    fit: Any = None,
    fit_options: dict | None = None,
    bank: bool | str = True,
    progress: bool = True,
    **timm_kwargs: Any,
):
    """Materialize a stock timm ViT of ``depth`` x ``width`` from a learngene (name, path or object).

    With ``fit=`` (a dataset name, a Dataset or a DataLoader) the WAVE scalers are first fitted on that data
    with the templates frozen (see :func:`wavehub.fit.fit_scalers`; ``fit_options`` go there).
    A learngene with a bank (format v2) starts the target from the entry pre-fitted for its size, or from the
    nearest entry (``model.wavehub_info["bank"]`` says which); ``bank=False`` starts from the aux scalers.
    """
    import torch

    from .device import check_memory, parse_dtype, resolve_device
    from .materialize import build_model, resolve_spec

    dtype = parse_dtype(dtype)  # bad dtype/device strings fail before any download
    dev = resolve_device(device) if device is not None else torch.device("cpu")  # None = CPU, as in timm
    width = _width(width, timm_kwargs.pop("embed_dim", None))
    lg = load_learngene(learngene, revision=revision, offline=offline, progress=progress)
    spec = resolve_spec(
        lg,
        depth,
        width,
        num_classes=num_classes,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        patch_size=patch_size,
        img_size=img_size,
        in_chans=in_chans,
        global_pool=global_pool,
        class_token=class_token,
    )
    check_memory(spec, dtype, dev, training=fit is not None)
    if fit is not None:
        from .fit import fit_scalers

        opts = dict(fit_options or {})
        opts.setdefault("progress", progress)
        return fit_scalers(
            lg, spec, fit, device=dev, init=init, seed=seed, dtype=dtype, bank=bank, **opts, **timm_kwargs
        )
    return build_model(lg, spec, device=dev, dtype=dtype, init=init, seed=seed, bank=bank, **timm_kwargs)


def create_model(
    name: str | os.PathLike | Learngene,
    depth: int | None = None,
    width: int | None = None,
    num_classes: int = 1000,
    *,
    pretrained: bool = True,
    **kwargs: Any,
):
    """``timm.create_model``-style entry point: ``create_model("dinov2s-learngene", depth=8, width=384)``.

    Accepts every option of :func:`from_learngene` and any extra ``timm`` VisionTransformer keyword
    (``drop_path_rate=0.1``, ...); ``embed_dim=`` is ``width=`` (timm's name). Returns a stock
    ``timm.models.VisionTransformer``; ``device=None`` means the CPU, as in timm, with or without ``fit=``.

    ``pretrained=True`` (the default): weights composed from the learngene. ``pretrained=False``: timm's own
    random init of the same architecture, the baseline a learngene is compared with. Its unset fields come from
    what is known without the network (a Learngene object's or a local folder's config, else the zoo card's
    ``architecture`` block, else timm's ViT defaults), so the result never depends on what is cached.

    ``model.wavehub_info`` is the one place a materialized model records where it came from: ``learngene``,
    ``learngene_sha256``, ``method``, ``source``, ``repo_id`` (the learngene's Hub repo, which holds no timm
    weights: timm's ``pretrained_cfg`` has no ``hf_hub_id``), ``init``, ``spec``, ``seed`` and, for WAVE,
    ``depth_rule`` and ``bank``.
    """
    if not isinstance(pretrained, bool):
        raise ArgumentError(
            f"pretrained={pretrained!r} must be True or False",
            "pretrained=True composes the learngene's weights; False is timm's random init.",
            argument="pretrained",
        )
    if not pretrained:
        return _random_init(name, depth, width, num_classes, **kwargs)
    return from_learngene(name, depth, width, num_classes, **kwargs)


def _width(width: int | None, embed_dim: int | None) -> int | None:
    """``embed_dim`` (timm's name) is ``width``; both, and different, is an error rather than a silent pick."""
    if embed_dim is None:
        return width
    if width is not None and width != embed_dim:
        raise ArgumentError(
            f"width={width} and embed_dim={embed_dim} disagree: they name the same thing",
            "Pass one of them.",
            argument="embed_dim",
        )
    return embed_dim


_SPEC_FIELDS = ("num_heads", "mlp_ratio", "patch_size", "img_size", "in_chans", "global_pool", "class_token")
# options of from_learngene that only apply to composing weights; a random init ignores them
_WEIGHT_OPTIONS = (
    "revision",
    "offline",
    "init",
    "seed",
    "fit",
    "fit_options",
    "bank",
    "progress",
    "depth_rule",
)


def known_architecture(name: str | os.PathLike | Learngene) -> dict[str, Any]:
    """The aux architecture of ``name`` as far as it is known without the network (empty if unknown)."""
    if isinstance(name, Learngene):
        return dict(name.aux)
    from .zoo import architecture_of

    return architecture_of(name)


def _random_init(
    name: str | os.PathLike | Learngene, depth: int | None, width: int | None, num_classes: int, **kwargs: Any
):
    """timm's random init of the architecture ``name`` would produce (``create_model(..., pretrained=False)``).
    ``device``/``dtype`` mean what they mean for a learngene; the options that only compose weights are ignored."""
    import torch
    from timm.models.vision_transformer import VisionTransformer

    from .device import parse_dtype, resolve_device
    from .spec import ViTSpec

    dtype = parse_dtype(kwargs.pop("dtype", None))
    device = kwargs.pop("device", None)
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    width = _width(width, kwargs.pop("embed_dim", None))
    for k in _WEIGHT_OPTIONS:
        kwargs.pop(k, None)
    fields = {k: kwargs.pop(k) for k in _SPEC_FIELDS if kwargs.get(k) is not None}
    arch = known_architecture(name)
    defaults = dict(arch)
    if arch.get("width") and arch.get("num_heads"):
        defaults["head_dim"] = arch["width"] // arch["num_heads"]
    spec = ViTSpec(
        depth=depth or arch.get("depth") or 12,
        width=width or arch.get("width") or 384,
        num_classes=num_classes,
        **fields,
    ).resolve(defaults)
    model = VisionTransformer(**(spec.timm_kwargs() | kwargs))
    return model.to(device=dev, dtype=dtype)


def list_learngenes(pattern: str = "*") -> list[str]:
    """Names of the zoo's learngenes matching a glob pattern."""
    from .zoo import list_entries

    return [e.name for e in list_entries(pattern)]


def pull(
    name: str,
    *,
    out: str | os.PathLike | None = None,
    format: str = "timm",
    depth: int | None = None,
    width: int | None = None,
    num_classes: int | None = None,
    revision: str | None = None,
    token: Any = None,
    force: bool = False,
    offline: bool | None = None,
    progress: bool = True,
    **model_kwargs: Any,
) -> Path:
    """Cache a learngene; with ``out`` also write a ready-to-train model folder (``format`` timm|transformers).

    Returns the verified cache folder, or ``out`` when given. ``force`` re-downloads and also replaces an
    ``out`` folder that is not a previous export of that format."""
    from . import hub

    t = hub.parse_name(name, revision)
    if out is None:
        if depth is not None or width is not None:
            raise ArgumentError(
                "depth=/width= need out= (the folder to write the model to)", "Pass out=DIR.", argument="out"
            )
        return hub.pull(name, revision=revision, force=force, offline=offline, progress=progress, token=token)
    if format not in ("timm", "transformers"):
        raise ArgumentError(
            f"format={format!r} is not an export format",
            "Use format='timm' or 'transformers'.",
            argument="format",
        )
    from .outdir import check

    check(out, format, force=force)  # before the download and the materialization
    folder, digest = hub.resolve_target(t, force=force, offline=offline, progress=progress, token=token)
    from .export import save_timm, save_transformers
    from .stages import stages

    with stages(f"export {format}", 2, enabled=progress) as step:
        step("materialize")
        lg = _load_folder(folder, source=str(folder), sha256=digest)
        model = from_learngene(
            lg, depth, width, 1000 if num_classes is None else num_classes, progress=False, **model_kwargs
        )
        model.wavehub_info["learngene"] = t.name
        step(f"write {out}")
        return (save_timm if format == "timm" else save_transformers)(model, out, force=force)
