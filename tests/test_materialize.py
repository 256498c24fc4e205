"""Materialization: exactness against references, stock timm output, every size, every bad spec."""

from __future__ import annotations

import pytest
import torch
from _tiny import timm_vit, tiny_extracted, tiny_select, tiny_tleg, tiny_wave
from timm.models.vision_transformer import VisionTransformer

from wavehub import errors
from wavehub.materialize import build_model, resolve_spec, state_dict_for
from wavehub.methods import kron, wave

X = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _naive_aux_model(lg):
    """The aux model built independently: torch.kron block by block, plain timm ViT, aux extras copied."""
    a = lg.aux
    m = timm_vit(a).eval()
    t = lg.tensors
    sd = m.state_dict()
    for name, wt in wave.TYPES.items():
        L = a["depth"] if wt.per_layer else 1
        for layer in range(L):
            k = wt.key.format(l=layer)
            W = kron.kron_reference(t[f"aux.scalers.{name}"][layer], t[f"templates.{name}"])
            b = sum(
                torch.kron(t[f"aux.scalers.{name}.bias"][layer][i], t[f"templates.{name}.bias"][i])
                for i in range(t[f"templates.{name}.bias"].shape[0])
            )
            sd[f"{k}.weight"] = W.reshape(sd[f"{k}.weight"].shape)
            sd[f"{k}.bias"] = b
    for layer in range(a["depth"]):
        for k in wave.NORM_KEYS:
            sd[f"blocks.{layer}.{k}"] = t[f"aux.{k}"][layer]
    sd["norm.weight"], sd["norm.bias"] = t["aux.norm.weight"], t["aux.norm.bias"]
    sd["pos_embed"], sd["cls_token"] = t["aux.pos_embed"], t["aux.cls_token"]
    m.load_state_dict(sd, strict=True)
    return m


def test_aux_size_reproduces_aux_model_logits():
    lg = tiny_wave()
    model = build_model(lg, resolve_spec(lg, num_classes=0)).eval()
    ref = _naive_aux_model(lg)
    assert (model(X) - ref(X)).abs().max().item() <= 1e-4


def test_full_rank_extraction_reproduces_the_ancestry():
    lg, anc = tiny_extracted(templates=64)  # >= rows of every type's block matrix: exact
    model = build_model(lg, resolve_spec(lg, num_classes=0)).eval()
    assert (model(X) - anc(X)).abs().max().item() <= 1e-4
    lg16, _ = tiny_extracted(templates=2)  # few templates: an approximation, measurably different
    approx = build_model(lg16, resolve_spec(lg16, num_classes=0)).eval()
    assert (approx(X) - anc(X)).abs().max().item() > 1e-3


def test_result_is_stock_timm_with_strict_state_dict():
    lg = tiny_wave()
    spec = resolve_spec(lg, 3, 192, num_classes=7)
    model = build_model(lg, spec)
    assert type(model) is VisionTransformer
    assert not any(p.is_meta for p in model.parameters())
    fresh = VisionTransformer(**spec.timm_kwargs())
    fresh.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(fresh(X), model(X))
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5) and model.pretrained_cfg["input_size"] == (
        3,
        32,
        32,
    )
    assert model.wavehub_info["learngene"] == "tiny-wave"
    assert not any("wavehub" in type(m).__module__ for m in model.modules())


@pytest.mark.parametrize("depth,width", [(1, 64), (2, 128), (4, 64), (3, 192), (6, 256), (2, 512)])
def test_many_sizes_forward(depth, width):
    lg = tiny_wave()
    model = build_model(lg, resolve_spec(lg, depth, width, num_classes=5))
    out = model(X)
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    assert len(model.blocks) == depth and model.embed_dim == width
    assert model.blocks[0].attn.num_heads == width // 64


def test_other_img_patch_chans_and_pool():
    lg = tiny_wave()
    spec = resolve_spec(
        lg, 2, 128, num_classes=3, img_size=48, patch_size=4, in_chans=1, global_pool="avg", class_token=False
    )
    model = build_model(lg, spec)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 3)
    assert model.pos_embed.shape == (1, 144, 128) and "fc_norm.weight" in model.state_dict()


