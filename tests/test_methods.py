"""Pure tensor methods: Kronecker composition, NKP-SVD, resampling rules, TLEG and Weight Selection formulas."""

from __future__ import annotations

import mmap

import pytest
import torch
from _tiny import TINY_ARCH, tiny_select, tiny_timm_vit, tiny_tleg

from wavehub.config import AuxArch, LearngeneConfig
from wavehub.methods import kron, select, tleg, wave
from wavehub.methods.resample import interp_depth, section_indices, uniform_indices
from wavehub.spec import ViTSpec


@pytest.mark.parametrize("n,p,q,w1,w2", [(1, 1, 1, 2, 3), (3, 4, 2, 5, 5), (5, 3, 6, 4, 7), (2, 9, 3, 8, 8)])
def test_compose_equals_naive_kron(n, p, q, w1, w2):
    g = torch.Generator().manual_seed(n * 100 + p)
    S, T = torch.randn(n, p, q, generator=g), torch.randn(n, w1, w2, generator=g)
    ref = kron.kron_reference(S, T)
    assert torch.allclose(kron.compose(S, T), ref, atol=1e-5)
    # block view: block (i, j) is Σ_t S[t,i,j] T[t]
    W = kron.compose(S, T)
    i, j = p - 1, q - 1
    assert torch.allclose(
        W[i * w1 : (i + 1) * w1, j * w2 : (j + 1) * w2], torch.einsum("t,tab->ab", S[:, i, j], T), atol=1e-5
    )
    layers = kron.compose_layers(torch.stack([S, 2 * S]), T)
    assert torch.allclose(layers[0], ref, atol=1e-5) and torch.allclose(layers[1], 2 * ref, atol=1e-5)
    assert layers[0].data_ptr() != layers[1].data_ptr()


@pytest.mark.parametrize(
    "rows,cols",
    [
        ([0, 0, 1, 1, 2], [0, 1, 1]),
        ([0, 1, 0], [0, 0, 1]),
        ([0, 1, 2], [1, 0, 1]),
        ([0, 0, 0], [0, 0]),
        ([0, 0, 1, 1], [0, 0, 1, 1, 2, 2]),
        ([0, 1, 2], [0, 1]),
    ],
)
@pytest.mark.parametrize("scratch", [1, 100, 1 << 18])
def test_compose_layers_with_repeated_blocks_equals_compose(rows, cols, scratch):
    """Widened targets repeat scaler rows/columns: only distinct blocks are composed, then written to every
    place they repeat (uniform repeats by a broadcasting copy of template-row slices, other sorted repeats
    straight from the GEMM scratch, unsorted ones through a gather). Scratch sizes from one template row per
    GEMM to the whole layer."""
    g = torch.Generator().manual_seed(len(rows) * 10 + len(cols))
    base = torch.randn(2, 4, max(rows) + 1, max(cols) + 1, generator=g)
    S = base[:, :, rows][:, :, :, cols]
    T = torch.randn(4, 3, 5, generator=g)
    for od in (None, torch.bfloat16):
        layers = kron.compose_layers(S, T, scratch=scratch, out_dtype=od)
        for layer in range(2):
            ref = kron.compose(S[layer], T).to(od or T.dtype)
            tol = 1e-5 if od is None else 1e-2
            assert layers[layer].dtype == ref.dtype
            assert torch.allclose(layers[layer].float(), ref.float(), atol=tol, rtol=tol)
            blk = layers[layer].view(len(rows), 3, len(cols), 5)  # repeats are exact copies
            assert all(torch.equal(blk[i], blk[rows.index(rows[i])]) for i in range(len(rows)))
            assert all(torch.equal(blk[:, :, j], blk[:, :, cols.index(cols[j])]) for j in range(len(cols)))


def test_fresh_weights_are_ordinary_tensors(tmp_path):
    """Big composed weights live on huge-page mappings (wavehub.methods.memory); they must behave as any tensor."""
    from safetensors.torch import load_file, save_file

    from wavehub.methods import memory

    big = memory.empty((1024, 1024), dtype=torch.float32)  # 4 MiB
    small = memory.empty((3, 4), dtype=torch.float16)
    assert big.shape == (1024, 1024) and big.is_contiguous() and small.dtype == torch.float16
    big.copy_(torch.arange(1024 * 1024, dtype=torch.float32).view(1024, 1024))
    save_file({"w": big}, tmp_path / "w.safetensors")
    assert torch.equal(load_file(tmp_path / "w.safetensors")["w"], big)
    assert torch.equal(big.clone().share_memory_(), big) and torch.equal(
        big.share_memory_()[7], big[7].clone()
    )


