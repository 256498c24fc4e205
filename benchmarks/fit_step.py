"""One scaler-fitting step vs one full-parameter training step of the same stock timm ViT, same batch.

Scaler step = compose every templated weight (one GEMM per type for all layers) + forward + backward + AdamW on
the scalers/norms/head (``wavehub.fit.training_step`` on a ``WaveModel``). Full step = the same function on the
stock ``VisionTransformer`` with AdamW over every parameter, twice: the *ordinary* step a timm training script
takes (``timm.optim.create_optimizer_v2(model, "adamw")``: torch's default AdamW implementation, decay off for
norms and biases) and the *fastest* one (fused AdamW, one kernel for all parameters). All use the device's
autocast dtype; the scaler step uses fused AdamW. Time: median of interleaved repeats in one process, as wall time and as process CPU time (with
``--threads 1`` the CPU time is unaffected by other jobs on a shared machine; wall time is not). Peak memory: CUDA ``max_memory_allocated``; on CPU
the peak RSS (``ru_maxrss``) of a fresh subprocess per variant, also reported as the growth over the RSS the
process had before the model was built.

    python benchmarks/fit_step.py            # ViT-S 12x384 @112 px, 4x192 @56 px and @224 px, batch 64
    python benchmarks/fit_step.py --quick    # 4x192 @56 px, batch 32
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
CONFIGS = {
    "vit-s-12x384-112px": dict(depth=12, width=384, img_size=112, batch=64),
    "vit-s-12x384-112px-b16": dict(depth=12, width=384, img_size=112, batch=16),  # the optimizer's share x4
    "4x192-56px": dict(depth=4, width=192, img_size=56, batch=64),
    "4x192-224px": dict(depth=4, width=192, img_size=224, batch=64),  # `wavehub fit`'s default input size
    "quick-4x192-56px": dict(depth=4, width=192, img_size=56, batch=32),
}
LEARNGENE = ["dinov2s-learngene"]  # the one being measured (a list: set per learngene by main)
PRECISION = ["auto"]  # --precision; "auto" measures the CPU once per process (can flip on a loaded machine)


def _setup(cfg: dict, variant: str, device: torch.device):
    """(model, optimizer, trained params, batch, spec) for one variant, everything seeded."""
    import wavehub.api as api
    from wavehub.fit import FitConfig, prepare
    from wavehub.materialize import build_model, resolve_spec

    lg = api.load_learngene(LEARNGENE[0], progress=False)
    spec = resolve_spec(lg, cfg["depth"], cfg["width"], num_classes=10, img_size=cfg["img_size"])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(cfg["batch"], 3, spec.img_size, spec.img_size, generator=g).to(device)
    y = torch.randint(0, 10, (cfg["batch"],), generator=g).to(device)
    if variant == "scaler":
        model, opt, params, n = prepare(lg, spec, device, train=FitConfig.train)
    elif variant == "full-timm":
        from timm.optim import create_optimizer_v2

        model = build_model(lg, spec, device=device).train()
        params = [p for p in model.parameters()]
        opt = create_optimizer_v2(model, "adamw", lr=FitConfig.lr, weight_decay=0.05)
        n = sum(p.numel() for p in params)
    else:
        model = build_model(lg, spec, device=device).train()
        params = [p for p in model.parameters()]
        opt = torch.optim.AdamW(params, lr=FitConfig.lr, fused=True)
        n = sum(p.numel() for p in params)
    return model, opt, params, x, y, n


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _peak_mb() -> float:
    """Peak RSS since the last reset (VmHWM), else ru_maxrss (peak since the process started)."""
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(config: str, variant: str, device: str, steps: int) -> dict:
    """Runs in a fresh process: peak RSS while building one variant, then while taking ``steps`` steps."""
    import gc

    from wavehub.device import autocast_dtype
    from wavehub.fit import training_step

    dev = torch.device(device)
    amp = autocast_dtype(dev, PRECISION[0])
    import wavehub.api as api

    api.load_learngene(LEARNGENE[0], progress=False)  # both variants read the learngene: not counted
    torch.ones(8, 8) @ torch.ones(8, 8)
    gc.collect()
    reset = _reset_peak()
    base = _status_mb("VmRSS") or _peak_mb()
    model, opt, params, x, y, _ = _setup(CONFIGS[config], variant, dev)
    gc.collect()
    build_peak = _peak_mb()
    _reset_peak()
    ready = _status_mb("VmRSS") or _peak_mb()
    for _ in range(steps):
        training_step(model, opt, params, x, y, amp, 1.0)
    peak = _peak_mb()
    return {
        "rss_base_mb": base,
        "build_peak_mb": build_peak,
        "rss_ready_mb": ready,
        "rss_peak_mb": peak,
        "train_growth_mb": peak - ready,
        "growth_mb": peak - base,
        "peak_reset": reset,
    }


def _memory(config: str, variant: str, device: torch.device, steps: int = 3) -> dict:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        from wavehub.device import autocast_dtype
        from wavehub.fit import training_step

        model, opt, params, x, y, _ = _setup(CONFIGS[config], variant, device)
        for _ in range(steps):
            training_step(model, opt, params, x, y, autocast_dtype(device, PRECISION[0]), 1.0)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        del model, opt, params
        return {"cuda_peak_mb": peak}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            config,
            variant,
            str(device),
            str(steps),
            "--threads",
            str(torch.get_num_threads()),
            "--precision",
            PRECISION[0],
            "--learngene",
            LEARNGENE[0],
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_config(config: str, device: torch.device, repeats: int, warmup: int = 2) -> dict:
    from wavehub.device import autocast_dtype
    from wavehub.fit import training_step

    amp = autocast_dtype(device, PRECISION[0])
    cfg = CONFIGS[config]
    variants = {v: _setup(cfg, v, device) for v in ("scaler", "full-timm", "full")}
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}  # process CPU time: robust to a shared machine
    for m, o, p, x, y, _ in variants.values():
        for _ in range(warmup):
            training_step(m, o, p, x, y, amp, 1.0)
    for _ in range(repeats):  # interleaved: both variants see the same machine load
        for v, (m, o, p, x, y, _) in variants.items():
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            training_step(m, o, p, x, y, amp, 1.0)
            _sync(device)
            times[v].append(time.perf_counter() - t0)
            cpu[v].append(time.process_time() - c0)
    # where the scaler step's extra time goes: composing all weights once (forward only, under autocast)
    wm = variants["scaler"][0]
    comp = []
    for _ in range(max(3, repeats // 2)):
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast(device.type, dtype=amp) if amp else torch.enable_grad():
            wm.composed()
        _sync(device)
        comp.append(time.perf_counter() - t0)
    med = {v: statistics.median(t) for v, t in times.items()}
    cmed = {v: statistics.median(t) for v, t in cpu.items()}
    cmin = {v: min(t) for v, t in cpu.items()}  # noise only adds time: the minimum is the cost (as timeit)
    return {
        "config": config,
        **cfg,
        "autocast": str(amp).replace("torch.", "") if amp else "fp32",
        "scaler_step_s": med["scaler"],
        "full_step_s": med["full"],
        "ratio": med["scaler"] / med["full"],
        "scaler_step_cpu_s": cmed["scaler"],
        "full_step_cpu_s": cmed["full"],
        "cpu_ratio": cmed["scaler"] / cmed["full"],
        "scaler_step_cpu_all_s": cpu["scaler"],
        "full_step_cpu_all_s": cpu["full"],
        "timm_step_s": med["full-timm"],
        "timm_step_cpu_s": cmed["full-timm"],
        "ratio_vs_timm": med["scaler"] / med["full-timm"],
        "cpu_ratio_vs_timm": cmed["scaler"] / cmed["full-timm"],
        "timm_step_cpu_all_s": cpu["full-timm"],
        "timm_step_all_s": times["full-timm"],
        "cpu_min_s": cmin,
        "cpu_min_ratio_vs_timm": cmin["scaler"] / cmin["full-timm"],
        "cpu_min_ratio": cmin["scaler"] / cmin["full"],
        "compose_s": statistics.median(comp),
        "paired_vs_timm": paired_ratio(cpu["scaler"], cpu["full-timm"]),
        "paired_vs_fused": paired_ratio(cpu["scaler"], cpu["full"]),
        "scaler_step_all_s": times["scaler"],
        "full_step_all_s": times["full"],
        "trained_params_scaler": variants["scaler"][5],
        "trained_params_full": variants["full"][5],
    }


def paired_ratio(a: list[float], b: list[float], level: float = 0.95) -> dict:
    """Median of the per-repeat ratios a[i] / b[i] (interleaved repeats share the machine's state, so pairing
    cancels slow drifts) with a distribution-free confidence interval for that median: the order statistics
    whose ranks a Binomial(n, 1/2) puts ``level`` between (no normality assumed)."""
    from math import comb

    r = sorted(x / y for x, y in zip(a, b, strict=True))
    n = len(r)
    cdf, k = 0.0, 0
    while k < n:  # largest k with P(Binomial(n, 1/2) <= k - 1) <= (1 - level) / 2
        nxt = cdf + comb(n, k) / 2**n
        if nxt > (1 - level) / 2:
            break
        cdf, k = nxt, k + 1
    lo, hi = (r[k - 1], r[n - k]) if k >= 1 else (r[0], r[-1])
    return {
        "median": statistics.median(r),
        "ci_low": lo,
        "ci_high": hi,
        "level": level if k >= 1 else None,
        "n": n,
        "below_1": sum(x < 1.0 for x in r),
    }


def profile_compose(config: str, steps: int = 5) -> dict:
    """Where the scaler step's composition time goes: ``torch.profiler`` over ``steps`` forward + backward passes
    of ``WaveModel.composed()`` alone (under autocast, gradient of ones), ms per step by op."""
    from torch.profiler import profile

    from wavehub.device import autocast_dtype

    dev = torch.device("cpu")
    amp = autocast_dtype(dev, PRECISION[0])
    wm = _setup(CONFIGS[config], "scaler", dev)[0]

    def once() -> None:
        with torch.autocast("cpu", dtype=amp) if amp else torch.enable_grad():
            c = wm.composed()
        torch.autograd.backward(list(c.values()), [torch.ones_like(v) for v in c.values()])

    for _ in range(2):
        once()
    with profile() as prof:
        for _ in range(steps):
            once()
    ops = {e.key: e.self_cpu_time_total / 1e3 / steps for e in prof.key_averages()}
    return {
        "config": config,
        "learngene": LEARNGENE[0],
        "autocast": str(amp),
        "gemm_ms": ops.get("aten::mm", 0.0),
        "copy_ms": ops.get("aten::copy_", 0.0),
        "stack_ms": ops.get("aten::cat", 0.0) + ops.get("aten::stack", 0.0),
        "ones_fill_ms": ops.get("aten::fill_", 0.0),
        "total_ms": sum(ops.values()),
    }


def _paired(p: dict) -> str:
    span = "" if p["level"] else " (min-max: too few repeats for 95 %)"
    return f"{p['median']:.3f}x [{p['ci_low']:.3f}, {p['ci_high']:.3f}]{span}, {p['below_1']}/{p['n']}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one small config, fewer repeats (< 3 min)")
    ap.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (1 on a busy shared CPU)"
    )
    ap.add_argument("--precision", default="auto", help="auto | bf16 | fp32")
    ap.add_argument(
        "--learngene",
        nargs="+",
        default=["dinov2s-learngene", "extract:16"],
        help="zoo names, folders, or extract:N (a data-free N-template extraction made on the fly); "
        "the scaler step composes N multiply-adds per weight each way",
    )
    ap.add_argument(
        "--profile-compose",
        action="store_true",
        help="only profile the composition's forward + backward (first learngene, ViT-S config)",
    )
    ap.add_argument(
        "--child", nargs=4, metavar=("CONFIG", "VARIANT", "DEVICE", "STEPS"), help=argparse.SUPPRESS
    )
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    PRECISION[0] = a.precision
    if a.child:
        LEARNGENE[0] = a.learngene[0]
        print(json.dumps(child(a.child[0], a.child[1], a.child[2], int(a.child[3]))))
        return 0
    if a.profile_compose:
        from materialize import resolve_learngene

        with tempfile.TemporaryDirectory() as tmp:
            LEARNGENE[0] = resolve_learngene(a.learngene[0], Path(tmp))[0]
            print(json.dumps(profile_compose("vit-s-12x384-112px"), indent=1))
        return 0
    from wavehub.device import resolve_device

    dev = resolve_device(a.device)
    torch.manual_seed(0)
    configs = (
        ["quick-4x192-56px"]
        if a.quick
        else ["vit-s-12x384-112px", "vit-s-12x384-112px-b16", "4x192-56px", "4x192-224px"]
    )
    repeats = a.repeats or (5 if a.quick else 31)
    from materialize import resolve_learngene  # benchmarks/ is on sys.path when run as a script

    rows = []
    tmp = tempfile.TemporaryDirectory()
    for spec in a.learngene:
        LEARNGENE[0], label = resolve_learngene(spec, Path(tmp.name))
        for c in configs:
            r = time_config(c, dev, repeats) | {"learngene": label}
            r["memory_scaler"] = _memory(c, "scaler", dev)
            r["memory_full"] = _memory(c, "full", dev)
            rows.append(r)
            print(
                f"{label} {c}: cpu scaler {r['scaler_step_cpu_s']:.3f}s, full (timm optimizer) "
                f"{r['timm_step_cpu_s']:.3f}s ratio {r['cpu_ratio_vs_timm']:.2f}, full (fused AdamW) "
                f"{r['full_step_cpu_s']:.3f}s ratio {r['cpu_ratio']:.2f}",
                flush=True,
            )
    tmp.cleanup()
    key = "cuda_peak_mb" if dev.type == "cuda" else "rss_peak_mb"
    lines = [
        "| learngene | model | batch | autocast | trained params (scaler / full) | CPU ms: scaler / ordinary full "
        "(timm optimizer) / fused full (medians) | **ratio vs ordinary** (CPU median, CPU min, wall) "
        "| ratio vs fused (CPU median, CPU min, wall) | paired CPU ratio vs ordinary: median [95 % CI], "
        "repeats below 1 "
        "| compose fwd | peak RSS scaler | peak RSS full | training growth scaler / full |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms, mf = r["memory_scaler"], r["memory_full"]
        growth = (
            f"{ms['train_growth_mb']:.0f} / {mf['train_growth_mb']:.0f} MB"
            if "train_growth_mb" in ms
            else "-"
        )
        lines.append(
            f"| {r.get('learngene', '-')} | {r['config']} ({r['depth']}x{r['width']}, {r['img_size']} px) | {r['batch']} "
            f"| {r['autocast']} "
            f"| {r['trained_params_scaler']:,} / {r['trained_params_full']:,} "
            f"| {r['scaler_step_cpu_s'] * 1e3:.0f} / {r['timm_step_cpu_s'] * 1e3:.0f} / {r['full_step_cpu_s'] * 1e3:.0f} "
            f"| **{r['cpu_ratio_vs_timm']:.3f}x**, {r['cpu_min_ratio_vs_timm']:.3f}x, {r['ratio_vs_timm']:.3f}x "
            f"| {r['cpu_ratio']:.3f}x, {r['cpu_min_ratio']:.3f}x, {r['ratio']:.3f}x "
            f"| {_paired(r['paired_vs_timm'])} "
            f"| {r['compose_s'] * 1e3:.1f} ms "
            f"| {ms[key]:.0f} MB | {mf[key]:.0f} MB | {growth} |"
        )
    table = "\n".join(lines)
    print(table)
    meta = {
        "device": str(dev),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "repeats": repeats,
        "learngene": a.learngene,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "fit_step_quick" if a.quick else "fit_step"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(f"# Scaler step vs full step ({meta['date']}, {dev})\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
