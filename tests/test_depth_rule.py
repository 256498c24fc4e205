"""Depth rules for WAVE resampling: the layer mapping, the aux-depth identity, recording, bad names."""

from __future__ import annotations

import pytest
import torch
from _tiny import TINY_ARCH, tiny_tleg, tiny_wave

from wavehub.errors import SpecError
from wavehub.materialize import build_model, state_dict_for
from wavehub.methods import wave
from wavehub.methods.resample import DEPTH_RULES, PREFIX_TRIM, depth_positions, interp_depth
from wavehub.spec import ViTSpec


def _spec(depth: int, width: int = 128, arch: dict | None = None) -> ViTSpec:
    return ViTSpec(depth=depth, width=width, num_classes=0).resolve(arch or TINY_ARCH)


def test_positions_of_each_rule_for_a_12_layer_source():
    assert depth_positions(12, 4, "stretch").tolist() == [0.0, 11 / 3, 22 / 3, 11.0]
    assert depth_positions(12, 4, "prefix").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert depth_positions(12, 8, "prefix").tolist() == [float(i) for i in range(8)]
    deep = depth_positions(12, 16, "prefix")  # stretch over the first 12 - PREFIX_TRIM layers
    assert deep[0] == 0 and deep[-1] == pytest.approx(11 - PREFIX_TRIM) and bool((deep.diff() > 0).all())
    assert depth_positions(12, 16, "stretch")[-1] == pytest.approx(11.0)
    for rule in DEPTH_RULES:  # same depth: identity, whatever the rule
        assert depth_positions(12, 12, rule).tolist() == [float(i) for i in range(12)]
        assert depth_positions(12, 1, rule).tolist() == [0.0]


def test_interp_depth_prefix_takes_the_first_layers_and_trims_when_deeper():
    x = torch.arange(12.0)[:, None] * torch.ones(1, 3)  # layer l has value l
    assert torch.equal(interp_depth(x, 5, "prefix"), x[:5])
    y = interp_depth(x, 16, "prefix")
    assert y[:, 0].max() == pytest.approx(11 - PREFIX_TRIM)
    assert torch.equal(interp_depth(x, 12, "prefix"), x)


def test_prefix_scalers_and_norms_come_from_the_first_aux_layers():
    arch = TINY_ARCH | {"depth": 4}
    lg = tiny_wave(depth=4)
    spec = _spec(2, arch=arch)
    s = wave.target_scalers(lg.tensors, lg.cfg, spec, depth_rule="prefix")
    s_str = wave.target_scalers(lg.tensors, lg.cfg, spec, depth_rule="stretch")
    for name in wave.BLOCK_TYPES:
        a = lg.tensors[f"aux.scalers.{name}"]
        assert torch.equal(s[name], a[:2])
        assert torch.equal(s_str[name], a[[0, 3]])
        assert torch.equal(s[name + ".bias"], lg.tensors[f"aux.scalers.{name}.bias"][:2])
    ex = wave.target_extras(lg.tensors, lg.cfg, spec, depth_rule="prefix")
    ex_str = wave.target_extras(lg.tensors, lg.cfg, spec, depth_rule="stretch")
    for k in wave.NORM_KEYS:
        assert torch.equal(ex[f"blocks.1.{k}"], lg.tensors[f"aux.{k}"][1])
        assert torch.equal(ex_str[f"blocks.1.{k}"], lg.tensors[f"aux.{k}"][3])
    # the layer-independent extras do not depend on the rule
    for k in ("norm.weight", "norm.bias", "pos_embed", "cls_token"):
        assert torch.equal(ex[k], ex_str[k])


