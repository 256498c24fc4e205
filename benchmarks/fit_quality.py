"""Does fitting the scalers help? Fashion-MNIST, bundled ``dinov2s-learngene``, several target sizes, 3 seeds.

For each (size, seed), on the same class-balanced training subset and the same held-out test images:
  * ``fit``        accuracy after scaler fitting alone (templates frozen; scalers + norms + head train)
  * ``ft``         a short full fine-tune of the unfitted model (resampled scalers, fresh head)
  * ``fit+ft``     the same fine-tune recipe starting from the fitted model
  * ``ft-long``    the unfitted model fine-tuned for fit + ft steps (compute-matched control: a scaler step
                   costs about one full step, see fit_step.py)
``--phase sweep`` first varies lr, what trains (incl. head-only / norms+head controls) and the init on the
smallest size with one seed: the "why" when fitting does not help. Results are written after every run and
reused on restart (delete the JSON to start over).

    nohup python benchmarks/fit_quality.py --phase sweep > /tmp/fitq_sweep.log 2>&1 &
    nohup python benchmarks/fit_quality.py --phase main  > /tmp/fitq_main.log 2>&1 &
    python benchmarks/fit_quality.py --quick          # one size, one seed, short runs (< 3 min)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
LEARNGENE = "dinov2s-learngene"
SIZES = {"4x192": (4, 192), "6x384": (6, 384)}
PRECISION = ["auto"]  # set from --precision: one autocast choice for every run of an invocation


def _data(img_size: int, n_train: int, n_test: int, seed: int):
    import wavehub.api as api
    from wavehub.data import load_dataset
    from wavehub.fit import normalization
    from wavehub.materialize import resolve_spec

    lg = api.load_learngene(LEARNGENE, progress=False)
    mean, std = normalization(lg, resolve_spec(lg, 1, 64, num_classes=10, img_size=img_size))
    tr = load_dataset(
        "fashion-mnist", "train", img_size=img_size, mean=mean, std=std, subset=n_train, seed=seed
    )
    te = load_dataset("fashion-mnist", "test", img_size=img_size, mean=mean, std=std, subset=n_test, seed=0)
    return lg, tr, te


def finetune(
    model, train_ds, *, steps: int, seed: int, lr: float, batch_size: int, weight_decay: float = 0.05
):
    """All parameters, AdamW + warmup/cosine, the device's autocast: the same recipe for every start point."""
    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype
    from wavehub.fit import batches, training_step, warmup_cosine

    dev = torch.device("cpu")
    amp = autocast_dtype(dev, PRECISION[0])
    model = model.to(dev).train()
    params = [p for p in model.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, 0.1))
    loader = make_loader(train_ds, batch_size, shuffle=True, seed=seed + 1000, drop_last=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for x, y in batches(loader, steps):
            loss = training_step(model, opt, params, x, y, amp, 1.0)
            sched.step()
    if not math.isfinite(float(loss)):
        raise RuntimeError("fine-tune diverged")
    return model


def accuracy(model, test_ds) -> float:
    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype
    from wavehub.fit import evaluate

    return evaluate(
        model,
        make_loader(test_ds, 256, shuffle=False),
        torch.device("cpu"),
        autocast_dtype("cpu", PRECISION[0]),
    )


def _fit(lg, spec, tr, te, seed, steps, batch, **opts):
    """One fit of the sweep: its common options as a FitConfig, the variant's own (lr, train, ...) as ``opts``."""
    from wavehub.fit import FitConfig, fit_scalers

    cfg = FitConfig(steps=steps, seed=seed, batch_size=batch, precision=PRECISION[0], progress=False)
    t0 = time.perf_counter()
    m = fit_scalers(lg, spec, tr, config=cfg, device="cpu", eval_data=te, **opts)
    return m, time.perf_counter() - t0


def run_sweep(a, store: dict) -> None:
    import wavehub
    from wavehub.materialize import resolve_spec

    lg, tr, te = _data(a.img_size, a.n_train, a.n_test, 0)
    d, w = SIZES[a.sweep_size]
    spec = resolve_spec(lg, d, w, num_classes=10, img_size=a.img_size)
    variants = {
        "lr3e-4": dict(lr=3e-4),
        "lr1e-3": dict(lr=1e-3),
        "lr3e-3": dict(lr=3e-3),
        "lr1e-2": dict(lr=1e-2),
        "lr3e-3 scalers only (head lr 3e-3)": dict(lr=3e-3, train=("scalers", "head")),
        "control: head only": dict(lr=3e-3, train=("head",)),
        "control: norms+head": dict(lr=3e-3, train=("norms", "head")),
        "lr3e-3 +pos_embed": dict(lr=3e-3, train=("scalers", "norms", "head", "pos_embed")),
        "lr3e-3 init=random": dict(lr=3e-3, init="random"),
        "lr3e-3 head lr 1e-2": dict(lr={"scalers": 3e-3, "norms": 3e-3, "head": 1e-2}),
        "lr3e-3 distill=aux": dict(lr=3e-3, distill="aux"),
        "lr1e-2 +pos_embed distill=aux": dict(
            lr=1e-2, distill="aux", train=("scalers", "norms", "head", "pos_embed")
        ),
        "lr1e-2 +pos_embed (default)": dict(lr=1e-2, train=("scalers", "norms", "head", "pos_embed")),
        "lr3e-2 +pos_embed": dict(lr=3e-2, train=("scalers", "norms", "head", "pos_embed")),
        "lr1e-2 +pos_embed init=random": dict(
            lr=1e-2, init="random", train=("scalers", "norms", "head", "pos_embed")
        ),
    }
    for name, opts in variants.items():
        key = f"sweep|{a.sweep_size}|{name}|{a.fit_steps}"
        if key in store or (a.variants and name not in a.variants):
            continue
        m, sec = _fit(lg, spec, tr, te, 0, a.fit_steps, a.batch, **opts)
        store[key] = {
            "phase": "sweep",
            "size": a.sweep_size,
            "variant": name,
            "acc": m.wavehub_fit["held_out_accuracy"],
            "final_loss": m.wavehub_fit["final_loss"],
            "seconds": sec,
            "trained_parameters": m.wavehub_fit["trained_parameters"],
        }
        _save(a, store)
        print(
            f"{key}: acc {store[key]['acc']:.4f} loss {store[key]['final_loss']:.3f} ({sec:.0f}s)", flush=True
        )
    key = f"sweep|{a.sweep_size}|no fit (random head)|0"
    if key not in store:
        m = wavehub.create_model(lg, d, w, num_classes=10, img_size=a.img_size)
        store[key] = {
            "phase": "sweep",
            "size": a.sweep_size,
            "variant": "no fit (random head)",
            "acc": accuracy(m, te),
            "final_loss": None,
            "seconds": 0,
            "trained_parameters": 0,
        }
        _save(a, store)


def run_main(a, store: dict) -> None:
    import wavehub
    from wavehub.materialize import resolve_spec

    fit_opts = {"lr": a.fit_lr}  # everything else: wavehub.fit.FitConfig
    for size in a.sizes:
        d, w = SIZES[size]
        for seed in a.seed_list if a.seed_list is not None else range(a.seeds):
            lg, tr, te = _data(a.img_size, a.n_train, a.n_test, seed)
            spec = resolve_spec(lg, d, w, num_classes=10, img_size=a.img_size)
            base = f"main|{size}{a.tag}|{seed}"
            todo = [k for k in a.arms if f"{base}|{k}" not in store]
            if not todo:
                continue
            t0 = time.perf_counter()
            if "fit" in todo or "fit+ft" in todo:
                fitted, sec = _fit(lg, spec, tr, te, seed, a.fit_steps, a.batch, **fit_opts)
                store[f"{base}|fit"] = {
                    "acc": fitted.wavehub_fit["held_out_accuracy"],
                    "seconds": sec,
                    "final_loss": fitted.wavehub_fit["final_loss"],
                }
                t = time.perf_counter()
                ft = finetune(fitted, tr, steps=a.ft_steps, seed=seed, lr=a.ft_lr, batch_size=a.batch)
                store[f"{base}|fit+ft"] = {"acc": accuracy(ft, te), "seconds": time.perf_counter() - t}
                _save(a, store)
            for k, steps in (("ft", a.ft_steps), ("ft-long", a.ft_steps + a.fit_steps)):
                if k in todo:
                    t = time.perf_counter()
                    m = wavehub.create_model(lg, d, w, num_classes=10, img_size=a.img_size, seed=seed)
                    m = finetune(m, tr, steps=steps, seed=seed, lr=a.ft_lr, batch_size=a.batch)
                    store[f"{base}|{k}"] = {"acc": accuracy(m, te), "seconds": time.perf_counter() - t}
                    _save(a, store)
            print(
                f"{base}: "
                + ", ".join(f"{k} {store[f'{base}|{k}']['acc']:.4f}" for k in a.arms)
                + f" ({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )


def _ms(v: list[float]) -> str:
    if not v:
        return "-"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{100 * statistics.mean(v):.2f} ± {100 * sd:.2f}"


def table(a, store: dict) -> str:
    lines = []
    sweep = [r for k, r in store.items() if k.startswith("sweep|")]
    if sweep:
        m = json.loads(_path(a, "sweep").read_text())["meta"] if _path(a, "sweep").is_file() else vars(a)
        lines += [
            f"### Sweep: scaler fitting alone, {m['sweep_size']}, seed 0, {m['fit_steps']} steps of "
            f"{m['batch']}, {m['n_train']} train / {m['n_test']} test images, {m['img_size']} px",
            "",
            "| variant | trained params | held-out acc % | final loss |",
            "|---|---|---|---|",
        ]
        for r in sweep:
            loss = f"{r['final_loss']:.3f}" if r["final_loss"] is not None else "-"
            lines.append(f"| {r['variant']} | {r['trained_parameters']:,} | {100 * r['acc']:.2f} | {loss} |")
        lines.append("")
    sizes = sorted({k.split("|")[1] for k in store if k.startswith("main|")})
    if sizes:
        lines += [
            f"### Main: Fashion-MNIST test accuracy %, mean ± std over seeds ({a.img_size} px, patch 14, "
            f"{a.n_train} train images, fit {a.fit_steps} / fine-tune {a.ft_steps} steps of {a.batch})",
            "",
            "| target | seeds | fit alone | ft (no fit) | fit + ft | ft-long (no fit, compute-matched) |",
            "|---|---|---|---|---|---|",
        ]
        for s in sizes:
            acc = {
                k: [
                    r["acc"]
                    for kk, r in store.items()
                    if kk.startswith(f"main|{s}|") and kk.endswith(f"|{k}")
                ]
                for k in ("fit", "ft", "fit+ft", "ft-long")
            }
            lines.append(
                f"| {s} | {len(acc['fit'])} | {_ms(acc['fit'])} | {_ms(acc['ft'])} | "
                f"{_ms(acc['fit+ft'])} | {_ms(acc['ft-long'])} |"
            )
    return "\n".join(lines)


def _path(a, phase: str) -> Path:
    return RESULTS / f"fit_quality{'_quick' if a.quick else ''}_{phase}.json"


def _load(a) -> dict:
    store: dict = {}
    for phase in ("sweep", "main"):
        if _path(a, phase).is_file():
            store.update(json.loads(_path(a, phase).read_text())["runs"])
    return store


def _save(a, store: dict) -> None:
    """Each phase has its own file, so a sweep and a main run can go on at the same time."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in vars(a).items()} | {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    phase = "sweep" if a.phase == "sweep" else "main"
    runs = {}
    if _path(a, phase).is_file():  # merge: one process per size may write the same file
        runs = json.loads(_path(a, phase).read_text())["runs"]
    runs.update({k: v for k, v in store.items() if k.startswith(phase + "|")})
    store.update(runs)
    tmp = _path(a, phase).with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    os.replace(tmp, _path(a, phase))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--phase", choices=("sweep", "main"), default="main")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES))
    ap.add_argument("--sweep-size", default="4x192")
    ap.add_argument(
        "--variants", type=lambda v: v.split(","), default=None, help="sweep: only these variants"
    )
    ap.add_argument(
        "--arms",
        type=lambda v: v.split(","),
        default=["fit", "fit+ft", "ft", "ft-long"],
        help="comma-separated subset of fit,fit+ft,ft,ft-long",
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--tag", default="", help="suffix for the size key of runs with non-default lr (e.g. @ft-lr1e-4)"
    )
    ap.add_argument(
        "--seed-list",
        type=int,
        nargs="+",
        default=None,
        help="run only these seeds (e.g. one process per seed; results merge into one file)",
    )
    ap.add_argument("--img-size", type=int, default=56)
    ap.add_argument("--n-train", type=int, default=2000, help="class-balanced training subset")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--fit-steps", type=int, default=50)
    ap.add_argument("--ft-steps", type=int, default=50)
    ap.add_argument("--fit-lr", type=float, default=None, help="default: wavehub.fit.FitConfig.lr")
    ap.add_argument("--ft-lr", type=float, default=2e-4)
    ap.add_argument("--precision", default="auto", help="auto | bf16 | fp32 (auto measures the CPU once)")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (1 on a busy shared CPU)"
    )
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes, a.seeds, a.n_train, a.n_test, a.fit_steps, a.ft_steps = ["4x192"], 1, 1000, 500, 25, 25
        a.phase = "main"
    if a.fit_lr is None:
        from wavehub.fit import FitConfig

        a.fit_lr = FitConfig.lr
    if a.threads:
        torch.set_num_threads(a.threads)
    PRECISION[0] = a.precision
    store = _load(a)
    t0 = time.perf_counter()
    if a.phase == "sweep":
        run_sweep(a, store)
    else:
        run_main(a, store)
    md = table(a, store)
    print(md)
    (RESULTS / f"fit_quality{'_quick' if a.quick else ''}.md").write_text(
        f"# Scaler fitting on Fashion-MNIST ({LEARNGENE})\n\n{md}\n\n(total {time.perf_counter() - t0:.0f} s this "
        f"invocation, {torch.get_num_threads()} threads)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
