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


@pytest.mark.parametrize(
    "rev",
    [
        "../../../x",
        "../../../../x",
        "/etc/x",
        "\\x",
        "a\\..\\..\\x",
        "main?x=1",
        "main#x",
        "ma\nin",
        "a//b",
        "a/./b",
        "v" * 300,
    ],
)
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


@pytest.mark.parametrize(
    "repo",
    [
        "wavehub/tiny?x=1",
        "wavehub/tiny#x",
        "wave hub/tiny",
        "wavehub/.tiny",
        "wavehub/ti\x00ny",
        "wavehub/" + "t" * 100,
        "wavehub/tiny.git",
    ],
)
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


# ---- the listing: retried like the client, fail fast, a warm cache served


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr("wavehub.hub.download.LIST_RETRY_WAITS", (0.01, 0.02, 0.04))


def _tree_requests(hub) -> int:
    return sum(1 for m, p in hub.requests if "/tree/" in p)


def test_one_transient_500_on_the_listing_does_not_fail_a_pull(hub, lg_folder, fast_retries):
    _seed(hub, lg_folder)
    hub.fail("/tree/", 500, times=1)
    folder = whub.pull("hf-hub:wavehub/tiny", progress=False)
    assert (folder / "config.json").is_file() and _tree_requests(hub) == 2


def test_persistent_5xx_fails_fast_without_waiting_for_the_download(hub, lg_folder, fast_retries):
    _seed(hub, lg_folder)
    hub.throttle_bps = (lg_folder / "learngene.safetensors").stat().st_size // 4  # a ~4 s tensor download
    hub.fail("/tree/", 503, times=-1)
    with pytest.raises(errors.HubError) as ei:
        whub.pull("hf-hub:wavehub/tiny", progress=False)
    # reported before the tensor download finished: no complete tensor file is in the cache yet
    landed = [p for p in hub.cache_dir.rglob("learngene.safetensors") if p.exists()]
    assert "503" in ei.value.message and "retry later" in ei.value.remedy
    assert not isinstance(ei.value, errors.OfflineError)  # reachable but failing: not "check your network"
    assert _tree_requests(hub) == 4  # the first try and three retries
    assert not landed, landed


def test_warm_cache_is_served_with_a_warning_when_the_hub_errs(hub, lg_folder, fast_retries):
    _seed(hub, lg_folder)
    online = whub.pull("hf-hub:wavehub/tiny", progress=False)
    hub.fail("/", 500, times=-1)  # every route
    with pytest.warns(UserWarning, match="HTTP 500"):
        assert whub.pull("hf-hub:wavehub/tiny", progress=False) == online


# ---- nested JSON, and artifacts that pass the hash but cannot load


def _nested_config(folder: Path, depth: int, inside: bool) -> None:

    cfg = (folder / "config.json").read_text()
    nest = "[" * depth + "]" * depth
    (folder / "config.json").write_text(cfg.rstrip()[:-1] + f', "deep": {nest}}}' if inside else nest)


