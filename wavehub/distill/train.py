"""The build itself: set-up (ancestry, data, teacher, aux model), the training loop, checkpoints and the artifact."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..ancestry import provenance
from ..artifact import CARD_FILE, Learngene, atomic_write_bytes, save_learngene
from ..config import AuxArch
from ..errors import BuildError
from ..schedule import warmup_cosine
from . import ddp
from .checkpoint import CHECKPOINT_FILE, CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from .config import DEFAULT_STEPS, BuildConfig, RunOptions
from .export import command, export_tensors, hardware, render_build_card
from .losses import distill_loss, feature_layers, forward_outputs, heldout_loss
from .models import aux_spec, distillable, initial_learngene, make_aux, teacher

__all__ = ["LOG_FILE", "build_learngene", "build"]

LOG_FILE = "build_log.jsonl"


def build_learngene(
    ancestry: str,
    method: str = "wave",
    data: str = "natural",
    out: str | os.PathLike = "learngene",
    *,
    steps: int | None = None,
    epochs: float | None = None,
    **options: Any,
) -> Path | None:
    """Distill ``ancestry`` into a WAVE (or TLEG) learngene written to ``out``; returns ``out`` on rank 0
    (``None`` on other ranks, and when ``max_steps_this_run`` stops the run early after checkpointing).

    ``data``: ``natural`` (shipped sample photographs) or a dataset's train split (``fashion-mnist``, ...).
    ``epochs`` (dataset data only) sets ``steps = ceil(epochs · len(train) / batch_size)``; ``steps`` wins.
    Every other keyword is a field of :class:`BuildConfig` (what determines the learngene) or of
    :class:`RunOptions` (how this run goes); :func:`build` takes the two configs directly.
    """
    build_fields = {f.name for f in dataclasses.fields(BuildConfig)}
    run_fields = {f.name for f in dataclasses.fields(RunOptions)}
    bad = sorted(
        set(options) - build_fields - run_fields - {"ancestry", "method", "data", "out", "steps", "epochs"}
    )
    if bad:
        raise TypeError(f"build_learngene() got unexpected keyword argument(s) {', '.join(bad)}")
    cfg = BuildConfig(
        ancestry=ancestry,
        method=method,
        data=data,
        steps=DEFAULT_STEPS if steps is None else steps,
        **{k: v for k, v in options.items() if k in build_fields},
    )
    run = RunOptions(
        out=Path(out),
        epochs=epochs if steps is None else None,
        **{k: v for k, v in options.items() if k in run_fields},
    )
    return build(cfg, run)


@dataclass
class _Context:
    """What the set-up produced for the training loop (not part of the recipe)."""

    anc: Any
    arch: dict
    stream: Any
    dist: ddp.Dist
    device: torch.device
    amp: torch.dtype | None
    storage: torch.dtype
    setup: Any


def build(cfg: BuildConfig, run: RunOptions) -> Path | None:
    """Distill as :func:`build_learngene` does, from the two configs."""
    from .. import outdir
    from ..ancestry import load_ancestry
    from ..device import STORAGE_DTYPES, autocast_dtype, parse_dtype
    from ..distill_data import ancestry_stream
    from ..extract import ancestry_arch
    from ..stages import Stages

    distillable(cfg.method)  # an unknown method fails before anything loads
    if cfg.init not in ("extract", "random"):
        raise BuildError(f"unknown --init {cfg.init!r}", "Use --init extract or --init random.")
    storage = parse_dtype(run.storage_dtype, allowed=STORAGE_DTYPES, what="storage_dtype")
    outdir.check(run.out, "build", force=run.force)  # before loading the ancestry, not after the training
    dist_, dev = ddp.setup(run.device)
    setup = Stages(f"build {cfg.method} set-up", 6, enabled=run.progress and dist_.rank == 0)
    try:
        setup("load ancestry")
        anc = load_ancestry(cfg.ancestry)
        arch = ancestry_arch(anc.model_args, cfg.img_size)
        setup(f"load data ({cfg.data})")
        stream = ancestry_stream(anc, cfg.data, img_size=cfg.img_size, seed=cfg.seed)
        if run.epochs is not None:
            if stream.labels is None:
                raise BuildError(
                    "--epochs needs a dataset; the 'natural' stream is endless", "Pass --steps N."
                )
            cfg = dataclasses.replace(
                cfg, steps=max(1, math.ceil(run.epochs * len(stream.images) / cfg.batch_size))
            )
        if cfg.steps < 1 or cfg.batch_size < 1 or cfg.batch_size % dist_.world:
            raise BuildError(
                f"batch_size {cfg.batch_size} must be >= 1 and divisible by the {dist_.world} processes "
                f"(steps {cfg.steps} >= 1)",
                f"Use --batch-size {max(1, cfg.batch_size // dist_.world) * dist_.world}.",
            )
        ctx = _Context(anc, arch, stream, dist_, dev, autocast_dtype(dev, cfg.precision), storage, setup)
        return _train(cfg, run, ctx)
    except BaseException:
        setup.close(ok=False)
        raise
    finally:
        if dist_.owned:
            torch.distributed.destroy_process_group()


def _train(cfg: BuildConfig, run: RunOptions, ctx: _Context) -> Path | None:
    anc, arch, stream, dist_, dev, setup = ctx.anc, ctx.arch, ctx.stream, ctx.dist, ctx.device, ctx.setup
    out, holdout = run.out, run.holdout
    torch.manual_seed(cfg.seed)
    setup("teacher")
    teacher_ = teacher(cfg.ancestry, anc, cfg.img_size, dev)
    num_classes = getattr(teacher_, "num_classes", 0)
    spec = aux_spec(arch, num_classes)
    setup("initial learngene (extraction)" if cfg.init == "extract" else "initial learngene (random)")
    lg0 = initial_learngene(cfg, anc, arch)
    setup("aux model")
    model = make_aux(lg0, spec, dev)
    if (
        num_classes
    ):  # start the aux head from the ancestry's (it is trained, then dropped: heads are per-task)
        with torch.no_grad():
            model.vit.head.weight.copy_(teacher_.head.weight)
            model.vit.head.bias.copy_(teacher_.head.bias)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = cfg.warmup()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.steps, warm, cfg.min_lr_ratio))
    use_labels = stream.labels is not None and num_classes > 0 and num_classes == int(stream.labels.max()) + 1
    layers = feature_layers(AuxArch.from_dict(arch).depth)

    ckpt_path, log_path = out / CHECKPOINT_FILE, out / LOG_FILE
    start, images_seen, elapsed, summary = 0, 0, 0.0, {}
    if ckpt_path.is_file() and not run.resume:
        raise BuildError(
            f"{out} holds a build checkpoint", "Pass --resume to continue it, or use another --out."
        )
    xh = (
        stream.batch(-1, 0, holdout)[0].to(dev) if holdout and dist_.rank == 0 else None
    )  # step -1: never trained on
    if run.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, cfg)
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start, images_seen, elapsed, summary = (
            state["step"],
            state["images_seen"],
            state["elapsed"],
            state["summary"],
        )
        if dist_.rank == 0 and log_path.is_file():  # drop log lines past the checkpoint (they will be redone)
            keep = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= start]
            atomic_write_bytes(log_path, ("\n".join(keep) + "\n" if keep else "").encode())
    elif dist_.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if log_path.exists():
            log_path.unlink()
        if xh is not None:
            setup("held-out loss before training")
            summary["heldout_before"] = heldout_loss(model, teacher_, xh)
    setup.close()
    dist_.barrier()

    local = cfg.batch_size // dist_.world
    lo = dist_.rank * local
    end = cfg.steps if run.max_steps_this_run is None else min(cfg.steps, start + run.max_steps_this_run)
    bar = None
    if run.progress and dist_.rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.steps, initial=start, desc=f"build {cfg.method}", unit="step", dynamic_ncols=True
        )
    log = open(log_path, "a") if dist_.rank == 0 else None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    t0 = time.perf_counter()
    try:
        model.train()
        for step in range(start, end):
            x, y = stream.batch(step, lo, lo + local)
            x = x.to(dev, non_blocking=True)
            y = y.to(dev) if (use_labels and y is not None) else None
            with torch.autocast(dev.type, dtype=ctx.amp, enabled=ctx.amp is not None):
                with torch.no_grad():
                    t_out = forward_outputs(teacher_, None, x, layers)
                s_out = forward_outputs(model.vit, model.composed(), x, layers)
                loss, parts = distill_loss(
                    s_out, t_out, y, mid_weight=cfg.feature_weight_mid, tau=cfg.kd_temperature
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if dist_.world > 1:
                ddp.allreduce_grads(params, dist_.world)
            if cfg.clip_grad:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            opt.step()
            sched.step()
            images_seen += cfg.batch_size
            parts = ddp.allreduce_scalars({"loss": float(loss.detach()), **parts}, dist_.world)
            summary.setdefault("loss_first", parts["loss"])
            summary.setdefault("recent", []).append(parts["loss"])
            summary["recent"] = summary["recent"][-20:]
            if log is not None and ((step + 1) % run.log_every == 0 or step + 1 == cfg.steps):
                now = elapsed + time.perf_counter() - t0
                log.write(
                    json.dumps(
                        {
                            "step": step + 1,
                            **{k: round(v, 6) for k, v in parts.items()},
                            "lr": sched.get_last_lr()[0],
                            "images": images_seen,
                            "elapsed_s": round(now, 2),
                        }
                    )
                    + "\n"
                )
                log.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.4f}")
            done = step + 1
            if (run.checkpoint_every and done % run.checkpoint_every == 0) or done == end:
                if dist_.rank == 0:
                    save_checkpoint(
                        ckpt_path,
                        {
                            "version": CHECKPOINT_VERSION,
                            "config": cfg.fingerprint(),
                            "step": done,
                            "model": {k: v for k, v in model.state_dict().items() if k in trainable},
                            "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(),
                            "rng": torch.get_rng_state(),
                            "images_seen": images_seen,
                            "elapsed": elapsed + time.perf_counter() - t0,
                            "summary": summary,
                            "world_size": dist_.world,
                        },
                    )
                dist_.barrier()
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
    elapsed += time.perf_counter() - t0
    if end < cfg.steps or dist_.rank != 0:
        return None

    model.eval()
    if xh is not None:
        summary["heldout_after"] = heldout_loss(model, teacher_, xh)
    tensors = {k: v.to(ctx.storage) for k, v in export_tensors(model, cfg.method, spec).items()}
    recent = summary.get("recent") or [float("nan")]
    recipe = {
        "kind": "distill",
        "method": cfg.method,
        "init": cfg.init,
        "ancestry": cfg.ancestry,
        "data": stream.description,
        "data_spec": cfg.data,
        "img_size": cfg.img_size,
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "images_seen": images_seen,
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "warmup_steps": warm,
        "schedule": f"linear warmup + cosine to {cfg.min_lr_ratio}×lr",
        "clip_grad": cfg.clip_grad,
        "seed": cfg.seed,
        "precision": cfg.precision,
        "storage_dtype": run.storage_dtype,
        "losses": (
            "feature KD: (1-cos) + relative MSE on final tokens + "
            f"{cfg.feature_weight_mid}× mean over blocks {layers}"
            + (f"; logit KD (KL, τ={cfg.kd_temperature:g})" if num_classes else "")
            + ("; 0.5·CE + 0.5·KD" if use_labels else "")
        ),
        "loss_first": summary.get("loss_first", float("nan")),
        "loss_last": sum(recent) / len(recent),
        "heldout_before": summary.get("heldout_before"),
        "heldout_after": summary.get("heldout_after"),
        "heldout_images": holdout,
        "wall_time_s": round(elapsed, 1),
        "img_per_s": round(images_seen / elapsed, 2) if elapsed else None,
        "hardware": hardware(dev, dist_),
        "command": command(cfg, dist_.world),
    }
    lcfg = dict(lg0.config)
    lcfg.update(
        {
            "name": run.name or f"{cfg.method}-distilled",
            **provenance(anc),
            "recipe": recipe,
        }
    )
    lg = Learngene(cfg.method, lcfg, tensors)
    save_learngene(lg, out, kind="build", force=True)  # checked at the start; the folder is this build's now
    atomic_write_bytes(out / CARD_FILE, render_build_card(lg.config).encode("utf-8"))  # now with the sha256
    return out
