"""The wheel carries the zoo: top-level model_cards/ is the one source, and an installed wavehub lists it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installed_outside_the_source_tree_lists_the_zoo(tmp_path):
    pytest.importorskip("setuptools")
    dist, target, elsewhere = tmp_path / "dist", tmp_path / "site", tmp_path / "cwd"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        pip + ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        cwd=elsewhere,
    )
    wheel = next(dist.glob("wavehub-*.whl"))
    subprocess.run(
        pip + ["install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True, cwd=elsewhere
    )
    code = (
        "import json, wavehub, wavehub.zoo as z; "
        "print(json.dumps([wavehub.__file__, str(z.CARDS_DIR), wavehub.list_learngenes()]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WAVEHUB_ZOO")}
    env["PYTHONPATH"] = str(target)
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=elsewhere, env=env, capture_output=True, text=True
    ).stdout
    where, cards, names = json.loads(out.strip().splitlines()[-1])
    assert Path(where).is_relative_to(target) and Path(cards).is_relative_to(target)
    assert names == sorted(p.stem for p in (ROOT / "model_cards").glob("*.md"))
