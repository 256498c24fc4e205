"""Pull overhead against the bare ``huggingface_hub`` client, in one run against the same local fake Hub.

The fake Hub (tests/hubserver.py) runs as a separate process on 127.0.0.1, serving a WAVE learngene of
realistic size (~8 MB, DINOv2-S shape, random templates) at ``wavehub/deit-learngene@v1.0``, and a zoo card
(``WAVEHUB_ZOO``) that publishes ``deit-learngene`` there for this process (the package's card is a recipe). Every cold trial gets a fresh, empty HF cache. Measured, interleaved
round-robin, median of ``--repeats``:

  bare         ``hf_hub_download`` of the same three files (config.json, learngene.safetensors, README.md)
  bare+sha256  the same plus one sha256 of the tensor file: the floor for any pull that verifies content
  wavehub pull ``wavehub.hub.pull("hf-hub:wavehub/deit-learngene@v1.0")``: + tree listing, path safety check,
               sha256 verification against the blob name, config and zoo card
  cold create  pull + ``wavehub.create_model("deit-learngene", depth, width)`` on an empty cache
  warm create  ``wavehub.create_model("deit-learngene", depth, width)`` with the learngene cached on disk
               (wavehub's in-memory learngene memo cleared, so it re-reads and re-verifies the file)

Target: wavehub pull / bare <= 1.1.

    python benchmarks/pull.py [--repeats 11] [--depth 12 --width 384] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPO, REV, FILES = "wavehub/deit-learngene", "v1.0", ("config.json", "learngene.safetensors", "README.md")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_learngene(out: Path, templates: int) -> Path:
    """A random WAVE learngene of the bundled DINOv2-S learngene's shape (what an extraction of that ancestry
    weighs on disk)."""
    import torch

    from wavehub.api import known_architecture
    from wavehub.artifact import Learngene, save_learngene
    from wavehub.config import AuxArch
    from wavehub.methods import wave

    arch = known_architecture("dinov2s-learngene")
    t, wcfg = wave.random_learngene(
        AuxArch.from_dict(arch),
        template_size=64,
        templates=templates,
        generator=torch.Generator().manual_seed(0),
    )
    cfg = {
        "name": "deit-learngene",
        "aux": arch,
        "wave": wcfg,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "ancestry": {"id": "random", "license": "apache-2.0"},
    }
    return save_learngene(Learngene("wave", cfg, t), out)


def _published_card(cards: Path, folder: Path) -> None:
    """The package's deit-learngene is an unpublished recipe: publish it, for this process, at the fake Hub."""
    from wavehub.artifact import read_config

    sha = read_config(folder).sha256
    cards.mkdir(parents=True, exist_ok=True)
    (cards / "deit-learngene.md").write_text(
        "---\nlibrary_name: wavehub\nwavehub:\n  name: deit-learngene\n  status: published\n"
        f"  repo_id: {REPO}\n  revision: {REV}\n  sha256: {sha}\n  method: wave\n  ancestry: random\n---\n",
        encoding="utf-8",
    )
    os.environ["WAVEHUB_ZOO"] = str(cards)


