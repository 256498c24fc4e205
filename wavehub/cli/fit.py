"""``wavehub fit``: fit a WAVE learngene's scalers on a little labelled data and write a timm folder."""

from __future__ import annotations

import click

from ..fit_config import FitConfig
from ._cli_utils import PATH, Arg, command

__all__ = ["fit", "default_img_size", "estimate_step_seconds"]

CPU_IMG_SIZE = 56  # a 224-px step of a ViT-S takes seconds on a CPU; 56 px keeps a fit to minutes
# Sustained training throughput, FLOP/s, per CPU thread (conservative) and for one GPU; only for the estimate
# printed before a fit starts.
CPU_FLOPS_PER_THREAD = 15e9
GPU_FLOPS = 20e12
_D = FitConfig()  # the library's defaults are the CLI's: one source


@command(
    "fit",
    epilog="Example: wavehub fit dinov2s-learngene --depth 6 --width 256 --data fashion-mnist "
    "--subset 0.05 --steps 200 --out vit-d6-w256   "
    "(then: timm.create_model('local-dir:vit-d6-w256', pretrained=True)). Prints its estimated time first; "
    "on a CPU the default input is 56 px.",
)
@click.argument("name", cls=Arg, help="Learngene name, hf-hub:org/repo, local-dir:PATH or a folder.")
@click.option("--depth", type=int, required=True, help="Target depth (number of blocks).")
@click.option(
    "--width", type=int, required=True, help="Target width (a multiple of the template size, e.g. 64)."
)
@click.option(
    "--data", required=True, help="fashion-mnist | mnist | digits | an ImageFolder PATH (root/<class>/<img>)."
)
@click.option("--out", type=PATH, required=True, help="Output folder: a timm local-dir: model plus fit.json.")
@click.option("--num-classes", type=int, help="Classifier size (default: the dataset's class count).")
@click.option(
    "--img-size", type=int, help="Input size in pixels (default: 56 px on a CPU, the learngene's on a GPU)."
)
@click.option("--patch-size", type=int, help="Patch size (default: the learngene's).")
@click.option(
    "--subset",
    type=float,
    default=_D.subset,
    help="Training images: a fraction (< 1) or a count (>= 1), class-balanced "
    "(default: the whole training split).",
)
@click.option("--steps", type=int, help="Optimizer steps (default: --epochs over the subset).")
@click.option(
    "--epochs", type=float, help=f"Passes over the subset when --steps is not given (default {_D.epochs:g})."
)
@click.option("--lr", type=float, help=f"AdamW learning rate (default {_D.lr:g}).")
@click.option("--weight-decay", type=float, help=f"AdamW weight decay (default {_D.weight_decay:g}).")
@click.option("--batch-size", type=int, help=f"Batch size (default {_D.batch_size}).")
@click.option("--train", default=",".join(_D.train), help="What learns: any of scalers,norms,head,pos_embed.")
@click.option(
    "--init", default=_D.init, help="Scaler init: resample (aux scalers over depth/width) | random."
)
@click.option("--distill", help="'aux' adds a feature loss towards the learngene's aux model.")
@click.option("--seed", type=int, default=_D.seed, help="Seed for the subset, data order and head init.")
@click.option("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N.")
@click.option("--precision", default=_D.precision, help="auto (bf16 where fast) | fp32 | bf16 | fp16.")
@click.option(
    "--eval-subset",
    type=int,
    default=_D.eval_subset,
    help="Held-out (test split) images used for the reported accuracy.",
)
@click.option("--progress/--no-progress", default=_D.progress, help="Show a progress bar.")
@click.option(
    "--force", is_flag=True, help="Replace --out even if it holds files that are not a wavehub timm export."
)
def fit(
    name,
    depth,
    width,
    data,
    out,
    num_classes,
    img_size,
    patch_size,
    subset,
    steps,
    epochs,
    lr,
    weight_decay,
    batch_size,
    train,
    init,
    distill,
    seed,
    device,
    precision,
    eval_subset,
    progress,
    force,
) -> None:
    """Fit only the size-specific scalers (templates frozen) on a small labelled set; save a stock timm model."""
    from ..api import load_learngene
    from ..device import autocast_dtype, check_memory, resolve_device
    from ..errors import SpecError
    from ..export import save_timm
    from ..fit import fit_scalers, num_classes_of
    from ..materialize import resolve_spec
    from ..outdir import check

    check(out, "timm", force=force)  # before the fit, not after it
    lg = load_learngene(name, progress=progress)
    if num_classes is None:
        num_classes = num_classes_of(data)
        if num_classes is None:
            raise SpecError(f"cannot tell how many classes {data!r} has", "Pass --num-classes N.")
    dev = resolve_device(device)
    autocast_dtype(dev, precision)  # a bad --precision fails here, before anything is printed or computed
    if img_size is None:
        img_size = default_img_size(patch_size or lg.arch.patch_size, dev)
    spec = resolve_spec(lg, depth, width, num_classes=num_classes, img_size=img_size, patch_size=patch_size)
    check_memory(spec, None, dev, training=True)
    n_steps = steps or _default_steps(data, subset, epochs, batch_size)
    if n_steps:
        secs = estimate_step_seconds(spec, batch_size or _D.batch_size, dev) * n_steps
        click.echo(
            f"fitting {spec.depth}x{spec.width} at {spec.img_size} px on {dev.type}: {n_steps} steps, "
            f"estimated {_human(secs)} (rough, from FLOPs; see docs/performance.md)",
            err=True,
        )
    opts = {
        k: v
        for k, v in dict(
            steps=steps,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            distill=distill,
        ).items()
        if v is not None
    }
    model = fit_scalers(
        lg,
        spec,
        data,
        device=device,
        init=init,
        seed=seed,
        subset=_count(subset),
        train=tuple(t.strip() for t in train.split(",") if t.strip()),
        precision=precision,
        eval_subset=eval_subset,
        progress=progress,
        **opts,
    )
    path = save_timm(model, out, force=force)
    rec = model.wavehub_fit
    acc = rec["held_out_accuracy"]
    click.echo(
        f"wrote {path}: {rec['steps']} steps, {rec['images_seen']:,} images seen, final loss "
        f"{rec['final_loss']:.4f}"
        + (f", held-out accuracy {acc:.4f} on {rec['held_out_images']} images" if acc is not None else "")
    )
    click.echo(f"load it with: timm.create_model('local-dir:{path}', pretrained=True)")


