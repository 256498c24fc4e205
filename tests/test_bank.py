"""The bank (learngene format v2): pre-fitted scalers per size, served by create_model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from _tiny import tiny_extracted

import wavehub
from wavehub.artifact import load_learngene, save_learngene
from wavehub.bank import BANK_FILE, choose_entry, entry_key, parse_size
from wavehub.bank_fit import add_entries
from wavehub.config import LearngeneConfig
from wavehub.errors import ArtifactFormatError, IntegrityError, SpecError

FAST = dict(steps=3, batch_size=4, img_size=32, heldout=4)


@pytest.fixture
def banked(tmp_path):
    """A tiny extracted learngene with entries at 1x128 and 3x64, distilled from its own tiny ancestry."""
    lg, vit = tiny_extracted()
    folder = save_learngene(lg, tmp_path / "lg")
    done = add_entries(folder, [(1, 128), (3, 64)], teacher=vit, progress=False, log=lambda _m: None, **FAST)
    assert done == ["d1-w128", "d3-w64"]
    return folder, vit


def _sd(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_round_trip_and_exact_entry(banked):
    folder, _ = banked
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format_version"] == "2"
    assert set(cfg["bank"]["entries"]) == {"d1-w128", "d3-w64"}
    e = cfg["bank"]["entries"]["d3-w64"]
    assert (e["depth"], e["width"], e["img_size"], e["steps"], e["dtype"]) == (3, 64, 32, 3, "float16")
    assert e["bytes"] > 0 and e["heldout_loss_after"] < e["heldout_loss_before"]
    lg = load_learngene(folder)
    assert set(lg.bank) == {"d1-w128", "d3-w64"}
    m = wavehub.create_model(lg, 3, 64, num_classes=5, progress=False)
    assert m.wavehub_info["bank"]["entry"] == "d3-w64" and m.wavehub_info["bank"]["rule"] == "exact"
    # the entry's fitted tensors are what the model carries
    assert torch.equal(m.blocks[2].norm1.weight, lg.bank["d3-w64"]["aux.norm1.weight"][2].float())
    assert torch.equal(m.pos_embed, lg.bank["d3-w64"]["aux.pos_embed"].float())
    exported = wavehub.save_timm(m, folder.parent / "export")  # the exported folder says which entry too
    assert json.loads((exported / "config.json").read_text())["wavehub"]["bank"]["entry"] == "d3-w64"
    plain = wavehub.create_model(lg, 3, 64, num_classes=5, bank=False, progress=False)
    assert plain.wavehub_info["bank"] is None
    assert not torch.equal(m.blocks[0].attn.qkv.weight, plain.blocks[0].attn.qkv.weight)
    # re-saving keeps the bank bit for bit, and the tensor file's sha256 (the zoo pin) never changes
    again = save_learngene(lg, folder.parent / "again")
    cfg2 = json.loads((again / "config.json").read_text())
    assert cfg2["bank"]["sha256"] == cfg["bank"]["sha256"] and cfg2["sha256"] == cfg["sha256"]
    assert (again / BANK_FILE).read_bytes() == (folder / BANK_FILE).read_bytes()


def test_v1_unchanged_without_bank(tmp_path):
    lg, _ = tiny_extracted()
    folder = save_learngene(lg, tmp_path / "v1")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format_version"] == "1" and "bank" not in cfg and not (folder / BANK_FILE).exists()
    v1 = load_learngene(folder)
    assert v1.bank == {}
    a = wavehub.create_model(v1, 3, 64, num_classes=5, progress=False)
    b = wavehub.create_model(v1, 3, 64, num_classes=5, bank=False, progress=False)
    assert a.wavehub_info["bank"] is None
    assert all(torch.equal(x, y) for x, y in zip(_sd(a).values(), _sd(b).values(), strict=True))


def test_bank_false_equals_the_learngene_without_bank(banked, tmp_path):
    folder, _ = banked
    lg = load_learngene(folder)
    plain = save_learngene(
        type(lg)(lg.method, {k: v for k, v in lg.config.items() if k != "bank"}, lg.tensors),
        tmp_path / "plain",
    )
    a = wavehub.create_model(lg, 3, 64, num_classes=5, bank=False, progress=False)
    b = wavehub.create_model(load_learngene(plain), 3, 64, num_classes=5, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(_sd(a).values(), _sd(b).values(), strict=True))


def test_off_grid_rule_and_record(banked):
    folder, _ = banked
    lg = load_learngene(folder)
    m = wavehub.create_model(lg, 2, 64, num_classes=5, progress=False)  # off-grid: nearest same-width entry
    assert m.wavehub_info["bank"]["entry"] == "d3-w64" and m.wavehub_info["bank"]["rule"] == "nearest"
    m = wavehub.create_model(lg, 4, 128, num_classes=5, progress=False)  # only 1x128 is as wide
    assert m.wavehub_info["bank"]["entry"] == "d1-w128"
    m = wavehub.create_model(
        lg, 2, 64, num_classes=5, img_size=64, progress=False
    )  # another grid: aux pos_embed
    assert m.wavehub_info["bank"]["pos_embed"] == "aux"
    assert m.pos_embed.shape == (1, 1 + 64, 64)
    m = wavehub.create_model(lg, 2, 64, num_classes=5, init="random", progress=False)
    assert m.wavehub_info["bank"] is None


def _view(config: dict, **aux) -> LearngeneConfig:
    """A typed config whose aux model is a size no assertion below asks for, unless ``aux`` says so."""
    arch = dict(depth=2, width=64, num_heads=1, mlp_ratio=4.0, patch_size=14, img_size=42, in_chans=3) | aux
    return LearngeneConfig.from_dict(dict(config, method="wave", aux=arch))


def test_choose_entry_prefers_width_then_depth():
    bank = {
        "entries": {
            entry_key(d, w): {"depth": d, "width": w, "img_size": 42}
            for d, w in [(4, 192), (6, 384), (8, 384), (12, 256), (16, 384)]
        }
    }
    cfg = _view({"bank": bank})
    assert choose_entry(cfg, 8, 384, 3).rule == "exact"
    assert choose_entry(cfg, 10, 320, 3).key == "d8-w384"  # width never repeated: 384 > 320, nearest depth
    assert choose_entry(cfg, 12, 384, 3).key == "d16-w384"  # log scale: 12/16 is nearer than 8/12
    assert choose_entry(cfg, 3, 128, 3).key == "d4-w192"
    assert choose_entry(cfg, 8, 512, 3) is None  # no entry as wide: the aux scalers
    assert choose_entry(cfg, 8, 384, 16).pos_embed == "aux"
    assert choose_entry(_view({}), 8, 384) is None
    aux = _view({"bank": bank}, depth=12, width=384, num_heads=6)
    assert choose_entry(aux, 12, 384, 3) is None  # the aux model's own size: the aux scalers
    assert choose_entry(aux, 16, 384, 3).rule == "exact"
    assert parse_size("8x384") == (8, 384) == parse_size("d8-w384")
    with pytest.raises(SpecError):
        parse_size("eight")


def test_resume_skips_finished_entries(banked):
    folder, vit = banked
    before = (folder / BANK_FILE).read_bytes()
    logs = []
    assert add_entries(folder, [(1, 128)], teacher=vit, progress=False, log=logs.append, **FAST) == []
    assert "already in the bank" in logs[0] and (folder / BANK_FILE).read_bytes() == before


def test_tampered_bank_is_a_typed_error(banked):
    folder, _ = banked
    data = bytearray((folder / BANK_FILE).read_bytes())
    data[-3] ^= 0xFF
    (folder / BANK_FILE).write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        load_learngene(folder)


def test_entry_sha_and_shape_mismatch_are_typed_errors(banked):
    folder, _ = banked
    cfg_path = folder / "config.json"
    good = cfg_path.read_text()
    cfg = json.loads(good)
    cfg["bank"]["entries"]["d3-w64"]["sha256"] = "0" * 64
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(IntegrityError, match="d3-w64"):
        load_learngene(folder)
    cfg = json.loads(good)
    e = cfg["bank"]["entries"].pop("d3-w64")
    cfg["bank"]["entries"]["d2-w64"] = e | {"depth": 2}  # the file's tensors are for depth 3
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ArtifactFormatError):
        load_learngene(folder)
    cfg = json.loads(good)
    cfg["format_version"] = "1"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ArtifactFormatError, match="format_version 2"):
        load_learngene(folder)
    (folder / BANK_FILE).unlink()
    cfg_path.write_text(good)
    with pytest.raises(ArtifactFormatError, match="missing"):
        load_learngene(folder)


def test_fit_starts_from_the_bank_entry(banked):
    folder, _ = banked
    lg = load_learngene(folder)
    from wavehub.materialize import resolve_spec
    from wavehub.wave_module import WaveModel

    spec = resolve_spec(lg, 3, 64, num_classes=5)
    wm = WaveModel.from_learngene(lg, spec)
    assert torch.equal(wm.scalers["qkv"].detach(), lg.bank["d3-w64"]["aux.scalers.qkv"].float())
    wm0 = WaveModel.from_learngene(lg, spec, bank=False)
    assert not torch.equal(wm0.scalers["qkv"].detach(), wm.scalers["qkv"].detach())


def test_cli_bank_ls(banked, capsys):
    from wavehub.cli import main

    folder, _ = banked
    assert main(["bank", "ls", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "2 bank entries" in out and "3x64" in out and "1x128" in out


BANK_GRID = {"d4-w192", "d6-w384", "d8-w384", "d12-w256", "d16-w384"}  # benchmarks/quality.py's sizes
OFF_GRID = "d10-w320"  # the size left out on purpose


def test_bundled_default_ships_its_bank():
    from wavehub.artifact import load_learngene as load
    from wavehub.zoo import BUNDLED_DIR

    folder = BUNDLED_DIR / "dinov2s-learngene"
    lg = load(folder)
    assert set(lg.bank) == BANK_GRID and OFF_GRID not in lg.bank
    for e in lg.config["bank"]["entries"].values():
        assert e["dtype"] == "float16" and e["heldout_loss_after"] < e["heldout_loss_before"]
    # the wheel carries the whole folder: it must stay small (issue budget: <= 16 MB)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 16 * 2**20
    m = wavehub.create_model("dinov2s-learngene", 10, 320, num_classes=10, img_size=42, progress=False)
    assert m.wavehub_info["bank"]["rule"] == "nearest" and m.wavehub_info["bank"]["entry"] == "d8-w384"


def test_push_then_pull_carries_the_bank(hub, banked):
    """Format v2 over the Hub: push uploads bank.safetensors, pull downloads and verifies it, offline serves it."""
    from wavehub import hub as whub

    folder, _ = banked
    whub.push(folder, "me/banked", tag="v2", token="tok")
    assert BANK_FILE in hub.files("me/banked", "v2")
    got = whub.resolve("hf-hub:me/banked@v2")
    assert (got / BANK_FILE).read_bytes() == (folder / BANK_FILE).read_bytes()
    lg = wavehub.load_learngene("hf-hub:me/banked@v2", offline=True)
    assert set(lg.bank) == {"d1-w128", "d3-w64"}
    report = whub.cache_verify()
    assert report and all(r["status"] == "ok" for r in report), report
    blob = Path(os.path.realpath(got / BANK_FILE))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-8] + b"\0" * 8)  # a damaged bank: verify must say so
    assert any(r["status"] != "ok" for r in whub.cache_verify())