@pytest.mark.parametrize("depth,inside", [(100_000, False), (900, True), (60, True)])
def test_nested_config_is_a_typed_error_everywhere(hub, lg_folder, tmp_path, capsys, depth, inside):
    import wavehub
    from wavehub.cli import main

    good = save_learngene(tiny_wave(seed=3), tmp_path / "good")
    _seed(hub, good, repo="wavehub/good")
    assert whub.pull("hf-hub:wavehub/good", progress=False).is_dir()
    _nested_config(lg_folder, depth, inside)
    _seed(hub, lg_folder, repo="wavehub/deep")
    with pytest.raises(errors.ArtifactFormatError, match="nested deeper|not valid JSON"):
        whub.pull("hf-hub:wavehub/deep", progress=False)
    with pytest.raises(errors.ArtifactFormatError):
        wavehub.create_model("hf-hub:wavehub/deep", depth=2, num_classes=3)
    with pytest.raises(errors.ArtifactFormatError):
        wavehub.load_learngene(lg_folder)
    capsys.readouterr()
    assert main(["info", str(lg_folder)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    rows = {r["repo_id"]: r["status"] for r in whub.cache_verify()}  # goes on to report the good repo
    assert rows["wavehub/good"] == "ok" and rows["wavehub/deep"].startswith("corrupt: ")
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert "wavehub/good@" in out and "wavehub/deep@" in out


def test_nested_tree_listing_is_a_typed_error(hub, lg_folder):
    _seed(hub, lg_folder)
    hub.tree_body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(errors.HubError, match="unexpected file list"):
        whub.pull("hf-hub:wavehub/tiny", progress=False)


def _resave(folder: Path, mutate) -> None:
    """Rewrite the tensor file through ``mutate(tensors) -> bytes`` and vouch for it in config.json, so only
    the loader's own checks (not the hash) can refuse it."""
    import json

    from safetensors.torch import load, save

    from wavehub.artifact import sha256_bytes

    meta = {"format_version": "1", "format": "wavehub.learngene", "method": "wave"}
    t = load((folder / "learngene.safetensors").read_bytes())
    data = mutate(t, lambda x: save(x, metadata=meta))
    (folder / "learngene.safetensors").write_bytes(data)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["sha256"] = sha256_bytes(data)
    (folder / "config.json").write_text(json.dumps(cfg))


def _nan(t, save):
    t["templates.fc1"] = t["templates.fc1"].clone().fill_(float("nan"))
    return save(t)


def _int(t, save):
    t["templates.fc1"] = t["templates.fc1"].to(__import__("torch").int32)
    return save(t)


def _truncated(t, save):
    return save(t)[:-100]


@pytest.mark.parametrize("mutate,match", [(_nan, "NaN"), (_int, "dtype"), (_truncated, "truncated")])
def test_pull_and_cache_verify_refuse_what_cannot_load(hub, lg_folder, capsys, mutate, match):
    from wavehub.cli import main

    _resave(lg_folder, mutate)
    from wavehub.artifact import load_learngene

    with pytest.raises(errors.ArtifactError, match=match):
        load_learngene(lg_folder)
    _seed(hub, lg_folder)
    with pytest.raises(errors.ArtifactError, match=match):
        whub.pull("hf-hub:wavehub/tiny", progress=False)
    rows = whub.cache_verify()
    assert len(rows) == 1 and rows[0]["status"].startswith("corrupt") and match in rows[0]["status"], rows
    capsys.readouterr()
    assert main(["pull", "hf-hub:wavehub/tiny", "--quiet"]) == 1
    assert "Traceback" not in capsys.readouterr().err


# ---- partial downloads (kill -9 mid-pull)


def _pull_forever():
    whub.resolve("hf-hub:wavehub/tiny", progress=False)


def test_killed_pull_leaves_a_partial_that_cache_ls_counts_and_rm_cleans(hub, lg_folder, capsys):
    import multiprocessing as mp
    import os
    import random
    import signal
    import time

    from wavehub.cli import main

    # a tensor file over the client's 10 MB write chunk, so a killed download has bytes on disk
    big = random.Random(0).randbytes(24 << 20)
    hub.commit(
        "wavehub/tiny",
        {"config.json": (lg_folder / "config.json").read_bytes(), "learngene.safetensors": big},
    )
    hub.throttle_bps = 4 << 20  # ~6 s
    proc = mp.get_context("fork").Process(target=_pull_forever)
    proc.start()
    deadline = time.monotonic() + 60
    partial: list[Path] = []
    while time.monotonic() < deadline and proc.is_alive():
        partial = [p for p in hub.cache_dir.rglob("*.incomplete") if p.stat().st_size > 0]
        if partial:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    hub.throttle_bps = None
    assert partial, "the pull never started writing"
    on_disk = sum(p.stat().st_size for p in hub.cache_dir.rglob("*") if p.is_file() and "blobs" in p.parts)
    rows = whub.cache_ls()
    assert [r["repo_id"] for r in rows] == ["wavehub/tiny"]
    assert rows[0]["partial_files"] == 1 and rows[0]["size"] == rows[0]["partial_size"] == on_disk > 0
    capsys.readouterr()
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "1 partial download" in out and "cache clean" in out
    assert whub.cache_rm("hf-hub:wavehub/tiny") == 0  # no complete revision, but the partial is removed
    assert not list(hub.cache_dir.rglob("*.incomplete")) and whub.cache_ls() == []


def test_cache_clean_removes_partials_but_not_one_being_written(hub, lg_folder):
    from filelock import FileLock

    blobs = hub.cache_dir / "models--wavehub--tiny" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / ("a" * 64 + ".incomplete")).write_bytes(b"x" * 1000)
    busy = blobs / ("b" * 64 + ".incomplete")
    busy.write_bytes(b"y" * 10)
    lock = hub.cache_dir / ".locks" / "models--wavehub--tiny" / ("b" * 64 + ".lock")
    lock.parent.mkdir(parents=True)
    with FileLock(str(lock)):  # a download in progress holds its lock
        assert whub.cache_clean() == (1, 1000)
    assert [p.name for p in blobs.iterdir()] == [busy.name]


# ---- remedies right for each cause


def test_disk_full_says_how_much_to_free_and_where(hub, lg_folder, tmp_path, monkeypatch):
    """A real ENOSPC: the HF cache on a 200 KB tmpfs (needs root to mount; skipped elsewhere)."""
    import subprocess

    from huggingface_hub import constants

    small = tmp_path / "small-disk"
    small.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(small)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        monkeypatch.setenv("HF_HUB_CACHE", str(small))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(small))
        _seed(hub, lg_folder)  # a 570 KB tensor file
        with pytest.raises(errors.DownloadError) as ei:
            whub.pull("hf-hub:wavehub/tiny", progress=False)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
    assert "full" in ei.value.message and "needs 0.6 MB" in ei.value.message
    assert ei.value.remedy.startswith("Free at least ") and str(small) in ei.value.remedy
    assert "Retry `wavehub pull" not in str(ei.value)


