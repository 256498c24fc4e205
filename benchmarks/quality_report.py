"""Tables, CSV and plots for benchmarks/quality.py, from its JSONL runs (no training here)."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import statistics
from pathlib import Path
from typing import Any

__all__ = ["write_all", "summarize", "markdown", "write_csv", "plot_curves", "plot_vs_size", "LABELS"]

LABELS = {
    "random": "random (timm)",
    "select": "Weight Selection",
    "tleg": "TLEG",
    "wave": "WAVE, no bank",
    "wave-bank": "WAVE default (bank)",
    "wave-distilled": "WAVE distilled",
    "wave-fit": "WAVE + fitted scalers",
}
WAVE = ("wave", "wave-bank", "wave-distilled", "wave-fit")
BASELINES = ("random", "select", "tleg")


def _ms(v: list[float]) -> tuple[float, float]:
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def _cell(v: list[float]) -> str:
    if not v:
        return "pending"
    m, s = _ms(v)
    return f"{100 * m:.1f} ± {100 * s:.1f} ({len(v)})" if len(v) > 1 else f"{100 * m:.1f} (1)"


def summarize(runs: list[dict[str, Any]], sizes, datasets, inits) -> dict[str, Any]:
    """Per (dataset, size, init): final accuracies, mean curve, probe, n/a reason, fit accuracy, seconds."""
    out: dict[str, Any] = {}
    latest: dict[str, dict] = {}
    for r in runs:  # a key run twice (two workers, a rerun): the last line wins
        latest[r.get("key", id(r))] = r
    for d in datasets:
        for s in sizes:
            for i in inits:
                rs = [r for r in latest.values() if (r["dataset"], r["size"], r["init"]) == (d, s, i)]
                ft = [
                    r
                    for r in rs
                    if r["kind"] == "finetune" and r["status"] == "ok" and math.isfinite(r["acc"])
                ]
                na = [r for r in rs if r["status"] == "n/a"]
                probe = [r["acc"] for r in rs if r["kind"] == "probe" and r["status"] == "ok"]
                steps = sorted({c["step"] for r in ft for c in r["curve"]})
                curve = []
                for st in steps:
                    v = [c["acc"] for r in ft for c in r["curve"] if c["step"] == st]
                    if len(v) == len(ft):
                        curve.append((st, *_ms(v)))
                out[f"{d}|{s}|{i}"] = {
                    "final": [r["acc"] for r in ft],
                    "curve": curve,
                    "probe": probe,
                    "na": na[0]["reason"] if na else None,
                    "seconds": [r["seconds"] for r in ft],
                    "final_curve": [r.get("acc_curve", r["acc"]) for r in ft],  # the curve's test subset
                    "fit_acc": [r["fit"]["acc"] for r in ft if r.get("fit")],
                    "fit_final": [r["fit"].get("acc_final", r["fit"]["acc"]) for r in ft if r.get("fit")],
                    "fit_steps": ft[0]["fit"]["steps"] if ft and ft[0].get("fit") else 0,
                    "params": (ft or [r for r in rs if r["status"] == "ok"] or [{}])[0].get("params"),
                    "diverged": sum(
                        1
                        for r in rs
                        if r["kind"] == "finetune" and r["status"] == "ok" and not math.isfinite(r["acc"])
                    ),
                }
    return out


def _test_sets(recipe: dict) -> str:
    """Which test images each reported accuracy is measured on (recipes before ``final_test`` used n_test)."""
    n, final = recipe["n_test"], recipe.get("final_test", 0)
    if final > n:
        return (
            f"Final accuracies and the scaler-fit-alone accuracy are on {'the full test set' if final >= 10000 else f'{final} test images'}; "
            f"the curve points (and the steps-to-random table) on a fixed class-balanced subset of {n} test "
            "images (the budget does not allow the full set at every evaluation point)."
        )
    return f"Test accuracy on a fixed class-balanced subset of {n} test images."


def steps_to_reach(curve: list[tuple[int, float, float]], target: float) -> int | None:
    """First evaluated fine-tune step whose mean accuracy reaches ``target`` (None: not within the budget)."""
    for st, m, _ in curve:
        if m >= target - 1e-12:
            return st
    return None


def _na(reason: str) -> str:
    return "n/a — " + reason.split(":")[0].split(" (")[0][:70]


def markdown(
    summary, *, recipe, sizes, datasets, inits, seeds, distilled, family_params, learngene_params, runs
) -> str:
    ok = [r for r in runs if r.get("status") == "ok"]
    auto = sorted({r.get("autocast", "?") for r in ok}) or ["?"]
    cpu = _cpu()
    total = sum(r.get("seconds", 0) for r in ok)
    L = [
        f"Recipe `{json.dumps(recipe, sort_keys=True)}`",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores shared with other jobs; torch {ok[0]['torch'] if ok else '?'}, "
        f"autocast {', '.join(auto)}, {ok[0].get('threads', '?') if ok else '?'} thread(s) per worker. "
        f"{len(ok)} runs finished, {total / 60:.0f} CPU-worker-minutes in runs. {_test_sets(recipe)} "
        f"Training on a fixed class-balanced subset of {recipe['n_train']} images.",
        "",
    ]
    dist = distilled.get("path")
    L.append(
        f"WAVE distilled: {dist + ' (sha256 ' + str(distilled.get('sha256'))[:12] + ')' if dist else 'n/a — ' + distilled.get('why', 'not built')}"
    )
    L.append("")

    def label(i: str) -> str:  # the fitted variant's column says what its extra compute was
        return f"{LABELS[i]} ({recipe['fit_steps']} fit steps)" if i == "wave-fit" else LABELS[i]

    head = "| dataset | target | params | " + " | ".join(label(i) for i in inits) + " |"
    sep = "|---|---|---|" + "---|" * len(inits)

    def cell(d, s, i, field):
        x = summary[f"{d}|{s}|{i}"]
        if i == "wave-distilled" and not dist:
            return "n/a — not built"
        if x["na"]:
            return _na(x["na"])
        return _cell(x[field])

    L += [f"### Fine-tune: test accuracy % after {recipe['steps']} steps (mean ± std (seeds))", "", head, sep]
    for d in datasets:
        for s in sizes:
            p = family_params.get(s)
            L.append(
                f"| {d} | {s} | {p / 1e6:.1f} M | " + " | ".join(cell(d, s, i, "final") for i in inits) + " |"
            )
    L += [
        "",
        f"### Frozen-feature linear probe: test accuracy % ({recipe['probe_train']} train / "
        f"{recipe['probe_test']} test images, logistic regression on pre-logit features, seed 0)",
        "",
        head,
        sep,
    ]
    for d in datasets:
        for s in sizes:
            L.append(
                f"| {d} | {s} | {family_params.get(s, 0) / 1e6:.1f} M | "
                + " | ".join(cell(d, s, i, "probe") for i in inits)
                + " |"
            )
    if "wave-fit" in inits:
        L += [
            "",
            f"WAVE + fitted scalers before fine-tuning (scaler fit alone, {recipe['fit_steps']} steps of "
            f"{recipe['batch']}): "
            + ", ".join(
                f"{d} {s} {_cell(summary[f'{d}|{s}|wave-fit']['fit_final'])}"
                for d in datasets
                for s in sizes
                if summary[f"{d}|{s}|wave-fit"]["fit_final"]
            ),
        ]
    # steps to reach random init's final accuracy
    L += [
        "",
        "### Fine-tune steps to reach random init's final mean accuracy (first evaluation point at or above it; "
        f"evaluated at fine-tune steps {_eval_steps(recipe)}; `>N` = not within the budget). Compute "
        "accounting: a scaler-fit step costs ≈ one full fine-tune step (benchmarks/README §3), so the "
        f"fitted variant's {recipe['fit_steps']} fit steps are added, and the ratio is total steps / random's "
        f"{recipe['steps']} (its fit accuracy counts as fine-tune step 0)",
        "",
        "| dataset | target | random final % (curve subset) | "
        + " | ".join(label(i) for i in inits if i != "random")
        + " |",
        "|---|---|---|" + "---|" * (len(inits) - 1),
    ]
    for d in datasets:
        for s in sizes:
            rnd = summary.get(f"{d}|{s}|random")  # a side experiment may leave random out
            if not rnd or not rnd["final_curve"]:
                continue
            target = statistics.mean(rnd["final_curve"])  # on the curve's test subset, like the curves
            cells = []
            for i in inits:
                if i == "random":
                    continue
                x = summary[f"{d}|{s}|{i}"]
                if (i == "wave-distilled" and not dist) or x["na"]:
                    cells.append("n/a")
                elif not x["curve"]:
                    cells.append("pending")
                else:
                    curve = x["curve"]
                    if x["fit_acc"]:
                        curve = [(0, *_ms(x["fit_acc"]))] + curve
                    k = steps_to_reach(curve, target)
                    fs = x["fit_steps"]
                    if k is None:
                        cells.append(f">{recipe['steps']}" + (f" (+{fs} fit)" if fs else ""))
                    elif fs:
                        cells.append(f"{k} + {fs} fit = {(k + fs) / recipe['steps']:.2f}×")
                    else:
                        cells.append(f"{k} = {k / recipe['steps']:.2f}×")
            L.append(f"| {d} | {s} | {100 * target:.1f} | " + " | ".join(cells) + " |")
    # verdict
    L += [
        "",
        "### Best WAVE variant vs best applicable baseline (final fine-tune accuracy)",
        "",
        "| dataset | target | best WAVE | best baseline | Δ points | beyond seed std? |",
        "|---|---|---|---|---|---|",
    ]
    for d in datasets:
        for s in sizes:
            w = _best(summary, d, s, [i for i in inits if i in WAVE])
            b = _best(summary, d, s, [i for i in inits if i in BASELINES])
            if not w or not b:
                continue
            (wi, wm, ws), (bi, bm, bs) = w, b
            delta = 100 * (wm - bm)
            n = min(len(summary[f"{d}|{s}|{wi}"]["final"]), len(summary[f"{d}|{s}|{bi}"]["final"]))
            beyond = ("yes" if abs(wm - bm) > max(ws, bs) else "no") if n > 1 else "n/a (1 seed)"
            L.append(
                f"| {d} | {s} | {LABELS[wi]} {100 * wm:.1f} ± {100 * ws:.1f} | {LABELS[bi]} {100 * bm:.1f} ± "
                f"{100 * bs:.1f} | {delta:+.1f} | {beyond} |"
            )
    # storage: stored learngene parameters vs the whole target family
    fam = sum(family_params.values())
    L += [
        "",
        f"### Storage: stored learngene parameters vs the target family "
        f"({', '.join(sizes)}: {fam / 1e6:.1f} M parameters in total)",
        "",
        "| method | stored params | sizes it serves here | family params / stored |",
        "|---|---|---|---|",
    ]
    for i in inits:
        n = learngene_params.get(i)
        if i == "random" or n is None:
            continue
        served = [s for s in sizes if not summary[f"{datasets[0]}|{s}|{i}"]["na"]]
        fam_i = sum(family_params[s] for s in served)
        L.append(f"| {LABELS[i]} | {n / 1e6:.2f} M | {', '.join(served) or '-'} | {fam_i / n:.1f}× |")
    return "\n".join(L) + "\n"


def _eval_steps(recipe) -> str:
    return ", ".join(
        str(s)
        for s in sorted(
            {max(1, min(recipe["steps"], round(recipe["steps"] * f))) for f in recipe["eval_fracs"]}
        )
    )


def _best(summary, d, s, inits):
    best = None
    for i in inits:
        v = summary[f"{d}|{s}|{i}"]["final"]
        if v:
            m, sd = _ms(v)
            if best is None or m > best[1]:
                best = (i, m, sd)
    return best


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_csv(runs, path: Path) -> None:
    cols = [
        "kind",
        "dataset",
        "size",
        "init",
        "seed",
        "status",
        "acc",
        "reason",
        "seconds",
        "params",
        "fit_steps",
        "fit_acc",
        "curve",
        "autocast",
        "recipe_key",
        "learngene_sha256",
    ]
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in runs:
            fit = r.get("fit") or {}
            w.writerow(
                [
                    r["kind"],
                    r["dataset"],
                    r["size"],
                    r["init"],
                    r["seed"],
                    r["status"],
                    r.get("acc", ""),
                    r.get("reason", ""),
                    r.get("seconds", ""),
                    r.get("params", ""),
                    fit.get("steps", ""),
                    fit.get("acc", ""),
                    ";".join(f"{c['step']}:{c['acc']:.4f}" for c in r.get("curve", [])),
                    r.get("autocast", ""),
                    r["recipe_key"],
                    (r.get("learngene") or {}).get("sha256") or "",
                ]
            )
    os.replace(tmp, path)


_COLORS = {
    "random": "#777777",
    "select": "#1f77b4",
    "tleg": "#2ca02c",
    "wave": "#ff7f0e",
    "wave-bank": "#8c564b",
    "wave-distilled": "#d62728",
    "wave-fit": "#9467bd",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(summary, path: Path, sizes, datasets, inits, recipe) -> None:
    """Accuracy vs fine-tune step, one panel per (dataset, size), mean ± std band per init."""
    plt = _plt()
    fig, axes = plt.subplots(
        len(datasets),
        len(sizes),
        figsize=(max(9.0, 3.2 * len(sizes)), 2.9 * len(datasets) + 1),
        squeeze=False,
        sharex=True,
    )
    for r, d in enumerate(datasets):
        for c, s in enumerate(sizes):
            ax = axes[r][c]
            for i in inits:
                x = summary[f"{d}|{s}|{i}"]
                if not x["curve"]:
                    continue
                st = [0] + [p[0] for p in x["curve"]] if x["fit_acc"] else [p[0] for p in x["curve"]]
                m = [p[1] for p in x["curve"]]
                sd = [p[2] for p in x["curve"]]
                if x["fit_acc"]:
                    fm, fs = _ms(x["fit_acc"])
                    m, sd = [fm] + m, [fs] + sd
                m100 = [100 * v for v in m]
                ax.plot(st, m100, "o-", ms=3, color=_COLORS[i], label=LABELS[i])
                ax.fill_between(
                    st,
                    [100 * (a - b) for a, b in zip(m, sd, strict=True)],
                    [100 * (a + b) for a, b in zip(m, sd, strict=True)],
                    color=_COLORS[i],
                    alpha=0.15,
                    lw=0,
                )
            ax.set_title(f"{d} {s}", fontsize=9)
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylabel("test accuracy %")
            if r == len(datasets) - 1:
                ax.set_xlabel("fine-tune step")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 6 if len(sizes) > 2 else 3), fontsize=8
    )
    fig.suptitle(
        f"Fine-tune curves ({recipe['steps']} steps × batch {recipe['batch']}, lr {recipe['lr']}, "
        f"{recipe['img_size']} px; mean ± std over seeds)\nWAVE + fitted scalers starts (step 0) at its "
        f"accuracy after {recipe['fit_steps']} scaler-fit steps (≈ full steps; not on this axis)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_vs_size(summary, path: Path, sizes, datasets, inits, family_params) -> None:
    """Final fine-tune accuracy (top) and linear-probe accuracy (bottom) vs target size (sorted by params)."""
    plt = _plt()
    order = sorted(sizes, key=lambda s: family_params.get(s, 0))
    fig, axes = plt.subplots(2, len(datasets), figsize=(max(9.0, 5.2 * len(datasets)), 7.0), squeeze=False)
    for c, d in enumerate(datasets):
        for r, field in enumerate(("final", "probe")):
            ax = axes[r][c]
            for k, i in enumerate(inits):
                xs, ms, ss = [], [], []
                for j, s in enumerate(order):
                    v = summary[f"{d}|{s}|{i}"][field]
                    if v:
                        m, sd = _ms(v)
                        xs.append(j + (k - len(inits) / 2) * 0.05)
                        ms.append(100 * m)
                        ss.append(100 * sd)
                if xs:
                    ax.errorbar(xs, ms, yerr=ss, fmt="o-", ms=4, capsize=2, color=_COLORS[i], label=LABELS[i])
            ax.set_xlim(-0.5, len(order) - 0.5)
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels([f"{s}\n{family_params.get(s, 0) / 1e6:.1f}M" for s in order], fontsize=8)
            ax.set_title(f"{d}: {'fine-tuned' if field == 'final' else 'linear probe (frozen)'}", fontsize=9)
            ax.set_ylabel("test accuracy %")
            ax.grid(alpha=0.3)
    h, lab = axes[0][0].get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", ncol=min(len(lab), 6 if len(datasets) > 1 else 3), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(
    runs, stem: Path, *, recipe, sizes, datasets, inits, seeds, distilled, family_params, learngene_params
) -> str:
    """``<stem>.md``, ``.csv``, ``_summary.json``, ``_curves.png`` and ``_vs_size.png``; returns the markdown."""
    summary = summarize(runs, sizes, datasets, inits)
    md = markdown(
        summary,
        recipe=recipe,
        sizes=sizes,
        datasets=datasets,
        inits=inits,
        seeds=seeds,
        distilled=distilled,
        family_params=family_params,
        learngene_params=learngene_params,
        runs=runs,
    )
    doc = f"# Initialization quality: every init method, {len(sizes)} target sizes, {seeds} seed(s)\n\n{md}"
    tmp = stem.with_name(stem.name + f".md.tmp{os.getpid()}")
    tmp.write_text(doc)
    os.replace(tmp, stem.with_suffix(".md"))
    write_csv(runs, stem.with_suffix(".csv"))
    js = {
        "recipe": recipe,
        "distilled": distilled,
        "family_params": family_params,
        "learngene_params": learngene_params,
        "summary": summary,
    }
    tmp = stem.with_name(stem.name + f"_summary.json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(js, indent=1, default=str) + "\n")
    os.replace(tmp, stem.with_name(stem.name + "_summary.json"))
    if any(x["curve"] for x in summary.values()):
        plot_curves(summary, stem.with_name(stem.name + "_curves.png"), sizes, datasets, inits, recipe)
    if any(x["final"] or x["probe"] for x in summary.values()):
        plot_vs_size(
            summary, stem.with_name(stem.name + "_vs_size.png"), sizes, datasets, inits, family_params
        )
    return doc
