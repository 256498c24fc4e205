"""Every example in examples/ runs as written (tiny sizes), and its printed results and files are checked."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from _tiny import tiny_timm_vit, tiny_wave

from wavehub.artifact import save_learngene

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLASSES = runpy.run_path(str(EXAMPLES / "fashion_mnist.py"))["CLASSES"]  # the label names the examples write


def _run(args: list[str], cwd: Path, env: dict | None = None) -> str:
    """Run an example from a scratch cwd (so its default runs/ folder lands there); fail with its output."""
    cmd = [sys.executable, *args] if args[0].endswith(".py") else args
    p = subprocess.run(cmd, cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True)
    assert p.returncode == 0, (
        f"{' '.join(map(str, args))} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    )
    return p.stdout


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


FT_ARGS = [
    "--depth",
    "2",
    "--width",
    "64",
    "--steps",
    "4",
    "--batch-size",
    "16",
    "--train-subset",
    "64",
    "--test-subset",
    "40",
    "--mixup",
    "0.2",
    "--ema-decay",
    "0.9",
    "--out",
    "ft",
]


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """finetune_timm.py on the bundled learngene (patch 14, 28 px = a 2x2 grid), as the README's first step."""
    cwd = tmp_path_factory.mktemp("user")
    return cwd, _run([str(EXAMPLES / "finetune_timm.py"), *FT_ARGS, "--img-size", "28"], cwd)


def _check_finetune(cwd: Path, out: str) -> None:
    import timm
    import torch

    assert re.search(r"step 0: test accuracy [\d.]+%", out)
    assert re.search(r"step 4/4: loss [\d.]+", out)
    m = re.search(
        r"test accuracy: ([\d.]+)% \(EMA ([\d.]+)%\) on 40 Fashion-MNIST test images after 4 steps", out
    )
    assert m and all(0 <= float(v) <= 100 for v in m.groups()), out
    mat, ft = cwd / "ft" / "materialized", cwd / "ft" / "finetuned"
    before, after = _weights(mat), _weights(ft)
    assert before.keys() == after.keys()
    assert not torch.equal(
        before["blocks.0.attn.qkv.weight"], after["blocks.0.attn.qkv.weight"]
    )  # it trained
    model = timm.create_model(f"local-dir:{ft}", pretrained=True)
    assert model.num_classes == 10 and len(model.blocks) == 2 and model.embed_dim == 64
    assert json.loads((ft / "config.json").read_text())["label_names"] == CLASSES


def test_finetune_timm_bundled(bundled_run):
    _check_finetune(*bundled_run)


def test_finetune_timm_local_learngene_folder(tmp_path):
    save_learngene(tiny_wave(), tmp_path / "my-learngene")
    out = _run(
        [
            str(EXAMPLES / "finetune_timm.py"),
            *FT_ARGS,
            "--learngene",
            str(tmp_path / "my-learngene"),
            "--img-size",
            "32",
        ],
        tmp_path,
    )
    _check_finetune(tmp_path, out)


def _check_prediction(out: str, index: int) -> None:
    m = re.search(rf"prediction for test image {index}: (.+) \(probability ([\d.]+)\); true class: (.+)", out)
    assert m, out
    assert m.group(1) in CLASSES and m.group(3) in CLASSES and 0 < float(m.group(2)) <= 1
    logit_diff, pre_diff = map(
        float, re.search(r"logits\| = (\S+); max \|timm transform - processor\| = (\S+)", out).groups()
    )
    assert logit_diff <= 1e-4 and pre_diff <= 2.01 / 255 / 0.224


def test_export_transformers_of_the_finetuned_model(bundled_run):
    """The README's second step: export the fine-tuned timm folder, predict with transformers only."""
    import torch
    from transformers import AutoModelForImageClassification

    cwd, _ = bundled_run
    out = _run([str(EXAMPLES / "export_transformers.py"), "--model-dir", "ft/finetuned", "--out", "hf"], cwd)
    assert "untrained head" not in out
    _check_prediction(out, 0)
    import timm

    hf = AutoModelForImageClassification.from_pretrained(cwd / "hf").eval()
    ft = timm.create_model(f"local-dir:{cwd / 'ft' / 'finetuned'}", pretrained=True).eval()
    x = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        assert (hf(pixel_values=x).logits - ft(x)).abs().max().item() <= 1e-4
    assert hf.config.id2label[9] == "Ankle boot"


