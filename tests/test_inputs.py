"""Argument checks that run before any work: dtype, device and memory, through the API and the CLI."""

from __future__ import annotations

import pytest
import torch
from _tiny import tiny_wave

import wavehub
from wavehub import errors
from wavehub.artifact import save_learngene
from wavehub.cli import main
from wavehub.device import available_memory, check_memory, parse_dtype
from wavehub.spec import ViTSpec


@pytest.fixture(scope="module")
def lg():
    return tiny_wave()


@pytest.mark.parametrize("dtype", ["float7", 5, torch.int8, "int8", torch.complex64, [], "torch.float8"])
def test_bad_dtype_is_an_argument_error(lg, dtype):
    with pytest.raises(errors.ArgumentError, match="dtype") as e:
        wavehub.create_model(lg, depth=2, width=128, dtype=dtype)
    assert "float32" in e.value.remedy and e.value.argument == "dtype" and isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "dtype,want",
    [
        ("float64", torch.float64),
        ("bf16", torch.bfloat16),
        ("torch.float16", torch.float16),
        (torch.float32, torch.float32),
    ],
)
def test_dtype_names_and_objects(lg, dtype, want):
    assert parse_dtype(dtype) is want
    m = wavehub.create_model(lg, depth=1, width=64, num_classes=2, dtype=dtype)
    assert next(m.parameters()).dtype is want


def test_storage_dtype_is_checked_before_extraction():
    from wavehub.extract import extract_learngene

    with pytest.raises(errors.ArgumentError, match="storage_dtype"):
        extract_learngene("timm:never-loaded", storage_dtype="float64")
    with pytest.raises(errors.ArgumentError, match="storage_dtype"):
        extract_learngene("timm:never-loaded", storage_dtype="int8")


@pytest.mark.parametrize(
    "device", ["tpu", "xla", 3.5, "cuda:x"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"])
)
def test_bad_or_absent_device_is_a_device_error(lg, device):
    with pytest.raises(errors.DeviceError) as e:
        wavehub.create_model(lg, depth=2, width=128, device=device)
    assert e.value.argument == "device"


def test_cli_fit_bad_device_and_precision(capsys, tmp_path):
    folder = save_learngene(tiny_wave(), tmp_path / "lg")
    for extra in (["--device", "tpu"], ["--precision", "fp8"]):
        rc = main(
            [
                "fit",
                str(folder),
                "--depth",
                "1",
                "--width",
                "64",
                "--data",
                "digits",
                "--steps",
                "1",
                "--out",
                str(tmp_path / "m"),
                *extra,
            ]
        )
        out, err = capsys.readouterr()
        assert rc == 1 and err.startswith("error: ") and "Traceback" not in err, err
        assert not (tmp_path / "m").exists()


def test_memory_is_known_here():
    assert available_memory("cpu") and available_memory("cpu") > 1 << 20


def test_8e9_parameters_fail_at_once(lg):
    """8e9 fp32 parameters (32 GB): refused at once with sizes that fit, not after minutes of allocation."""
    spec = ViTSpec(depth=10, width=8192).resolve({})
    assert 7.5e9 < spec.param_count() < 8.5e9
    with pytest.raises(errors.SpecError, match="GB available") as e:
        check_memory(spec, torch.float32, "cpu", available=24 << 30)
    assert "depth=7 at width=8192" in e.value.remedy and "width=" in e.value.remedy
    if available_memory("cpu") < spec.param_count() * 4:  # this machine cannot hold it either
        with pytest.raises(errors.SpecError, match="GB available"):
            wavehub.create_model(lg, depth=10, width=8192)
    # the suggested sizes do fit the same budget
    check_memory(ViTSpec(depth=7, width=8192).resolve({}), torch.float32, "cpu", available=24 << 30)


def test_training_needs_more_than_inference():
    spec = ViTSpec(depth=12, width=768).resolve({})
    budget = spec.param_count() * 4 + 1
    check_memory(spec, torch.float32, "cpu", available=budget)
    with pytest.raises(errors.SpecError, match="gradients"):
        check_memory(spec, None, "cpu", training=True, available=budget)


def test_too_large_for_this_machine_through_the_api(lg):
    avail = available_memory("cpu")
    depth = avail // ViTSpec(depth=1, width=8192).resolve({}).param_count() // 4 + 2  # just over what is free
    if ViTSpec(depth=depth, width=8192).resolve({}).param_count() > 4e10:
        pytest.skip("this machine has more memory than a spec may ask for")
    with pytest.raises(errors.SpecError, match="available"):
        wavehub.create_model(lg, depth=int(depth), width=8192)


@pytest.mark.parametrize("width,heads", [(192, 5), (100, 3), (384, 7), (64, 3)])
def test_num_heads_hint_proposes_only_valid_sizes(width, heads):
    import re

    with pytest.raises(errors.SpecError) as e:
        ViTSpec(depth=2, width=width, num_heads=heads).resolve({})
    hint = e.value.remedy
    for h in map(int, re.findall(r"num_heads=(\d+)", hint)):
        assert width % h == 0, hint
    for w in map(int, re.findall(r"width=(\d+) for", hint)):
        assert w % heads == 0 and w % 64 == 0, hint
    assert "190" not in hint


def test_timm_ancestry_error_is_whole_words(monkeypatch):
    """The client's long message is cut at a sentence or word, not mid-word."""
    from huggingface_hub import constants

    from wavehub.ancestry import load_ancestry

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(errors.AncestryError) as e:
        load_ancestry("timm:vit_small_patch16_224")
    msg = e.value.message
    assert msg.endswith((".", "...", ")")), msg
    with pytest.raises(errors.AncestryError, match="list_models"):
        load_ancestry("timm:vit_no_such_model_224")


def test_errors_carry_structured_fields_and_keep_message_and_remedy():
    e = errors.HubError("boom", "retry", repo_id="a/b", revision="main", status=503, path=None)
    assert (e.repo_id, e.revision, e.status, e.path, e.argument) == ("a/b", "main", 503, None, None)
    assert str(e) == "boom -> retry" and e.fields() == {"repo_id": "a/b", "revision": "main", "status": 503}
    a = errors.ArgumentError("dtype='x' is bad", argument="dtype")
    assert isinstance(a, ValueError) and isinstance(a, errors.WavehubError) and a.argument == "dtype"
    assert issubclass(errors.FitError, errors.BuildError)


@pytest.mark.parametrize("value", ["sixty-four", "qkv=x", "everything=3", "qkv=3"])
def test_bad_templates_string_is_an_argument_error(value):
    from wavehub.extract import parse_templates

    with pytest.raises(errors.ArgumentError) as e:
        parse_templates(value)
    assert e.value.argument == "templates" and "--templates" not in e.value.message
