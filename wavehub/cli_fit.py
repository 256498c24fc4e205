"""``wavehub fit``: fit a WAVE learngene's scalers on a little labelled data and write a timm folder."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli import app

__all__ = ["fit", "default_img_size", "estimate_step_seconds"]

CPU_IMG_SIZE = 56          # a 224-px step of a ViT-S takes seconds on a CPU; 56 px keeps a fit to minutes
# Sustained training throughput, FLOP/s: per CPU thread (conservative: a 6x256 224-px step took ~16 s on a
# shared 2-core machine, ~17 GFLOP/s per thread)
# and for one GPU. Only for the estimate printed before a fit starts.
CPU_FLOPS_PER_THREAD = 15e9
GPU_FLOPS = 20e12


@app.command(
    "fit",
    epilog="Example: wavehub fit dinov2s-learngene --depth 6 --width 256 --data fashion-mnist "
    "--subset 0.05 --steps 200 --out vit-d6-w256   "
    "(then: timm.create_model('local-dir:vit-d6-w256', pretrained=True)). Prints its estimated time first; "
    "on a CPU the default input is 56 px.",
)
def fit(
    name: str = typer.Argument(..., help="Learngene name, hf-hub:org/repo, local-dir:PATH or a folder."),
    depth: int = typer.Option(..., help="Target depth (number of blocks)."),
    width: int = typer.Option(..., help="Target width (a multiple of the template size, e.g. 64)."),
    data: str = typer.Option(..., help="fashion-mnist | mnist | digits | an ImageFolder PATH (root/<class>/<img>)."),
    out: Path = typer.Option(..., help="Output folder: a timm local-dir: model plus fit.json."),
    num_classes: int = typer.Option(None, help="Classifier size (default: the dataset's class count)."),
    img_size: int = typer.Option(None, help="Input size in pixels (default: 56 px on a CPU, the learngene's on a "
                                 "GPU)."),
    patch_size: int = typer.Option(None, help="Patch size (default: the learngene's)."),
    subset: float = typer.Option(0.05, help="Training images: a fraction (< 1) or a count (>= 1), class-balanced."),
    steps: int = typer.Option(None, help="Optimizer steps (default: --epochs over the subset)."),
    epochs: float = typer.Option(None, help="Passes over the subset when --steps is not given (default 2)."),
    lr: float = typer.Option(None, help="AdamW learning rate (default 1e-2)."),
    weight_decay: float = typer.Option(None, help="AdamW weight decay (default 0)."),
    batch_size: int = typer.Option(None, help="Batch size (default 64)."),
    train: str = typer.Option("scalers,norms,head,pos_embed", help="What learns: any of scalers,norms,head,pos_embed."),
    init: str = typer.Option("resample", help="Scaler init: resample (aux scalers over depth/width) | random."),
    distill: str = typer.Option(None, help="'aux' adds a feature loss towards the learngene's aux model."),
    seed: int = typer.Option(0, help="Seed for the subset, data order and head init."),
    device: str = typer.Option("auto", help="auto (CUDA when present) | cpu | cuda | cuda:N."),
    precision: str = typer.Option("auto", help="auto (bf16 where fast) | fp32 | bf16 | fp16."),
    eval_subset: int = typer.Option(1000, help="Held-out (test split) images used for the reported accuracy."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    force: bool = typer.Option(False, "--force", help="Replace --out even if it holds files that are not a "
                               "wavehub timm export."),
) -> None:
    """Fit only the size-specific scalers (templates frozen) on a small labelled set; save a stock timm model."""
    from .api import load_learngene
    from .device import autocast_dtype, check_memory, resolve_device
    from .errors import SpecError
    from .export import save_timm
    from .fit import fit_scalers, num_classes_of
    from .materialize import resolve_spec
    from .outdir import check

    check(out, "timm", force=force)  # before the fit, not after it
    lg = load_learngene(name, progress=progress)
    if num_classes is None:
        num_classes = num_classes_of(data)
        if num_classes is None:
            raise SpecError(f"cannot tell how many classes {data!r} has", "Pass --num-classes N.")
    dev = resolve_device(device)
    autocast_dtype(dev, precision)  # a bad --precision fails here, before anything is printed or computed
    if img_size is None:
        img_size = default_img_size(patch_size or int(lg.aux["patch_size"]), dev)
    spec = resolve_spec(lg, depth, width, num_classes=num_classes, img_size=img_size, patch_size=patch_size)
    check_memory(spec, None, dev, training=True)
    n_steps = steps or _default_steps(data, subset, epochs, batch_size)
    if n_steps:
        secs = estimate_step_seconds(spec, batch_size or 64, dev) * n_steps
        typer.echo(f"fitting {spec.depth}x{spec.width} at {spec.img_size} px on {dev.type}: {n_steps} steps, "
                   f"estimated {_human(secs)} (rough, from FLOPs; see docs/performance.md)", err=True)
    opts = {k: v for k, v in dict(steps=steps, epochs=epochs, lr=lr, weight_decay=weight_decay,
                                  batch_size=batch_size, distill=distill).items() if v is not None}
    model = fit_scalers(lg, spec, data, device=device, init=init, seed=seed, subset=_count(subset),
                        train=tuple(t.strip() for t in train.split(",") if t.strip()), precision=precision,
                        eval_subset=eval_subset, progress=progress, **opts)
    path = save_timm(model, out, force=force)
    rec = model.wavehub_fit
    acc = rec["held_out_accuracy"]
    typer.echo(f"wrote {path}: {rec['steps']} steps, {rec['images_seen']:,} images seen, final loss "
               f"{rec['final_loss']:.4f}" + (f", held-out accuracy {acc:.4f} on {rec['held_out_images']} images"
                                             if acc is not None else ""))
    typer.echo(f"load it with: timm.create_model('local-dir:{path}', pretrained=True)")


def default_img_size(patch_size: int, device) -> int | None:
    """56 px (the nearest multiple of the patch size at or above it) on a CPU; None (the learngene's) on a GPU."""
    if getattr(device, "type", str(device)) != "cpu":
        return None
    return -(-CPU_IMG_SIZE // int(patch_size)) * int(patch_size)


def estimate_step_seconds(spec, batch_size: int, device) -> float:
    """Seconds per training step from the FLOPs of forward + backward (3x forward) of this ViT."""
    import torch

    tokens = spec.grid ** 2 + (1 if spec.class_token else 0)
    per_block = (4 + 2 * spec.mlp_ratio) * spec.width ** 2          # qkv, proj, fc1, fc2 multiply-adds per token
    flops = 3 * 2 * batch_size * spec.depth * (tokens * per_block + 2 * tokens ** 2 * spec.width)
    if getattr(device, "type", "cpu") == "cpu":
        return flops / (CPU_FLOPS_PER_THREAD * max(1, torch.get_num_threads()))
    return flops / GPU_FLOPS


def _default_steps(data: str, subset: float, epochs: float | None, batch_size: int | None) -> int | None:
    """The step count fit_scalers will run when --steps is not given (known datasets only)."""
    import math

    from .data import DATASETS

    n = DATASETS.get(data, {}).get("train")
    if n is None:
        return None
    count = int(subset) if subset >= 1 else round(subset * n)
    return max(1, math.ceil((epochs or 2) * max(1, count // (batch_size or 64))))


def _human(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else \
        f"{seconds / 3600:.1f} h"


def _count(subset: float) -> float | int:
    """--subset 0.05 is a fraction, --subset 500 a count."""
    return int(subset) if subset >= 1 else float(subset)
