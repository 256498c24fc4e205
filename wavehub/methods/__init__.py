"""Pure tensor code for each learngene method, and the registry that names them. No files, no network.

Every method is one module here, named in :data:`METHODS`, whose functions and constants fill its
:class:`~wavehub.methods.base.Method` record (:meth:`~wavehub.methods.base.Method.of_module`). The rest of
wavehub looks a method up with :func:`get_method` instead of branching on its name, so adding a method is one
new module and one name in :data:`METHODS`. This package imports nothing of wavehub but :mod:`wavehub.errors`
(checked by tests/test_layers.py): artifact.py and hub.py do I/O, materialize.py builds models, and all of
them may use it.
"""

from __future__ import annotations

from ..errors import SpecError
from . import select, tleg, wave
from .base import Method, Target

__all__ = ["Method", "Target", "METHODS", "get_method"]

#: Every method wavehub knows, by its name in config.json (filled once, at import).
METHODS: dict[str, Method] = {m.name: m for m in map(Method.of_module, (wave, tleg, select))}


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name is a SpecError listing the known ones."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise SpecError(f"unknown method {name!r}", f"Use one of {', '.join(METHODS)}.") from None
