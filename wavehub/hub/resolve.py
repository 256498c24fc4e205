"""Name -> a verified local folder: local path -> bundled -> HF cache at the pinned revision -> Hub.

A pinned target (a zoo name at its card's revision, or a commit sha) found intact in the cache is served
without any request; anything else asks the Hub, which also repairs a corrupted cached copy once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifact import validate_folder
from ..errors import IntegrityError, OfflineError, WavehubError
from .download import fetch
from .names import Target, is_offline, parse_name
from .verify import evict, verify

__all__ = ["resolve", "pull", "resolve_target"]


def resolve(
    name: str,
    *,
    revision: str | None = None,
    offline: bool | None = None,
    force: bool = False,
    progress: bool = True,
    token: Any = None,
) -> Path:
    """A local folder holding ``name`` with its hashes checked (the zoo pin, the blob names, config.json).

    The tensors themselves are checked when the folder is loaded (or by :func:`pull`): a resolve stays free of
    torch, so it is safe in a forked process and costs one hash."""
    t = parse_name(name, revision)
    return resolve_target(t, offline=offline, force=force, progress=progress, token=token)[0]


def pull(
    name: str,
    *,
    revision: str | None = None,
    force: bool = False,
    offline: bool | None = None,
    progress: bool = True,
    token: Any = None,
) -> Path:
    """Download (if needed) and verify a learngene into the HF cache; returns its folder.

    "Verified" means it passed every check the loader makes (hash once, then the artifact layer's validator).
    Network and verification only: writing a model folder from it is :func:`wavehub.pull` with ``out=``."""
    return resolve_target(
        parse_name(name, revision), offline=offline, force=force, progress=progress, token=token, full=True
    )[0]


def resolve_target(
    t: Target,
    *,
    offline: bool | None = None,
    force: bool = False,
    progress: bool = True,
    token: Any = None,
    full: bool = False,
) -> tuple[Path, str | None]:
    """The folder for ``t`` and the tensor file's sha256 the hub checked (None for a local folder, which the
    loader hashes itself); ``full`` also runs the artifact layer's validator. A loader takes the digest, so each
    file is hashed and parsed once."""
    if t.path is not None:
        if full:  # a folder or the bundled copy: what load checks, hash included
            validate_folder(t.path)
        return t.path, None
    off = is_offline(offline)
    if off and force:
        raise OfflineError(
            "force=True re-downloads, which offline mode forbids",
            "Unset HF_HUB_OFFLINE.",
            repo_id=t.repo_id,
            revision=t.revision,
        )
    with _progress(progress):
        if t.pinned and not off and not force:
            try:
                folder, digest = fetch(t, offline=True, force=False, token=token)
                return folder, verify(folder, t, digest, full=full)
            except WavehubError:
                pass  # not cached (or damaged): ask the Hub
        folder, digest = fetch(t, offline=off, force=force, token=token)
        try:
            digest = verify(folder, t, digest, full=full)
        except (
            IntegrityError
        ) as e:  # bytes differ from their hash: a bad copy (a consistent-but-bad one is not)
            if off:
                raise IntegrityError(
                    f"the cached copy is corrupted ({e.message}) and offline mode forbids a re-download",
                    **e.fields(),
                ) from e
            evict(folder)  # repair once: a clean copy, then verify again
            folder, digest = fetch(t, offline=False, force=True, token=token)
            digest = verify(folder, t, digest, full=full)
    return folder, digest


class _progress:
    """Turn huggingface_hub's progress bars off for a quiet call, restoring the previous state after."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

        self.was_disabled = are_progress_bars_disabled()
        if not self.on:
            disable_progress_bars()

    def __exit__(self, *exc):
        from huggingface_hub.utils import enable_progress_bars

        if not self.on and not self.was_disabled:
            enable_progress_bars()