def test_export_transformers_fresh(tmp_path):
    out = _run(
        [
            str(EXAMPLES / "export_transformers.py"),
            "--depth",
            "2",
            "--width",
            "64",
            "--img-size",
            "28",
            "--index",
            "3",
        ],
        tmp_path,
    )
    assert "untrained head" in out
    _check_prediction(out, 3)
    folder = tmp_path / "runs" / "export_transformers"
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= {
        p.name for p in folder.iterdir()
    }


def _build_and_push(tmp_path: Path, *flags: str) -> str:
    """examples/build_and_push.py from a tiny timm ViT folder (any timm ViT folder can be an ancestry), 32 px."""
    from wavehub.export import save_timm

    ancestry = save_timm(tiny_timm_vit(), tmp_path / "ancestry")
    script = str(EXAMPLES / "build_and_push.py")
    return _run([script, "--ancestry", f"local-dir:{ancestry}", "--img-size", "32", *flags], tmp_path)


def test_build_and_push(hub, tmp_path):
    import wavehub

    push = ("--repo", "me/my-learngene", "--tag", "v1", "--token", "tok")
    out = _build_and_push(tmp_path, "--templates", "4", "--name", "my-learngene", *push)
    assert "pushed to " in out and "matches" in out, out
    assert {"learngene.safetensors", "config.json", "README.md"} <= set(hub.files("me/my-learngene", "v1"))
    local = wavehub.load_learngene(tmp_path / "runs" / "my-learngene")
    assert wavehub.load_learngene("hf-hub:me/my-learngene@v1").sha256 == local.sha256
    assert local.config["aux"]["width"] == 128 and local.config["repo_id"] == "me/my-learngene"


def test_build_without_repo_only_builds(hub, tmp_path):
    out = _build_and_push(tmp_path, "--method", "tleg", "--out", "lg")
    assert "not pushed" in out and (tmp_path / "lg" / "learngene.safetensors").is_file()
    assert hub.requests == []


def test_offline_sh(hub, tmp_path):
    hub.create_repo("wavehub/deit-learngene")
    hub.commit("wavehub/deit-learngene", save_learngene(tiny_wave(name="deit-learngene"), tmp_path / "lg"))
    hub.tag("wavehub/deit-learngene", "v1.0")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")}
    env.update(PYTHON=sys.executable, HF_HOME=str(tmp_path / "portable-hf-home"))
    online = _run(
        ["bash", str(EXAMPLES / "offline.sh"), "hf-hub:wavehub/deit-learngene@v1.0", "online"], tmp_path, env
    )
    assert "wavehub/deit-learngene" in online
    n = len(hub.requests)
    assert n > 0 and any((tmp_path / "portable-hf-home" / "hub").glob("models--wavehub--deit-learngene"))
    offline = _run(
        ["bash", str(EXAMPLES / "offline.sh"), "hf-hub:wavehub/deit-learngene@v1.0", "offline"], tmp_path, env
    )
    assert len(hub.requests) == n  # the offline step never reached the Hub
    m = re.search(r"offline model: ([\d,]+) parameters, input \(3, 32, 32\), logits \(1, 10\)", offline)
    assert m, offline
    assert (tmp_path / "runs" / "offline-model" / "model.safetensors").is_file()


def test_user_errors_are_one_line_with_the_fix(tmp_path):
    p = subprocess.run(
        [sys.executable, str(EXAMPLES / "finetune_timm.py"), "--width", "100", "--out", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("error: width=100") and "multiple of 64" in p.stderr


def test_readme_covers_every_example():
    readme = (EXAMPLES / "README.md").read_text()
    scripts = sorted(
        p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".sh") and p.name != "fashion_mnist.py"
    )
    assert scripts == ["build_and_push.py", "export_transformers.py", "finetune_timm.py", "offline.sh"]
    for name in scripts:
        assert f"examples/{name}" in readme, name
    for ref in re.findall(r"examples/([\w.]+\.(?:py|sh))", readme):
        assert (EXAMPLES / ref).is_file(), ref
