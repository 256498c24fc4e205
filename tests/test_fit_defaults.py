"""`wavehub fit` picks a small resolution on a CPU and says how long it will take before it starts."""

from __future__ import annotations

import json

import torch
from _tiny import tiny_wave

from wavehub.artifact import save_learngene
from wavehub.cli import main
from wavehub.cli.fit import default_img_size, estimate_step_seconds
from wavehub.spec import ViTSpec


def test_default_img_size_small_on_cpu_learngenes_own_on_gpu():
    assert default_img_size(14, torch.device("cpu")) == 56
    assert default_img_size(16, torch.device("cpu")) == 64  # a multiple of the patch size
    assert default_img_size(14, torch.device("cuda")) is None


def test_estimate_grows_with_resolution_and_size():
    def est(d, w, px):
        spec = ViTSpec(depth=d, width=w, patch_size=14, img_size=px, num_classes=10).resolve({})
        return estimate_step_seconds(spec, 64, torch.device("cpu"))

    assert 0 < est(4, 192, 56) < est(4, 192, 112) < est(4, 192, 224)
    assert est(4, 192, 224) < est(12, 384, 224)
    assert est(12, 384, 224) > 8 * est(12, 384, 56)


def test_cli_fit_prints_estimate_and_uses_cpu_default(capsys, tmp_path):
    folder = save_learngene(tiny_wave(name="tiny"), tmp_path / "lg")
    rc = main(["fit", str(folder), "--depth", "2", "--width", "128", "--data", "digits", "--subset", "64",
               "--steps", "2", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "m")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "fitting 2x128 at 56 px on cpu: 2 steps, estimated" in err  # patch 8: 56 is a multiple
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model_args"]["img_size"] == 56
