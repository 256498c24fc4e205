"""Scaler fitting (WAVE stage 2) on real Fashion-MNIST subsets with tiny learngenes.

Tiny target: depth 2, width 128, 32 px, patch 8 (16 tokens); a few dozen steps on a few hundred images.
"""

from __future__ import annotations

import json

import pytest
import timm
import torch
from _tiny import fit_on_a_dataset, tiny_tleg, tiny_wave
from timm.models.vision_transformer import VisionTransformer
from torch.utils._python_dispatch import TorchDispatchMode

import wavehub
from wavehub import errors
from wavehub.artifact import save_learngene
from wavehub.data import load_dataset
from wavehub.fit import fit_scalers, prepare, training_step
from wavehub.materialize import resolve_spec

FAST = dict(subset=256, eval_subset=200, progress=False, batch_size=32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP barrier stalls under load."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def lg():
    return tiny_wave(templates=8, seed=3)


@pytest.fixture(scope="module")
def spec(lg):
    return resolve_spec(lg, 2, 128, num_classes=10)


@pytest.fixture(scope="module")
def fitted(lg, spec):
    """One 40-step fit shared by the loss / save / record tests."""
    return fit_scalers(
        lg, spec, "fashion-mnist", steps=40, lr=3e-3, seed=0, device="cpu", **(FAST | dict(subset=512))
    )


def _batch(spec, n=32):
    ds = load_dataset("fashion-mnist", "train", img_size=spec.img_size, subset=n, seed=1)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    return x, ds.labels.clone()


@pytest.mark.parametrize("train", [("scalers",), ("scalers", "norms", "head")])
def test_only_chosen_parameters_change_and_templates_stay_bit_identical(lg, spec, train):
    wm, opt, params, n = prepare(lg, spec, torch.device("cpu"), train=train, lr=1e-2)
    assert n == sum(p.numel() for p in params) > 0
    before = {k: v.detach().clone() for k, v in wm.state_dict().items()}
    x, y = _batch(spec)
    for _ in range(3):
        training_step(wm, opt, params, x, y, None, 1.0)
    after = wm.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("templates.") for k in changed)
    assert {k for k in before if k.startswith("scalers.")} <= changed
    extras = {k for k in changed if k.startswith("vit.")}
    head = {"vit.head.weight", "vit.head.bias"}
    if train == ("scalers",):
        assert extras == set()
    else:
        assert head <= extras
        assert any("norm" in k for k in extras)
        assert extras <= head | {k for k in before if "norm" in k}  # pos_embed/cls_token not chosen
    assert not any(p.requires_grad for p in wm.templates.values())


def test_templates_cannot_be_chosen_and_unknown_groups_are_refused(lg, spec):
    with pytest.raises(errors.SpecError, match="templates"):
        prepare(lg, spec, torch.device("cpu"), train=("scalers", "templates"))
    with pytest.raises(errors.SpecError, match="unknown"):
        prepare(lg, spec, torch.device("cpu"), train=("scalers", "everything"))


class _CountMatmuls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (
            torch.ops.aten.mm,
            torch.ops.aten.bmm,
            torch.ops.aten.matmul,
            torch.ops.aten.addmm,
            torch.ops.aten.baddbmm,
        ):
            self.n += 1
        return func(*args, **(kwargs or {}))


def test_composition_is_one_gemm_per_weight_type_whatever_the_depth(lg):
    counts = {}
    for depth in (1, 4):
        wm, *_ = prepare(lg, resolve_spec(lg, depth, 128, num_classes=10), torch.device("cpu"))
        with _CountMatmuls() as c:
            out = wm.composed()
        counts[depth] = c.n
        assert len(out) == 2 * (4 * depth + 1)
    assert counts[1] == counts[4] <= 10  # 5 weight types x (weights, biases): not per block, not per layer


def _reference_composition(wm) -> dict[str, torch.Tensor]:
    """The textbook composition (``kron.compose``, checked against a naive Kronecker loop in test_methods)."""
    from wavehub.methods.embed import patch_weight
    from wavehub.methods.kron import compose, compose_vector
    from wavehub.methods.wave import TYPES

    out = {}
    for name, wt in TYPES.items():
        W = compose(wm.scalers[name], wm.templates[name])
        b = compose_vector(wm.scalers[f"{name}_bias"], wm.templates[f"{name}_bias"])
        if not wt.per_layer:
            out[f"{wt.key}.weight"], out[f"{wt.key}.bias"] = patch_weight(W[0], wm.cfg.aux, wm.spec), b[0]
            continue
        for layer in range(W.shape[0]):
            k = wt.key.format(l=layer)
            out[f"{k}.weight"], out[f"{k}.bias"] = W[layer], b[layer]
    return out


