"""A published zoo card for tests (importable as `_zoo`): the package's own Hub entries are recipes."""

from __future__ import annotations

from pathlib import Path

CARD = """---
library_name: wavehub
license: apache-2.0
wavehub:
  name: {name}
  status: published
  repo_id: {repo_id}
  revision: {revision}
  sha256: {sha256}
  method: wave
  ancestry: random
  widths: multiples of 64
  depths: ">= 1"
---

# {name}

A test entry served by the fake Hub.
"""


def published_card(
    folder: Path,
    monkeypatch,
    name: str = "hub-learngene",
    repo_id: str = "wavehub/hub-learngene",
    revision: str = "v1.0",
    sha256: str | None = None,
) -> Path:
    """Write a published card into ``folder`` and add it to the zoo through WAVEHUB_ZOO (this test only)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(
        CARD.format(name=name, repo_id=repo_id, revision=revision, sha256=sha256 or "null"), encoding="utf-8"
    )
    monkeypatch.setenv("WAVEHUB_ZOO", str(folder))
    return path
