"""Downloads through ``huggingface_hub``: the tree listing, the files, and the cache fallback.

A pull costs one tree listing more than the bare client, sent while the tensor file downloads: it refuses
unsafe paths and doubles as the reachability probe, so a connection failure falls back to the cache at once
instead of waiting out the client's back-off; an HTTP 429/5xx is retried a few times, then the cache is served
with a warning or the error reported without waiting for the download. The tensor file is hashed on a thread
while the small files download. A snapshot must be named by a 40-hex commit.
"""

from __future__ import annotations

import errno
import warnings
from pathlib import Path
from typing import Any

from ..artifact import MAX_HEADER_BYTES, parse_json, sha256_file
from ..constants import BANK_FILE, CARD_FILE, CONFIG_FILE, TENSOR_FILE
from ..errors import (
    ArtifactError,
    ArtifactFormatError,
    DownloadError,
    EntryNotFoundError,
    HubError,
    OfflineError,
    WavehubError,
)
from .mapping import disk_full, map_hub_error, transport_errors
from .names import REQUIRED, SHA1, Target, check_repo_paths
from .threads import background

__all__ = ["fetch", "download_file", "LIST_RETRY_WAITS", "RETRY_STATUS"]


def download_file(t: Target, filename: str, *, offline: bool, force: bool, token: Any) -> Path:
    from huggingface_hub import hf_hub_download

    from .. import __version__

    path = Path(
        hf_hub_download(
            t.repo_id,
            filename,
            revision=t.revision,
            library_name="wavehub",
            library_version=__version__,
            local_files_only=offline,
            force_download=force,
            token=token,
        )
    )
    _check_snapshot(path, t)
    return path


def _check_snapshot(path: Path, t: Target) -> None:
    """The snapshot folder is named after the commit the server sent (X-Repo-Commit) or a ref file holds: only a
    40-hex commit name is a cache folder; anything else is dropped (with the ref naming it) and refused."""
    commit = path.parent.name
    if SHA1.match(commit) and path.parent.parent.name == "snapshots":
        return
    storage = path.parent.parent.parent if path.parent.parent.name == "snapshots" else None
    if storage is not None:
        import shutil

        shutil.rmtree(path.parent, ignore_errors=True)
        ref = storage / "refs" / t.revision
        try:
            if ref.is_file() and ref.read_text().strip() == commit:
                ref.unlink()
        except OSError:
            pass
    raise HubError(
        f"the Hub named the commit of {t.repo_id}@{t.revision} {commit[:60]!r}, not a 40-hex commit "
        "id; refusing to use it",
        "Check HF_ENDPOINT: a genuine Hub or mirror sends commit ids.",
        repo_id=t.repo_id,
        revision=t.revision,
    )


# waits before each retry of a listing the Hub answered with 429/5xx (the HF client retries those too, with
# back-off); a connection failure is not retried: an unreachable Hub must fall back to the cache at once
LIST_RETRY_WAITS = (0.5, 1.0, 2.0)
RETRY_STATUS = (429, 500, 502, 503, 504)


class _HubUnavailable(Exception):
    """The Hub answered the listing with 429/5xx after every retry (it is reachable but failing)."""

    def __init__(self, status: int, tries: int):
        super().__init__(f"HTTP {status}")
        self.status, self.tries = status, tries


def _get_page(url: str, params: dict | None, headers: dict, t: Target):
    import time

    from huggingface_hub import constants
    from huggingface_hub.utils import get_session, hf_raise_for_status

    for i in range(len(LIST_RETRY_WAITS) + 1):
        r = get_session().get(url, params=params, headers=headers, timeout=constants.HF_HUB_ETAG_TIMEOUT)
        if r.status_code not in RETRY_STATUS:
            hf_raise_for_status(r)
            return r
        if i < len(LIST_RETRY_WAITS):
            time.sleep(LIST_RETRY_WAITS[i])
    raise _HubUnavailable(r.status_code, len(LIST_RETRY_WAITS) + 1)


def _list_files(t: Target, token: Any) -> dict[str, int]:
    """The repo's files at the revision with their sizes (one request per 1000 files), checked for unsafe paths
    and the required files. A 429/5xx answer is retried with back-off; a connection failure is not."""
    from urllib.parse import quote

    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers

    from .. import __version__

    headers = build_hf_headers(token=token, library_name="wavehub", library_version=__version__)
    url: str | None = f"{constants.ENDPOINT}/api/models/{t.repo_id}/tree/{quote(t.revision, safe='')}"
    params: dict | None = {"recursive": "true", "expand": "false"}
    entries: list[dict] = []
    while url:
        r = _get_page(url, params, headers, t)
        try:
            page = parse_json(r.content, "the Hub's file list", MAX_HEADER_BYTES)
        except ArtifactFormatError:
            page = None
        if not isinstance(page, list) or not all(isinstance(e, dict) for e in page):
            raise HubError(
                f"the Hub sent an unexpected file list for {t.repo_id}@{t.revision}",
                repo_id=t.repo_id,
                revision=t.revision,
                status=r.status_code,
            )
        entries += page
        url, params = r.links.get("next", {}).get("url"), None
    check_repo_paths([str(e.get("path", "")) for e in entries])
    files = {
        str(e["path"]): e.get("size") if isinstance(e.get("size"), int) else 0
        for e in entries
        if e.get("type") == "file"
    }
    missing = [f for f in REQUIRED if f not in files]
    if missing:
        raise EntryNotFoundError(
            f"{t.repo_id}@{t.revision} has no {missing[0]}: it is not a wavehub learngene",
            repo_id=t.repo_id,
            revision=t.revision,
        )
    return files


