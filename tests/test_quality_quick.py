"""benchmarks/quality.py end to end at its ``--tiny`` setting: real DINOv2-S learngenes, real MNIST subsets.

Checks the output schema (JSONL runs, CSV, markdown, PNG plots), that every init that can serve the size
produced a finite accuracy above chance (fine-tune and linear probe), that an unavailable distilled learngene
is reported as n/a rather than dropped, and that a rerun resumes (repeats no finished run).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
INITS = ("random", "select", "tleg", "wave", "wave-fit")
CHANCE = 0.1


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    env = os.environ | {"WAVEHUB_QUALITY_RESULTS": str(out)}
    cmd = [sys.executable, str(BENCH), "--tiny", "--distilled", "none"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    lines_after_first = (out / "quality_tiny.jsonl").read_text().splitlines()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    return out, first.stdout, second.stdout, lines_after_first


def test_every_init_learns_above_chance(tiny):
    out, _, _, _ = tiny
    runs = [json.loads(x) for x in (out / "quality_tiny.jsonl").read_text().splitlines()]
    required = {"kind", "dataset", "size", "init", "seed", "recipe", "recipe_key", "key", "status"}
    for r in runs:
        assert required <= r.keys(), r.keys()
        assert r["status"] == "ok", r
        assert r["size"] == "2x384" and r["dataset"] == "mnist"
    for init in INITS:
        ft = [r for r in runs if r["init"] == init and r["kind"] == "finetune"]
        pr = [r for r in runs if r["init"] == init and r["kind"] == "probe"]
        assert len(ft) == 1 and len(pr) == 1, init
        curve = ft[0]["curve"]
        assert [c["step"] for c in curve] == [12, 24], curve
        assert all(math.isfinite(c["acc"]) and math.isfinite(c["loss"]) for c in curve), curve
        assert ft[0]["acc_curve"] == curve[-1]["acc"]     # the curve's 200-image subset
        for acc in (curve[-1]["acc"], ft[0]["acc"], pr[0]["acc"]):   # 200 / 400 test images: chance 10 ± 2 %
            assert CHANCE + 0.05 < acc <= 1.0, (init, acc)
        assert ft[0]["params"] > 1_000_000 and ft[0]["seconds"] > 0
    fit = next(r for r in runs if r["init"] == "wave-fit" and r["kind"] == "finetune")["fit"]
    assert fit["steps"] == 12 and fit["trained_parameters"] > 0 and 0.0 <= fit["acc"] <= 1.0
    assert 0.0 <= fit["acc_final"] <= 1.0            # fit alone, on the final (400-image) test set too
    assert {r["learngene"]["name"] for r in runs if r["init"] in ("wave", "wave-fit")} == {"dinov2s-learngene"}


def test_report_files_and_na(tiny):
    out, first, _, _ = tiny
    md = (out / "quality_tiny.md").read_text()
    for label in ("random (timm)", "Weight Selection", "TLEG", "WAVE extracted", "WAVE + fitted scalers"):
        assert label in md
    assert md.count("n/a — not built") >= 2     # the distilled column in both tables, not silently dropped
    assert "family params / stored" in md and "Fine-tune steps to reach random" in md
    rows = list(csv.DictReader((out / "quality_tiny.csv").open()))
    assert len(rows) == 2 * len(INITS) and {r["init"] for r in rows} == set(INITS)
    summary = json.loads((out / "quality_tiny_summary.json").read_text())
    assert summary["family_params"] == {"2x384": int(rows[0]["params"])}
    for png in ("quality_tiny_curves.png", "quality_tiny_vs_size.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "10 jobs, 0 already done" in first


def test_rerun_resumes_without_repeating(tiny):
    out, _, second, before = tiny
    assert "10 jobs, 10 already done" in second
    assert (out / "quality_tiny.jsonl").read_text().splitlines() == before
