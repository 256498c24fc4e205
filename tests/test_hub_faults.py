"""Faults and hostile input against the fake Hub (issue 15): revisions and repo ids, forged commits, HTTP errors
on a route, nested JSON, partial downloads. Every test drives the real huggingface_hub client."""

from __future__ import annotations

from pathlib import Path

import pytest
from _tiny import tiny_wave

from wavehub import errors
from wavehub import hub as whub
from wavehub.artifact import save_learngene


@pytest.fixture
def lg_folder(tmp_path):
    return save_learngene(tiny_wave(), tmp_path / "lg")


def _seed(hub, folder, repo="wavehub/tiny"):
    hub.create_repo(repo)
    return hub.commit(repo, folder)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("rev", ["../../../x", "../../../../x", "/etc/x", "\\x", "a\\..\\..\\x", "main?x=1",
                                 "main#x", "ma\nin", "a//b", "a/./b", "v" * 300])
def test_hostile_revision_refused_before_any_request(hub, lg_folder, tmp_path, rev):
    _seed(hub, lg_folder)
    hub.hostile_revisions = True  # a mirror or hostile server that resolves every revision
    before = _files_under(tmp_path)
    with pytest.raises(errors.RevisionNotFoundError) as ei:
        whub.pull("hf-hub:wavehub/tiny", revision=rev, progress=False)
    assert ei.value.remedy and "\n" not in str(ei.value)
    assert hub.requests == []
    assert _files_under(tmp_path) == before  # nothing written anywhere, inside the cache or out


def test_hostile_revision_in_the_name_refused(hub, lg_folder, tmp_path):
    _seed(hub, lg_folder)
    hub.hostile_revisions = True
    with pytest.raises(errors.RevisionNotFoundError):
        whub.resolve("hf-hub:wavehub/tiny@../../../x")
    assert hub.requests == [] and not (tmp_path / "x").exists()


@pytest.mark.parametrize("repo", ["wavehub/tiny?x=1", "wavehub/tiny#x", "wave hub/tiny", "wavehub/.tiny",
                                  "wavehub/ti\x00ny", "wavehub/" + "t" * 100, "wavehub/tiny.git"])
def test_bad_repo_id_refused_before_any_request(hub, lg_folder, repo):
    _seed(hub, lg_folder)
    with pytest.raises(errors.LearngeneNotFoundError):
        whub.resolve(f"hf-hub:{repo}")
    with pytest.raises(errors.LearngeneNotFoundError):
        whub.push(lg_folder, repo)
    assert hub.requests == []


def test_push_refuses_hostile_branch_and_tag(hub, lg_folder):
    for kw in ({"branch": "../../x"}, {"tag": "a/../../b"}, {"revision": "/main"}):
        with pytest.raises(errors.RevisionNotFoundError):
            whub.push(lg_folder, "me/tiny", **kw)
    assert hub.requests == []


@pytest.mark.parametrize("commit", ["not-a-commit", "ABCDEF" * 7, "../../../evil", "0" * 39])
def test_forged_commit_name_refused(hub, lg_folder, tmp_path, commit):
    _seed(hub, lg_folder)
    hub.commit_header = commit
    before = {p for p in _files_under(tmp_path) if hub.cache_dir not in p.parents}
    with pytest.raises(errors.HubError):
        whub.resolve("hf-hub:wavehub/tiny", progress=False)
    assert {p for p in _files_under(tmp_path) if hub.cache_dir not in p.parents} == before
    snaps = [p.name for p in hub.cache_dir.glob("*/snapshots/*")]
    assert all(len(s) == 40 for s in snaps), snaps  # no snapshot named by the server's string
    hub.commit_header = None
    with pytest.raises(errors.WavehubError):  # nothing usable was kept
        whub.resolve("hf-hub:wavehub/tiny", offline=True)
    assert (whub.resolve("hf-hub:wavehub/tiny", progress=False) / "config.json").is_file()