def _start_hub(port: int, folder: Path, mbps: float = 0, latency_ms: float = 0) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "hubserver.py"),
            "--port",
            str(port),
            "--seed",
            f"{folder}={REPO}@{REV}",
            "--throttle-mbps",
            str(mbps),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("http://"):
        proc.kill()
        raise SystemExit(f"fake Hub did not start: {line!r}")
    return proc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--templates", type=int, default=32, help="templates per weight type (32 -> ~8 MB)")
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--quick", action="store_true", help="5 repeats, a depth-4 target")
    ap.add_argument(
        "--link",
        default="200:5",
        help="the second scenario's link, MB/s:round-trip ms "
        "(a fast datacenter link to a CDN); 'none' runs loopback only",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/pull.json, pull_quick.json with --quick)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.depth = 5, 4
    if args.out is None:
        args.out = HERE / "results" / ("pull_quick.json" if args.quick else "pull.json")
    args.repeats = max(args.repeats, 5)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    scenarios = [("loopback", 0.0, 0.0)]
    if args.link != "none":
        mbps, _, rtt = args.link.partition(":")
        scenarios.append((f"link {float(mbps):g} MB/s, {float(rtt or 0):g} ms", float(mbps), float(rtt or 0)))
    work = Path(tempfile.mkdtemp(prefix="wavehub-bench-pull-"))
    port = _free_port()
    # the HF_* variables are read when huggingface_hub is imported: set them before anything imports it
    os.environ.update(
        {
            "HF_ENDPOINT": f"http://127.0.0.1:{port}",
            "HF_HOME": str(work / "hf-home"),
            "HF_HUB_CACHE": str(work / "hf-home" / "hub"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
    )
    for k in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(k, None)
    folder = _make_learngene(work / "learngene", args.templates)
    _published_card(work / "cards", folder)
    size = (folder / "learngene.safetensors").stat().st_size
    runs, tables = {}, []
    try:
        for label, mbps, rtt in scenarios:
            proc = _start_hub(port, folder, mbps, rtt)  # same port: huggingface_hub read HF_ENDPOINT once
            try:
                runs[label] = _run(args, work, size, label)
            finally:
                proc.terminate()
                proc.wait(10)
            tables.append(runs[label].pop("table"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res = {"benchmark": "pull", "scenarios": runs, "table": "\n\n".join(tables)}
    res.update({k: runs["loopback"][k] for k in ("ratio_pull_vs_bare", "ratio_pull_vs_bare_sha256")})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(res.pop("table") + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md').name}")
    return 0


def _run(args, work: Path, size: int, label: str) -> dict:
    import torch
    from huggingface_hub import constants, hf_hub_download

    import wavehub
    from wavehub import api, hub
    from wavehub.artifact import sha256_file

    n = 0
    tag = "".join(c if c.isalnum() else "-" for c in label)

    def fresh_cache() -> None:
        nonlocal n
        n += 1
        constants.HF_HUB_CACHE = str(work / f"{tag}-cache-{n}")  # read at call time by hf_hub_download

    def bare():
        fresh_cache()
        return [hf_hub_download(REPO, f, revision=REV) for f in FILES]

    def bare_sha():  # the floor for any verifying pull: the same downloads plus one sha256 of the tensor file
        paths = bare()
        sha256_file(paths[1])
        return paths

    def ours():
        fresh_cache()
        return hub.pull(f"hf-hub:{REPO}@{REV}", progress=False)

    def cold_create():
        fresh_cache()
        api._LOADED.clear()
        return wavehub.create_model("deit-learngene", depth=args.depth, width=args.width, progress=False)

    warm_cache = None

    def warm_create():
        constants.HF_HUB_CACHE = warm_cache
        api._LOADED.clear()
        return wavehub.create_model("deit-learngene", depth=args.depth, width=args.width, progress=False)

    # warm-up (imports, first connection), and the cache the warm runs use
    bare(), ours(), cold_create()
    warm_cache = constants.HF_HUB_CACHE
    order = [
        ("bare", bare),
        ("bare+sha256", bare_sha),
        ("wavehub pull", ours),
        ("cold create", cold_create),
        ("warm create", warm_create),
    ]
    times: dict[str, list[float]] = {k: [] for k, _ in order}
    cpu: dict[str, list[float]] = {k: [] for k, _ in order}
    for _ in range(args.repeats):
        for k, fn in order:
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
            del out
            if k != "warm create":
                shutil.rmtree(work / f"{tag}-cache-{n}", ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    res = {
        "scenario": label,
        "quick": args.quick,
        "repeats": args.repeats,
        "file_bytes": size,
        "target": {"depth": args.depth, "width": args.width},
        "torch_threads": torch.get_num_threads(),
        "median_s": med,
        "all_s": times,
        "median_client_cpu_s": med_cpu,
        "all_client_cpu_s": cpu,
        "ratio_pull_vs_bare": med["wavehub pull"] / med["bare"],
        "ratio_pull_vs_bare_client_cpu": med_cpu["wavehub pull"] / med_cpu["bare"],
        "ratio_pull_vs_bare_sha256": med["wavehub pull"] / med["bare+sha256"],
        "ratio_cold_vs_warm_create": med["cold create"] / med["warm create"],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "huggingface_hub": __import__("huggingface_hub").__version__,
        "wavehub": wavehub.__version__,
    }
    lines: list[str] = []
    lines.append(
        f"**{label}**: learngene {size / 1e6:.1f} MB from a local fake Hub (separate process), median "
        f"of {args.repeats}, interleaved; torch threads {torch.get_num_threads()}\n"
    )
    lines.append("| step | median wall ms | ratio | median client CPU ms | CPU ratio |")
    lines.append("|---|---:|---:|---:|---:|")
    rows = [
        (f"bare hf_hub_download x{len(FILES)} (cold)", "bare", "bare"),
        ("bare + one sha256 of the tensor file", "bare+sha256", "bare"),
        ("wavehub pull (cold)", "wavehub pull", "bare"),
        ("wavehub pull vs bare + sha256", "wavehub pull", "bare+sha256"),
        (f"warm create_model d{args.depth} w{args.width}", "warm create", "warm create"),
        ("cold pull + create_model", "cold create", "warm create"),
    ]
    for label, k, base in rows:
        lines.append(
            f"| {label} | {med[k] * 1e3:.1f} | {med[k] / med[base]:.2f} x {base} | "
            f"{med_cpu[k] * 1e3:.1f} | {med_cpu[k] / med_cpu[base]:.2f} |"
        )
    print("\n" + "\n".join(lines))
    res["table"] = "\n".join(lines)
    return res


if __name__ == "__main__":
    sys.exit(main())
