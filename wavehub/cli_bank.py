"""``wavehub bank``: list and add a learngene's pre-fitted scalers per size (format v2)."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli import app

__all__ = ["bank_app"]

bank_app = typer.Typer(help="A learngene's bank: scalers pre-fitted per size, used by create_model at that size.",
                       no_args_is_help=True,
                       epilog="Examples:\n\n  wavehub bank ls dinov2s-learngene\n\n  wavehub bank add ./my-learngene "
                              "--size 8x384 --steps 150")
app.add_typer(bank_app, name="bank")


@bank_app.command("ls", epilog="Example: wavehub bank ls dinov2s-learngene")
def bank_ls(name: str = typer.Argument(..., help="Zoo name, hf-hub:org/repo, local-dir:PATH or a folder.")) -> None:
    """List the sizes a learngene's bank holds, with how each was fitted and its size in bytes."""
    from .api import load_learngene
    from .bank import entries

    lg = load_learngene(name, progress=False)
    ents = entries(lg.config)
    if not ents:
        typer.echo(f"{lg.name}: no bank (format v{lg.config.get('format_version')}); every size starts from the "
                   "aux scalers. Add entries with `wavehub bank add`.")
        return
    typer.echo(f"{lg.name}: {len(ents)} bank entries (sha256 {lg.config['bank']['sha256'][:12]}...)")
    typer.echo(f"{'size':>8}  {'img':>4}  {'steps':>5}  {'images':>6}  {'held-out loss':>15}  {'bytes':>9}")
    for e in sorted(ents.values(), key=lambda e: (e["width"], e["depth"])):
        loss = f"{e.get('heldout_loss_before', '?')} -> {e.get('heldout_loss_after', '?')}"
        typer.echo(f"{e['depth']:>3}x{e['width']:<4}  {e['img_size']:>4}  {e.get('steps', '?'):>5}  "
                   f"{e.get('images', '?'):>6}  {loss:>15}  {e.get('bytes', 0):>9,}")


@bank_app.command("add", epilog="Example: wavehub bank add ./my-learngene --size 4x192 --size 8x384 --steps 150 "
                                "--device cuda")
def bank_add(
    folder: Path = typer.Argument(..., help="A learngene folder (written in place: bank.safetensors, config.json)."),
    size: list[str] = typer.Option(..., "--size", help="DEPTHxWIDTH to fit; repeat for several."),
    steps: int = typer.Option(None, help="Fitting steps per size (default: wavehub.bank_fit.FIT_DEFAULTS)."),
    batch_size: int = typer.Option(None, help="Unlabeled crops per step."),
    img_size: int = typer.Option(None, help="Crop size in px the entry is fitted at (its pos_embed grid)."),
    lr: float = typer.Option(None, help="AdamW learning rate for scalers, norms and pos_embed."),
    device: str = typer.Option(None, help="cpu | cuda | cuda:N (default: CUDA when present)."),
    precision: str = typer.Option("auto", help="auto | fp32 | bf16 | fp16 (autocast)."),
    seed: int = typer.Option(0, help="Seed of the crops and of the fit."),
    force: bool = typer.Option(False, "--force", help="Refit sizes already in the bank."),
) -> None:
    """Fit scalers for each size label-free (feature distillation from the ancestry on natural-image crops,
    templates frozen) and add them to the learngene's bank. Resumable: finished sizes are kept and skipped."""
    from .bank import parse_size
    from .bank_fit import add_entries

    sizes = [parse_size(s) for s in size]
    opts = {k: v for k, v in dict(steps=steps, batch_size=batch_size, img_size=img_size, lr=lr).items()
            if v is not None}
    done = add_entries(folder, sizes, force=force, device=device, seed=seed, precision=precision,
                       log=typer.echo, **opts)
    typer.echo(f"added {len(done)} entr{'y' if len(done) == 1 else 'ies'} to {folder}")