def test_repair_offline_keeps_the_copy_and_says_it_needs_the_network(hub, lg_folder, monkeypatch, capsys):
    import os

    from wavehub.cli import main

    _seed(hub, lg_folder)
    folder = whub.pull("hf-hub:wavehub/tiny", progress=False)
    blob = Path(os.path.realpath(folder / "learngene.safetensors"))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    rows = whub.cache_verify(repair=True)
    assert "offline" in rows[0]["status"] and blob.exists() and len(hub.requests) == n
    capsys.readouterr()
    assert main(["cache", "verify", "--repair"]) == 1
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "Check your network" not in err


def test_push_offline_and_unreachable_say_so(hub, lg_folder, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(errors.OfflineError) as ei:
        whub.push(lg_folder, "me/tiny")
    assert "offline" in ei.value.message and "download" not in str(ei.value).lower()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(errors.OfflineError) as ei:
        whub.push(lg_folder, "me/tiny")
    assert "cannot be reached" in ei.value.message and "download" not in str(ei.value).lower()


def test_a_damaged_bundled_learngene_says_reinstall(hub, tmp_path, monkeypatch):
    import shutil

    from wavehub import artifact, zoo

    copy = tmp_path / "_bundled" / "dinov2s-learngene"
    shutil.copytree(zoo.bundled_path("dinov2s-learngene"), copy)
    data = bytearray((copy / "learngene.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "learngene.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(artifact, "_BUNDLED_DIR", copy.parent)
    monkeypatch.setattr(zoo, "bundled_path", lambda name: copy)
    for call in (
        lambda: whub.pull("dinov2s-learngene", progress=False),
        lambda: artifact.load_learngene(copy),
    ):
        with pytest.raises(errors.IntegrityError) as ei:
            call()
        assert "bundled" in ei.value.message and "Reinstall wavehub" in ei.value.remedy
        assert "cache verify" not in ei.value.remedy
    assert hub.requests == []
