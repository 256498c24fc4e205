"""One policy for every folder wavehub writes (exports, learngenes, build and fit outputs).

- A destination is checked *before* the work starts (:func:`check`): a file in the way, a parent that cannot
  be written, or a non-empty folder that is not a previous wavehub output of the same kind is refused with an
  :class:`~wavehub.errors.OutputError` (``force=True`` / ``--force`` replaces such a folder anyway).
- The new folder is written beside the old one and swapped in (:func:`writing`). On Linux the swap is one
  ``renameat2(RENAME_EXCHANGE)``, so a crash at any instant leaves the old folder or the new one, never
  neither. Elsewhere it is two renames, and the next write to the same folder restores the old one if a crash
  fell between them. Leftovers of interrupted runs (hidden ``.NAME.wavehub-*`` folders beside) are cleaned by
  the next write.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .constants import LEARNGENE_FILES
from .errors import OutputError

__all__ = ["KINDS", "Kind", "check", "writing", "swap_in", "clean_leftovers", "is_output_of"]


def _json(path: Path) -> dict:
    try:
        v = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return v if isinstance(v, dict) else {}


def _wavehub_card(path: Path) -> bool:
    """A model card whose YAML front matter mentions wavehub (every card wavehub writes does)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return False
    if not text.startswith("---"):
        return False
    front = text[3:].split("\n---", 1)[0]
    return "wavehub" in front


def _is_learngene(d: Path) -> bool:
    return _json(d / "config.json").get("format") == "wavehub.learngene"


def _is_timm_export(d: Path) -> bool:
    cfg = _json(d / "config.json")
    return "architecture" in cfg and "model_args" in cfg and _wavehub_card(d / "README.md")


def _is_hf_export(d: Path) -> bool:
    return _json(d / "config.json").get("model_type") == "vit" and _wavehub_card(d / "README.md")


def _is_build(d: Path) -> bool:
    return (d / "build_checkpoint.safetensors").is_file() or _is_learngene(d)


@dataclass(frozen=True)
class Kind:
    """A kind of output folder: the files it may hold and how to recognise one wavehub wrote."""

    name: str
    files: frozenset[str]
    recognise: Callable[[Path], bool]


_LG = frozenset(LEARNGENE_FILES)
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("learngene", _LG, _is_learngene),
        Kind("build", _LG | {"build_checkpoint.safetensors", "build_log.jsonl"}, _is_build),
        Kind(
            "timm", frozenset({"config.json", "model.safetensors", "README.md", "fit.json"}), _is_timm_export
        ),
        Kind(
            "transformers",
            frozenset({"config.json", "model.safetensors", "README.md", "preprocessor_config.json"}),
            _is_hf_export,
        ),
    )
}
_WHAT = {
    "learngene": "a learngene",
    "build": "a wavehub build",
    "timm": "a wavehub timm export",
    "transformers": "a wavehub transformers export",
}
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.wavehub-(?P<what>tmp|old)-(?P<pid>\d+)-")


def is_output_of(folder: str | os.PathLike, kind: str) -> bool:
    """Whether ``folder`` holds only what a previous wavehub output of ``kind`` holds (and is one)."""
    k, d = KINDS[kind], Path(folder)
    names = {p.name for p in d.iterdir()}
    return names <= k.files and k.recognise(d)


def _absolute(out: str | os.PathLike) -> Path:
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(out))))
    return p.resolve() if p.is_symlink() else p  # replace what the link points at, not the link


def _probe_parent(parent: Path, out: Path) -> None:
    """Find the nearest existing ancestor and prove it can be written (os.access lies for root and ACLs)."""
    anc = parent
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(
            f"cannot create {out}: {anc} is a file", "Choose an output folder under a directory."
        )
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.wavehub-probe-", dir=anc)
        os.rmdir(probe)
    except OSError as e:
        raise OutputError(
            f"cannot write to {anc} ({e.strerror or type(e).__name__})",
            f"Choose an output folder you can write to, or fix the permissions of {anc}.",
            path=anc,
        ) from e


