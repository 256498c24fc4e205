"""Fit defaults live in FitConfig alone; `wavehub fit` picks a small resolution on a CPU and says how long it will
take before it starts."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
import torch
from _tiny import tiny_wave

from wavehub import errors
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
    rc = main(
        [
            "fit",
            str(folder),
            "--depth",
            "2",
            "--width",
            "128",
            "--data",
            "digits",
            "--subset",
            "64",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--no-progress",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "fitting 2x128 at 56 px on cpu: 2 steps, estimated" in err  # patch 8: 56 is a multiple
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model_args"]["img_size"] == 56


def test_fit_config_is_the_one_source_of_the_fit_defaults():
    """fit_scalers restates no default (its options are FitConfig's fields) and prepare's defaults are FitConfig's."""
    from wavehub.fit import FitConfig, fit_scalers, prepare

    params = inspect.signature(fit_scalers).parameters
    fields = {f.name for f in dataclasses.fields(FitConfig)}
    assert not fields & set(params), fields & set(params)
    assert params["options"].kind is inspect.Parameter.VAR_KEYWORD
    defaults = FitConfig()
    for name, p in inspect.signature(prepare).parameters.items():
        if name in fields:
            assert p.default == getattr(defaults, name), name
    assert defaults.subset is None  # the whole training split unless the caller asks for less


def test_keyword_options_and_a_config_fit_the_same_model(tmp_path):
    from wavehub.fit import FitConfig, fit_scalers
    from wavehub.materialize import resolve_spec

    lg = tiny_wave(templates=4, seed=1)
    spec = resolve_spec(lg, 2, 128, num_classes=10)
    kw = dict(steps=2, batch_size=16, subset=64, eval_subset=32, progress=False, lr=3e-3, seed=2)
    a = fit_scalers(lg, spec, "digits", device="cpu", **kw).state_dict()
    b = fit_scalers(lg, spec, "digits", device="cpu", config=FitConfig(**kw)).state_dict()
    c = fit_scalers(
        lg, spec, "digits", device="cpu", config=FitConfig(**kw), lr=1e-2
    ).state_dict()  # keywords win
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(steps=1.5), dict(epochs=0), dict(distill="teacher")])
def test_bad_fit_options_are_spec_errors(bad):
    from wavehub.fit import FitConfig

    with pytest.raises(errors.SpecError):
        FitConfig(**bad).validate()


def test_cli_defaults_are_the_library_defaults():
    """`wavehub fit` and `wavehub build` restate no default: each option that names a config field defaults to
    that field (the CLI used to say --subset 0.05 where the library said None)."""
    from wavehub.cli.build import build
    from wavehub.cli.fit import fit
    from wavehub.distill.config import BuildConfig, RunOptions
    from wavehub.fit import FitConfig

    fit_defaults = {f.name: getattr(FitConfig(), f.name) for f in dataclasses.fields(FitConfig)}
    fit_defaults["train"] = ",".join(fit_defaults["train"])
    build_defaults = {f.name: f.default for f in dataclasses.fields(BuildConfig)}
    build_defaults.update({f.name: getattr(RunOptions(), f.name) for f in dataclasses.fields(RunOptions)})
    build_defaults["templates"] = str(build_defaults["templates"])
    for cmd, defaults in ((fit, fit_defaults), (build, build_defaults)):
        checked = 0
        for p in cmd.params:
            if p.name in defaults and isinstance(p.default, (str, int, float)) and not p.required:
                assert p.default == defaults[p.name], (cmd.name, p.name, p.default, defaults[p.name])
                checked += 1
        assert checked >= 5, (cmd.name, checked)
    assert next(p for p in fit.params if p.name == "subset").default == FitConfig().subset
