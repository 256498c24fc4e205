"""The zoo: one ``model_cards/<name>.md`` per learngene; the zoo is what those cards' front matter says.

``model_cards/`` at the top of the source tree is the one source of the zoo; a wheel carries a copy as
``wavehub/model_cards`` (see setup.py), found here when wavehub is installed.

Each card is a valid Hub model card (``library_name: wavehub`` ...) with a ``wavehub:`` block: status, repo id,
pinned revision, sha256 of the tensor file, method, ancestry, sizes served, and ``architecture`` (the aux
architecture: what ``pretrained=False`` builds without downloading anything). The status says whether weights exist:
``bundled`` (inside the package), ``published`` (on the Hub at the pinned revision) or ``recipe`` (a documented
build that nobody has published yet: loading it raises an error naming the bundled default).

``WAVEHUB_ZOO`` (folders separated by ``os.pathsep``) adds an organisation's own cards; a card there replaces the
package's card of the same name.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .constants import CONFIG_FILE, ENV_ZOO, TENSOR_FILE, TIMM_PREFIX
from .errors import LearngeneNotFoundError, WavehubError

__all__ = [
    "ZooEntry",
    "CARDS_DIR",
    "BUNDLED_DIR",
    "STATUSES",
    "DEFAULT",
    "list_entries",
    "get_entry",
    "parse_card",
    "bundled_path",
    "check_available",
    "card_dirs",
    "timm_name",
    "architecture_of",
]


def _cards_dir() -> Path:
    """The installed copy (``wavehub/model_cards`` in a wheel), else the source tree's top-level folder."""
    installed = Path(__file__).parent / "model_cards"
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "model_cards"


CARDS_DIR = _cards_dir()
BUNDLED_DIR = Path(__file__).parent / "_bundled"
STATUSES = ("bundled", "published", "recipe")
DEFAULT = "dinov2s-learngene"  # the bundled learngene every "not available" error points to


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
    status: str = "recipe"
    bank: tuple[str, ...] = ()  # sizes its bank holds (format v2), e.g. ("4x192", "8x384")
    metadata: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    architecture: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def timm_name(self) -> str:
        return timm_name(self.name)

    @property
    def where(self) -> str:
        """One phrase for tables: where the weights are (or that there are none yet)."""
        if self.status == "bundled":
            return "bundled in the package"
        if self.status == "published":
            return f"published at {self.repo_id}@{self.revision}"
        return "unpublished recipe"


def timm_name(name: str) -> str:
    """A zoo name's timm model name: ``wavehub_`` + the name with ``-`` and ``.`` as ``_`` (timm's alphabet)."""
    return TIMM_PREFIX + name.replace("-", "_").replace(".", "_")


def parse_card(text: str) -> tuple[dict, str]:
    """Split YAML front matter from the markdown body."""
    import yaml

    if not text.startswith("---"):
        return {}, text
    _, front, body = text.split("---", 2)
    meta = yaml.load(front, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}  # libyaml when built
    return (meta if isinstance(meta, dict) else {}), body


def _entry(path: Path) -> ZooEntry | None:
    meta, body = parse_card(path.read_text(encoding="utf-8"))
    w = meta.get("wavehub")
    if not isinstance(w, dict) or not w.get("name"):
        return None
    desc = next((ln.strip() for ln in body.splitlines() if ln.strip() and not ln.startswith("#")), "")
    status = w.get("status") or (
        "bundled"
        if w.get("bundled")
        else "published"
        if w.get("repo_id") and w.get("revision") and w.get("sha256")
        else "recipe"
    )
    if status not in STATUSES:
        status = "recipe"
    return ZooEntry(
        name=w["name"],
        method=w.get("method", "wave"),
        ancestry=w.get("ancestry", "unknown"),
        repo_id=w.get("repo_id"),
        revision=w.get("revision"),
        sha256=w.get("sha256"),
        bundled=bool(w.get("bundled", False)),
        license=meta.get("license"),
        template_size=w.get("template_size"),
        templates=w.get("templates"),
        widths=w.get("widths"),
        depths=w.get("depths"),
        params=w.get("params"),
        description=desc,
        card_path=path,
        status=status,
        metadata=meta,
        architecture=dict(w["architecture"]) if isinstance(w.get("architecture"), dict) else {},
        bank=tuple(
            str(x) for x in ((w.get("bank") or {}).get("sizes") or ()) if isinstance(w.get("bank"), dict)
        ),
    )


def card_dirs() -> list[Path]:
    """The package's cards, then every folder in ``WAVEHUB_ZOO`` (later folders win on a name clash)."""
    extra = [Path(p) for p in os.environ.get(ENV_ZOO, "").split(os.pathsep) if p]
    return [CARDS_DIR, *extra]


def _all() -> tuple[ZooEntry, ...]:
    return _load(tuple(str(d) for d in card_dirs()))


@functools.lru_cache(maxsize=4)
def _load(dirs: tuple[str, ...]) -> tuple[ZooEntry, ...]:
    by_name: dict[str, ZooEntry] = {}
    for d in dirs:
        for p in sorted(Path(d).glob("*.md")):
            if (e := _entry(p)) is not None:
                by_name[e.name] = e
    return tuple(by_name.values())


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
    return p if (p / TENSOR_FILE).is_file() else None


def check_available(e: ZooEntry) -> None:
    """Raise a one-line error for a recipe: there are no weights to load, only a command to build them."""
    if e.status == "recipe":
        raise LearngeneNotFoundError(
            f"{e.name} is an unpublished recipe: no weights have been built or published yet",
            f"Use the bundled default, e.g. wavehub.create_model({DEFAULT!r}, depth=8, width=384); "
            f"`wavehub info {e.name}` shows how to build it.",
        )


def architecture_of(name: str | os.PathLike) -> dict[str, Any]:
    """The aux architecture of a learngene as far as it is known without the network: a local folder's (or the
    bundled copy's) config.json, else the zoo card's ``architecture`` block; empty when unknown."""

    raw = str(name).removeprefix("local-dir:")
    candidates = [Path(raw).expanduser()]
    try:
        e = get_entry(raw.split("@")[0])
    except LearngeneNotFoundError:
        e = None
    if e is not None and (b := bundled_path(e.name)) is not None:
        candidates.append(b)
    from .artifact import read_config

    for p in candidates:
        if p.exists() and ((p if p.is_dir() else p.parent) / CONFIG_FILE).is_file():
            try:
                return dataclasses.asdict(read_config(p).aux)
            except (OSError, WavehubError):
                continue
    return dict(e.architecture) if e is not None else {}
