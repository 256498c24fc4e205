"""Integrity of a fetched learngene: what only the hub knows (the zoo pin, the blob names), then the artifact
layer's own validator, with the tensor file hashed once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..artifact import MAX_CONFIG_BYTES, parse_json, sha256_file, validate_config, validate_folder
from ..config import LearngeneConfig
from ..constants import CONFIG_FILE, TENSOR_FILE
from ..errors import ArtifactError, ArtifactFormatError, IntegrityError
from .names import SHA1, SHA256, Target

__all__ = ["verify", "evict"]


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _prefixed(e: ArtifactError, t: Target, folder: Path) -> ArtifactError:
    """The same error with the learngene's name in front and the repo, revision and folder as fields."""
    fields = e.fields() | {"repo_id": t.repo_id, "revision": t.revision, "path": e.path or str(folder)}
    return type(e)(f"{t.name}: {e.message}", e.remedy, **fields)


def verify(folder: Path, t: Target, digest: str | None = None, *, full: bool = False) -> str:
    """Check a fetched learngene and return its tensor file's sha256 (``digest`` if already known).

    sha256 vs the zoo pin, the LFS blob name and config.json's record; config.json vs its git blob name and
    schema. ``full`` (``pull``, ``resolve``, ``cache verify``) also runs :func:`wavehub.artifact.validate_folder`
    with that digest, so "OK" means "loads" and the file is not hashed again; a resolve for loading returns the
    digest to the loader instead, so the tensors are parsed once."""
    tensor, cfg_path = folder / TENSOR_FILE, folder / CONFIG_FILE
    where = dict(repo_id=t.repo_id, revision=t.revision)
    try:
        actual = digest or sha256_file(tensor)
    except FileNotFoundError as e:
        raise ArtifactFormatError(
            f"{t.name}: {TENSOR_FILE} is missing from {folder}", path=tensor, **where
        ) from e
    blob = Path(os.path.realpath(tensor)).name
    try:
        with open(cfg_path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as e:
        raise ArtifactFormatError(
            f"{t.name}: {CONFIG_FILE} is missing from {folder}", path=cfg_path, **where
        ) from e
    cfg_blob = Path(os.path.realpath(cfg_path)).name
    if SHA1.match(cfg_blob) and _git_sha1(raw) != cfg_blob:
        raise IntegrityError(
            f"{t.name}: {CONFIG_FILE} does not match its blob name ({cfg_blob[:12]}...)",
            path=cfg_path,
            **where,
        )
    try:
        config = validate_config(parse_json(raw, CONFIG_FILE))
    except ArtifactError as e:
        raise _prefixed(e, t, cfg_path) from e
    expected = {
        "zoo card": t.sha256,
        "blob name": blob if SHA256.match(blob) else None,
        "artifact's config.json": LearngeneConfig.from_dict(config).sha256,
    }
    for what, want in expected.items():
        if want and want != actual:
            raise IntegrityError(
                f"{t.name}: {TENSOR_FILE} sha256 {actual[:12]}... does not match the {what} ({want[:12]}...)",
                path=tensor,
                **where,
            )
    if full:
        try:
            validate_folder(folder, sha256=actual)
        except ArtifactError as e:
            raise _prefixed(e, t, folder) from e
    return actual


def evict(folder: Path) -> None:
    """Delete a bad cached blob (and its snapshot link) so the next download fetches it again."""
    for f in (TENSOR_FILE, CONFIG_FILE):
        link = folder / f
        target = Path(os.path.realpath(link))
        for p in (target, link):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
