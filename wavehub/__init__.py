"""wavehub: learngenes served like pretrained weights.

``wavehub.create_model("dinov2s-learngene", depth=8, width=384)`` returns a stock timm ``VisionTransformer``
whose weights are composed from the learngene's size-agnostic templates. Importing wavehub registers every zoo
entry with timm (``timm.create_model("wavehub_dinov2s_learngene", pretrained=True, depth=8, width=384)``).
Everything else is imported lazily, so ``import wavehub`` costs little more than ``import timm``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__", "create_model", "from_learngene", "load_learngene", "list_learngenes", "pull", "push",
    "save_timm", "save_transformers", "Learngene", "ViTSpec", "errors",
]

_LAZY = {
    "create_model": "wavehub.api",
    "from_learngene": "wavehub.api",
    "load_learngene": "wavehub.api",
    "list_learngenes": "wavehub.api",
    "pull": "wavehub.hub",
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


def _register_with_timm() -> None:
    # Registration is what makes `timm.create_model("wavehub_<name>")` work; a broken zoo must not break import.
    try:
        from . import timm_models  # noqa: F401
    except ImportError:
        pass


_register_with_timm()
