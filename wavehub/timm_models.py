"""timm registration: one ``wavehub_<name>`` entrypoint per zoo entry (see :func:`wavehub.zoo.timm_name`).

After ``import wavehub``: ``timm.create_model("wavehub_dinov2s_learngene", pretrained=True, depth=8, width=384)``
and ``timm.list_models("wavehub_*")``. timm has no plugin discovery, so this module registers on import, and
``wavehub/__init__`` imports it the moment timm is imported (at once if timm already is), never before.

Every entrypoint goes through timm's own ``build_model_with_cfg``, as timm's ViTs do, so ``features_only=True``
and ``out_indices=`` give timm's ``FeatureGetterNet``; ``pretrained=True`` materializes from the learngene,
``pretrained=False`` is timm's random init of the architecture the zoo card states (see
:func:`wavehub.api.create_model`). The registered ``pretrained_cfg`` has no ``hf_hub_id``: the learngene's repo
holds no timm weights. Where a model came from is in ``model.wavehub_info`` (documented in ``wavehub.api``).
"""

from __future__ import annotations

import sys
from typing import Any

from timm.models import register_model
from timm.models._builder import build_model_with_cfg, pretrained_cfg_for_features
from timm.models._registry import generate_default_cfgs

from .zoo import timm_name

__all__: list[str] = []  # register_model appends every entrypoint name


def _make_entrypoint(zoo_name: str):
    def entrypoint(pretrained: bool = False, **kwargs: Any):
        return _build(zoo_name, pretrained, **kwargs)

    entrypoint.__name__ = timm_name(zoo_name)
    entrypoint.__qualname__ = entrypoint.__name__
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"ViT of any depth/width from the wavehub learngene `{zoo_name}`."
    return entrypoint


def _build(zoo_name: str, pretrained: bool, **kwargs: Any):
    """timm's builder around wavehub's model: it handles ``features_only``/``out_indices`` (a ViT's default
    feature class is timm's getter), the model's ``pretrained_cfg`` is the one wavehub computed for it."""
    from .api import create_model

    kwargs.pop("cache_dir", None)  # nothing is downloaded through timm's cache
    built: dict[str, Any] = {}

    def make(**kw: Any):
        built["model"] = create_model(zoo_name, pretrained=pretrained, **kw)
        return built["model"]

    model = build_model_with_cfg(
        make,
        timm_name(zoo_name),
        pretrained=False,
        feature_cfg=dict(out_indices=kwargs.pop("out_indices", 3), feature_cls="getter"),
        **kwargs,
    )
    cfg = built["model"].pretrained_cfg  # the builder set its registry cfg: put wavehub's back
    built["model"].pretrained_cfg = built["model"].default_cfg = cfg
    if model is not built["model"]:  # features_only: timm's wrapper
        model.pretrained_cfg = model.default_cfg = pretrained_cfg_for_features(cfg)
    return model


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
        # input_size=None: timm's builder must not inject in_chans/img_size defaults; the learngene decides them
        cfgs[f"{fn.__name__}.wavehub"] = dict(
            license=getattr(e, "license", None) or "apache-2.0",
            num_classes=1000,
            input_size=None,
            description=f"wavehub learngene {e.name}",
        )
    global default_cfgs
    default_cfgs = generate_default_cfgs(cfgs)
    for e in entries:
        register_model(getattr(sys.modules[__name__], timm_name(e.name)))


default_cfgs: dict = {}
_register_all()
