"""wavehub build: distillation into templates, DDP == 1 process, resume == uninterrupted, valid artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from _tiny import tiny_timm_vit

import wavehub
from wavehub.artifact import load_learngene
from wavehub.distill import CHECKPOINT_FILE, LOG_FILE, build_learngene, heldout_loss, read_checkpoint
from wavehub.errors import BuildError

ARGS = dict(
    steps=8, batch_size=8, img_size=32, templates=4, checkpoint_every=2, holdout=8, progress=False, lr=5e-4
)


@pytest.fixture(scope="module")
def ancestry(tmp_path_factory):
    """A tiny timm ViT saved as a timm folder: the `local-dir:` ancestry."""
    from wavehub.export import save_timm

    m = tiny_timm_vit(0)
    m.pretrained_cfg = {"mean": (0.5,) * 3, "std": (0.5,) * 3, "input_size": (3, 32, 32), "num_classes": 0}
    return "local-dir:" + str(save_timm(m, tmp_path_factory.mktemp("anc") / "tiny"))


@pytest.fixture(scope="module")
def single(ancestry, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "lg"
    assert build_learngene(ancestry, out=out, **ARGS) == out
    return out


def _tensors(path):
    return load_learngene(path).tensors


def test_artifact_validates_materializes_and_records_recipe(single):
    lg = load_learngene(single)
    r = lg.config["recipe"]
    assert lg.method == "wave" and lg.config["wave"]["types"]["qkv"]["n"] == 4
    assert r["kind"] == "distill" and r["steps"] == 8 and r["images_seen"] == 64 and r["batch_size"] == 8
    assert "natural" in r["data"] and "astronaut" in r["data"] and r["wall_time_s"] > 0
    assert r["hardware"]["world_size"] == 1 and "feature KD" in r["losses"]
    card = (single / "README.md").read_text()
    assert "## How it was built" in card and lg.sha256 in card and "images seen" in card
    log = [json.loads(ln) for ln in (single / LOG_FILE).read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, 9)) and all(e["loss"] > 0 for e in log)
    m = wavehub.from_learngene(single, depth=3, width=128, num_classes=5).eval()
    assert type(m).__name__ == "VisionTransformer" and m(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_distillation_lowers_heldout_kd_loss(single, ancestry):
    """On Fashion-MNIST test images (never seen: the build used natural crops) the distilled aux-size model is
    closer to the ancestry than the data-free extraction it started from."""
    from wavehub.ancestry import load_ancestry
    from wavehub.data import load_dataset
    from wavehub.extract import extract_learngene

    r = load_learngene(single).config["recipe"]
    assert r["heldout_after"] < r["heldout_before"]
    teacher = load_ancestry(ancestry).model(img_size=32)
    x = torch.stack(
        [
            load_dataset("fashion-mnist", "test", img_size=32, subset=32, mean=(0.5,), std=(0.5,))[i][0]
            for i in range(32)
        ]
    )
    start = wavehub.from_learngene(
        extract_learngene(ancestry, templates=4, img_size=32, storage_dtype="float32"), num_classes=0
    ).eval()
    after = wavehub.from_learngene(single, num_classes=0).eval()
    before_loss, after_loss = heldout_loss(start, teacher, x), heldout_loss(after, teacher, x)
    assert after_loss < 0.95 * before_loss, (before_loss, after_loss)


def test_two_process_torchrun_equals_single_process(single, ancestry, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "wavehub",
        "build",
        "--ancestry",
        ancestry,
        "--out",
        str(out),
        "--steps",
        "8",
        "--batch-size",
        "8",
        "--img-size",
        "32",
        "--templates",
        "4",
        "--checkpoint-every",
        "2",
        "--holdout",
        "8",
        "--no-progress",
        "--lr",
        "5e-4",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("wrote ") == 1  # only rank 0 writes
    a, b = _tensors(single), _tensors(out)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-4, msg=k)
    r = load_learngene(out).config["recipe"]
    assert r["hardware"]["world_size"] == 2 and r["hardware"]["backend"] == "gloo" and r["images_seen"] == 64
    assert "torchrun --nproc-per-node 2" in r["command"]


def test_interrupted_then_resumed_equals_uninterrupted(single, ancestry, tmp_path):
    out = tmp_path / "resumed"
    assert build_learngene(ancestry, out=out, max_steps_this_run=3, **ARGS) is None
    assert (out / CHECKPOINT_FILE).is_file() and not (out / "learngene.safetensors").exists()
    state = read_checkpoint(out / CHECKPOINT_FILE)
    assert state["step"] == 3 and state["images_seen"] == 24
    with pytest.raises(BuildError, match="checkpoint"):  # no silent restart over a checkpoint
        build_learngene(ancestry, out=out, **ARGS)
    with pytest.raises(BuildError, match="lr"):  # resuming with another recipe is refused
        build_learngene(ancestry, out=out, resume=True, **(ARGS | {"lr": 1e-3}))
    assert build_learngene(ancestry, out=out, resume=True, **ARGS) == out
    a, b = _tensors(single), _tensors(out)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-6, atol=1e-7, msg=k)
    steps = [json.loads(ln)["step"] for ln in (out / LOG_FILE).read_text().splitlines()]
    assert steps == list(range(1, 9))
    r1, r2 = load_learngene(single).config["recipe"], load_learngene(out).config["recipe"]
    assert r2["images_seen"] == 64 and r2["loss_first"] == r1["loss_first"]


def test_tleg_build_from_random_init(ancestry, tmp_path):
    out = build_learngene(
        ancestry, method="tleg", init="random", out=tmp_path / "tleg", **(ARGS | {"lr": 2e-3, "steps": 4})
    )
    lg = load_learngene(out)
    assert lg.method == "tleg" and lg.config["recipe"]["init"] == "random"
    assert lg.config["recipe"]["heldout_after"] < lg.config["recipe"]["heldout_before"]
    assert not torch.equal(
        lg.tensors["tleg.ilayer.attn.qkv.weight"], torch.zeros_like(lg.tensors["tleg.ilayer.attn.qkv.weight"])
    )
    m = wavehub.from_learngene(out, depth=5, num_classes=3).eval()
    assert len(m.blocks) == 5 and m(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_classifier_ancestry_uses_logit_kd_and_ce(tmp_path):
    """An ancestry with a 10-way head distilled on a 10-class train split: CE + KD on logits join feature KD."""
    from wavehub.export import save_timm

    m = tiny_timm_vit(1)
    m.reset_classifier(10)
    m.pretrained_cfg = {"mean": (0.5,) * 3, "std": (0.5,) * 3, "input_size": (3, 32, 32), "num_classes": 10}
    anc = "local-dir:" + str(save_timm(m, tmp_path / "cls"))
    out = build_learngene(anc, data="digits", out=tmp_path / "lg", **(ARGS | {"steps": 2}))
    r = load_learngene(out).config["recipe"]
    assert "logit KD" in r["losses"] and "CE" in r["losses"] and "digits train" in r["data"]
    log = [json.loads(ln) for ln in (out / LOG_FILE).read_text().splitlines()]
    assert {"kd", "ce", "feat_final"} <= set(log[0])


def test_refuses_test_split_and_bad_options(ancestry, tmp_path):
    with pytest.raises(BuildError, match="test"):
        build_learngene(ancestry, data="fashion-mnist:test", out=tmp_path / "x", **ARGS)
    with pytest.raises(BuildError, match="method"):
        build_learngene(ancestry, method="nope", out=tmp_path / "y", **ARGS)
    with pytest.raises(BuildError, match="epochs"):
        build_learngene(ancestry, out=tmp_path / "z", **(ARGS | {"steps": None}), epochs=1)