@pytest.mark.skipif(
    not (hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap, "MAP_ANONYMOUS")),
    reason="no MADV_HUGEPAGE / MAP_ANONYMOUS here: memory.empty is torch.empty",
)
def test_big_fresh_weights_start_on_a_huge_page_boundary():
    """Where the platform can ask for huge pages, a big tensor starts on a 2 MiB boundary with no padding saved
    (a counted skip elsewhere, never a silent pass)."""
    from wavehub.methods import memory

    big = memory.empty((1024, 1024), dtype=torch.float32)  # 4 MiB
    assert big.data_ptr() % (2 << 20) == 0
    assert big.untyped_storage().nbytes() == big.numel() * 4  # no hidden padding is saved


def test_compose_vector_matches_kron():
    S, b = torch.randn(3, 4), torch.randn(3, 5)
    ref = sum(torch.kron(S[t], b[t]) for t in range(3))
    assert torch.allclose(kron.compose_vector(S, b), ref, atol=1e-6)


def test_blocks_roundtrip():
    w = torch.randn(2, 12, 8)
    assert torch.equal(kron.unblocks(kron.blocks(w, 3, 4), 3, 4), w)


def test_nkp_svd_exact_at_full_rank_and_monotone():
    g = torch.Generator().manual_seed(0)
    mats = torch.randn(3, 8, 12, generator=g)
    errs = []
    for n in (1, 2, 4, 8, 16):
        S, T = kron.nkp_svd(mats, 4, 4, n)
        rec = kron.compose(S, T)
        errs.append(float((rec - mats).norm() / mats.norm()))
    assert errs == sorted(errs, reverse=True)
    assert errs[-1] < 1e-5  # 16 = w1*w2 templates reconstruct exactly
    # templates are orthonormal and sign-normalized (largest |entry| positive): reproducible
    S, T = kron.nkp_svd(mats, 4, 4, 4)
    flat = T.reshape(4, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(4), atol=1e-5)
    assert bool((flat.gather(1, flat.abs().argmax(1, keepdim=True)) > 0).all())
    S2, T2 = kron.nkp_svd(mats, 4, 4, 4)
    assert torch.equal(T, T2) and torch.equal(S, S2)


def test_nkp_svd_is_least_squares_optimal_for_kron_rank_one():
    A, B = torch.randn(3, 2), torch.randn(4, 5)
    M = torch.kron(A, B)[None]
    S, T = kron.nkp_svd(M, 4, 5, 1)
    assert torch.allclose(kron.compose(S, T), M, atol=1e-5)


def test_uniform_indices_follow_weight_selection_rule():
    assert uniform_indices(384, 192).tolist() == list(range(0, 384, 2))
    assert uniform_indices(12, 4).tolist() == [0, 3, 6, 9]
    got = uniform_indices(384, 256)
    assert got.tolist() == torch.linspace(0, 383, 256, dtype=torch.float64).round().long().tolist()
    assert got[0] == 0 and got[-1] == 383
    # repeats (nearest neighbour) when growing
    assert uniform_indices(2, 4).tolist() == [0, 0, 1, 1]


def test_section_indices_keep_qkv_boundaries():
    idx = section_indices(18, 12, 3)  # 6 blocks per section -> 4
    assert idx[:4].tolist() == uniform_indices(6, 4).tolist()
    for s in range(3):
        part = idx[4 * s : 4 * (s + 1)]
        assert bool(((part >= 6 * s) & (part < 6 * (s + 1))).all())


def test_interp_depth_linear():
    x = torch.arange(4.0)[:, None] * torch.ones(1, 3)  # layer l has value l
    y = interp_depth(x, 7)  # positions 0, .5, 1, ... 3
    assert torch.allclose(y[:, 0], torch.arange(7) * 0.5)
    assert torch.equal(interp_depth(x, 4), x)
    assert torch.allclose(interp_depth(x, 1), x[:1])