def check(out: str | os.PathLike, kind: str, *, force: bool = False, overwrite: bool = True) -> Path:
    """Refuse a destination before any work: returns the absolute folder path if writing there is allowed.

    Allowed: a new path, an empty folder, a previous wavehub output of the same ``kind`` (unless
    ``overwrite=False``), or anything that is a folder when ``force``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    path = _absolute(out)
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{path} exists and is not a folder", "Choose a new or empty folder (or delete the file first)."
        )
    if path.parent == path:
        raise OutputError(f"{path} is a filesystem root", "Choose a folder below it.")
    if path.is_dir():
        try:
            names = sorted(p.name for p in path.iterdir())
        except OSError as e:
            raise OutputError(
                f"cannot read {path} ({e.strerror})", "Choose another output folder.", path=path
            ) from e
        if names and force and not is_output_of(path, kind):
            subdirs = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.is_symlink())
            if subdirs:  # no wavehub output has folders inside: this is someone's tree, not a model folder
                raise OutputError(
                    f"{path} holds folders ({', '.join(subdirs[:3])}); even --force does not delete a "
                    "directory tree",
                    "Choose a new or empty folder for the output.",
                )
        if names and not force:
            if not is_output_of(path, kind):
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                raise OutputError(
                    f"{path} is not empty and does not hold {_WHAT[kind]} ({shown})",
                    "Choose a new or empty folder, or pass --force (force=True) to replace it.",
                )
            if not overwrite:
                raise OutputError(
                    f"{path} already holds {_WHAT[kind]}",
                    "Pass overwrite=True (or --force) or choose another folder.",
                )
    _probe_parent(path.parent, path)
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, not ours
        return True
    return True


def clean_leftovers(out: str | os.PathLike) -> None:
    """Remove what interrupted writes to ``out`` left beside it; restore the old folder if a crash between the
    two renames of the fallback swap left it hidden and ``out`` missing."""
    out = _absolute(out)
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return
    for p in siblings:
        m = _LEFTOVER.match(p.name)
        if not m or m["name"] != out.name or _pid_alive(int(m["pid"])) or not p.is_dir():
            continue
        if m["what"] == "old" and not os.path.lexists(out):
            with contextlib.suppress(OSError):
                os.rename(p, out)
                continue
        shutil.rmtree(p, ignore_errors=True)


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in(new: Path, out: Path) -> None:
    """Put the complete folder ``new`` at ``out``; whatever was at ``out`` is removed afterwards."""
    if not os.path.lexists(out):
        try:
            os.rename(new, out)
            return
        except OSError as e:  # created meanwhile: swap instead
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if _exchange(new, out):  # `new` now holds the old folder
        shutil.rmtree(new, ignore_errors=True)
        return
    old = out.with_name(f".{out.name}.wavehub-old-{os.getpid()}-x")
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _publish(folder: Path) -> None:
    """fsync every file (a crash after the swap must not leave empty files) and give umask modes
    (mkdtemp creates 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    for f in folder.iterdir():
        if f.is_file():
            _sync(f, 0o666 & ~mask)
    _sync(folder, 0o777 & ~mask)


def _sync(path: Path, mode: int) -> None:
    os.chmod(path, mode)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _carry(out: Path, tmp: Path, keep: Iterable[str]) -> None:
    """Hard-link (or copy) files of the old folder the new one keeps (a build's checkpoint and log)."""
    for name in keep:
        src, dst = out / name, tmp / name
        if src.is_file() and not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


@contextlib.contextmanager
def writing(
    out: str | os.PathLike,
    kind: str,
    *,
    force: bool = False,
    overwrite: bool = True,
    keep: Iterable[str] = (),
) -> Iterator[Path]:
    """``with writing(out, "timm") as d:`` write the files into ``d``; on success ``d`` replaces ``out`` in one
    swap, on any exception (Ctrl-C included) ``d`` is removed and ``out`` is untouched."""
    path = check(out, kind, force=force, overwrite=overwrite)
    clean_leftovers(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.wavehub-tmp-{os.getpid()}-", dir=path.parent))
    except OSError as e:
        raise OutputError(
            f"cannot write beside {path} ({e.strerror})", "Choose another output folder.", path=path
        ) from e
    try:
        yield tmp
        if path.is_dir():
            _carry(path, tmp, keep)
        _publish(tmp)
        swap_in(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, OutputError):
            full = e.errno in (errno.ENOSPC, errno.EDQUOT)
            raise OutputError(
                f"writing {path} failed: {e.strerror or e}",
                f"Free disk space under {path.parent}, or choose another output folder."
                if full
                else "Check the folder's permissions and free space, then retry.",
                path=path,
            ) from e
        raise
