"""The client's exceptions -> wavehub's typed errors, with the repo, revision and HTTP status as fields."""

from __future__ import annotations

import errno
from pathlib import Path

from ..errors import (
    AuthError,
    DownloadError,
    EntryNotFoundError,
    HubError,
    LearngeneNotFoundError,
    OfflineError,
    RevisionNotFoundError,
    WavehubError,
)
from .names import Target

__all__ = ["map_hub_error", "disk_full", "transport_errors", "http_status"]


def http_status(e: BaseException) -> int | None:
    """The HTTP status of a client exception that carries a response (None otherwise)."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def map_hub_error(e: BaseException, t: Target, action: str = "downloading") -> WavehubError:
    """One typed error for a client exception; the caller raises it ``from e`` so the cause stays visible."""
    from huggingface_hub import errors as hf

    where = f"{t.repo_id}@{t.revision}"
    status = http_status(e)
    kw = dict(repo_id=t.repo_id, revision=t.revision, status=status)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return disk_full(t, 0)
    if isinstance(e, hf.GatedRepoError):
        return AuthError(f"{where} is gated or private and this token cannot read it", **kw)
    if isinstance(e, hf.RepositoryNotFoundError):
        if status == 401:
            return AuthError(f"{t.repo_id} was not found or needs a token (HTTP 401)", **kw)
        return LearngeneNotFoundError(
            f"repo {t.repo_id} was not found on the Hub",
            "Check the repo id; `wavehub list` shows the zoo.",
            **kw,
        )
    if isinstance(e, hf.RevisionNotFoundError):
        return RevisionNotFoundError(f"revision {t.revision!r} of {t.repo_id} was not found", **kw)
    if isinstance(e, hf.LocalEntryNotFoundError):
        return OfflineError(
            f"{t.name} ({where}) is not in the cache and the Hub cannot be reached (offline)",
            f"Run `wavehub pull {t.name}` on a connected machine, or use the bundled `dinov2s-learngene`.",
            **kw,
        )
    if isinstance(e, hf.EntryNotFoundError):
        return EntryNotFoundError(f"{where} has no {getattr(e, 'filename', None) or 'required file'}", **kw)
    if isinstance(e, hf.OfflineModeIsEnabled):
        return OfflineError(f"{t.name} is not cached and offline mode is on", **kw)
    if isinstance(e, hf.HfHubHTTPError):
        if status in (401, 403):
            return AuthError(f"{where}: access denied (HTTP {status})", **kw)
        return HubError(f"the Hub answered HTTP {status} for {where}: {str(e).splitlines()[0][:160]}", **kw)
    cls = DownloadError if action == "downloading" else HubError
    return cls(
        f"{action} {where} failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}", **kw
    )


def disk_full(t: Target, size: int) -> DownloadError:
    """Disk full: how much the download needs and where (the cache folder), not a generic "retry"."""
    import shutil

    from huggingface_hub import constants

    where = Path(constants.HF_HUB_CACHE)
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        free = 0
    need = max(size - free, 0) + (1 << 20)
    return DownloadError(
        f"the disk holding {where} is full: {t.repo_id}@{t.revision} needs {size / 1e6:.1f} MB "
        f"and {free / 1e6:.1f} MB are free",
        f"Free at least {need / 1e6:.0f} MB in {where} (or point HF_HUB_CACHE at a bigger "
        "disk), then retry; `wavehub cache ls` shows what the cache holds.",
        repo_id=t.repo_id,
        revision=t.revision,
        path=where,
    )


def transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the Hub cannot be reached" (huggingface_hub 2.x uses httpx2, 1.x httpx)."""
    import importlib

    errs: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for mod in ("httpx2", "httpx"):
        try:
            errs.append(importlib.import_module(mod).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errs)
