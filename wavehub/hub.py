"""Everything that talks to the network: resolve, pull, push and the cache, through ``huggingface_hub``.

Resolution order for a name: local path -> bundled -> HF cache at the pinned revision -> Hub. Downloads use
``hf_hub_download`` with ``library_name="wavehub"``, so ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_ENDPOINT``,
``HF_TOKEN``, mirrors and ``HF_HUB_OFFLINE`` behave as in every Hugging Face library. The client does not check
content hashes, so wavehub does: against the zoo card, the LFS blob name and the artifact's own config.

A pull costs one tree listing more than the bare client, sent while the tensor file downloads (it refuses
unsafe paths and doubles as the reachability probe: a connection failure falls back to the cache at once instead
of the client's ~23 s back-off; an HTTP 429/5xx is retried a few times, then the cache is served with a warning
or the error reported without waiting for the download), plus one sha256 of the tensor file, overlapped with
the small downloads. Repo ids and revisions are checked before any request, and a snapshot must be named by a
40-hex commit, so nothing a server sends can place a file outside the cache. A zoo name at its pinned revision (or a commit sha) that is intact in the cache costs no
request at all.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .artifact import (
    CARD_FILE,
    CONFIG_FILE,
    MAX_CONFIG_BYTES,
    MAX_HEADER_BYTES,
    TENSOR_FILE,
    expected_shapes,
    load_learngene,
    parse_json,
    sha256_file,
    validate_config,
    validate_tensors,
)
from .bank import BANK_FILE, read_bank
from .errors import (
    ArtifactError,
    ArtifactFormatError,
    AuthError,
    DownloadError,
    EntryNotFoundError,
    HubError,
    IntegrityError,
    LearngeneNotFoundError,
    OfflineError,
    RevisionNotFoundError,
    WavehubError,
)

__all__ = ["Target", "parse_name", "resolve", "pull", "push", "is_offline", "cache_ls", "cache_verify", "cache_rm",
           "cache_clean", "check_repo_paths", "check_repo_id", "check_revision"]

REQUIRED = (CONFIG_FILE, TENSOR_FILE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
# the Hub's own rule (huggingface_hub.utils.validate_repo_id): org/name, each part alphanumeric, - _ . inside
_REPO_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_MAX_REPO_ID, _MAX_REVISION = 96, 255


def check_repo_id(repo_id: str) -> str:
    """Refuse a repo id that is not ``org/name`` in the Hub's alphabet before it reaches a URL or a cache path
    (``?``/``#`` would change the request, ``..`` or ``/`` the folder)."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if (len(parts) != 2 or len(repo_id) > _MAX_REPO_ID or not all(_REPO_PART.match(p) for p in parts)
            or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git")):
        raise LearngeneNotFoundError(f"{str(repo_id)[:120]!r} is not a valid Hub repo id (org/name: letters, digits, "
                                     f"'-', '_', '.'; at most {_MAX_REPO_ID} characters)",
                                     "Run `wavehub list`, or pass hf-hub:org/name or local-dir:PATH.")
    return repo_id


def check_revision(revision: str) -> str:
    """Refuse a revision that could name a file outside the cache: the client writes ``refs/<revision>``
    verbatim, so ``../../x`` (which a mirror or a hostile server may resolve) would land outside HF_HOME."""
    bad = None
    if not isinstance(revision, str) or not revision:
        bad = "it is empty"
    elif len(revision) > _MAX_REVISION:
        bad = f"it is longer than {_MAX_REVISION} characters"
    elif any(ord(c) < 32 or ord(c) == 127 for c in revision):
        bad = "it holds a control character"
    elif revision.startswith(("/", "\\")) or "\\" in revision:
        bad = "it starts with '/' or holds a backslash"
    elif any(c in revision for c in "?#"):
        bad = "it holds '?' or '#'"
    elif any(seg in ("", ".", "..") for seg in revision.split("/")):
        bad = "it has an empty, '.' or '..' path segment"
    if bad:
        raise RevisionNotFoundError(f"revision {str(revision)[:80]!r} is not a valid branch, tag or commit: {bad}",
                                    "Pass a branch, tag or 40-hex commit name (e.g. main, v1.0).")
    return revision


@dataclass(frozen=True)
class Target:
    """What a name means: a local folder, or a Hub repo at a revision (with the sha256 the zoo pins)."""

    name: str
    path: Path | None = None
    repo_id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    bundled: bool = False
    pinned: bool = False  # the revision cannot move (zoo card pin or commit sha): a cached copy needs no request


def is_offline(offline: bool | None = None) -> bool:
    """``offline=`` wins; else HF_HUB_OFFLINE, read now (not at import) so it can be set at run time."""
    if offline is not None:
        return bool(offline)
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return constants.HF_HUB_OFFLINE or (env or "").strip().lower() in ("1", "true", "yes", "on")


def parse_name(name: str, revision: str | None = None) -> Target:
    """``path`` | ``local-dir:PATH`` | ``zoo-name[@rev]`` | ``hf-hub:org/repo[@rev]`` | ``org/repo[@rev]``."""
    from . import zoo

    raw = str(name)
    if raw.startswith("local-dir:"):
        p = Path(raw[len("local-dir:"):]).expanduser()
        if not p.exists():
            raise LearngeneNotFoundError(f"no learngene folder at {p}", "Check the path after local-dir:.")
        return Target(raw, path=p)
    p = Path(raw).expanduser()
    if p.exists():
        return Target(raw, path=p)
    hub = raw.startswith(("hf-hub:", "hf_hub:"))
    body = raw.split(":", 1)[1] if hub else raw
    if "@" in body:
        body, rev = body.rsplit("@", 1)
        if revision is not None and revision != rev:
            raise RevisionNotFoundError(f"two revisions given for {body}: {rev!r} and {revision!r}", "Give one.")
        revision = rev
    if not hub:
        try:
            e = zoo.get_entry(body)
        except LearngeneNotFoundError:
            if "/" not in body:
                raise
        else:
            zoo.check_available(e)
            bundled = zoo.bundled_path(e.name) if e.bundled and revision in (None, e.revision) else None
            if bundled is not None:
                return Target(e.name, path=bundled, bundled=True, sha256=e.sha256)
            if not e.repo_id:
                raise LearngeneNotFoundError(f"{e.name} is bundled-only and its files are missing",
                                             "Reinstall wavehub (`pip install --force-reinstall wavehub`).")
            pinned = revision is None or revision == e.revision
            rev = check_revision(revision or e.revision or "main")
            check_repo_id(e.repo_id)
            return Target(e.name, repo_id=e.repo_id, revision=rev, sha256=e.sha256 if pinned else None,
                          pinned=bool(pinned and e.revision) or bool(_SHA1.match(rev)))
    if body.count("/") != 1 or body.startswith("/") or ".." in body:
        raise LearngeneNotFoundError(f"{raw[:120]!r} is neither a zoo name, a path, nor a Hub repo id (org/name)",
                                     "Run `wavehub list`, or pass hf-hub:org/name or local-dir:PATH.")
    rev = check_revision(revision or "main")
    return Target(raw, repo_id=check_repo_id(body), revision=rev, pinned=bool(_SHA1.match(rev)))


def check_repo_paths(paths: list[str]) -> None:
    """Refuse a repo whose tree holds a path that could escape the cache folder."""
    for p in paths:
        pp = PurePosixPath(p)
        if not p or p.startswith(("/", "\\")) or "\\" in p or ".." in pp.parts or re.match(r"^[A-Za-z]:", p):
            raise HubError(f"the repo lists an unsafe file path {p!r}; refusing to download from it",
                           "Do not use this repo; report it to its owner.")


def _map_hub_error(e: BaseException, t: Target, action: str = "downloading") -> WavehubError:
    """The client's exceptions -> wavehub's typed errors, with repo and revision in the message."""
    from huggingface_hub import errors as hf

    where = f"{t.repo_id}@{t.revision}"
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return _disk_full(t, 0)
    if isinstance(e, hf.GatedRepoError):
        return AuthError(f"{where} is gated or private and this token cannot read it")
    if isinstance(e, hf.RepositoryNotFoundError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status == 401:
            return AuthError(f"{t.repo_id} was not found or needs a token (HTTP 401)")
        return LearngeneNotFoundError(f"repo {t.repo_id} was not found on the Hub",
                                      "Check the repo id; `wavehub list` shows the zoo.")
    if isinstance(e, hf.RevisionNotFoundError):
        return RevisionNotFoundError(f"revision {t.revision!r} of {t.repo_id} was not found")
    if isinstance(e, hf.LocalEntryNotFoundError):
        return OfflineError(f"{t.name} ({where}) is not in the cache and the Hub cannot be reached (offline)",
                            f"Run `wavehub pull {t.name}` on a connected machine, or use the bundled "
                            "`dinov2s-learngene`.")
    if isinstance(e, hf.EntryNotFoundError):
        return EntryNotFoundError(f"{where} has no {getattr(e, 'filename', None) or 'required file'}")
    if isinstance(e, hf.OfflineModeIsEnabled):
        return OfflineError(f"{t.name} is not cached and offline mode is on")
    if isinstance(e, hf.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            return AuthError(f"{where}: access denied (HTTP {status})")
        return HubError(f"the Hub answered HTTP {status} for {where}: {str(e).splitlines()[0][:160]}")
    cls = DownloadError if action == "downloading" else HubError
    return cls(f"{action} {where} failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")


def _download_file(t: Target, filename: str, *, offline: bool, force: bool, token: Any) -> Path:
    from huggingface_hub import hf_hub_download

    from . import __version__

    path = Path(hf_hub_download(t.repo_id, filename, revision=t.revision, library_name="wavehub",
                                library_version=__version__, local_files_only=offline, force_download=force,
                                token=token))
    _check_snapshot(path, t)
    return path


def _check_snapshot(path: Path, t: Target) -> None:
    """The snapshot folder is named after the commit the server sent (X-Repo-Commit) or a ref file holds: only a
    40-hex commit name is a cache folder; anything else is dropped (with the ref naming it) and refused."""
    commit = path.parent.name
    if _SHA1.match(commit) and path.parent.parent.name == "snapshots":
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
    raise HubError(f"the Hub named the commit of {t.repo_id}@{t.revision} {commit[:60]!r}, not a 40-hex commit "
                   "id; refusing to use it", "Check HF_ENDPOINT: a genuine Hub or mirror sends commit ids.")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the Hub cannot be reached" (huggingface_hub 2.x uses httpx2, 1.x httpx)."""
    import importlib

    errs: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for mod in ("httpx2", "httpx"):
        try:
            errs.append(importlib.import_module(mod).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


# waits before each retry of a listing the Hub answered with 429/5xx (the HF client retries those too, with
# back-off); a connection failure is not retried: an unreachable Hub must fall back to the cache at once
_LIST_RETRY_WAITS = (0.5, 1.0, 2.0)
_RETRY_STATUS = (429, 500, 502, 503, 504)


class _HubUnavailable(Exception):
    """The Hub answered the listing with 429/5xx after every retry (it is reachable but failing)."""

    def __init__(self, status: int, tries: int):
        super().__init__(f"HTTP {status}")
        self.status, self.tries = status, tries


def _get_page(url: str, params: dict | None, headers: dict, t: Target):
    import time

    from huggingface_hub import constants
    from huggingface_hub.utils import get_session, hf_raise_for_status

    for i in range(len(_LIST_RETRY_WAITS) + 1):
        r = get_session().get(url, params=params, headers=headers, timeout=constants.HF_HUB_ETAG_TIMEOUT)
        if r.status_code not in _RETRY_STATUS:
            hf_raise_for_status(r)
            return r
        if i < len(_LIST_RETRY_WAITS):
            time.sleep(_LIST_RETRY_WAITS[i])
    raise _HubUnavailable(r.status_code, len(_LIST_RETRY_WAITS) + 1)


def _list_files(t: Target, token: Any) -> dict[str, int]:
    """The repo's files at the revision with their sizes (one request per 1000 files), checked for unsafe paths
    and the required files. A 429/5xx answer is retried with back-off; a connection failure is not."""
    from urllib.parse import quote

    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers

    from . import __version__

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
            raise HubError(f"the Hub sent an unexpected file list for {t.repo_id}@{t.revision}")
        entries += page
        url, params = r.links.get("next", {}).get("url"), None
    check_repo_paths([str(e.get("path", "")) for e in entries])
    files = {str(e["path"]): e.get("size") if isinstance(e.get("size"), int) else 0
             for e in entries if e.get("type") == "file"}
    missing = [f for f in REQUIRED if f not in files]
    if missing:
        raise EntryNotFoundError(f"{t.repo_id}@{t.revision} has no {missing[0]}: it is not a wavehub learngene")
    return files


class _Muted(logging.Filter):
    """Drops the client's log records from muted threads: a tensor download started before the Hub is known
    to be reachable, whose retry notices ("Retrying in 1s") would otherwise print around wavehub's own error
    when the Hub is unreachable (the download is then abandoned)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_MUTED = _Muted()


def _quiet_threads() -> set[int]:
    """The ident set of :class:`_Muted`, installed on the client's loggers on first use."""
    for name in ("huggingface_hub.utils._http", "huggingface_hub.file_download"):
        lg = logging.getLogger(name)
        if _MUTED not in lg.filters:
            lg.addFilter(_MUTED)
    return _MUTED.threads


def _background(fn, *args: Any, quiet: bool = False, **kw: Any):
    """Run ``fn`` on a daemon thread; the returned callable joins it and returns (or raises) its outcome.

    Daemon, not an executor: a download abandoned because the Hub turned out to be unreachable must not keep
    the interpreter from exiting while the client backs off. ``quiet``: the client's log lines from this thread
    are dropped until ``result.unmute()`` (an abandoned download stays quiet for good)."""
    import threading

    box: dict[str, Any] = {}
    quiet_set = _quiet_threads() if quiet else None
    lock, muted = threading.Lock(), [quiet]  # the lock orders the thread's mute against an early unmute()

    def run() -> None:
        with lock:
            if muted[0]:
                quiet_set.add(threading.get_ident())
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
            box["error"] = e
        finally:
            if quiet_set is not None:
                quiet_set.discard(threading.get_ident())  # idents are reused once a thread ends

    th = threading.Thread(target=run, name=f"wavehub-{getattr(fn, '__name__', 'job')}", daemon=True)
    th.start()

    def result() -> Any:
        th.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def unmute() -> None:
        with lock:
            muted[0] = False
            if quiet_set is not None:
                quiet_set.discard(th.ident)

    result.unmute = unmute  # type: ignore[attr-defined]
    return result


def _lists_bank(config_path: Path) -> bool:
    try:
        return "bank" in parse_json(config_path.read_bytes(), CONFIG_FILE)
    except (OSError, ArtifactError):
        return False  # _verify reports a bad config.json with its own message


def _get_small_files(t: Target, tensor_path: Path, *, card: bool, offline: bool, force: bool,
                     token: Any) -> tuple[Path, str]:
    """config.json and the card, while the tensor file is hashed on a thread (hashlib drops the GIL)."""
    kw = dict(offline=offline, force=force, token=token)
    hashed = _background(sha256_file, tensor_path)
    try:
        config_path = _download_file(t, CONFIG_FILE, **kw)
        if _lists_bank(config_path):  # format v2: the pre-fitted scalers per size live beside the templates
            _download_file(t, BANK_FILE, **kw)
        if card:
            try:
                _download_file(t, CARD_FILE, **kw)
            except Exception:  # noqa: BLE001 - the model card is optional
                pass
    finally:
        sha = hashed()
    if tensor_path.parent != config_path.parent:  # a branch moved between the two HEAD requests
        raise DownloadError(f"{t.repo_id}@{t.revision} changed during the download", "Retry `wavehub pull`.")
    return tensor_path.parent, sha


def _get_files(t: Target, *, card: bool, offline: bool, force: bool, token: Any) -> tuple[Path, str]:
    """Fetch the tensor file, then hash it on a thread while the small files download. (Downloading all three
    at once was slower on a loaded 2-core machine: the threads fight over the GIL during the big transfer.)"""
    tensor_path = _download_file(t, TENSOR_FILE, offline=offline, force=force, token=token)
    return _get_small_files(t, tensor_path, card=card, offline=offline, force=force, token=token)


def _fetch_online(t: Target, *, force: bool, token: Any) -> tuple[Path, str]:
    """The tree listing and the tensor download at once, then the small files while the tensor file is hashed.

    The listing is the reachability probe: if it cannot connect (or the Hub keeps answering 429/5xx), the
    download thread (which would back off for ~23 s) is abandoned and the cache answers at once. It also
    refuses a repo with unsafe paths or without the required files before anything is served from it."""
    download = _background(_download_file, t, TENSOR_FILE, offline=False, force=force, token=token, quiet=True)
    try:
        files = _list_files(t, token)
    except (_HubUnavailable, *_transport_errors()) as e:  # the download is abandoned (daemon, muted)
        from huggingface_hub import constants

        failing = isinstance(e, _HubUnavailable)
        why = (f"answered HTTP {e.status} {e.tries} times" if failing else f"cannot be reached ({type(e).__name__})")
        try:
            cached = _get_files(t, card=True, offline=True, force=False, token=token)
        except Exception:  # noqa: BLE001 - not cached either
            if failing:
                raise HubError(f"the Hub at {constants.ENDPOINT} {why} for {t.repo_id}@{t.revision} and "
                               f"{t.name} is not in the cache",
                               "The Hub is failing, not your setup: retry later, or use the bundled "
                               "`dinov2s-learngene`.") from None
            raise OfflineError(
                f"the Hub at {constants.ENDPOINT} {why} and {t.name} is not in the cache",
                f"Check your network and HF_ENDPOINT, or run `wavehub pull {t.name}` on a connected machine; "
                "the bundled `dinov2s-learngene` always works offline.") from None
        warnings.warn(f"the Hub {why}; using the cached {t.name}", stacklevel=4)
        return cached
    except BaseException:  # refused (unsafe paths, missing files) or not found: let the download settle first,
        try:               # so no request of ours outlives the call (a 404 ends it at once)
            download()
        except BaseException:  # noqa: BLE001 - the listing's error is the one to report
            pass
        raise
    download.unmute()  # the Hub answered: the download's own warnings matter again
    try:
        tensor_path = download()
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise _disk_full(t, files.get(TENSOR_FILE, 0)) from None
        raise
    return _get_small_files(t, tensor_path, card=CARD_FILE in files, offline=False, force=force, token=token)


def _disk_full(t: Target, size: int) -> DownloadError:
    """Disk full: how much the download needs and where (the cache folder), not a generic "retry"."""
    import shutil

    from huggingface_hub import constants

    where = Path(constants.HF_HUB_CACHE)
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        free = 0
    need = max(size - free, 0) + (1 << 20)
    return DownloadError(f"the disk holding {where} is full: {t.repo_id}@{t.revision} needs {size / 1e6:.1f} MB "
                         f"and {free / 1e6:.1f} MB are free",
                         f"Free at least {need / 1e6:.0f} MB in {where} (or point HF_HUB_CACHE at a bigger "
                         "disk), then retry; `wavehub cache ls` shows what the cache holds.")


def _fetch(t: Target, *, offline: bool, force: bool, token: Any) -> tuple[Path, str]:
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
        raise _map_hub_error(e, t) from None


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _safetensors_header(path: Path) -> dict:
    """The header of a safetensors file, read without touching the tensor bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= min(100 << 20, os.fstat(f.fileno()).st_size - 8):
            raise ArtifactFormatError(f"{TENSOR_FILE} is truncated or not a safetensors file")
        header = parse_json(f.read(n), f"{TENSOR_FILE}'s header", MAX_HEADER_BYTES)
    if not isinstance(header, dict):
        raise ArtifactFormatError(f"{TENSOR_FILE} has a corrupt header")
    return header


def _verify(folder: Path, t: Target, digest: str | None = None, *, full: bool = False) -> None:
    """Integrity and shape of a fetched learngene, hashing the tensor file once (``digest`` if already known).

    sha256 vs the zoo pin, the LFS blob name and config.json's record; config.json vs its git blob name and
    schema; the safetensors header's tensor names and shapes vs the method. ``full`` (``pull``, ``cache
    verify``) also runs the loader's tensor checks (dtype, finite values, data section), so "OK" means "loads";
    a resolve for loading leaves those to ``load_learngene``, so the tensors are not parsed twice."""
    tensor, cfg_path = folder / TENSOR_FILE, folder / CONFIG_FILE
    try:
        actual = digest or sha256_file(tensor)
    except FileNotFoundError:
        raise ArtifactFormatError(f"{t.name}: {TENSOR_FILE} is missing from {folder}") from None
    blob = Path(os.path.realpath(tensor)).name
    try:
        with open(cfg_path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ArtifactFormatError(f"{t.name}: {CONFIG_FILE} is missing from {folder}") from None
    cfg_blob = Path(os.path.realpath(cfg_path)).name
    if _SHA1.match(cfg_blob) and _git_sha1(raw) != cfg_blob:
        raise IntegrityError(f"{t.name}: {CONFIG_FILE} does not match its blob name ({cfg_blob[:12]}...)")
    try:
        config = validate_config(parse_json(raw, CONFIG_FILE))
    except ArtifactError as e:
        raise type(e)(f"{t.name}: {e.message}", e.remedy) from None
    expected = {"zoo card": t.sha256, "blob name": blob if _SHA256.match(blob) else None,
                "artifact's config.json": config["sha256"]}
    for what, want in expected.items():
        if want and want != actual:
            raise IntegrityError(f"{t.name}: {TENSOR_FILE} sha256 {actual[:12]}... does not match the {what} "
                                 f"({want[:12]}...)")
    header = _safetensors_header(tensor)
    shapes = {k: tuple(v.get("shape", ())) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    want = {k: tuple(v) for k, v in expected_shapes(config).items()}
    if shapes != want:
        bad = sorted(set(shapes) ^ set(want)) or sorted(k for k in want if shapes.get(k) != want[k])
        raise ArtifactFormatError(f"{t.name}: {TENSOR_FILE} tensors do not match method {config['method']!r} "
                                  f"(first difference: {bad[0]})")
    if full:
        try:
            validate_tensors(tensor.read_bytes(), config)
            read_bank(folder, config)
        except ArtifactError as e:
            raise type(e)(f"{t.name}: {e.message}", e.remedy) from None


def _evict(folder: Path) -> None:
    """Delete a bad cached blob (and its snapshot link) so the next download fetches it again."""
    for f in (TENSOR_FILE, CONFIG_FILE):
        link = folder / f
        target = Path(os.path.realpath(link))
        for p in (target, link):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def resolve(name: str, *, revision: str | None = None, offline: bool | None = None, force: bool = False,
            progress: bool = True, token: Any = None) -> Path:
    """A local folder holding a verified learngene for ``name`` (see module doc for the order).

    A pinned target (a zoo name at its card's revision, or a commit sha) found intact in the cache is served
    without any request; anything else asks the Hub, which also repairs a corrupted cached copy once."""
    return _resolve(parse_name(name, revision), offline=offline, force=force, progress=progress, token=token)


def _resolve(t: Target, *, offline: bool | None, force: bool, progress: bool, token: Any,
             full: bool = False) -> Path:
    if t.path is not None:
        if full:  # a folder or the bundled copy: what load checks, hash included
            load_learngene(t.path)
        return t.path
    off = is_offline(offline)
    if off and force:
        raise OfflineError("--force re-downloads, which offline mode forbids", "Unset HF_HUB_OFFLINE.")
    with _progress(progress):
        if t.pinned and not off and not force:
            try:
                folder, digest = _fetch(t, offline=True, force=False, token=token)
                _verify(folder, t, digest, full=full)
                return folder
            except WavehubError:
                pass  # not cached (or damaged): ask the Hub
        folder, digest = _fetch(t, offline=off, force=force, token=token)
        try:
            _verify(folder, t, digest, full=full)
        except IntegrityError as e:  # bytes differ from their hash: a bad copy (a consistent-but-bad one is not)
            if off:
                raise IntegrityError(f"the cached copy is corrupted ({e.message}) and offline mode forbids a "
                                     "re-download") from None
            _evict(folder)  # repair once: a clean copy, then verify again
            folder, digest = _fetch(t, offline=False, force=True, token=token)
            _verify(folder, t, digest, full=full)
    return folder


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


def pull(name: str, *, revision: str | None = None, force: bool = False, offline: bool | None = None,
         progress: bool = True, token: Any = None, depth: int | None = None, width: int | None = None,
         num_classes: int | None = None, out: str | os.PathLike | None = None, format: str = "timm",
         **model_kwargs: Any) -> Path:
    """Cache a learngene; with ``out`` also write a ready-to-train model folder (``format`` timm|transformers).

    ``force`` re-downloads and also replaces an ``out`` folder that is not a previous export of that format."""
    t = parse_name(name, revision)
    if out is not None and format in ("timm", "transformers"):
        from .outdir import check

        check(out, format, force=force)  # before the download and the materialization
    # "OK" means "loads": the loader's checks now, unless --out loads it below anyway
    folder = _resolve(t, offline=offline, force=force, progress=progress, token=token, full=out is None)
    if out is None:
        if depth is not None or width is not None:
            raise WavehubError("--depth/--width need --out DIR to write the model to", "Add --out DIR.")
        return folder
    if format not in ("timm", "transformers"):
        raise WavehubError(f"unknown format {format!r}", "Use --format timm or --format transformers.")
    from .api import from_learngene
    from .export import save_timm, save_transformers
    from .stages import stages

    with stages(f"export {format}", 2, enabled=progress) as step:
        step("materialize")
        model = from_learngene(folder, depth, width, 1000 if num_classes is None else num_classes,
                               progress=False, **model_kwargs)
        model.wavehub_info["learngene"] = t.name
        step(f"write {out}")
        return (save_timm if format == "timm" else save_transformers)(model, out, force=force)


def push(folder: str | os.PathLike, repo_id: str, *, revision: str = "main", tag: str | None = None,
         branch: str | None = None, private: bool = False, token: Any = None,
         commit_message: str | None = None) -> str:
    """Validate, then upload a learngene folder; create the repo if needed, optionally a branch and a tag."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    check_repo_id(repo_id)
    for rev in (revision, branch, tag):
        if rev is not None:
            check_revision(rev)
    lg = load_learngene(folder)  # refuse to publish anything that does not validate
    if is_offline():
        raise OfflineError(f"pushing to {repo_id} needs the Hub and offline mode is on (HF_HUB_OFFLINE)",
                           "Unset HF_HUB_OFFLINE and run `wavehub push` again on a connected machine.")
    api = HfApi(token=token)
    t = Target(repo_id, repo_id=repo_id, revision=branch or revision)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, revision=revision, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=branch or revision,
                                 allow_patterns=[TENSOR_FILE, CONFIG_FILE, CARD_FILE, BANK_FILE],
                                 commit_message=commit_message or f"Upload learngene {lg.name} ({lg.sha256[:12]})")
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, exist_ok=False)
    except WavehubError:
        raise
    except _transport_errors() as e:
        from huggingface_hub import constants

        raise OfflineError(f"the Hub at {constants.ENDPOINT} cannot be reached ({type(e).__name__}); nothing was "
                           f"pushed to {repo_id}", "Check your network and HF_ENDPOINT, then run `wavehub push` "
                           "again.") from None
    except Exception as e:  # noqa: BLE001
        raise _map_hub_error(e, t, action="uploading to") from None
    return info.oid


def _learngene_repos():
    from huggingface_hub import constants, scan_cache_dir

    try:  # pass the cache dir: scan_cache_dir's default is frozen at import, HF_HUB_CACHE may have moved since
        info = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001 - no cache yet
        return None, []
    repos = [r for r in info.repos if r.repo_type == "model"
             and any(f.file_name == TENSOR_FILE for rev in r.revisions for f in rev.files)]
    return info, repos


def _partials(repo_id: str | None = None) -> dict[str, list[Path]]:
    """huggingface_hub's ``blobs/*.incomplete`` files (a download killed mid-way: kill -9, power loss), by repo
    id. The client resumes one on the next pull of the same file, but nothing else ever removes it."""
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE)
    pattern = f"models--{repo_id.replace('/', '--')}" if repo_id else "models--*"
    out: dict[str, list[Path]] = {}
    for p in sorted(root.glob(f"{pattern}/blobs/*.incomplete")):
        rid = p.parent.parent.name[len("models--"):].replace("--", "/", 1)
        out.setdefault(rid, []).append(p)
    return out


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _remove_partials(files: list[Path]) -> tuple[int, int]:
    """Delete partial blobs no download is writing (the client holds ``.locks/<repo>/<blob>.lock`` while it
    does); returns (files, bytes) removed."""
    from filelock import FileLock, Timeout

    n = size = 0
    for p in files:
        blob = p.name.split(".")[0]  # <etag>.incomplete, or <etag>.<id>.incomplete (huggingface_hub >= 1.x)
        lock = p.parent.parent.parent / ".locks" / p.parent.parent.name / f"{blob}.lock"
        try:
            with FileLock(str(lock), timeout=0):
                size_p = _size(p)
                p.unlink()
        except (Timeout, FileNotFoundError, OSError):
            continue  # being downloaded right now (or gone): leave it
        n, size = n + 1, size + size_p
    return n, size


def cache_ls() -> list[dict]:
    """Learngenes in the HF cache: repo id, revisions (with refs), size on disk (partial downloads included),
    the partial downloads (count and bytes), path."""
    from huggingface_hub import constants

    _, repos = _learngene_repos()
    partials = _partials()
    rows = {r.repo_id: {"repo_id": r.repo_id, "size": r.size_on_disk, "path": str(r.repo_path),
                        "revisions": [{"commit": rev.commit_hash, "refs": sorted(rev.refs)} for rev in r.revisions]}
            for r in repos}
    for rid, files in partials.items():
        row = rows.setdefault(rid, {"repo_id": rid, "size": 0, "revisions": [],
                                    "path": str(Path(constants.HF_HUB_CACHE) / f"models--{rid.replace('/', '--')}")})
        extra = sum(_size(p) for p in files)
        row.update(size=row["size"] + extra, partial_files=len(files), partial_size=extra)
    for row in rows.values():
        row.setdefault("partial_files", 0)
        row.setdefault("partial_size", 0)
    return [rows[k] for k in sorted(rows)]


def cache_verify(repair: bool = False) -> list[dict]:
    """Check every cached learngene revision with the loader's own checks (so "ok" means it loads); with
    ``repair`` re-download the bad ones once. One bad revision never stops the report on the others."""
    _, repos = _learngene_repos()
    offline = is_offline()
    report = []
    for r in repos:
        for rev in r.revisions:
            t = Target(r.repo_id, repo_id=r.repo_id, revision=rev.commit_hash)
            status = "ok"
            try:
                _verify(Path(rev.snapshot_path), t, full=True)
            except Exception as e:  # noqa: BLE001 - report it and go on to the next revision
                status = f"corrupt: {e.message if isinstance(e, WavehubError) else type(e).__name__}"
                if repair and offline:  # keep the bad copy: deleting it without a way to fetch one helps nobody
                    status += " (not repaired: offline mode is on and a repair downloads)"
                elif repair:
                    _evict(Path(rev.snapshot_path))
                    try:
                        folder, digest = _fetch(t, offline=False, force=True, token=None)
                        _verify(folder, t, digest, full=True)
                        status = "repaired"
                    except WavehubError as e2:
                        status = f"corrupt, repair failed: {e2.message}"
            report.append({"repo_id": r.repo_id, "commit": rev.commit_hash, "refs": sorted(rev.refs),
                           "status": status})
    return report


def cache_rm(name: str, revision: str | None = None) -> int:
    """Delete a learngene (all revisions, or one) from the HF cache; returns the number of revisions removed."""
    t = parse_name(name, revision) if not Path(name).exists() else None
    repo_id = t.repo_id if t is not None and t.repo_id else name
    info, repos = _learngene_repos()
    hashes = [rev.commit_hash for r in repos if r.repo_id == repo_id for rev in r.revisions
              if revision is None or rev.commit_hash == revision or revision in rev.refs]
    try:
        partials = _partials(check_repo_id(repo_id)).get(repo_id, []) if revision is None else []
    except WavehubError:  # not a repo id (a folder, a bundled name): no partial downloads to look for
        partials = []
    if not hashes and not partials:
        raise LearngeneNotFoundError(f"{name} is not in the cache", "Run `wavehub cache ls`.")
    if hashes:
        info.delete_revisions(*hashes).execute()
    _remove_partials(partials)
    return len(hashes)


def cache_clean() -> tuple[int, int]:
    """Delete every partial download in the cache that no running download is writing; (files, bytes)."""
    return _remove_partials([p for files in _partials().values() for p in files])
