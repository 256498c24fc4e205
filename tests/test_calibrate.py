"""Calibrated WAVE extraction: the re-parameterization is exact, the statistic is real, the SVD gets better."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _tiny import TINY_ARCH, timm_vit, tiny_timm_vit

import wavehub
from wavehub.ancestry import _from_timm_model
from wavehub.calibrate import fold_norms, input_rms
from wavehub.errors import SpecError
from wavehub.extract import extract_learngene


def _outlier_vit():
    """A tiny ViT whose residual stream has a few 30x channels, as DINOv2's does."""
    m = tiny_timm_vit(3)
    with torch.no_grad():
        m.pos_embed[..., :4] += 30.0
    return m


@pytest.fixture(scope="module")
def ancestry(tmp_path_factory):
    from wavehub.export import save_timm

    return "local-dir:" + str(save_timm(_outlier_vit(), tmp_path_factory.mktemp("anc") / "tiny"))


def test_fold_norms_preserves_the_function():
    vit = tiny_timm_vit(1)
    sd = {k: v.detach().clone() for k, v in vit.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    rms = {
        f"blocks.{i}.{n}": torch.rand(TINY_ARCH["width"], generator=g) * 5 + 0.1
        for i in range(TINY_ARCH["depth"])
        for n in ("norm1", "norm2")
    }
    x = torch.randn(2, 3, 32, 32, generator=g)
    ref = vit(x)
    for r in (None, rms):
        folded = fold_norms(sd, TINY_ARCH["depth"], r)
        assert not torch.equal(folded["blocks.0.attn.qkv.weight"], sd["blocks.0.attn.qkv.weight"])
        m = timm_vit(TINY_ARCH).eval()
        m.load_state_dict(folded)
        assert torch.allclose(m(x), ref, atol=1e-5)
        assert torch.equal(
            sd["blocks.0.attn.qkv.weight"], vit.state_dict()["blocks.0.attn.qkv.weight"]
        )  # no aliasing


def test_input_rms_is_the_normalized_input_rms():
    m = _outlier_vit()
    anc = _from_timm_model(m, "tiny")
    rms = input_rms(anc, "natural", images=8, img_size=32, batch=3)
    assert set(rms) == {f"blocks.{i}.{n}" for i in range(2) for n in ("norm1", "norm2")}
    # recompute block 0's norm1 input directly on the same crops
    from wavehub.distill_data import make_stream

    st = make_stream("natural", img_size=32, mean=anc.mean, std=anc.std, seed=0)
    x = torch.stack([st.sample(0, i)[0] for i in range(8)])
    with torch.no_grad():
        h = m._pos_embed(m.patch_embed(x))
        want = F.layer_norm(h, h.shape[-1:]).pow(2).mean(dim=(0, 1)).sqrt()
    assert torch.allclose(rms["blocks.0.norm1"], want, rtol=1e-4)
    assert float(rms["blocks.0.norm1"][:4].min()) > 3 * float(
        rms["blocks.0.norm1"][4:].median()
    )  # outliers seen


def test_calibrated_extraction_is_exact_at_full_rank_and_closer_at_low_rank(ancestry):
    from wavehub.ancestry import load_ancestry
    from wavehub.distill_data import make_stream

    anc = load_ancestry(ancestry)
    teacher = anc.model(img_size=32)
    st = make_stream("natural", img_size=32, mean=anc.mean, std=anc.std, seed=1)  # not the calibration crops
    x = torch.stack([st.sample(0, i)[0] for i in range(16)])
    with torch.no_grad():
        ref = teacher.forward_features(x)
    full = extract_learngene(
        ancestry,
        templates=64,
        img_size=32,
        storage_dtype="float32",
        calibrate="natural",
        calib_images=16,
        calib_img_size=32,
    )
    assert full.config["recipe"]["calibration"]["images"] == 16
    assert "--calibrate natural --calib-images 16 --calib-img-size 32" in full.config["recipe"]["command"]
    with torch.no_grad():
        out = wavehub.create_model(full, num_classes=0).forward_features(x)
    assert (out - ref).abs().max() < 1e-3  # exact re-parameterization (64 = full rank here)
    errs = {}
    for cal in (None, "natural"):
        lg = extract_learngene(
            ancestry,
            templates=6,
            img_size=32,
            storage_dtype="float32",
            calibrate=cal,
            calib_images=16,
            calib_img_size=32,
        )
        with torch.no_grad():
            out = wavehub.create_model(lg, num_classes=0).forward_features(x)
        errs[cal] = float((out - ref).norm() / ref.norm())
    assert errs["natural"] < errs[None]


def test_calibration_is_wave_only(ancestry):
    with pytest.raises(SpecError, match="WAVE"):
        extract_learngene(ancestry, method="tleg", img_size=32, calibrate="natural")


def test_missing_calibration_data_names_the_flag(ancestry):
    from wavehub.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError) as e:
        extract_learngene(
            ancestry,
            templates=4,
            img_size=32,
            calibrate="/nonexistent/folder",
            calib_images=2,
            calib_img_size=32,
        )
    assert "--calibrate" in e.value.remedy and "calibration data" in e.value.message


