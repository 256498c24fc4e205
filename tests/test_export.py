"""Export: timm local-dir/hf-hub folders and transformers ViT folders give the same logits and preprocessing.

Preprocessing tolerance: timm's transform resizes a PIL image and transformers' processor resizes a uint8
tensor; both round back to 8 bits, and their bicubic kernels can land one or two levels apart at a pixel.
So when a resize happens the tensors may differ by at most 2/255 / std per element; when the image already
has the model's size (no resize), they must be equal to float precision.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _tiny import TINY_ARCH, timm_vit, tiny_wave
from PIL import Image

import wavehub
from wavehub import errors
from wavehub.export import processor_config, save_timm, save_transformers

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
MEAN, STD = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)  # distinctive: not timm's, ImageNet's or Inception's defaults


@pytest.fixture(scope="module")
def lg():
    t = tiny_wave()
    t.config.update(mean=list(MEAN), std=list(STD))
    return t


@pytest.fixture(scope="module")
def model(lg):
    return wavehub.create_model(lg, depth=3, width=128, num_classes=10).eval()


def _images():
    rng = np.random.default_rng(0)
    yield "same size", Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    yield "upsampled gray 28", Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).convert("RGB")
    yield "non-square", Image.fromarray(rng.integers(0, 255, (40, 57, 3), dtype=np.uint8))
    yield "large", Image.fromarray(rng.integers(0, 255, (300, 257, 3), dtype=np.uint8))


def _same_preprocessing(model, folder, square_only: bool = False) -> float:
    from timm.data import create_transform, resolve_data_config
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(folder)
    tf = create_transform(**resolve_data_config({}, model=model))
    worst = 0.0
    for name, img in _images():
        if square_only and img.size[0] != img.size[1]:
            continue
        a = proc(images=img, return_tensors="pt")["pixel_values"][0]
        b = tf(img)
        assert a.shape == b.shape, name
        diff = (a - b).abs().max().item()
        resized = img.size != tuple(model.patch_embed.img_size) or model.pretrained_cfg["crop_pct"] != 1.0
        limit = 2.01 / 255 / min(proc.image_std) if resized else 1e-5
        assert diff <= limit, (name, diff, limit)
        worst = max(worst, diff)
    return worst


def test_save_timm_reloads_identically(model, tmp_path):
    import timm
    from huggingface_hub import ModelCard

    out = save_timm(model, tmp_path / "m")
    cfg = json.loads((out / "config.json").read_text())
    assert "num_classes" not in cfg["model_args"] and cfg["num_classes"] == 10
    assert cfg["architecture"].startswith("vit_") and cfg["model_args"]["depth"] == 3
    back = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(back(X), model(X))
    fresh = timm.create_model(f"local-dir:{out}", pretrained=True, num_classes=4)
    assert fresh.head.out_features == 4 and torch.equal(
        fresh.blocks[0].attn.qkv.weight, model.blocks[0].attn.qkv.weight
    )
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "timm" and "learngene" in card.data.tags and "tiny-wave" in card.text


def test_resolve_data_config_yields_the_learngenes_normalization(model, tmp_path):
    import timm
    from timm.data import resolve_data_config

    for m in (model, timm.create_model(f"local-dir:{save_timm(model, tmp_path / 'm')}", pretrained=True)):
        dc = resolve_data_config({}, model=m)
        # JSON gives lists where the in-memory cfg has tuples: compare values, not container types
        assert tuple(dc["mean"]) == MEAN and tuple(dc["std"]) == STD
        assert (
            tuple(dc["input_size"]) == (3, 32, 32) and dc["crop_pct"] == 1.0 and dc["crop_mode"] == "squash"
        )


def test_timm_folder_round_trips_through_the_hub(model, hub, tmp_path):
    import timm
    from huggingface_hub import HfApi

    out = save_timm(model, tmp_path / "m", label_names=[f"c{i}" for i in range(10)])
    HfApi(token="tok").create_repo("me/vit-d3-w128")
    HfApi(token="tok").upload_folder(repo_id="me/vit-d3-w128", folder_path=str(out))
    assert set(hub.files("me/vit-d3-w128")) == {"config.json", "model.safetensors", "README.md"}
    back = timm.create_model("hf-hub:me/vit-d3-w128", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(back(X), model(X))
    assert any("/me/vit-d3-w128/resolve/" in p and "model.safetensors" in p for _, p in hub.requests)
    assert back.pretrained_cfg["label_names"][3] == "c3"


def test_transformers_export_matches_timm(model, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForImageClassification

    names = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
    out = save_transformers(model, tmp_path / "hf", label_names=names)
    hf = AutoModelForImageClassification.from_pretrained(out).eval()
    with torch.no_grad():
        diff = (hf(pixel_values=X).logits - model(X)).abs().max().item()
    assert diff <= 1e-4
    assert hf.config.id2label[4] == "coat"
    _same_preprocessing(
        model, out
    )  # every image within the rounding limit of resizing (asserted inside; 0 is fine)
    assert ModelCard.load(out / "README.md").data.library_name == "transformers"


def test_processor_follows_timm_crop_pct(model, tmp_path):
    """A model whose pretrained_cfg center-crops (timm's usual 0.875) gets a processor that crops the same way.

    Square images only: on some aspect ratios transformers floors the crop offset where torchvision rounds."""
    import copy

    assert (
        json.loads((save_transformers(model, tmp_path / "sq") / "preprocessor_config.json").read_text())[
            "image_processor_type"
        ]
        == "ViTImageProcessor"
    )  # the default squash/1.0 config needs no crop
    cropped = copy.deepcopy(model)
    cropped.pretrained_cfg = dict(
        model.pretrained_cfg, crop_pct=0.875, crop_mode="center", interpolation="bilinear"
    )
    out = save_transformers(cropped, tmp_path / "hf")
    proc = json.loads((out / "preprocessor_config.json").read_text())
    assert proc["image_processor_type"] == "BitImageProcessor" and proc["resample"] == 2
    assert proc["size"] == {"shortest_edge": 36} and proc["crop_size"] == {"height": 32, "width": 32}
    _same_preprocessing(cropped, out, square_only=True)
    with pytest.raises(errors.ExportError, match="crop_mode"):
        processor_config(
            {
                "input_size": (3, 32, 32),
                "crop_pct": 1.0,
                "crop_mode": "border",
                "interpolation": "bicubic",
                "mean": MEAN,
                "std": STD,
            }
        )


def test_bundled_patch14_learngene_exports(tmp_path):
    """The default learngene (patch 14, ImageNet normalization): timm has no vit_*_patch14_224 entrypoint."""
    import timm
    from timm.data import resolve_data_config
    from transformers import AutoModelForImageClassification

    m = wavehub.create_model("dinov2s-learngene", depth=2, width=128, img_size=56, num_classes=10).eval()
    lg = wavehub.load_learngene("dinov2s-learngene")
    assert tuple(resolve_data_config({}, model=m)["mean"]) == tuple(lg.config["mean"])
    x = torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(2))
    back = timm.create_model(f"local-dir:{save_timm(m, tmp_path / 'timm')}", pretrained=True).eval()
    hf = AutoModelForImageClassification.from_pretrained(save_transformers(m, tmp_path / "hf")).eval()
    with torch.no_grad():
        ref = m(x)
        assert torch.equal(back(x), ref)
        assert (hf(pixel_values=x).logits - ref).abs().max().item() <= 1e-4


def test_layer_scale_and_missing_biases_are_exported_exactly(tmp_path):
    """Not produced by wavehub, but representable: zero biases and layer scale folded into the projections."""
    import timm
    from transformers import AutoModelForImageClassification

    torch.manual_seed(0)
    m = timm_vit(TINY_ARCH | {"width": 64}, num_classes=3, init_values=0.5, proj_bias=False).eval()
    with torch.no_grad():
        for b in m.blocks:
            b.ls1.gamma.uniform_(0.2, 2.0)
            b.ls2.gamma.uniform_(0.2, 2.0)
    back = timm.create_model(f"local-dir:{save_timm(m, tmp_path / 'timm')}", pretrained=True).eval()
    hf = AutoModelForImageClassification.from_pretrained(save_transformers(m, tmp_path / "hf")).eval()
    with torch.no_grad():
        assert torch.equal(back(X), m(X))
        assert (hf(pixel_values=X).logits - m(X)).abs().max().item() <= 1e-4


@pytest.mark.parametrize(
    "kwargs,why",
    [
        (dict(global_pool="avg", class_token=False), "class token"),
        (dict(global_pool="avg"), "class token"),
        (dict(qk_norm=True), "qk-norm"),
        (dict(reg_tokens=2), "register"),
    ],
)
def test_transformers_refuses_what_vit_cannot_hold_and_timm_wrapper_works(kwargs, why, tmp_path):
    from transformers import AutoModelForImageClassification

    torch.manual_seed(0)
    m = timm_vit(TINY_ARCH | {"width": 64}, num_classes=5, **kwargs).eval()
    with pytest.raises(errors.ExportError, match=why) as ei:
        save_transformers(m, tmp_path / "hf")
    assert "TimmWrapper" in ei.value.remedy and not (tmp_path / "hf").exists()
    out = save_timm(m, tmp_path / "timm")
    wrapped = AutoModelForImageClassification.from_pretrained(out).eval()
    with torch.no_grad():
        assert (wrapped(pixel_values=X).logits - m(X)).abs().max().item() <= 1e-5


def test_timm_folder_processor_in_transformers_is_timms_transform(model, tmp_path):
    from timm.data import create_transform, resolve_data_config
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(
        save_timm(model, tmp_path / "timm")
    )  # TimmWrapperImageProcessor
    tf = create_transform(**resolve_data_config({}, model=model))
    for _, img in _images():
        assert torch.equal(proc(images=img, return_tensors="pt")["pixel_values"][0], tf(img))


def test_avg_pool_materialized_model_refused_with_remedy(lg, tmp_path):
    avg = wavehub.create_model(lg, depth=2, width=128, num_classes=5, global_pool="avg", class_token=False)
    with pytest.raises(errors.ExportError, match="TimmWrapper"):
        save_transformers(avg, tmp_path / "hf")


def test_export_refuses_to_clobber_unrelated_folder(model, tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    (d / "important.txt").write_text("keep me")
    with pytest.raises(errors.OutputError):
        save_timm(model, d)
    assert (d / "important.txt").read_text() == "keep me"
    out = save_timm(model, tmp_path / "m")
    assert save_timm(model, out) == out  # a previous export is replaced
    with pytest.raises(errors.OutputError, match="overwrite"):
        save_timm(model, out, overwrite=False)
    with pytest.raises(errors.ExportError, match="label names"):
        save_timm(model, tmp_path / "x", label_names=["a", "b"])
