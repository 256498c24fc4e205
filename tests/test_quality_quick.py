"""benchmarks/quality.py end to end in its ``--quick`` mode (the one a reviewer runs): real DINOv2-S learngenes,
a real Fashion-MNIST subset, one size, one seed (about 80 s on 2 cores).

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
INITS = ("random", "select", "tleg", "wave", "wave-bank", "wave-fit")
CHANCE = 0.1


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    env = os.environ | {"WAVEHUB_QUALITY_RESULTS": str(out)}
    cmd = [sys.executable, str(BENCH), "--quick", "--distilled", "none"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    lines_after_first = (out / "quality_quick.jsonl").read_text().splitlines()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    return out, first.stdout, second.stdout, lines_after_first


def test_every_init_learns_above_chance(quick):
    out, _, _, _ = quick
    runs = [json.loads(x) for x in (out / "quality_quick.jsonl").read_text().splitlines()]
    required = {"kind", "dataset", "size", "init", "seed", "recipe", "recipe_key", "key", "status"}
    for r in runs:
        assert required <= r.keys(), r.keys()
        assert r["status"] == "ok", r
        assert r["size"] == "6x384" and r["dataset"] == "fashion-mnist"
    for init in INITS:
        ft = [r for r in runs if r["init"] == init and r["kind"] == "finetune"]
        pr = [r for r in runs if r["init"] == init and r["kind"] == "probe"]
        assert len(ft) == 1 and len(pr) == 1, init
        curve = ft[0]["curve"]
        assert [c["step"] for c in curve] == [8, 16, 24], curve
        assert all(math.isfinite(c["acc"]) and math.isfinite(c["loss"]) for c in curve), curve
        assert ft[0]["acc_curve"] == curve[-1]["acc"]  # the curve's 500-image subset
        for acc in (
            curve[-1]["acc"],
            ft[0]["acc"],
            pr[0]["acc"],
        ):  # 500 / 1,000 test images: chance 10 ± 1.3 %
            assert CHANCE + 0.05 < acc <= 1.0, (init, acc)
        assert ft[0]["params"] > 1_000_000 and ft[0]["seconds"] > 0
    fit = next(r for r in runs if r["init"] == "wave-fit" and r["kind"] == "finetune")["fit"]
    assert fit["steps"] == 12 and fit["trained_parameters"] > 0 and 0.0 <= fit["acc"] <= 1.0
    assert 0.0 <= fit["acc_final"] <= 1.0  # fit alone, on the final (1,000-image) test set too
    assert {r["learngene"]["name"] for r in runs if r["init"] in ("wave", "wave-fit")} == {
        "dinov2s-learngene"
    }


def test_report_files_and_na(quick):
    out, first, _, _ = quick
    md = (out / "quality_quick.md").read_text()
    for label in (
        "random (timm)",
        "Weight Selection",
        "TLEG",
        "WAVE, no bank",
        "WAVE default (bank)",
        "WAVE + fitted scalers",
    ):
        assert label in md
    assert md.count("n/a — not built") >= 2  # the distilled column in both tables, not silently dropped
    assert "family params / stored" in md and "Fine-tune steps to reach random" in md
    rows = list(csv.DictReader((out / "quality_quick.csv").open()))
    assert len(rows) == 2 * len(INITS) and {r["init"] for r in rows} == set(INITS)
    summary = json.loads((out / "quality_quick_summary.json").read_text())
    assert summary["family_params"] == {"6x384": int(rows[0]["params"])}
    for png in ("quality_quick_curves.png", "quality_quick_vs_size.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "12 jobs, 0 already done" in first


def test_rerun_resumes_without_repeating(quick):
    out, _, second, before = quick
    assert "12 jobs, 12 already done" in second
    assert (out / "quality_quick.jsonl").read_text().splitlines() == before
