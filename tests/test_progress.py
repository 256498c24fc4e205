"""Long commands show progress on a terminal (and only there): extract, build's set-up and pull --out.

Each runs the real CLI in a pseudo-terminal, as a user would see it; the same commands in a pipe print no bar.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from _tiny import tiny_timm_vit, tiny_wave

import wavehub
from wavehub.artifact import save_learngene
from wavehub.export import save_timm

ROOT = str(Path(wavehub.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def ancestry(tmp_path_factory):
    m = tiny_timm_vit(0)
    m.pretrained_cfg = {"mean": (0.5,) * 3, "std": (0.5,) * 3, "input_size": (3, 32, 32), "num_classes": 0}
    return "local-dir:" + str(save_timm(m, tmp_path_factory.mktemp("anc") / "tiny"))


def _cli(args: list[str], tty: bool) -> tuple[int, str]:
    env = os.environ | {"PYTHONPATH": ROOT, "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "wavehub", *map(str, args)]
    if not tty:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        return p.returncode, p.stdout + p.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal 120 columns wide
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    return p.wait(timeout=600), b"".join(chunks).decode(errors="replace")


def _from_tiny(command: str, ancestry: str, *flags: object) -> list[object]:
    """``command`` (extract or build) on the tiny ancestry: 32 px, 4 templates, and these flags."""
    return [command, "--ancestry", ancestry, "--img-size", "32", "--templates", "4", *flags]


def test_extract_shows_its_stages(ancestry, tmp_path):
    args = _from_tiny("extract", ancestry)
    rc, text = _cli(args + ["--out", tmp_path / "a"], tty=True)
    assert rc == 0, text
    assert "extract wave:" in text and "load ancestry" in text and "decompose (NKP-SVD)" in text, text
    rc, text = _cli(args + ["--out", tmp_path / "b"], tty=False)
    assert rc == 0 and "extract wave:" not in text, text


def test_build_shows_its_set_up(ancestry, tmp_path):
    args = _from_tiny("build", ancestry, "--steps", "1", "--batch-size", "4", "--holdout", "4")
    rc, text = _cli(args + ["--out", tmp_path / "lg"], tty=True)
    assert rc == 0, text
    assert (
        "build wave set-up:" in text and "initial learngene (extraction)" in text and "aux model" in text
    ), text


def test_pull_out_shows_the_export(hub, tmp_path):
    hub.create_repo("wavehub/tiny")
    hub.commit("wavehub/tiny", save_learngene(tiny_wave(), tmp_path / "lg"))
    rc, text = _cli(
        ["pull", "hf-hub:wavehub/tiny", "--depth", "2", "--width", "128", "--out", tmp_path / "m"], tty=True
    )
    assert rc == 0, text
    assert "export timm:" in text and "materialize" in text and "write" in text, text


def test_a_failure_erases_the_bar(tmp_path):
    rc, text = _cli(
        ["extract", "--ancestry", "local-dir:" + str(tmp_path / "none"), "--out", tmp_path / "x"], tty=True
    )
    assert rc == 1 and "error: could not load ancestry" in text and "Traceback" not in text, text
