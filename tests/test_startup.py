"""A CLI that answers at once: ``--help``, ``--version``, ``list``, ``info`` and an offline failure import neither
torch nor timm (which take seconds), nor typer/pydantic (a CLI framework's cost), nor huggingface_hub where the
answer does not need it, while ``timm.create_model("wavehub_<name>")`` still works after
``import wavehub`` (the entrypoints are registered the moment timm is imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import wavehub

ROOT = str(Path(wavehub.__file__).resolve().parents[1])

_PROBE = """
import json, sys
from wavehub.cli import main
rc = main({args!r})
sys.stdout.flush()
heavy = ("torch", "timm", "typer", "pydantic", "huggingface_hub")
print("\\nPROBE", json.dumps({{"rc": rc, "heavy": sorted(m for m in heavy if m in sys.modules)}}))
"""


def _probe(args: list[str], tmp_path: Path) -> dict:
    env = os.environ | {
        "PYTHONPATH": ROOT,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "COLUMNS": "200",
    }
    p = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=args)], capture_output=True, text=True, env=env, timeout=300
    )
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("PROBE ")]
    assert line, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    return json.loads(line[-1][6:]) | {"out": p.stdout, "err": p.stderr}


@pytest.mark.parametrize(
    "args,rc,allowed",
    [
        (["--help"], 0, []),
        (["--version"], 0, []),
        (["list"], 0, []),
        (["info", "dinov2s-learngene"], 0, []),
        (["pull", "deit-learngene", "--offline"], 1, []),
        (
            ["pull", "hf-hub:nobody/nothing", "--offline"],
            1,
            ["huggingface_hub"],
        ),  # asks its cache what is there
    ],
    ids=["help", "version", "list", "info", "offline-pull-zoo", "offline-pull-repo"],
)
def test_fast_paths_import_neither_torch_nor_timm(args, rc, allowed, tmp_path):
    r = _probe(args, tmp_path)
    assert r["rc"] == rc, r
    assert [m for m in r["heavy"] if m not in allowed] == [], f"{args} imported {r['heavy']}"


def test_version(tmp_path):
    r = _probe(["--version"], tmp_path)
    assert r["out"].startswith(f"wavehub {wavehub.__version__}")


@pytest.mark.parametrize("order", ["wavehub-first", "timm-first"])
def test_timm_registration_without_an_eager_timm_import(order, tmp_path):
    first, second = ("wavehub", "timm") if order == "wavehub-first" else ("timm", "wavehub")
    code = (
        f"import sys; import {first}; import {second}\n"
        "m = timm.create_model('wavehub_dinov2s_learngene', pretrained=True, depth=2, width=128, num_classes=3)\n"
        "print(type(m).__name__, len(m.blocks), m.embed_dim, len(timm.list_models('wavehub_*')) >= 1)\n"
    )
    if order == "wavehub-first":
        code = (
            "import sys; import wavehub; assert 'timm' not in sys.modules and 'torch' not in sys.modules\n"
            + code
        )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONPATH": ROOT},
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["VisionTransformer", "2", "128", "True"]


def test_ctrl_c_exits_130(capsys, monkeypatch):
    from wavehub import cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("wavehub.hub.pull", interrupted)
    rc = cli.main(["pull", "dinov2s-learngene"])
    out, err = capsys.readouterr()
    assert rc == 130 and err.strip() == "interrupted" and out == ""


def test_unexpected_errors_are_one_line(capsys, monkeypatch):
    from wavehub import cli

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("wavehub.hub.pull", boom)
    rc = cli.main(["pull", "dinov2s-learngene"])
    out, err = capsys.readouterr()
    assert (
        rc == 1 and err.startswith("error: OSError") and "Traceback" not in err and len(err.splitlines()) == 2
    )
