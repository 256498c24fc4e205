"""The cache commands: list, verify (and repair), remove learngenes, and clean partial downloads."""

from __future__ import annotations

from pathlib import Path

from ..constants import TENSOR_FILE
from ..errors import LearngeneNotFoundError, WavehubError
from .download import fetch
from .names import Target, check_repo_id, is_offline, parse_name
from .verify import evict, verify

__all__ = ["cache_ls", "cache_verify", "cache_rm", "cache_clean"]


def _learngene_repos():
    from huggingface_hub import constants, scan_cache_dir

    try:  # pass the cache dir: scan_cache_dir's default is frozen at import, HF_HUB_CACHE may have moved since
        info = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001 - no cache yet
        return None, []
    repos = [
        r
        for r in info.repos
        if r.repo_type == "model"
        and any(f.file_name == TENSOR_FILE for rev in r.revisions for f in rev.files)
    ]
    return info, repos


def _partials(repo_id: str | None = None) -> dict[str, list[Path]]:
    """huggingface_hub's ``blobs/*.incomplete`` files (a download killed mid-way: kill -9, power loss), by repo
    id. The client resumes one on the next pull of the same file, but nothing else ever removes it."""
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE)
    pattern = f"models--{repo_id.replace('/', '--')}" if repo_id else "models--*"
    out: dict[str, list[Path]] = {}
    for p in sorted(root.glob(f"{pattern}/blobs/*.incomplete")):
        rid = p.parent.parent.name[len("models--") :].replace("--", "/", 1)
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
    rows = {
        r.repo_id: {
            "repo_id": r.repo_id,
            "size": r.size_on_disk,
            "path": str(r.repo_path),
            "revisions": [{"commit": rev.commit_hash, "refs": sorted(rev.refs)} for rev in r.revisions],
        }
        for r in repos
    }
    for rid, files in partials.items():
        row = rows.setdefault(
            rid,
            {
                "repo_id": rid,
                "size": 0,
                "revisions": [],
                "path": str(Path(constants.HF_HUB_CACHE) / f"models--{rid.replace('/', '--')}"),
            },
        )
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
                verify(Path(rev.snapshot_path), t, full=True)
            except Exception as e:  # noqa: BLE001 - report it and go on to the next revision
                status = f"corrupt: {e.message if isinstance(e, WavehubError) else type(e).__name__}"
                if (
                    repair and offline
                ):  # keep the bad copy: deleting it without a way to fetch one helps nobody
                    status += " (not repaired: offline mode is on and a repair downloads)"
                elif repair:
                    evict(Path(rev.snapshot_path))
                    try:
                        folder, digest = fetch(t, offline=False, force=True, token=None)
                        verify(folder, t, digest, full=True)
                        status = "repaired"
                    except WavehubError as e2:
                        status = f"corrupt, repair failed: {e2.message}"
            report.append(
                {"repo_id": r.repo_id, "commit": rev.commit_hash, "refs": sorted(rev.refs), "status": status}
            )
    return report


def cache_rm(name: str, revision: str | None = None) -> int:
    """Delete a learngene (all revisions, or one) from the HF cache; returns the number of revisions removed."""
    t = parse_name(name, revision) if not Path(name).exists() else None
    repo_id = t.repo_id if t is not None and t.repo_id else name
    info, repos = _learngene_repos()
    hashes = [
        rev.commit_hash
        for r in repos
        if r.repo_id == repo_id
        for rev in r.revisions
        if revision is None or rev.commit_hash == revision or revision in rev.refs
    ]
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
