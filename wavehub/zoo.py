"""The zoo: one ``model_cards/<name>.md`` per learngene; the zoo is what those cards' front matter says.

Each card is a valid Hub model card (``library_name: wavehub`` ...) with a ``wavehub:`` block: repo id,
pinned revision, sha256 of the tensor file, method, ancestry, whether it is bundled, sizes served.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LearngeneNotFoundError

__all__ = ["ZooEntry", "CARDS_DIR", "BUNDLED_DIR", "list_entries", "get_entry", "parse_card", "bundled_path"]

CARDS_DIR = Path(__file__).parent / "model_cards"
BUNDLED_DIR = Path(__file__).parent / "_bundled"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    method: str
    ancestry: str
    repo_id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    bundled: bool = False
    license: str | None = None
    template_size: int | None = None
    templates: Any = None
    widths: str | None = None
    depths: str | None = None
    params: int | None = None
    description: str = ""
    card_path: Path | None = None
    metadata: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def timm_name(self) -> str:
        return "wavehub_" + self.name.replace("-", "_")


def parse_card(text: str) -> tuple[dict, str]:
    """Split YAML front matter from the markdown body."""
    import yaml

    if not text.startswith("---"):
        return {}, text
    _, front, body = text.split("---", 2)
    meta = yaml.safe_load(front) or {}
    return (meta if isinstance(meta, dict) else {}), body


def _entry(path: Path) -> ZooEntry | None:
    meta, body = parse_card(path.read_text(encoding="utf-8"))
    w = meta.get("wavehub")
    if not isinstance(w, dict) or not w.get("name"):
        return None
    desc = next((ln.strip() for ln in body.splitlines() if ln.strip() and not ln.startswith("#")), "")
    return ZooEntry(
        name=w["name"], method=w.get("method", "wave"), ancestry=w.get("ancestry", "unknown"),
        repo_id=w.get("repo_id"), revision=w.get("revision"), sha256=w.get("sha256"),
        bundled=bool(w.get("bundled", False)), license=meta.get("license"), template_size=w.get("template_size"),
        templates=w.get("templates"), widths=w.get("widths"), depths=w.get("depths"), params=w.get("params"),
        description=desc, card_path=path, metadata=meta,
    )


@functools.lru_cache(maxsize=1)
def _all() -> tuple[ZooEntry, ...]:
    entries = [e for p in sorted(CARDS_DIR.glob("*.md")) if (e := _entry(p)) is not None]
    return tuple(entries)


def list_entries(pattern: str = "*") -> list[ZooEntry]:
    """Zoo entries whose name matches a glob pattern, sorted by name."""
    return sorted((e for e in _all() if fnmatch.fnmatch(e.name, pattern)), key=lambda e: e.name)


def get_entry(name: str) -> ZooEntry:
    for e in _all():
        if e.name == name:
            return e
    names = [e.name for e in _all()]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"Did you mean {', '.join(close)}? " if close else ""
    raise LearngeneNotFoundError(f"{name!r} is not in the zoo", f"{hint}Run `wavehub list` for the zoo.")


def bundled_path(name: str) -> Path | None:
    p = BUNDLED_DIR / name
    return p if (p / "learngene.safetensors").is_file() else None