def test_deterministic_and_seeded_head():
    lg = tiny_wave()
    spec = resolve_spec(lg, 2, 128, num_classes=10)
    a, b = state_dict_for(lg, spec, seed=1), state_dict_for(lg, spec, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = state_dict_for(lg, spec, seed=2)
    assert not torch.equal(a["head.weight"], c["head.weight"])
    assert torch.equal(a["blocks.0.attn.qkv.weight"], c["blocks.0.attn.qkv.weight"])
    assert 0.015 < a["head.weight"].std().item() < 0.025 and a["head.bias"].abs().sum() == 0


def test_dtype_and_device_honoured():
    lg = tiny_wave()
    model = build_model(lg, resolve_spec(lg, 2, 128, num_classes=2), dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model(X.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_on_cpu_is_the_fp32_model_rounded_once(dtype):
    """CPUs compose in fp32 and round on the final copy: no slow fp16 GEMM, no input rounding, and the same
    weights whatever the CPU's bf16 support."""
    lg = tiny_wave()
    spec = resolve_spec(lg, 3, 192, num_classes=2)  # resampled depth and width
    ref = build_model(lg, spec, device="cpu").state_dict()
    low = build_model(lg, spec, device="cpu", dtype=dtype).state_dict()
    assert ref.keys() == low.keys()
    for k in ref:
        assert low[k].dtype == dtype and torch.equal(low[k], ref[k].to(dtype)), k


def test_random_scaler_init_differs():
    lg = tiny_wave()
    spec = resolve_spec(lg, 2, 128, num_classes=2)
    a = state_dict_for(lg, spec)
    r = state_dict_for(lg, spec, init="random")
    assert not torch.equal(a["blocks.0.attn.qkv.weight"], r["blocks.0.attn.qkv.weight"])


def test_tleg_materializes_and_matches_formula_at_every_depth():
    lg, anc = tiny_tleg()
    for depth in (1, 2, 5):
        model = build_model(lg, resolve_spec(lg, depth, 128, num_classes=4))
        assert len(model.blocks) == depth and model(X).shape == (3, 4)
    with pytest.raises(errors.SpecError, match="width must be 128"):
        resolve_spec(lg, 4, 64)


def test_weight_selection_materializes_and_refuses_growth():
    lg, _ = tiny_select(depth=3)
    model = build_model(lg, resolve_spec(lg, 2, 64, num_classes=4))
    assert model(X).shape == (3, 4)
    with pytest.raises(errors.SpecError, match="cannot add layers"):
        resolve_spec(lg, 4, 64)
    with pytest.raises(errors.SpecError, match="cannot widen"):
        resolve_spec(lg, 2, 192)


@pytest.mark.parametrize("method", ["wave", "tleg", "select"])
def test_training_the_model_never_edits_the_learngene(method):
    """At the learngene's own width a selection is the identity; the model must still own its memory."""
    lg = {"wave": tiny_wave, "tleg": lambda: tiny_tleg()[0], "select": lambda: tiny_select(depth=3)[0]}[
        method
    ]()
    before = {k: v.clone() for k, v in lg.tensors.items()}
    spec = resolve_spec(lg, 3, lg.aux["width"], num_classes=5)
    ref = {k: v.clone() for k, v in build_model(lg, spec).state_dict().items()}
    m = build_model(lg, spec)
    ptrs = {v.untyped_storage().data_ptr() for v in lg.tensors.values()}
    assert not [k for k, v in m.state_dict().items() if v.untyped_storage().data_ptr() in ptrs]
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    assert all(torch.equal(lg.tensors[k], before[k]) for k in before)
    again = build_model(lg, spec).state_dict()
    assert all(torch.equal(again[k], ref[k]) for k in ref)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(depth=4, width=100), "multiple of the template size 64"),
        (dict(depth=0, width=128), "depth must be a positive integer"),
        (dict(depth=-3, width=128), "depth"),
        (dict(depth=2.5, width=128), "depth"),
        (dict(depth=2, width=128, num_heads=3), "does not divide"),
        (dict(depth=2, width=128, global_pool="token", class_token=False), "class_token"),
        (dict(depth=2, width=128, img_size=30), "not a multiple of patch_size"),
        (dict(depth=2, width=128, num_classes=-1), "num_classes"),
        (dict(depth=10**6, width=2**16), "parameters"),
        (dict(depth=2, width=128, global_pool="weird"), "global_pool"),
        (dict(depth=2, width=128, bogus=1), "unknown model option"),
    ],
)
def test_bad_specs_raise_spec_error_before_allocation(kw, match):
    lg = tiny_wave()
    with pytest.raises(errors.SpecError, match=match) as ei:
        resolve_spec(lg, **kw)
    assert ei.value.remedy


def test_timm_option_that_adds_parameters_is_refused():
    lg = tiny_wave()
    with pytest.raises(errors.SpecError, match="add or remove parameters"):
        build_model(lg, resolve_spec(lg, 2, 128), init_values=1e-5)


def test_create_model_from_local_folder(tmp_path):
    import wavehub
    from wavehub.artifact import save_learngene

    save_learngene(tiny_wave(), tmp_path / "lg")
    model = wavehub.create_model(str(tmp_path / "lg"), depth=3, width=192, num_classes=10, drop_path_rate=0.1)
    assert type(model) is VisionTransformer and model(X).shape == (3, 10)
    assert model.blocks[2].drop_path1.drop_prob == pytest.approx(0.1)