# ------------------------------------------------------------------ output-error refinement (calib_method="als")


def _kron_problem(seed: int, noise: float):
    """Three 8x12 layers made of 2 shared 4x4 templates (+ noise), inputs with very unequal channel scales."""
    from wavehub.methods.kron import compose

    g = torch.Generator().manual_seed(seed)
    S, T = torch.randn(3, 2, 2, 3, generator=g), torch.randn(2, 4, 4, generator=g)
    W = compose(S, T) + noise * torch.randn(3, 8, 12, generator=g)
    x = torch.randn(3, 500, 12, generator=g) * torch.logspace(-1, 1, 12)  # channel RMS 0.1 ... 10
    return W, x.transpose(1, 2) @ x / 500


def test_weighted_nkp_recovers_an_exact_kronecker_sum():
    from wavehub.methods.kron import compose, nkp_svd, output_error, weighted_nkp

    W, C = _kron_problem(0, noise=0.0)
    S, T = weighted_nkp(W, C, *nkp_svd(W, 4, 4, 2), iters=3)
    assert output_error(W, compose(S, T), C) < 1e-4  # the ridge keeps it from 0 exactly
    assert torch.allclose(T.flatten(1).norm(dim=1), torch.ones(2), atol=1e-6)  # unit templates


def test_weighted_nkp_lowers_the_output_error_the_svd_leaves():
    from wavehub.methods.kron import compose, nkp_svd, output_error, weighted_nkp

    W, C = _kron_problem(1, noise=0.5)
    S0, T0 = nkp_svd(W, 4, 4, 2)
    errs = [output_error(W, compose(S0, T0), C)]
    for iters in (1, 4):
        errs.append(output_error(W, compose(*weighted_nkp(W, C, S0, T0, iters=iters)), C))
    assert errs[2] <= errs[1] < 0.95 * errs[0]  # better at once, and never worse with more rounds
    # with white inputs the SVD is already the optimum, so the refinement cannot beat it
    eye = torch.eye(12).expand(3, 12, 12)
    plain = output_error(W, compose(S0, T0), eye)
    assert output_error(W, compose(*weighted_nkp(W, eye, S0, T0, iters=2)), eye) == pytest.approx(
        plain, rel=1e-4
    )


def test_input_covariance_matches_the_rms_statistic(ancestry):
    from wavehub.ancestry import load_ancestry
    from wavehub.calibrate import input_covariance

    anc = load_ancestry(ancestry)
    kw = {"images": 8, "img_size": 32, "batch": 3}
    cov, rms = input_covariance(anc, "natural", **kw), input_rms(anc, "natural", **kw)
    w, h = TINY_ARCH["width"], int(TINY_ARCH["width"] * TINY_ARCH["mlp_ratio"])
    assert {k: tuple(v.shape) for k, v in cov.items()} == {
        "qkv": (2, w, w),
        "proj": (2, w, w),
        "fc1": (2, w, w),
        "fc2": (2, h, h),
    }
    for i in range(2):
        assert torch.allclose(cov["qkv"][i].diagonal().sqrt().float(), rms[f"blocks.{i}.norm1"], rtol=1e-4)
        assert torch.allclose(cov["fc1"][i].diagonal().sqrt().float(), rms[f"blocks.{i}.norm2"], rtol=1e-4)
    assert torch.allclose(cov["fc2"], cov["fc2"].transpose(1, 2))


