"""CLI start-up: every fast command against the imports it cannot avoid, in one run.

Each case is a fresh ``python`` process (wall time, spawn to exit), interleaved round-robin, median of
``--repeats``. The baseline is ``python -c "import typer, huggingface_hub"``: the two libraries every wavehub
command needs. Cases:

  python -c pass            the interpreter alone
  import typer+hf           the baseline (ratio 1.0)
  import wavehub            the package (no torch, no timm)
  import torch / timm       what every command paid before timm registration became lazy
  click floor               a two-command click app run with one str argument: the least any click CLI (as
                            wavehub's) pays to parse and dispatch (reported as a second reference)
  wavehub --help, --version, list, info dinov2s-learngene
  offline pull (uncached)   ``wavehub pull deit-learngene --offline`` with an empty HF cache: the error path

Target: every wavehub row <= 3x the baseline (aim: 2x). The warm-up run writes wavehub's bytecode (an installed
package has it), so PYTHONDONTWRITEBYTECODE is dropped from the environment.

    python benchmarks/startup.py [--repeats 7] [--out benchmarks/results/startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "import typer+hf"


FLOOR = "click floor"
_FLOOR = (
    "import click\n@click.group()\ndef app():\n    pass\n@app.command()\n@click.argument('name')\n"
    "@click.option('--shout', is_flag=True)\ndef hello(name, shout):\n    print(name)\n@app.command()\n"
    "def other():\n    pass\napp(['hello', 'x'])"
)


def _cases() -> dict[str, list[str]]:
    py, cli = [sys.executable], [sys.executable, "-m", "wavehub"]
    return {
        "python -c pass": py + ["-c", "pass"],
        BASELINE: py + ["-c", "import typer, huggingface_hub"],
        FLOOR: py + ["-c", _FLOOR],
        "import wavehub": py + ["-c", "import wavehub"],
        "import torch": py + ["-c", "import torch"],
        "import timm": py + ["-c", "import timm"],
        "wavehub --help": cli + ["--help"],
        "wavehub --version": cli + ["--version"],
        "wavehub list": cli + ["list"],
        "wavehub info dinov2s-learngene": cli + ["info", "dinov2s-learngene"],
        "wavehub pull deit-learngene --offline (uncached)": cli + ["pull", "deit-learngene", "--offline"],
    }


def _time(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if p.returncode not in (0, 1) or "Traceback" in p.stderr:
        raise SystemExit(f"{cmd} failed ({p.returncode}):\n{p.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json")
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="wavehub-startup-hf-")  # an empty cache: the offline pull must fail
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "HF_HOME": home,
        "HF_HUB_CACHE": os.path.join(home, "hub"),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "100",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cases = _cases()
    for cmd in cases.values():  # warm the page cache and .pyc files; not counted
        _time(cmd, env)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for name, cmd in cases.items():
            times[name].append(_time(cmd, env))
    base = statistics.median(times[BASELINE])
    floor = statistics.median(times[FLOOR])
    rows = {
        k: {
            "median_s": round(statistics.median(v), 3),
            "ratio": round(statistics.median(v) / base, 2),
            "ratio_to_click_floor": round(statistics.median(v) / floor, 2),
            "min_s": round(min(v), 3),
            "max_s": round(max(v), 3),
        }
        for k, v in times.items()
    }
    result = {
        "command": "python benchmarks/startup.py " + " ".join(sys.argv[1:]),
        "repeats": args.repeats,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "baseline": BASELINE,
        "target_ratio": 3.0,
        "cases": rows,
        "all_within_target": all(r["ratio"] <= 3.0 for k, r in rows.items() if k.startswith("wavehub")),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| case | median s | x {BASELINE} | x {FLOOR} |\n|---|---:|---:|---:|")
    for k, r in rows.items():
        print(f"| {k} | {r['median_s']:.3f} | {r['ratio']:.2f} | {r['ratio_to_click_floor']:.2f} |")
    print(f"all wavehub rows <= 3x: {result['all_within_target']}  (load average {result['loadavg']})")


if __name__ == "__main__":
    main()