@pytest.mark.parametrize("train_templates", [False, True])
def test_fast_composition_matches_reference_and_its_gradients(lg, train_templates):
    from wavehub.wave_module import WaveModel

    spec = resolve_spec(lg, 3, 192, num_classes=10)
    ref = WaveModel.from_learngene(lg, spec, init="random", seed=2, train_templates=train_templates)
    fast = WaveModel.from_learngene(lg, spec, init="random", seed=2, train_templates=train_templates)
    a, b = _reference_composition(ref), fast.composed()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
    g = {
        k: torch.randn(v.shape, generator=torch.Generator().manual_seed(i))
        for i, (k, v) in enumerate(a.items())
    }
    for out in (a, b):
        torch.autograd.backward([out[k] for k in out], [g[k] for k in out])
    for k in ref.scalers:
        torch.testing.assert_close(fast.scalers[k].grad, ref.scalers[k].grad, rtol=1e-4, atol=1e-5)
    for k in ref.templates:  # trainable templates (wavehub build) get the same gradient; frozen ones none
        if train_templates:
            torch.testing.assert_close(fast.templates[k].grad, ref.templates[k].grad, rtol=1e-4, atol=1e-4)
        else:
            assert fast.templates[k].grad is None


def test_frozen_template_cache_follows_in_place_changes(lg):
    from wavehub.wave_module import WaveModel

    wm = WaveModel.from_learngene(lg, resolve_spec(lg, 2, 128, num_classes=10), init="random", seed=0)
    before = wm.composed()["blocks.0.attn.qkv.weight"].detach().clone()
    with torch.no_grad():
        wm.templates["qkv"].mul_(2.0)
    after = wm.composed()["blocks.0.attn.qkv.weight"]
    torch.testing.assert_close(after, 2 * before)


def test_loss_decreases_and_held_out_accuracy_beats_chance(fitted):
    rec = fitted.wavehub_fit
    assert isinstance(fitted, VisionTransformer) and type(fitted) is VisionTransformer
    assert not any("wave" in type(m).__module__ for m in fitted.modules())
    assert rec["steps"] == 40 and rec["images_seen"] == 40 * 32
    assert rec["final_loss"] < rec["first_loss"] - 0.3, rec["loss_curve"]
    assert rec["held_out_accuracy"] > 0.3 and rec["held_out_images"] == 200
    assert rec["templates_unchanged"] is True
    assert rec["trained_parameters"] < rec["model_parameters"] / 10
    assert fitted.num_classes == 10


def test_saved_and_reloaded_through_timm_gives_the_same_logits(fitted, tmp_path):
    path = wavehub.save_timm(fitted, tmp_path / "fitted")
    rec = json.loads((path / "fit.json").read_text())
    assert rec["steps"] == 40 and rec["held_out_accuracy"] == fitted.wavehub_fit["held_out_accuracy"]
    re = timm.create_model(f"local-dir:{path}", pretrained=True).eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(re(x), fitted.eval()(x), rtol=0, atol=1e-6)


def test_same_seed_same_result_other_seed_differs(lg, spec):
    kw = dict(steps=6, device="cpu", **FAST)
    a = fit_scalers(lg, spec, "fashion-mnist", seed=5, **kw).state_dict()
    b = fit_scalers(lg, spec, "fashion-mnist", seed=5, **kw).state_dict()
    c = fit_scalers(lg, spec, "fashion-mnist", seed=6, **kw).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_is_a_device_error(lg, spec):
    with pytest.raises(errors.DeviceError, match="CUDA"):
        fit_scalers(lg, spec, "fashion-mnist", steps=1, device="cuda", **FAST)


def test_device_none_picks_cuda_when_present_else_cpu(lg, spec):
    m = fit_scalers(lg, spec, "fashion-mnist", steps=1, device=None, **FAST)
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert m.wavehub_fit["device"].startswith(want)
    assert next(m.parameters()).device.type == want