def test_als_calibration_is_closest_to_the_ancestry_on_unseen_crops(ancestry):
    from wavehub.ancestry import load_ancestry
    from wavehub.distill_data import make_stream

    anc = load_ancestry(ancestry)
    st = make_stream("natural", img_size=32, mean=anc.mean, std=anc.std, seed=1)  # not the calibration crops
    x = torch.stack([st.sample(0, i)[0] for i in range(16)])
    with torch.no_grad():
        ref = anc.model(img_size=32).forward_features(x)
    errs, lgs = {}, {}
    for how in ("plain", "rms", "als"):
        cal = {} if how == "plain" else {"calibrate": "natural", "calib_method": how}
        lgs[how] = extract_learngene(
            ancestry,
            templates=6,
            img_size=32,
            storage_dtype="float32",
            calib_images=16,
            calib_img_size=32,
            progress=False,
            **cal,
        )
        with torch.no_grad():
            out = wavehub.create_model(lgs[how], num_classes=0).forward_features(x)
        errs[how] = float((out - ref).norm() / ref.norm())
    assert errs["als"] < errs["rms"] and errs["als"] < errs["plain"]
    recipe = lgs["als"].config["recipe"]
    assert recipe["calibration"]["method"] == "als" and recipe["calibration"]["iters"] == 8
    assert recipe["calibration"]["damping"] == 1.0
    assert "--calib-method als --calib-iters 8 --calib-damping 1" in recipe["command"]
    assert "method" not in lgs["rms"].config["recipe"]["calibration"]  # rms recipes keep their old form


def test_bad_calibration_method_is_an_argument_error(ancestry, tmp_path):
    from wavehub.cli import main
    from wavehub.errors import ArgumentError

    with pytest.raises(ArgumentError) as e:
        extract_learngene(ancestry, templates=4, img_size=32, calibrate="natural", calib_method="svd")
    assert e.value.argument == "calib_method"
    with pytest.raises(ArgumentError) as e:
        extract_learngene(ancestry, templates=4, img_size=32, calibrate="natural", calib_iters=0)
    assert e.value.argument == "calib_iters"
    with pytest.raises(ArgumentError) as e:
        extract_learngene(ancestry, templates=4, img_size=32, calibrate="natural", calib_damping=-1.0)
    assert e.value.argument == "calib_damping"
    args = ["extract", "--ancestry", ancestry, "--out", str(tmp_path / "x"), "--calib-method", "svd"]
    assert main(args) == 2


def test_damping_adds_the_plain_error_in_average_channel_units():
    from wavehub.calibrate import damp
    from wavehub.methods.kron import compose, nkp_svd, output_error, weighted_nkp

    W, C = _kron_problem(2, noise=0.5)
    cov = {"fc2": C}
    assert damp(cov, 0.0) is cov
    d = damp(cov, 2.0)["fc2"]
    for layer in range(3):
        extra = d[layer] - C[layer]
        assert torch.allclose(extra, 2.0 * C[layer].diagonal().mean() * torch.eye(12))
    # heavy damping pulls the refinement back toward the plain (SVD) optimum of the weight error
    S0, T0 = nkp_svd(W, 4, 4, 2)
    eye = torch.eye(12).expand(3, 12, 12)
    plain = [
        output_error(W, compose(*weighted_nkp(W, damp(cov, lam)["fc2"], S0, T0, iters=4)), eye)
        for lam in (0, 100)
    ]
    assert plain[1] < plain[0]
    assert plain[1] == pytest.approx(output_error(W, compose(S0, T0), eye), rel=0.05)