def test_every_rule_is_the_identity_at_the_aux_depth():
    lg = tiny_wave()
    for width in (128, 64):
        spec = ViTSpec(depth=TINY_ARCH["depth"], width=width, num_heads=1, num_classes=5).resolve(TINY_ARCH)
        sds = [state_dict_for(lg, spec, depth_rule=r) for r in DEPTH_RULES]
        sds.append(state_dict_for(lg, spec))
        for sd in sds[1:]:
            assert sd.keys() == sds[0].keys()
            assert all(torch.equal(sd[k], sds[0][k]) for k in sd)


def test_rule_is_recorded_and_changes_deeper_targets():
    lg = tiny_wave(depth=4)
    arch = TINY_ARCH | {"depth": 4}
    spec = _spec(6, arch=arch)
    m_default = build_model(lg, spec)
    assert m_default.wavehub_info["depth_rule"] == wave.DEFAULT_DEPTH_RULE
    models = {r: build_model(lg, spec, depth_rule=r) for r in DEPTH_RULES}
    for r, m in models.items():
        assert m.wavehub_info["depth_rule"] == r
    a, b = (models[r].state_dict()["blocks.5.attn.proj.weight"] for r in ("prefix", "stretch"))
    assert not torch.equal(a, b)  # stretch ends on aux layer 3, prefix (trimmed) on layer 1
    x = torch.randn(2, 3, 32, 32)
    assert torch.isfinite(models["prefix"].forward_features(x)).all()


def test_create_model_and_fit_pass_the_rule_through():
    """The non-default rule ("prefix"; the default is "stretch") reaches the weights, not only the record."""
    import wavehub
    from wavehub.fit import fit_scalers

    lg = tiny_wave(depth=4)
    spec = ViTSpec(depth=2, width=128, num_classes=3).resolve(TINY_ARCH | {"depth": 4})
    made = {
        r: wavehub.create_model(lg, 2, 128, num_classes=3, depth_rule=r, progress=False) for r in DEPTH_RULES
    }
    default = wavehub.create_model(lg, 2, 128, num_classes=3, progress=False)
    assert made["prefix"].wavehub_info["depth_rule"] == "prefix"
    key = "blocks.1.attn.proj.weight"  # prefix ends on aux layer 1, stretch on layer 3
    assert torch.equal(
        made["prefix"].state_dict()[key], build_model(lg, spec, depth_rule="prefix").state_dict()[key]
    )
    assert not torch.equal(made["prefix"].state_dict()[key], default.state_dict()[key])
    ds = torch.utils.data.TensorDataset(torch.randn(8, 3, 32, 32), torch.arange(8) % 3)
    fitted = {
        r: fit_scalers(
            lg,
            spec,
            ds,
            steps=1,
            batch_size=4,
            eval_data=None,
            progress=False,
            depth_rule=r,
            precision="fp32",
        )
        for r in DEPTH_RULES
    }
    assert fitted["prefix"].wavehub_info["depth_rule"] == "prefix" and fitted["prefix"].wavehub_info["fitted"]
    assert not torch.equal(fitted["prefix"].state_dict()[key], fitted["stretch"].state_dict()[key])


def test_unknown_rule_raises_spec_error():
    lg = tiny_wave()
    spec = _spec(3)
    with pytest.raises(SpecError, match="depth_rule"):
        wave.target_scalers(lg.tensors, lg.cfg, spec, depth_rule="middle")
    with pytest.raises(SpecError, match="depth_rule"):
        wave.target_extras(lg.tensors, lg.cfg, spec, depth_rule="middle")
    with pytest.raises(SpecError, match="depth_rule"):
        build_model(lg, spec, depth_rule="middle")
    with pytest.raises(SpecError, match="depth_rule"):
        interp_depth(torch.zeros(2, 3), 2, "middle")  # even when the depth would not change


def test_depth_rule_is_refused_for_other_methods():
    lg, _ = tiny_tleg()
    spec = _spec(3)
    assert "depth_rule" not in build_model(lg, spec).wavehub_info
    with pytest.raises(SpecError, match="WAVE"):
        build_model(lg, spec, depth_rule="stretch")
