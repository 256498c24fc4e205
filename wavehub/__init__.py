"""wavehub: learngenes served like pretrained weights.

``wavehub.create_model("dinov2s-learngene", depth=8, width=384)`` returns a stock timm ``VisionTransformer``
whose weights are composed from the learngene's size-agnostic templates. Every zoo entry is registered with timm
(``timm.create_model("wavehub_dinov2s_learngene", pretrained=True, depth=8, width=384)``) as soon as timm is
imported, and not before: ``import wavehub`` imports neither torch nor timm, so the CLI answers at once.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "create_model",
    "from_learngene",
    "load_learngene",
    "list_learngenes",
    "pull",
    "push",
    "save_timm",
    "save_transformers",
    "Learngene",
    "ViTSpec",
    "errors",
]

_LAZY = {
    "create_model": "wavehub.api",
    "from_learngene": "wavehub.api",
    "load_learngene": "wavehub.api",
    "list_learngenes": "wavehub.api",
    "pull": "wavehub.api",
    "push": "wavehub.hub",
    "save_timm": "wavehub.export",
    "save_transformers": "wavehub.export",
    "Learngene": "wavehub.artifact",
    "ViTSpec": "wavehub.spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "errors":
        return importlib.import_module("wavehub.errors")
    raise AttributeError(f"module 'wavehub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


class _TimmHook:
    """A one-shot import hook: when timm is first imported, register the zoo's entrypoints right after it loads.

    timm has no plugin discovery, so ``timm.create_model("wavehub_<name>")`` needs wavehub's entrypoints in timm's
    registry; importing timm for that on ``import wavehub`` cost every CLI command seconds. This registers them
    only in processes that import timm anyway (a process that already has timm registers at once)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None):
        if name != "timm":
            return None
        _remove_hook()
        import importlib.util

        spec = importlib.util.find_spec("timm")
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader:
    """timm's own loader; after timm's ``__init__`` has run, register the zoo with it."""

    def __init__(self, loader: Any):
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # resource readers and the rest behave as timm's loader
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        _register_with_timm()


def _remove_hook() -> None:
    import sys

    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TimmHook)]


def _register_with_timm() -> None:
    # Registration is what makes `timm.create_model("wavehub_<name>")` work; a broken zoo must not break import.
    try:
        from . import timm_models  # noqa: F401
    except Exception:  # noqa: BLE001
        pass


def _install_timm_hook() -> None:
    import sys

    if "timm" in sys.modules:
        _register_with_timm()
    elif not any(isinstance(f, _TimmHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TimmHook())


_install_timm_hook()
