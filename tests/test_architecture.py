"""Exported configs name the timm architecture family of the model (patch size and width), and still load."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from _tiny import tiny_wave

import wavehub
from wavehub.materialize import timm_architecture


@pytest.mark.parametrize(
    "patch,width,name",
    [
        (14, 384, "vit_small_patch14_dinov2"),
        (16, 192, "vit_tiny_patch16_224"),
        (16, 768, "vit_base_patch16_224"),
        (8, 128, "vit_base_patch8_224"),
    ],
)
def test_timm_architecture_by_patch_and_width(patch, width, name):
    assert timm_architecture(patch, width) == name and timm.is_model(name)


def test_bundled_depth8_width384_patch14_names_its_family_and_reloads(tmp_path):
    model = wavehub.create_model("dinov2s-learngene", depth=2, width=384, num_classes=10, img_size=28).eval()
    assert model.pretrained_cfg["architecture"] == "vit_small_patch14_dinov2"
    folder = wavehub.save_timm(model, tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == cfg["pretrained_cfg"]["architecture"] == "vit_small_patch14_dinov2"
    again = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = torch.randn(2, 3, 28, 28)
    assert torch.equal(model(x), again(x))


def test_tiny_patch8_export_reloads(tmp_path):
    model = wavehub.create_model(tiny_wave(), depth=2, width=128, num_classes=3).eval()
    folder = wavehub.save_timm(model, tmp_path / "t")
    assert json.loads((folder / "config.json").read_text())["architecture"] == "vit_base_patch8_224"
    again = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(model(x), again(x))


def test_the_hub_package_never_imports_the_api_layer():
    """hub is network only: pulling with out= (materialize + export) lives in wavehub.api, above it."""
    import ast
    from pathlib import Path

    root = Path(wavehub.__file__).parent
    upward = {"api", "materialize", "export", "fit", "timm_models", "cli", "outdir", "stages"}
    for path in sorted((root / "hub").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                names = [node.module or ""] + ([a.name for a in node.names] if not node.module else [])
                mods = {n.split(".")[0] for n in names} if node.level == 2 else set()
                assert not mods & upward, f"{path.name} imports {mods & upward}"


def test_every_wavehub_env_var_is_documented_in_constants():
    import re
    from pathlib import Path

    from wavehub import constants

    root = Path(wavehub.__file__).parent.parent
    used = set()
    for folder in ("wavehub", "benchmarks", "tests"):
        for path in (root / folder).rglob("*.py"):
            used |= set(re.findall(r"\bWAVEHUB_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    assert used <= set(constants.ENV_VARS), used - set(constants.ENV_VARS)
    assert all(f"``{v}``" in constants.__doc__ for v in constants.ENV_VARS)