def test_tleg_formula_hand_computed():
    lg, _ = tiny_tleg()
    t = dict(lg.tensors)
    base = t["tleg.base.attn.proj.bias"] = torch.tensor([1.0, 2.0]).repeat(64)
    inc = t["tleg.ilayer.attn.proj.bias"] = torch.tensor([4.0, -8.0]).repeat(64)
    spec = ViTSpec(depth=4, width=128, num_classes=0).resolve(TINY_ARCH)
    sd = tleg.compose_state_dict(t, lg.cfg, spec)
    for layer, c in enumerate([0.0, 0.25, 0.5, 0.75]):  # l / L, 0-indexed, L = target depth
        assert torch.allclose(sd[f"blocks.{layer}.attn.proj.bias"], base + c * inc)
    assert sd["blocks.0.attn.proj.bias"][:2].tolist() == [1.0, 2.0]
    assert sd["blocks.3.attn.proj.bias"][:2].tolist() == [4.0, -4.0]


def test_tleg_extract_recovers_exactly_linear_layers():
    L = 4
    sd = dict(tiny_timm_vit(0, depth=L).state_dict())
    # make norm1.weight exactly linear in l/L
    b1, i1 = torch.randn(128), torch.randn(128)
    for i in range(L):
        sd[f"blocks.{i}.norm1.weight"] = b1 + (i / L) * i1
    out = tleg.least_squares(sd, AuxArch.from_dict(TINY_ARCH | {"depth": L}))
    assert torch.allclose(out["tleg.base.norm1.weight"], b1, atol=1e-5)
    assert torch.allclose(out["tleg.ilayer.norm1.weight"], i1, atol=1e-5)


def test_weight_selection_hand_computed():
    lg, teacher = tiny_select(depth=3)
    sd_t = teacher.state_dict()
    spec = ViTSpec(depth=2, width=64, num_heads=1, num_classes=0).resolve(TINY_ARCH)
    sd = select.compose_state_dict(lg.tensors, lg.cfg, spec)
    even = torch.arange(0, 128, 2)
    # first-N layers, every 2nd residual channel; qkv rows per q/k/v section (128 -> 64 each)
    rows = torch.cat([even + s * 128 for s in range(3)])
    assert torch.equal(sd["blocks.1.attn.qkv.weight"], sd_t["blocks.1.attn.qkv.weight"][rows][:, even])
    assert torch.equal(
        sd["blocks.0.mlp.fc1.weight"], sd_t["blocks.0.mlp.fc1.weight"][torch.arange(0, 512, 2)][:, even]
    )
    assert torch.equal(
        sd["blocks.0.mlp.fc2.weight"], sd_t["blocks.0.mlp.fc2.weight"][even][:, torch.arange(0, 512, 2)]
    )
    assert torch.equal(sd["norm.weight"], sd_t["norm.weight"][even])
    assert torch.equal(sd["cls_token"], sd_t["cls_token"][:, :, even])
    assert torch.equal(sd["pos_embed"], sd_t["pos_embed"][:, :, even])
    assert torch.equal(sd["patch_embed.proj.weight"], sd_t["patch_embed.proj.weight"][even])


def test_wave_scalers_resample_over_width_per_section():
    from _tiny import tiny_wave

    lg = tiny_wave()
    spec = ViTSpec(depth=2, width=64, num_heads=1, num_classes=0).resolve(TINY_ARCH)
    s = wave.target_scalers(lg.tensors, lg.cfg, spec)
    aux = lg.tensors["aux.scalers.qkv"]  # (2, N, 6, 2): 2 blocks per section
    assert s["qkv"].shape == (2, 4, 3, 1)
    assert torch.equal(s["qkv"], aux[:, :, [0, 2, 4]][:, :, :, [0]])
    assert s["fc1"].shape == (2, 4, 4, 1)
    assert torch.equal(s["fc1"], lg.tensors["aux.scalers.fc1"][:, :, [0, 2, 4, 6]][:, :, :, [0]])
    deeper = wave.target_scalers(
        lg.tensors, lg.cfg, ViTSpec(depth=3, width=128, num_classes=0).resolve(TINY_ARCH)
    )
    a = lg.tensors["aux.scalers.proj"]
    assert torch.allclose(deeper["proj"][1], (a[0] + a[1]) / 2)
    assert torch.equal(deeper["proj"][0], a[0]) and torch.equal(deeper["proj"][2], a[1])