def _lists_bank(config_path: Path) -> bool:
    try:
        return "bank" in parse_json(config_path.read_bytes(), CONFIG_FILE)
    except (OSError, ArtifactError):
        return False  # verify reports a bad config.json with its own message


def _get_small_files(
    t: Target, tensor_path: Path, *, card: bool, offline: bool, force: bool, token: Any
) -> tuple[Path, str]:
    """config.json and the card, while the tensor file is hashed on a thread (hashlib drops the GIL)."""
    kw = dict(offline=offline, force=force, token=token)
    hashed = background(sha256_file, tensor_path)
    try:
        config_path = download_file(t, CONFIG_FILE, **kw)
        if _lists_bank(config_path):  # format v2: the pre-fitted scalers per size live beside the templates
            download_file(t, BANK_FILE, **kw)
        if card:
            try:
                download_file(t, CARD_FILE, **kw)
            except Exception:  # noqa: BLE001 - the model card is optional
                pass
    finally:
        sha = hashed()
    if tensor_path.parent != config_path.parent:  # a branch moved between the two HEAD requests
        raise DownloadError(
            f"{t.repo_id}@{t.revision} changed during the download",
            "Retry `wavehub pull`.",
            repo_id=t.repo_id,
            revision=t.revision,
        )
    return tensor_path.parent, sha


def _get_files(t: Target, *, card: bool, offline: bool, force: bool, token: Any) -> tuple[Path, str]:
    """Fetch the tensor file, then hash it on a thread while the small files download. (Downloading all three
    at once was slower: the threads fight over the GIL during the big transfer.)"""
    tensor_path = download_file(t, TENSOR_FILE, offline=offline, force=force, token=token)
    return _get_small_files(t, tensor_path, card=card, offline=offline, force=force, token=token)


def _fetch_online(t: Target, *, force: bool, token: Any) -> tuple[Path, str]:
    """The tree listing and the tensor download at once, then the small files while the tensor file is hashed.

    The listing is the reachability probe: if it cannot connect (or the Hub keeps answering 429/5xx), the
    download thread (which would back off for many seconds) is abandoned and the cache answers at once. It also
    refuses a repo with unsafe paths or without the required files before anything is served from it."""
    download = background(download_file, t, TENSOR_FILE, offline=False, force=force, token=token, quiet=True)
    try:
        files = _list_files(t, token)
    except (_HubUnavailable, *transport_errors()) as e:  # the download is abandoned (daemon, muted)
        from huggingface_hub import constants

        failing = isinstance(e, _HubUnavailable)
        why = (
            f"answered HTTP {e.status} {e.tries} times"
            if failing
            else f"cannot be reached ({type(e).__name__})"
        )
        try:
            cached = _get_files(t, card=True, offline=True, force=False, token=token)
        except Exception:  # noqa: BLE001 - not cached either
            if failing:
                raise HubError(
                    f"the Hub at {constants.ENDPOINT} {why} for {t.repo_id}@{t.revision} and "
                    f"{t.name} is not in the cache",
                    "The Hub is failing, not your setup: retry later, or use the bundled "
                    "`dinov2s-learngene`.",
                    repo_id=t.repo_id,
                    revision=t.revision,
                    status=e.status,
                ) from e
            raise OfflineError(
                f"the Hub at {constants.ENDPOINT} {why} and {t.name} is not in the cache",
                f"Check your network and HF_ENDPOINT, or run `wavehub pull {t.name}` on a connected machine; "
                "the bundled `dinov2s-learngene` always works offline.",
                repo_id=t.repo_id,
                revision=t.revision,
            ) from e
        warnings.warn(f"the Hub {why}; using the cached {t.name}", stacklevel=4)
        return cached
    except (
        BaseException
    ):  # refused (unsafe paths, missing files) or not found: let the download settle first,
        try:  # so no request of ours outlives the call (a 404 ends it at once)
            download()
        except BaseException:  # noqa: BLE001 - the listing's error is the one to report
            pass
        raise
    download.unmute()  # the Hub answered: the download's own warnings matter again
    try:
        tensor_path = download()
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise disk_full(t, files.get(TENSOR_FILE, 0)) from e
        raise
    return _get_small_files(t, tensor_path, card=CARD_FILE in files, offline=False, force=force, token=token)


def fetch(t: Target, *, offline: bool, force: bool, token: Any) -> tuple[Path, str]:
    """The snapshot folder for ``t`` (downloaded if needed) and the sha256 of its tensor file.

    Online, an unreachable Hub falls back to the cache (as every HF library does); nothing cached then
    raises OfflineError at once, without the client's retry loop."""
    try:
        if offline:
            return _get_files(t, card=True, offline=True, force=False, token=token)
        return _fetch_online(t, force=force, token=token)
    except WavehubError:
        raise
    except Exception as e:  # noqa: BLE001 - every client failure becomes a typed error
        raise map_hub_error(e, t) from e
