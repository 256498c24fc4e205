"""Hub behaviour against the fake Hub with the real huggingface_hub client (issue: Hub and zoo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from _tiny import tiny_wave

import wavehub
from wavehub import errors
from wavehub import hub as whub
from wavehub.artifact import CONFIG_FILE, TENSOR_FILE, save_learngene, sha256_file


@pytest.fixture
def lg_folder(tmp_path):
    return save_learngene(tiny_wave(), tmp_path / "lg")


def _seed(hub, folder, repo="wavehub/tiny", tag=None, private=False):
    hub.create_repo(repo, private=private)
    sha = hub.commit(repo, folder)
    if tag:
        hub.tag(repo, tag)
    return sha


def _no_partial_files(cache: Path) -> bool:
    return not [p for p in cache.rglob("*") if p.name.endswith(".incomplete") or p.suffix == ".tmp"]


def test_push_then_pull_round_trip_is_byte_equal(hub, lg_folder):
    oid = whub.push(lg_folder, "me/tiny", tag="v1", token="tok")
    assert len(oid) == 40 and set(hub.files("me/tiny", "v1")) >= {
        "learngene.safetensors",
        "config.json",
        "README.md",
    }
    got = whub.resolve("hf-hub:me/tiny@v1")
    for f in ("learngene.safetensors", "config.json", "README.md"):
        assert (got / f).read_bytes() == (lg_folder / f).read_bytes()
    assert Path(os.path.realpath(got / TENSOR_FILE)).name == sha256_file(lg_folder / TENSOR_FILE)  # LFS blob


def test_push_to_a_private_branch_then_pull_with_token(hub, lg_folder):
    hub.tokens.add("hf_good")
    oid = whub.push(lg_folder, "me/secret", branch="dev", private=True, token="hf_good")
    assert hub.repos["me/secret"].private and hub.resolve_rev("me/secret", "dev") == oid
    assert TENSOR_FILE not in hub.files("me/secret", "main")  # only the branch got the commit
    with pytest.raises(errors.AuthError):
        whub.resolve("hf-hub:me/secret@dev")
    got = whub.resolve("hf-hub:me/secret@dev", token="hf_good")
    assert got.name == oid and (got / TENSOR_FILE).read_bytes() == (lg_folder / TENSOR_FILE).read_bytes()


def test_push_refuses_invalid_artifact(hub, lg_folder):
    data = bytearray((lg_folder / TENSOR_FILE).read_bytes())
    data[-5] ^= 1
    (lg_folder / TENSOR_FILE).write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError):
        whub.push(lg_folder, "me/bad")
    assert "me/bad" not in hub.repos


def test_pull_by_branch_tag_and_commit(hub, lg_folder, tmp_path):
    sha1 = _seed(hub, lg_folder, tag="v1")
    other = save_learngene(tiny_wave(seed=5), tmp_path / "other")
    hub.branch("wavehub/tiny", "dev")
    sha2 = hub.commit("wavehub/tiny", other, branch="dev")
    main = wavehub.load_learngene("hf-hub:wavehub/tiny")
    tag = wavehub.load_learngene("hf-hub:wavehub/tiny@v1")
    dev = wavehub.load_learngene("hf-hub:wavehub/tiny", revision="dev")
    by_sha = wavehub.load_learngene(f"hf-hub:wavehub/tiny@{sha2}")
    assert main.sha256 == tag.sha256 == sha256_file(lg_folder / TENSOR_FILE)
    assert dev.sha256 == by_sha.sha256 == sha256_file(other / TENSOR_FILE) != main.sha256
    assert whub.resolve(f"hf-hub:wavehub/tiny@{sha1}").name == sha1


def test_create_model_published_zoo_entry_through_hf_endpoint(hub, tmp_path, monkeypatch):
    from _zoo import published_card

    published_card(tmp_path / "cards", monkeypatch)  # the package's own Hub entries are unpublished recipes
    folder = save_learngene(tiny_wave(name="hub-learngene"), tmp_path / "deit")
    _seed(hub, folder, repo="wavehub/hub-learngene", tag="v1.0")
    model = wavehub.create_model("hub-learngene", depth=8, width=384, num_classes=10)
    assert len(model.blocks) == 8 and model.embed_dim == 384
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert any("/wavehub/hub-learngene/resolve/v1.0/" in p for _, p in hub.requests)
    n = len(hub.requests)
    again = wavehub.create_model("hub-learngene", depth=2, width=128, num_classes=10)  # pinned + cached
    assert len(again.blocks) == 2 and len(hub.requests) == n  # served from the cache, not one request


def test_offline_pull_served_from_cache(hub, lg_folder, monkeypatch):
    _seed(hub, lg_folder, tag="v1")
    online = whub.resolve("hf-hub:wavehub/tiny@v1")
    n = len(hub.requests)
    assert whub.resolve("hf-hub:wavehub/tiny@v1", offline=True) == online
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert whub.resolve("hf-hub:wavehub/tiny@v1") == online
    assert len(hub.requests) == n  # not one request


def _count_sleeps(monkeypatch) -> list:
    """Record the client's retry back-off sleeps on the calling thread (a retry loop sleeps; a direct failure
    does not). The tensor download wavehub starts alongside the listing, and abandons when the Hub cannot be
    reached, backs off on its own thread: the caller never waits for it."""
    import threading

    from huggingface_hub.utils import _http

    calls: list = []
    caller = threading.current_thread()
    monkeypatch.setattr(
        _http.time, "sleep", lambda s: calls.append(s) if threading.current_thread() is caller else None
    )
    return calls


def test_unreachable_hub_nothing_cached_fails_at_once(hub, lg_folder, monkeypatch):
    import time

    from huggingface_hub import constants

    _seed(hub, lg_folder)
    sleeps = _count_sleeps(monkeypatch)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(errors.OfflineError) as ei:
        whub.resolve("hf-hub:wavehub/tiny")
    print(f"unreachable Hub, nothing cached: failed in {time.perf_counter() - t0:.3f} s")
    assert "cannot be reached" in ei.value.message and "wavehub pull hf-hub:wavehub/tiny" in ei.value.remedy
    assert sleeps == []  # no back-off retry loop


def test_unreachable_hub_serves_the_cache(hub, lg_folder, monkeypatch):
    from huggingface_hub import constants

    _seed(hub, lg_folder)
    online = whub.resolve("hf-hub:wavehub/tiny")
    sleeps = _count_sleeps(monkeypatch)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.warns(UserWarning, match="cannot be reached"):
        assert whub.resolve("hf-hub:wavehub/tiny") == online
    assert sleeps == []


def test_offline_with_nothing_cached_is_fast_typed_error(hub, tmp_path, monkeypatch):
    import time

    from _zoo import published_card

    published_card(tmp_path / "cards", monkeypatch)
    t0 = time.perf_counter()
    with pytest.raises(errors.OfflineError) as ei:
        wavehub.load_learngene("hub-learngene", offline=True)
    elapsed = time.perf_counter() - t0
    assert "wavehub pull hub-learngene" in str(ei.value) and "dinov2s-learngene" in str(ei.value)
    assert hub.requests == []  # never touched the network, so no retry loop either
    print(f"offline miss took {elapsed:.3f} s")


@pytest.mark.parametrize(
    "name,err",
    [
        ("hf-hub:nobody/nothing", errors.LearngeneNotFoundError),
        ("hf-hub:wavehub/tiny@no-such-branch", errors.RevisionNotFoundError),
        ("hf-hub:wavehub/notalg", errors.EntryNotFoundError),
        ("no-such-learngene", errors.LearngeneNotFoundError),
    ],
)
def test_missing_repo_revision_file(hub, lg_folder, name, err):
    _seed(hub, lg_folder)
    hub.commit("wavehub/notalg", {"README.md": b"# not a learngene"})
    with pytest.raises(err) as ei:
        whub.resolve(name)
    assert ei.value.remedy
    if name.startswith("hf-hub:"):  # the client's exception stays visible, the repo is a field
        assert ei.value.repo_id == name.split(":")[1].split("@")[0]
        if err is not errors.EntryNotFoundError:  # that one wavehub finds itself, in the file listing
            assert isinstance(ei.value.__cause__, Exception)


@pytest.mark.parametrize("victim", [TENSOR_FILE, CONFIG_FILE])
def test_corrupted_cached_blob_detected_and_repaired(hub, lg_folder, victim):
    _seed(hub, lg_folder)
    folder = whub.resolve("hf-hub:wavehub/tiny")
    blob = Path(os.path.realpath(folder / victim))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same length: only a hash can tell
    blob.write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError, match=victim):
        whub.resolve("hf-hub:wavehub/tiny", offline=True)  # offline: detected, cannot repair
    assert hub.download_count(victim) == 1
    again = whub.resolve("hf-hub:wavehub/tiny")  # online: evicted and fetched once more
    assert (again / victim).read_bytes() == (lg_folder / victim).read_bytes()
    assert hub.download_count(victim) == 2
    assert whub.cache_verify() == [
        {"repo_id": "wavehub/tiny", "commit": again.name, "refs": ["main"], "status": "ok"}
    ]


def test_hash_consistent_but_malformed_artifact_refused_without_retry(hub, lg_folder):
    import json

    cfg = json.loads((lg_folder / CONFIG_FILE).read_text())
    cfg["aux"]["depth"] += 1  # the sha256 still matches, the tensors no longer fit the config
    (lg_folder / CONFIG_FILE).write_text(json.dumps(cfg))
    _seed(hub, lg_folder)
    with pytest.raises(errors.ArtifactFormatError, match="has shape") as ei:  # the artifact layer's own check
        whub.pull("hf-hub:wavehub/tiny", progress=False)
    assert ei.value.repo_id == "wavehub/tiny" and ei.value.revision == "main" and ei.value.path
    assert hub.download_count(TENSOR_FILE) == 1  # a re-download cannot fix the publisher's file


def test_corrupt_server_blob_fails_cleanly(hub, lg_folder):
    _seed(hub, lg_folder)
    hub.corrupt.add(TENSOR_FILE)
    with pytest.raises(errors.IntegrityError):
        whub.resolve("hf-hub:wavehub/tiny")
    assert hub.download_count(TENSOR_FILE) == 2  # the one repair attempt, then a clear error


def test_connection_dropped_mid_download(hub, lg_folder):
    _seed(hub, lg_folder)
    hub.drop_after_bytes, hub.drop_count = 50_000, 1000
    with pytest.raises(errors.DownloadError) as ei:
        whub.resolve("hf-hub:wavehub/tiny")
    assert "wavehub/tiny@main" in ei.value.message and "Retry" in ei.value.remedy
    assert "\n" not in str(ei.value)  # one line for the CLI
    assert _no_partial_files(hub.cache_dir)
    full = (lg_folder / TENSOR_FILE).read_bytes()
    assert all(
        p.read_bytes() != full[: p.stat().st_size] or p.stat().st_size == len(full)
        for p in hub.cache_dir.rglob("blobs/*")
        if p.stat().st_size > 10_000
    )  # no truncated blob kept
    assert not any(p.name == TENSOR_FILE for p in hub.cache_dir.rglob("snapshots/*/*"))
    hub.drop_after_bytes = None
    folder = whub.resolve("hf-hub:wavehub/tiny")
    assert sha256_file(folder / TENSOR_FILE) == sha256_file(lg_folder / TENSOR_FILE)


def test_one_dropped_connection_resumes(hub, lg_folder):
    _seed(hub, lg_folder)
    hub.drop_after_bytes, hub.drop_count = 100_000, 1
    folder = whub.resolve("hf-hub:wavehub/tiny")
    assert sha256_file(folder / TENSOR_FILE) == sha256_file(lg_folder / TENSOR_FILE)
    ranged = [p for m, p in hub.requests if m == "GET" and p.endswith(TENSOR_FILE)]
    assert len(ranged) == 2  # the dropped one and the resumed one


def _pull_in_child(go, results):
    go.wait(60)  # all four start their downloads together
    try:
        p = whub.resolve("hf-hub:wavehub/tiny", progress=False)
        results.put(("ok", sha256_file(p / TENSOR_FILE)))
    except BaseException as e:  # noqa: BLE001 - report anything to the parent
        results.put(("error", repr(e)))


def test_four_processes_pull_at_once(hub, lg_folder):
    import multiprocessing as mp

    _seed(hub, lg_folder)
    hub.throttle_bps = 2_000_000  # ~0.3 s per download, so the four overlap
    ctx = mp.get_context("fork")  # forked: real separate processes, without re-importing torch four times
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_pull_in_child, args=(go, results)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    outs = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * 4
    assert outs == [("ok", sha256_file(lg_folder / TENSOR_FILE))] * 4
    assert hub.download_count(TENSOR_FILE) == 1  # one GET of the blob: the others waited on its file lock
    assert len(list(hub.cache_dir.rglob("blobs/*"))) == 3 and _no_partial_files(hub.cache_dir)


def test_private_repo_needs_token(hub, lg_folder, monkeypatch):
    _seed(hub, lg_folder, repo="wavehub/secret", private=True)
    hub.tokens.add("hf_good")
    with pytest.raises(errors.AuthError) as ei:
        whub.resolve("hf-hub:wavehub/secret")
    assert "HF_TOKEN" in str(ei.value)
    assert (
        ei.value.status in (401, 403)
        and ei.value.repo_id == "wavehub/secret"
        and ei.value.__cause__ is not None
    )
    with pytest.raises(errors.AuthError):
        whub.resolve("hf-hub:wavehub/secret", token="hf_wrong")
    assert (whub.resolve("hf-hub:wavehub/secret", token="hf_good") / TENSOR_FILE).is_file()
    monkeypatch.setenv("HF_TOKEN", "hf_good")  # the usual place
    assert whub.resolve("hf-hub:wavehub/secret", force=True).is_dir()


@pytest.mark.parametrize("bad", ["../evil", "/etc/passwd", "a/../../b", "C:\\x"])
def test_malicious_tree_path_refused(hub, lg_folder, bad):
    _seed(hub, lg_folder)
    hub.extra_tree_entries["wavehub/tiny"] = [{"type": "file", "oid": "0" * 40, "size": 1, "path": bad}]
    with pytest.raises(errors.HubError, match="unsafe file path"):
        whub.resolve("hf-hub:wavehub/tiny")
    # the tensor file (a fixed, safe name) downloads alongside the listing; nothing else is fetched and the
    # refused repo is never served: without its config.json an offline resolve finds nothing usable
    assert hub.download_count(CONFIG_FILE) == 0
    with pytest.raises(errors.OfflineError):
        whub.resolve("hf-hub:wavehub/tiny", offline=True)


def test_pull_writes_ready_to_train_timm_folder(hub, tmp_path):
    import timm

    out = wavehub.pull(
        "dinov2s-learngene",
        depth=2,
        width=128,
        num_classes=3,
        img_size=56,
        out=tmp_path / "m",
        progress=False,
    )
    model = timm.create_model(f"local-dir:{out}", pretrained=True)
    ref = wavehub.create_model("dinov2s-learngene", depth=2, width=128, num_classes=3, img_size=56)
    x = torch.randn(1, 3, 56, 56)
    assert torch.equal(model(x), ref(x))
    assert hub.requests == []  # bundled: no network


def test_cache_ls_and_rm(hub, lg_folder):
    _seed(hub, lg_folder, tag="v1")
    whub.resolve("hf-hub:wavehub/tiny@v1")
    rows = whub.cache_ls()
    assert [r["repo_id"] for r in rows] == ["wavehub/tiny"] and rows[0]["revisions"][0]["refs"] == ["v1"]
    assert whub.cache_rm("hf-hub:wavehub/tiny") == 1
    assert whub.cache_ls() == []
    with pytest.raises(errors.LearngeneNotFoundError):
        whub.cache_rm("hf-hub:wavehub/tiny")


def test_first_load_from_the_hub_hashes_the_tensor_file_once(hub, lg_folder, monkeypatch):
    import wavehub.artifact as art
    import wavehub.hub.download as dl

    _seed(hub, lg_folder)
    hashed = []
    real_file, real_bytes = dl.sha256_file, art.sha256_bytes
    monkeypatch.setattr(dl, "sha256_file", lambda p: hashed.append("file") or real_file(p))
    monkeypatch.setattr(art, "sha256_bytes", lambda b: hashed.append("bytes") or real_bytes(b))
    lg = wavehub.load_learngene("hf-hub:wavehub/tiny", progress=False)
    assert lg.sha256 == sha256_file(lg_folder / TENSOR_FILE)
    assert hashed == ["file"]  # the hub's hash is the loader's: no second pass over the file


def test_hub_pull_is_network_only_and_the_api_writes_models(hub, lg_folder, tmp_path):
    import inspect

    _seed(hub, lg_folder)
    assert "out" not in inspect.signature(whub.pull).parameters
    assert wavehub.pull is not whub.pull and "out" in inspect.signature(wavehub.pull).parameters
    assert whub.pull("hf-hub:wavehub/tiny", progress=False) == wavehub.pull(
        "hf-hub:wavehub/tiny", progress=False
    )
    with pytest.raises(errors.ArgumentError) as ei:
        wavehub.pull("hf-hub:wavehub/tiny", depth=2, progress=False)
    assert ei.value.argument == "out"
