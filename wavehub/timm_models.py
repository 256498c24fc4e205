"""timm registration: one ``wavehub_<name>`` entrypoint per zoo entry (``-`` becomes ``_``).

After ``import wavehub``: ``timm.create_model("wavehub_dinov2s_learngene", pretrained=True, depth=8, width=384)``
and ``timm.list_models("wavehub_*")``. timm has no plugin discovery, so this module registers on import, and
``wavehub/__init__`` imports it the moment timm is imported (at once if timm already is), never before.
``pretrained=True`` materializes from the learngene; ``pretrained=False`` gives timm's random init of the same
architecture (the baseline every learngene is compared with).
"""

from __future__ import annotations

import sys
from typing import Any

from timm.models import register_model
from timm.models._registry import generate_default_cfgs

__all__: list[str] = []  # register_model appends every entrypoint name

# Keys timm's factory passes that the learngene route does not use.
_FACTORY_KEYS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "features_only", "out_indices")


def timm_name(name: str) -> str:
    return "wavehub_" + name.replace("-", "_").replace(".", "_")


def _make_entrypoint(zoo_name: str):
    def entrypoint(pretrained: bool = False, **kwargs: Any):
        for k in _FACTORY_KEYS:
            kwargs.pop(k, None)
        if "embed_dim" in kwargs and "width" not in kwargs:
            kwargs["width"] = kwargs.pop("embed_dim")
        if pretrained:
            from .api import create_model

            return create_model(zoo_name, **kwargs)
        return _random_init(zoo_name, **kwargs)

    entrypoint.__name__ = timm_name(zoo_name)
    entrypoint.__qualname__ = entrypoint.__name__
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"ViT of any depth/width from the wavehub learngene `{zoo_name}`."
    return entrypoint


def _random_init(zoo_name: str, depth: int | None = None, width: int | None = None, **kwargs: Any):
    """timm's own random init of the architecture the learngene would produce (offline defaults)."""
    from timm.models.vision_transformer import VisionTransformer

    from .api import load_learngene
    from .materialize import resolve_spec

    fields = {k: kwargs.pop(k) for k in ("num_classes", "num_heads", "mlp_ratio", "patch_size", "img_size",
                                         "in_chans", "global_pool", "class_token") if k in kwargs}
    try:
        lg = load_learngene(zoo_name, offline=True, progress=False)
        spec = resolve_spec(lg, depth, width, **fields)
        return VisionTransformer(**(spec.timm_kwargs() | kwargs))
    except Exception:  # noqa: BLE001 - not cached: fall back to timm's defaults for unset fields
        from .spec import ViTSpec

        spec = ViTSpec(depth=depth or 12, width=width or 384, **fields).resolve({})
        return VisionTransformer(**(spec.timm_kwargs() | kwargs))


def _register_all() -> None:
    try:
        from .zoo import list_entries

        entries = list_entries("*")
    except Exception:  # noqa: BLE001 - a broken zoo must not break `import wavehub`
        return
    cfgs = {}
    for e in entries:
        fn = _make_entrypoint(e.name)
        setattr(sys.modules[__name__], fn.__name__, fn)
        cfg = dict(license=getattr(e, "license", None) or "apache-2.0", num_classes=1000,
                   description=f"wavehub learngene {e.name}")
        if getattr(e, "repo_id", None):
            cfg["hf_hub_id"] = e.repo_id
        cfgs[f"{fn.__name__}.wavehub"] = cfg
    global default_cfgs
    default_cfgs = generate_default_cfgs(cfgs)
    for e in entries:
        register_model(getattr(sys.modules[__name__], timm_name(e.name)))


default_cfgs: dict = {}
_register_all()
