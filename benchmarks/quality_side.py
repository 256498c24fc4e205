"""The side experiments of benchmarks/README.md §7 on the fitted WAVE model (quality.py's recipe, data and seed 0).

    python benchmarks/quality_side.py groups  --dataset fashion-mnist --size 8x384   # which tensors cause the dip
    python benchmarks/quality_side.py recipes --dataset mnist --size 8x384           # LLRD / frozen patch_embed
    python benchmarks/quality_side.py fewfit  --dataset fashion-mnist --size 4x192   # 10 / 20 fit steps
    python benchmarks/quality_side.py kd      --dataset fashion-mnist --size 8x384   # fit with DINOv2 as teacher

``groups``: the fitted model fine-tuned with only one group of tensors (plus the head) trainable, and with the
whole model at other learning rates / warmup; accuracy at steps 4 / 8 / 10 / 30. ``recipes``: random init,
Weight Selection and the fitted model under the recipe, layer-wise lr decay (timm's
``param_groups_layer_decay``) 0.75 / 0.65 and a frozen patch embedding; accuracy at steps 10 / 20 / 30.
``fewfit``: fit-alone accuracy after 10 or 20 fit steps at several learning rates. ``kd``: the fit with feature
distillation from the DINOv2-S ancestry itself instead of the aux model. Accuracies are on quality.py's
1,000-image curve subset. One JSON line per row on stdout.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import re
import time

import quality as Q
import torch

GROUPS = {
    "everything": ".",
    "head only": "^$",
    "attention": r"attn\.",
    "mlp": r"mlp\.",
    "norms": "norm",
    "pos_embed": "pos_embed",
    "cls_token": "cls_token",
    "patch_embed": "patch_embed",
}
LR_VARIANTS = {
    "everything, lr 3e-5": dict(lr=3e-5),
    "everything, lr 1e-5": dict(lr=1e-5),
    "everything, 30 % warmup": dict(warmup=0.3),
}


def finetune(
    model,
    r: Q.Recipe,
    train,
    test,
    evals: tuple[int, ...],
    trainable: str = ".",
    layer_decay: float | None = None,
) -> list[float]:
    """quality.finetune's loop (same seeds, loader, AdamW, schedule) with only ``trainable`` (regex) + the head
    learning, or with timm's layer-wise lr decay; accuracy % at ``evals``."""
    from timm.optim import param_groups_layer_decay

    from wavehub.data import make_loader
    from wavehub.device import autocast_dtype
    from wavehub.fit import batches, evaluate, training_step, warmup_cosine

    m = copy.deepcopy(model).float().train()
    for n, p in m.named_parameters():
        p.requires_grad_(n.startswith("head.") or bool(re.search(trainable, n)))
    if layer_decay is None:
        groups = [{"params": [p for p in m.parameters() if p.requires_grad], "lr": r.lr}]
    else:
        groups = param_groups_layer_decay(m, weight_decay=r.weight_decay, layer_decay=layer_decay)
        for g in groups:
            g["lr"] = r.lr * g.pop("lr_scale", 1.0)
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=r.lr, weight_decay=r.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(r.steps, r.warmup))
    amp, dev = autocast_dtype("cpu", r.precision), torch.device("cpu")
    loader = make_loader(train, r.batch, shuffle=True, seed=1000, drop_last=True)
    test_loader = make_loader(test, 250, shuffle=False)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for step, (x, y) in enumerate(batches(loader, r.steps), 1):
            training_step(m, opt, params, x, y, amp, r.clip_grad)
            sched.step()
            if step in evals:
                out.append(round(100 * evaluate(m, test_loader, dev, amp), 1))
    return out


def fitted(
    r: Q.Recipe,
    size: str,
    train,
    steps: int | None = None,
    lr: float | None = None,
    teacher: float | None = None,
):
    """The fitted WAVE model (quality.py's fit, or ``steps``/``lr`` overrides); ``teacher``: the weight of feature
    distillation from DINOv2-S itself."""
    import wavehub.fit as F

    kw: dict = {} if lr is None else {"lr": lr}
    if teacher is not None:
        from wavehub.ancestry import load_ancestry

        anc = load_ancestry(Q.ANCESTRY)

        def ancestry_teacher(lg, spec, dev):
            m = anc.model(device=dev, img_size=spec.img_size)
            m.requires_grad_(False)
            return m

        F._aux_teacher = ancestry_teacher  # distill="aux" then distills from the ancestry itself
        kw.update(distill="aux", distill_weight=teacher)
    lg, spec = Q.learngene("wave"), Q.spec_for(size, r.img_size)
    cfg = r.fit_config(0, steps)
    return F.fit_scalers(
        lg, spec, train, config=cfg, device="cpu", eval_data=None, depth_rule=r.depth_rule, **kw
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=("groups", "recipes", "fewfit", "kd"))
    ap.add_argument("--dataset", default="fashion-mnist", choices=Q.DATASETS)
    ap.add_argument("--size", default="8x384")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = Q.Recipe()
    train = Q.dataset(a.dataset, "train", r.n_train, r.img_size)
    test = Q.dataset(a.dataset, "test", r.n_test, r.img_size)

    def emit(**row) -> None:
        print(json.dumps({"dataset": a.dataset, "size": a.size, **row}), flush=True)

    t0 = time.perf_counter()
    if a.experiment == "groups":
        m = fitted(r, a.size, train)
        emit(row="fitted", acc=round(100 * Q.accuracy_on(m, test, r), 1))
        for name, pattern in GROUPS.items():
            emit(row=name, steps=[4, 8, 10, 30], acc=finetune(m, r, train, test, (4, 8, 10, 30), pattern))
        for name, over in LR_VARIANTS.items():
            emit(
                row=name,
                steps=[4, 8, 10, 30],
                acc=finetune(m, dataclasses.replace(r, **over), train, test, (4, 8, 10, 30)),
            )
    elif a.experiment == "recipes":
        for init in ("wave-fit", "select", "random"):
            m, _ = Q.make_model(init, a.size, r, 0, train_ds=train)
            for name, kw in (
                ("recipe", {}),
                ("LLRD 0.75", {"layer_decay": 0.75}),
                ("LLRD 0.65", {"layer_decay": 0.65}),
                ("patch_embed frozen", {"trainable": "^(?!patch_embed)"}),
            ):
                emit(
                    init=init,
                    row=name,
                    steps=[10, 20, 30],
                    acc=finetune(m, r, train, test, (10, 20, 30), **kw),
                )
    elif a.experiment == "fewfit":
        for steps, lr in ((10, 1e-2), (10, 3e-2), (10, 1e-1), (20, 1e-2), (20, 3e-2)):
            m = fitted(r, a.size, train, steps=steps, lr=lr)
            emit(fit_steps=steps, lr=lr, acc=round(100 * Q.accuracy_on(m, test, r), 1))
    else:
        for weight in (1.0, 0.1):
            m = fitted(r, a.size, train, teacher=weight)
            probe = Q.probe(copy.deepcopy(m), a.dataset, dataclasses.replace(r, probe_test=r.n_test))
            emit(
                kd_weight=weight,
                fit=round(100 * Q.accuracy_on(m, test, r), 1),
                probe=round(100 * probe, 1),
                steps=[10, 20, 30],
                acc=finetune(m, r, train, test, (10, 20, 30)),
            )
    emit(row="done", seconds=round(time.perf_counter() - t0))


if __name__ == "__main__":
    main()
