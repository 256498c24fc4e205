"""Artifact format v1: round trip, validation of every bad-file case, and a fuzz of the loader."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from _tiny import tiny_tleg, tiny_wave
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wavehub import errors
from wavehub.artifact import (
    CONFIG_FILE,
    TENSOR_FILE,
    load_learngene,
    save_learngene,
    sha256_file,
    validate_folder,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("lg")
    save_learngene(tiny_wave(), d)
    return d


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_roundtrip_exact(saved):
    lg = load_learngene(saved)
    ref = tiny_wave()
    assert set(lg.tensors) == set(ref.tensors)
    assert all(torch.equal(lg.tensors[k], ref.tensors[k]) for k in ref.tensors)
    cfg = json.loads((saved / CONFIG_FILE).read_text())
    assert cfg["sha256"] == sha256_file(saved / TENSOR_FILE) == lg.sha256
    assert cfg["format"] == "wavehub.learngene" and cfg["format_version"] == "1"
    assert (saved / "README.md").read_text().startswith("---\nlibrary_name: wavehub")
    assert validate_folder(saved)["method"] == "wave"
    # the tensor file itself is accepted as a path
    assert load_learngene(saved / TENSOR_FILE).sha256 == lg.sha256


def test_tleg_roundtrip(tmp_path):
    lg, _ = tiny_tleg()
    save_learngene(lg, tmp_path)
    back = load_learngene(tmp_path)
    assert back.method == "tleg" and torch.equal(
        back.tensors["tleg.base.attn.qkv.weight"], lg.tensors["tleg.base.attn.qkv.weight"]
    )


def test_save_is_atomic_no_temp_files_left(tmp_path):
    save_learngene(tiny_wave(), tmp_path)
    save_learngene(tiny_wave(seed=1), tmp_path)  # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["README.md", "config.json", "learngene.safetensors"]
    assert (
        load_learngene(tmp_path).tensors["templates.qkv"].sum()
        == tiny_wave(seed=1).tensors["templates.qkv"].sum()
    )


def test_missing_folder_and_files(tmp_path, saved):
    with pytest.raises(errors.LearngeneNotFoundError):
        load_learngene(tmp_path / "nope")
    d = _copy(saved, tmp_path / "a")
    (d / CONFIG_FILE).unlink()
    with pytest.raises(errors.ArtifactFormatError, match="config.json is missing"):
        load_learngene(d)


def test_truncated_tensor_file(tmp_path, saved):
    d = _copy(saved, tmp_path / "a")
    data = (d / TENSOR_FILE).read_bytes()
    for n in (0, 5, 100, len(data) // 2, len(data) - 1):
        (d / TENSOR_FILE).write_bytes(data[:n])
        with pytest.raises(errors.ArtifactError):
            load_learngene(d, verify=False)
        with pytest.raises(errors.IntegrityError):
            load_learngene(d)


def test_tampered_file_fails_integrity(tmp_path, saved):
    d = _copy(saved, tmp_path / "a")
    data = bytearray((d / TENSOR_FILE).read_bytes())
    data[-10] ^= 0xFF
    (d / TENSOR_FILE).write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError, match="sha256") as ei:
        load_learngene(d)
    assert "wavehub pull" in str(ei.value)  # the remedy is in the message


def _edit_config(d, fn):
    cfg = json.loads((d / CONFIG_FILE).read_text())
    fn(cfg)
    (d / CONFIG_FILE).write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "edit,err",
    [
        (lambda c: c.update(format_version="3"), errors.ArtifactVersionError),
        (lambda c: c.update(format="something"), errors.ArtifactFormatError),
        (lambda c: c.update(method="magic"), errors.ArtifactFormatError),
        (lambda c: c["aux"].update(width=100), errors.ArtifactFormatError),
        (lambda c: c["aux"].update(depth=3), errors.ArtifactFormatError),  # shapes no longer match
        (lambda c: c["aux"].update(depth="2"), errors.ArtifactFormatError),
        (lambda c: c["aux"].update(mlp_ratio=float("nan")), errors.ArtifactFormatError),
        (lambda c: c["wave"]["types"]["qkv"].update(n=5), errors.ArtifactFormatError),
        (lambda c: c.pop("aux"), errors.ArtifactFormatError),
        (lambda c: c.update(sha256="xyz"), errors.ArtifactFormatError),
    ],
)
def test_bad_config(tmp_path, saved, edit, err):
    d = _copy(saved, tmp_path / "a")
    _edit_config(d, edit)
    with pytest.raises(err):
        load_learngene(d)


def test_not_json_config(tmp_path, saved):
    d = _copy(saved, tmp_path / "a")
    (d / CONFIG_FILE).write_bytes(b"\xff\xfe{not json")
    with pytest.raises(errors.ArtifactFormatError, match="not valid JSON"):
        load_learngene(d)


def _resave_tensors(d, mutate):
    from safetensors.torch import load_file, save_file

    from wavehub.artifact import sha256_file

    t = load_file(d / TENSOR_FILE)
    meta = {"format": "wavehub.learngene", "format_version": "1"}
    new_meta = mutate(t, meta)
    meta = new_meta if isinstance(new_meta, dict) else meta
    save_file(t, d / TENSOR_FILE, metadata=meta)
    _edit_config(d, lambda c: c.update(sha256=sha256_file(d / TENSOR_FILE)))


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda t, m: t.pop("templates.qkv"), "missing"),
        (lambda t, m: t.update({"extra.tensor": torch.zeros(2)}), "unexpected"),
        (lambda t, m: t.update({"templates.qkv": torch.zeros(4, 64, 32)}), "shape"),
        (lambda t, m: t.update({"templates.fc1": t["templates.fc1"].clone().fill_(float("nan"))}), "NaN"),
        (lambda t, m: t.update({"templates.fc1": t["templates.fc1"].long()}), "dtype"),
        (lambda t, m: {"format": "other"}, "not a wavehub learngene"),
        (lambda t, m: {"format": "wavehub.learngene", "format_version": "9"}, "version"),
    ],
)
def test_bad_tensors(tmp_path, saved, mutate, match):
    d = _copy(saved, tmp_path / "a")
    _resave_tensors(d, mutate)
    with pytest.raises(errors.ArtifactError, match=match):
        load_learngene(d)


@settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzz_loader_raises_only_wavehub_errors(tmp_path_factory, data):
    """Mutated, truncated and spliced tensor files and configs: the loader succeeds or raises a WavehubError."""
    src = _FUZZ_SRC.setdefault("d", None) or _make_fuzz_src(tmp_path_factory)
    tensor_bytes, cfg_bytes = src
    which = data.draw(st.sampled_from(["tensor", "config", "both"]))
    t, c = bytearray(tensor_bytes), bytearray(cfg_bytes)

    def mutate(buf: bytearray, focus_header: bool) -> bytearray:
        op = data.draw(st.sampled_from(["flip", "truncate", "insert", "set_u64"]))
        hi = min(len(buf), 600) if focus_header else len(buf)
        if op == "truncate":
            return buf[: data.draw(st.integers(0, max(0, len(buf) - 1)))]
        if op == "insert":
            pos = data.draw(st.integers(0, hi))
            return buf[:pos] + bytearray(data.draw(st.binary(min_size=1, max_size=16))) + buf[pos:]
        if op == "set_u64" and focus_header:
            buf[0:8] = data.draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
            return buf
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, max(0, hi - 1)))
            if buf:
                buf[pos] = data.draw(st.integers(0, 255))
        return buf

    if which in ("tensor", "both"):
        t = mutate(t, focus_header=data.draw(st.booleans()))
    if which in ("config", "both"):
        c = mutate(c, focus_header=False)
    d = tmp_path_factory.mktemp("fz", numbered=True)
    (d / TENSOR_FILE).write_bytes(bytes(t))
    (d / CONFIG_FILE).write_bytes(bytes(c))
    for verify in (True, False):
        try:
            load_learngene(d, verify=verify)
        except errors.WavehubError:
            pass
    shutil.rmtree(d)


_FUZZ_SRC: dict = {}


def _make_fuzz_src(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzsrc")
    save_learngene(tiny_wave(templates=1), d)
    _FUZZ_SRC["d"] = ((d / TENSOR_FILE).read_bytes(), (d / CONFIG_FILE).read_bytes())
    return _FUZZ_SRC["d"]


def test_saved_bytes_are_reproducible(tmp_path):
    """The same learngene saved again gives the same bytes (safetensors' metadata order is random per call)."""
    from _tiny import tiny_wave

    from wavehub.artifact import load_learngene, save_learngene, sha256_file

    lg = tiny_wave()
    shas = {sha256_file(save_learngene(lg, tmp_path / f"s{i}") / "learngene.safetensors") for i in range(8)}
    assert len(shas) == 1
    raw = (tmp_path / "s0" / "learngene.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert raw[8 : 8 + n].startswith(b'{"__metadata__":{"format_version":"1","format":"wavehub.learngene"')
    assert set(load_learngene(tmp_path / "s0").tensors) == set(lg.tensors)


def test_typed_config_views_of_the_bundled_learngene():
    """config.json read once into typed views; config_bytes gives back the published file byte for byte."""
    from pathlib import Path

    import wavehub
    from wavehub.config import AuxArch, LearngeneConfig, config_bytes, validate_config

    folder = Path(wavehub.__file__).resolve().parent / "_bundled" / "dinov2s-learngene"
    raw = (folder / "config.json").read_bytes()
    config = validate_config(json.loads(raw))
    assert config_bytes(config) == raw
    c = LearngeneConfig.from_dict(config)
    aux = config["aux"]
    assert c.method == "wave" and c.block is config["wave"] and c.name == config["name"]
    assert c.aux == AuxArch(**aux) and c.aux.head_dim == aux["width"] // aux["num_heads"]
    assert c.aux.grid == aux["img_size"] // aux["patch_size"] and c.aux.mlp_hidden == int(
        aux["width"] * aux["mlp_ratio"]
    )
    assert c.data.mean == tuple(config["mean"]) and c.data.crop_pct == config["crop_pct"]
    assert c.bank.sha256 == config["bank"]["sha256"] and set(c.bank.entries) == set(config["bank"]["entries"])
    assert c.sha256 == config["sha256"] and c.license == config["ancestry"]["license"]


def test_learngene_exposes_the_typed_config():
    lg = tiny_wave()
    assert lg.cfg.aux == lg.arch and lg.arch.width == lg.aux["width"]
    assert lg.cfg.block is lg.config["wave"] and lg.cfg.data.std == (0.5, 0.5, 0.5)
    assert lg.spec_defaults()["head_dim"] == lg.arch.width // lg.arch.num_heads
