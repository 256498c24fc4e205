"""The zoo tells the truth: cards match their artifacts, name no Hub repo they do not come from, and the README's
zoo table is what `wavehub list` shows. Every command's --help has an example."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

import wavehub
from wavehub import errors, zoo
from wavehub.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _cards_module():
    spec = importlib.util.spec_from_file_location("wavehub_bench_cards", ROOT / "benchmarks" / "cards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("entry", zoo.list_entries(), ids=lambda e: e.name)
def test_card_front_matter_matches_its_artifact(entry):
    w = entry.metadata["wavehub"]
    assert entry.status in zoo.STATUSES and w.get("status") == entry.status
    body = entry.card_path.read_text(encoding="utf-8").split("---", 2)[2]
    named = set(re.findall(r"\bwavehub/[A-Za-z0-9][\w.-]*", body)) - {"wavehub/model_cards", "wavehub/errors"}
    if entry.status == "published":
        assert entry.repo_id and entry.revision and re.fullmatch(r"[0-9a-f]{64}", entry.sha256 or "")
        assert named <= {entry.repo_id}, f"card names Hub repos it does not come from: {named}"
    else:  # no card names a Hub repo that has no published weights
        assert entry.repo_id is None and entry.revision is None
        assert not named, f"{entry.name} names Hub repos but is {entry.status}: {named}"
    if entry.status == "bundled":
        folder = zoo.bundled_path(entry.name)
        assert folder is not None
        facts = _cards_module().artifact_facts(folder)
        for k, v in facts.items():
            assert w.get(k) == v, f"card {k} = {w.get(k)!r}, artifact has {v!r}"
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg.get("repo_id") in (None, entry.repo_id)  # the artifact comes from where the card says
        assert cfg["sha256"] == entry.sha256


def test_cards_and_readme_table_are_regenerated():
    assert _cards_module().main(["--check"]) == 0, "run `python benchmarks/cards.py`"


def test_readme_zoo_table_is_wavehub_list(capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("<!-- zoo:begin -->", 1)[1].split("<!-- zoo:end -->", 1)[0]
    readme = {}
    for ln in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        name = re.search(r"`([^`]+)`", cells[0]).group(1)
        status = cells[1]
        readme[name] = (
            "published:" + re.search(r"`([^`]+)`", status).group(1)
            if status.startswith("published")
            else status.split()[0].replace("unpublished", "recipe")
        )
    assert main(["list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    listed = {r.split()[0]: r.split()[1] for r in rows[1:]}
    assert rows[0].split()[:2] == ["name", "status"] and listed == readme


def test_a_recipe_raises_one_line_naming_the_bundled_default():
    with pytest.raises(errors.LearngeneNotFoundError) as ei:
        wavehub.create_model("deit-learngene", depth=8, width=384)
    assert "unpublished recipe" in ei.value.message and "dinov2s-learngene" in ei.value.remedy
    assert "\n" not in str(ei.value)


def test_info_prints_status_and_where_it_resolves(capsys):
    assert main(["info", "dinov2s-learngene"]) == 0
    out = capsys.readouterr().out
    assert "status: bundled in the package" in out
    assert f"resolves to: {zoo.bundled_path('dinov2s-learngene')}" in out
    assert main(["info", "deit-learngene"]) == 0
    out = capsys.readouterr().out
    assert "status: unpublished recipe" in out and "resolves to: nothing" in out