def test_from_learngene_fit_path_and_torch_dataset(lg):
    m = fit_on_a_dataset(lg, depth=3, subset=128, steps=3)
    assert type(m) is VisionTransformer and len(m.blocks) == 3 and m.num_classes == 10
    assert m.wavehub_fit["steps"] == 3 and m.wavehub_fit["held_out_accuracy"] is None
    named = wavehub.from_learngene(
        lg,
        2,
        128,
        fit="fashion-mnist",
        dtype=torch.bfloat16,
        progress=False,
        fit_options=dict(steps=2, subset=64, eval_subset=64, epochs=None),
    )
    assert named.wavehub_fit["held_out_accuracy"] is not None
    assert next(named.parameters()).dtype == torch.bfloat16


def test_distill_from_the_aux_model_pulls_features_towards_it(lg, spec):
    """distill="aux" adds a feature loss towards the aux model: after the same steps from the same start, the
    target's final tokens are closer to the aux model's (on the shared channels) than without it."""
    from wavehub.fit import _aux_teacher, channel_index

    kw = dict(steps=8, seed=0, device="cpu", lr=3e-3, **FAST)
    plain = fit_scalers(lg, spec, "fashion-mnist", **kw).eval()
    dist = fit_scalers(lg, spec, "fashion-mnist", distill="aux", distill_weight=10.0, **kw).eval()
    assert dist.wavehub_fit["distill"] == "aux" and plain.wavehub_fit["distill"] is None
    teacher, idx = _aux_teacher(lg, spec, torch.device("cpu")), channel_index(lg.config, spec)
    x, _ = _batch(spec, 64)
    with torch.no_grad():
        target = teacher.forward_features(x)[..., idx]
        gap = {
            k: float(torch.nn.functional.mse_loss(m.forward_features(x), target))
            for k, m in (("plain", plain), ("distill", dist))
        }
    assert gap["distill"] < gap["plain"], gap


def test_non_wave_learngene_is_a_typed_error_with_a_remedy(spec):
    tleg, _ = tiny_tleg()
    with pytest.raises(errors.SpecError, match="WAVE") as e:
        fit_scalers(tleg, spec, "fashion-mnist", steps=1, **FAST)
    assert "without fit=" in e.value.remedy
    with pytest.raises(errors.SpecError):
        wavehub.create_model(tleg, depth=2, width=128, fit="fashion-mnist", progress=False)


def test_unknown_data_is_a_dataset_error(lg, spec):
    with pytest.raises(errors.DatasetNotFoundError):
        fit_scalers(lg, spec, "no-such-dataset", steps=1, **FAST)


def _cli_fit(lg, tmp_path, width: int, *flags: str) -> int:
    """``wavehub fit`` of the saved learngene on Fashion-MNIST at depth 2 on the CPU, with these extra flags."""
    from wavehub.cli import main

    src = save_learngene(lg, tmp_path / "lg")
    return main(
        ["fit", str(src), "--depth", "2", "--width", str(width), "--data", "fashion-mnist", "--device", "cpu"]
        + list(flags)
    )


def test_cli_fit_writes_a_timm_folder_and_fit_json(lg, tmp_path, capsys):
    out = tmp_path / "out"
    flags = ["--subset", "128", "--steps", "4", "--batch-size", "32", "--eval-subset", "100", "--no-progress"]
    rc = _cli_fit(lg, tmp_path, 128, *flags, "--out", str(out))
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((out / "fit.json").read_text())
    assert rec["steps"] == 4 and rec["images_seen"] == 128 and rec["held_out_images"] == 100
    assert 0 <= rec["held_out_accuracy"] <= 1 and rec["final_loss"] > 0
    m = timm.create_model(f"local-dir:{out}", pretrained=True)
    assert m.num_classes == 10 and len(m.blocks) == 2
    assert "held-out accuracy" in capsys.readouterr().out


def test_cli_fit_errors_are_one_line(lg, tmp_path, capsys):
    from wavehub.cli import main

    rc = _cli_fit(lg, tmp_path, 100, "--steps", "1", "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert rc == 1 and "error:" in err and "Traceback" not in err
    assert main(["fit", "--help"]) == 0
    assert "Example: wavehub fit" in capsys.readouterr().out
