"""What a name means: repo-id, revision and tree-path checks, and :class:`Target` (no request is sent here).

Repo ids and revisions are checked before any request, so nothing a caller or a server sends can place a file
outside the cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..constants import CONFIG_FILE, TENSOR_FILE
from ..errors import HubError, LearngeneNotFoundError, RevisionNotFoundError

__all__ = [
    "REQUIRED",
    "SHA1",
    "SHA256",
    "Target",
    "check_repo_id",
    "check_revision",
    "check_repo_paths",
    "is_offline",
    "parse_name",
]

REQUIRED = (CONFIG_FILE, TENSOR_FILE)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SHA1 = re.compile(r"^[0-9a-f]{40}$")
# the Hub's own rule (huggingface_hub.utils.validate_repo_id): org/name, each part alphanumeric, - _ . inside
_REPO_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_MAX_REPO_ID, _MAX_REVISION = 96, 255


def check_repo_id(repo_id: str) -> str:
    """Refuse a repo id that is not ``org/name`` in the Hub's alphabet before it reaches a URL or a cache path
    (``?``/``#`` would change the request, ``..`` or ``/`` the folder)."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if (
        len(parts) != 2
        or len(repo_id) > _MAX_REPO_ID
        or not all(_REPO_PART.match(p) for p in parts)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise LearngeneNotFoundError(
            f"{str(repo_id)[:120]!r} is not a valid Hub repo id (org/name: letters, digits, "
            f"'-', '_', '.'; at most {_MAX_REPO_ID} characters)",
            "Run `wavehub list`, or pass hf-hub:org/name or local-dir:PATH.",
        )
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
        raise RevisionNotFoundError(
            f"revision {str(revision)[:80]!r} is not a valid branch, tag or commit: {bad}",
            "Pass a branch, tag or 40-hex commit name (e.g. main, v1.0).",
        )
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
    pinned: bool = (
        False  # the revision cannot move (zoo card pin or commit sha): a cached copy needs no request
    )


def is_offline(offline: bool | None = None) -> bool:
    """``offline=`` wins; else HF_HUB_OFFLINE, read now (not at import) so it can be set at run time."""
    if offline is not None:
        return bool(offline)
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return constants.HF_HUB_OFFLINE or (env or "").strip().lower() in ("1", "true", "yes", "on")


def parse_name(name: str, revision: str | None = None) -> Target:
    """``path`` | ``local-dir:PATH`` | ``zoo-name[@rev]`` | ``hf-hub:org/repo[@rev]`` | ``org/repo[@rev]``."""
    from .. import zoo

    raw = str(name)
    if raw.startswith("local-dir:"):
        p = Path(raw[len("local-dir:") :]).expanduser()
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
            raise RevisionNotFoundError(
                f"two revisions given for {body}: {rev!r} and {revision!r}", "Give one."
            )
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
                raise LearngeneNotFoundError(
                    f"{e.name} is bundled-only and its files are missing",
                    "Reinstall wavehub (`pip install --force-reinstall wavehub`).",
                )
            pinned = revision is None or revision == e.revision
            rev = check_revision(revision or e.revision or "main")
            check_repo_id(e.repo_id)
            return Target(
                e.name,
                repo_id=e.repo_id,
                revision=rev,
                sha256=e.sha256 if pinned else None,
                pinned=bool(pinned and e.revision) or bool(SHA1.match(rev)),
            )
    if body.count("/") != 1 or body.startswith("/") or ".." in body:
        raise LearngeneNotFoundError(
            f"{raw[:120]!r} is neither a zoo name, a path, nor a Hub repo id (org/name)",
            "Run `wavehub list`, or pass hf-hub:org/name or local-dir:PATH.",
        )
    rev = check_revision(revision or "main")
    return Target(raw, repo_id=check_repo_id(body), revision=rev, pinned=bool(SHA1.match(rev)))


def check_repo_paths(paths: list[str]) -> None:
    """Refuse a repo whose tree holds a path that could escape the cache folder."""
    for p in paths:
        pp = PurePosixPath(p)
        if not p or p.startswith(("/", "\\")) or "\\" in p or ".." in pp.parts or re.match(r"^[A-Za-z]:", p):
            raise HubError(
                f"the repo lists an unsafe file path {p!r}; refusing to download from it",
                "Do not use this repo; report it to its owner.",
            )