def default_img_size(patch_size: int, device) -> int | None:
    """56 px (the nearest multiple of the patch size at or above it) on a CPU; None (the learngene's) on a GPU."""
    if getattr(device, "type", str(device)) != "cpu":
        return None
    return -(-CPU_IMG_SIZE // int(patch_size)) * int(patch_size)


def estimate_step_seconds(spec, batch_size: int, device) -> float:
    """Seconds per training step from the FLOPs of forward + backward (3x forward) of this ViT."""
    import torch

    tokens = spec.grid**2 + (1 if spec.class_token else 0)
    per_block = (4 + 2 * spec.mlp_ratio) * spec.width**2  # qkv, proj, fc1, fc2 multiply-adds per token
    flops = 3 * 2 * batch_size * spec.depth * (tokens * per_block + 2 * tokens**2 * spec.width)
    if getattr(device, "type", "cpu") == "cpu":
        return flops / (CPU_FLOPS_PER_THREAD * max(1, torch.get_num_threads()))
    return flops / GPU_FLOPS


def _default_steps(
    data: str, subset: float | None, epochs: float | None, batch_size: int | None
) -> int | None:
    """The step count fit_scalers will run when --steps is not given (known datasets only)."""
    import math

    from ..data import DATASETS

    n = DATASETS.get(data, {}).get("train")
    if n is None:
        return None
    count = n if subset is None else int(subset) if subset >= 1 else round(subset * n)
    return max(1, math.ceil((epochs or _D.epochs) * max(1, count // (batch_size or _D.batch_size))))


def _human(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 90
        else f"{seconds / 60:.0f} min"
        if seconds < 5400
        else f"{seconds / 3600:.1f} h"
    )


def _count(subset: float | None) -> float | int | None:
    """--subset 0.05 is a fraction, --subset 500 a count, no --subset the whole split."""
    return None if subset is None else int(subset) if subset >= 1 else float(subset)
