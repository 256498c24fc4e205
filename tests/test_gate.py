"""The quality gate refuses a learngene below timm's random init, and `wavehub push` needs a passing record."""

from __future__ import annotations

import json

import pytest
import torch
from _tiny import tiny_wave

from wavehub import errors
from wavehub.artifact import TENSOR_FILE, save_learngene, sha256_file
from wavehub.cli import main
from wavehub.gate import RECORD_FILE, require_passing, run_gate

FAST = dict(
    sizes=((2, 128),), dataset="digits", img_size=32, n_train=200, n_test=100, steps=8, progress=False
)
CLI_FAST = [
    "--sizes",
    "2x128",
    "--data",
    "digits",
    "--img-size",
    "32",
    "--n-train",
    "200",
    "--n-test",
    "100",
    "--steps",
    "8",
]


def _collapsed(tmp_path):
    """Templates scaled to zero: every token is its position embedding, the features carry no image."""
    lg = tiny_wave(name="collapsed")
    for k in list(lg.tensors):
        if k.startswith("templates."):
            lg.tensors[k] = torch.zeros_like(lg.tensors[k])
    return save_learngene(lg, tmp_path / "collapsed")


def test_gate_refuses_a_collapsed_learngene(tmp_path):
    folder = _collapsed(tmp_path)
    res = run_gate(str(folder), **FAST)
    s = res.sizes[0]
    assert not res.passed and not s.passed
    assert s.probe < s.probe_random  # features of a collapsed learngene are worse than random init's
    assert res.sha256 == sha256_file(folder / TENSOR_FILE)


def test_cli_gate_exit_1_then_push_refused_unless_forced(capsys, tmp_path, hub):
    folder = _collapsed(tmp_path)
    rc = main(["gate", str(folder), *CLI_FAST])
    out, err = capsys.readouterr()
    assert rc == 1 and "below timm's random init" in err and "Traceback" not in out + err
    assert "| 2x128 |" in out and "FAIL" in out
    rec = json.loads((folder / RECORD_FILE).read_text())
    assert rec["passed"] is False and rec["sha256"] == sha256_file(folder / TENSOR_FILE)
    rc = main(["push", str(folder), "me/collapsed"])
    assert rc == 1 and "failed the quality gate" in capsys.readouterr().err
    assert "me/collapsed" not in hub.repos  # refused before anything was sent
    assert main(["push", str(folder), "me/collapsed", "--force"]) == 0
    assert "me/collapsed" in hub.repos


def test_push_needs_a_record_for_this_exact_file(capsys, tmp_path, hub):
    folder = save_learngene(tiny_wave(name="tiny"), tmp_path / "tiny")
    rc = main(["push", str(folder), "me/tiny"])
    err = capsys.readouterr().err
    assert rc == 1 and "no quality-gate record" in err and "wavehub gate" in err
    # a generous margin passes the gate and writes the record push accepts
    assert main(["gate", str(folder), *CLI_FAST, "--margin", "1.0"]) == 0
    assert "gate passed" in capsys.readouterr().out
    assert require_passing(folder, sha256_file(folder / TENSOR_FILE))["passed"] is True
    with pytest.raises(errors.ArtifactError, match="different learngene"):
        require_passing(folder, "0" * 64)
    assert main(["push", str(folder), "me/tiny"]) == 0 and "me/tiny" in hub.repos


def test_bad_sizes_are_a_user_error(capsys, tmp_path):
    folder = save_learngene(tiny_wave(name="tiny"), tmp_path / "tiny")
    assert main(["gate", str(folder), "--sizes", "big"]) == 1
    assert "DEPTHxWIDTH" in capsys.readouterr().err
