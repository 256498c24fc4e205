"""Every speed ratio the project promises, in one command and one table.

Runs, one after another in fresh processes, ``materialize.py`` (materialize vs timm random init vs checkpoint
load vs the clone floor; import time), ``fit_step.py`` (one scaler-fitting step vs one full training step) and
``pull.py`` (pull vs a bare ``hf_hub_download`` from the fake Hub), then reads their JSON results and prints
one markdown table of ratios against each target. Ratios, not absolute times, are the result: each one is
measured against its baseline in the same run.

    python benchmarks/perf.py [--quick] [--threads 1] [--only materialize,fit_step,pull] [--no-run]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SCRIPTS = ("materialize", "fit_step", "pull")


def _run(name: str, quick: bool, threads: int | None) -> Path:
    out = RESULTS / (f"{name}_quick.json" if quick else f"{name}.json")
    cmd = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if quick else [])
    cmd += ["--threads", str(threads)] if threads else []
    if name == "materialize":
        cmd += ["--out", str(out)]
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    print(f"  ({time.time() - t0:.0f} s)", flush=True)
    return out


def _rows(name: str, data: dict) -> list[tuple[str, str, str]]:
    """(what, measured, target) rows from one benchmark's JSON."""
    rows = []
    if name == "materialize":
        for t in data["targets"]:
            size = f"depth {t['depth']}, width {t['width']}" + (f", {t['label']}" if "label" in t else "")
            rows.append(
                (
                    f"materialize {size}: timm random init / wavehub",
                    f"{t['timm_init_over_wavehub']:.2f}x",
                    ">= 3x",
                )
            )
            rows.append(
                (
                    f"materialize {size}: wavehub / floor (meta build + clone)",
                    f"{t['ratio_vs_floor']:.2f}x",
                    "<= 1.5x",
                )
            )
        rows.append(("`import wavehub` / `import timm`", f"{data['import']['ratio']:.2f}x", "<= 1.3x"))
    elif name == "fit_step":
        for r in data["rows"]:
            cfg = r["config"] + (f", {r['learngene']}" if "learngene" in r else "")
            if "paired_vs_timm" in r:
                p = r["paired_vs_timm"]
                span = "95 % CI" if p.get("level") else "min-max"
                rows.append(
                    (
                        f"scaler step / ordinary full step (timm optimizer), {cfg}, CPU, median of "
                        f"{p['n']} paired repeats [{span}]",
                        f"{p['median']:.3f}x [{p['ci_low']:.3f}, {p['ci_high']:.3f}]",
                        "<= 1.0x",
                    )
                )
            elif "cpu_ratio_vs_timm" in r:
                rows.append(
                    (
                        f"scaler step / ordinary full step (timm optimizer), {cfg}, CPU",
                        f"{r['cpu_ratio_vs_timm']:.3f}x",
                        "<= 1.0x",
                    )
                )
            rows.append((f"scaler step / fused-AdamW full step, {cfg}, CPU", f"{r['cpu_ratio']:.3f}x", "-"))
            ms, mf = r.get("memory_scaler", {}), r.get("memory_full", {})
            if ms and mf:
                rows.append(
                    (
                        f"peak RSS scaler / full, {cfg}",
                        f"{ms['rss_peak_mb'] / mf['rss_peak_mb']:.2f}x",
                        "<= 1.0x",
                    )
                )
    elif name == "pull":
        for label, sc in data.get("scenarios", {"loopback": data}).items():
            rows.append(
                (f"pull / bare hf_hub_download ({label})", f"{sc['ratio_pull_vs_bare']:.2f}x", "<= 1.1x")
            )
            rows.append(
                (
                    f"pull / (bare + one sha256, the verifying floor) ({label})",
                    f"{sc['ratio_pull_vs_bare_sha256']:.2f}x",
                    "-",
                )
            )
            rows.append(
                (
                    f"cold pull + create_model / warm create_model ({label})",
                    f"{sc['ratio_cold_vs_warm_create']:.2f}x",
                    "-",
                )
            )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="each benchmark's --quick mode")
    ap.add_argument(
        "--only", default=",".join(SCRIPTS), help="comma-separated subset of " + ", ".join(SCRIPTS)
    )
    ap.add_argument("--no-run", action="store_true", help="only tabulate the existing results")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for every benchmark (1 on a machine shared with other jobs)",
    )
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(SCRIPTS)
    if unknown:
        ap.error(f"unknown benchmark(s) {sorted(unknown)}")
    table = []
    for name in names:
        path = RESULTS / (f"{name}_quick.json" if args.quick else f"{name}.json")
        if not args.no_run:
            path = _run(name, args.quick, args.threads)
        table += _rows(name, json.loads(path.read_text()))
    lines = ["| ratio | measured | target |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in table]
    text = "\n".join(lines)
    print("\n" + text)
    (RESULTS / ("perf_quick.md" if args.quick else "perf.md")).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