# ------------------------------------------------------------------------------------------------ registry


def test_registry_names_every_method_once():
    from wavehub.errors import SpecError
    from wavehub.methods import METHODS, get_method

    assert list(METHODS) == ["wave", "tleg", "select"]
    assert all(m.name == k and get_method(k) is m for k, m in METHODS.items())
    assert [k for k, m in METHODS.items() if m.has_scalers] == ["wave"]
    assert [k for k, m in METHODS.items() if m.distillable] == ["wave", "tleg"]
    with pytest.raises(SpecError, match="unknown method 'kron'"):
        get_method("kron")


def test_a_method_is_one_module_read_by_of_module():
    """A module's functions named after the record's fields and its upper-case constants fill the record; the
    optional stage-1 functions may be absent, a missing required one is refused."""
    import types

    from wavehub.methods import Method, select, wave

    assert Method.of_module(wave).compose is wave.compose and Method.of_module(wave).export is wave.export
    assert Method.of_module(select).distill_init is None and not Method.of_module(select).distillable
    mod = types.ModuleType("toy")
    mod.NAME, mod.SUMMARY, mod.OPTIONS = "toy", "a toy method", ("k",)
    for hook in ("expected_shapes", "validate_block", "check_spec", "compose", "extract", "serves"):
        setattr(mod, hook, lambda *a, **k: None)
    toy = Method.of_module(mod)
    assert (toy.name, toy.options, toy.has_scalers, toy.extract_label) == ("toy", ("k",), False, "extract")
    del mod.serves
    with pytest.raises(TypeError, match="serves"):
        Method.of_module(mod)


@pytest.mark.parametrize("name", ["wave", "tleg", "select"])
def test_registry_extract_gives_what_expected_shapes_and_compose_need(name):
    """Each record's functions agree with each other: extract's tensors are exactly expected_shapes' names and
    shapes, serves describes the config, and compose builds every non-head tensor of a stock timm ViT."""
    from timm.models.vision_transformer import VisionTransformer

    from wavehub.methods import get_method

    m = get_method(name)
    vit = tiny_timm_vit(0)
    sd = {k: v.detach().float() for k, v in vit.state_dict().items()}
    t, block = m.extract(sd, AuxArch.from_dict(TINY_ARCH), template_size=64, templates=8, bias_templates=None)
    cfg = LearngeneConfig.from_dict({"aux": TINY_ARCH, name: block}, name)
    m.validate_block(cfg.aux, block)
    assert {k: tuple(v.shape) for k, v in t.items()} == m.expected_shapes(cfg)
    assert m.serves(cfg)["min_depth"] == 1
    spec = ViTSpec(depth=2, width=128, num_classes=0).resolve(TINY_ARCH)
    m.check_spec(cfg, spec)
    out = m.compose(t, cfg, spec, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    want = {k for k in VisionTransformer(**spec.timm_kwargs()).state_dict() if not k.startswith("head.")}
    assert set(out) == want


def test_registry_distill_hooks_round_trip_through_a_wave_model():
    """Stage 1's hooks: distill_init's random start, wrapped in a WaveModel, exports the same tensors."""
    from _tiny import tiny_wave

    from wavehub.methods import get_method
    from wavehub.wave_module import WaveModel

    m = get_method("wave")
    t, block = m.distill_init(
        AuxArch.from_dict(TINY_ARCH),
        None,
        generator=torch.Generator().manual_seed(0),
        template_size=64,
        templates="4",
        bias_templates=None,
    )
    assert block["types"]["qkv"]["n"] == 4  # the CLI's string form is parsed by the method
    lg = tiny_wave(templates=4)
    spec = ViTSpec(depth=2, width=128, num_classes=0).resolve(TINY_ARCH)
    model = WaveModel.from_learngene(lg, spec, train_templates=True)
    exported = m.export(model, spec)
    assert set(exported) == set(m.expected_shapes(lg.cfg))
    assert torch.equal(exported["templates.qkv"], lg.tensors["templates.qkv"].float())
