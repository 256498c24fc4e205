"""``wavehub bank ls | add``: a learngene's pre-fitted scalers per size (format v2)."""

from __future__ import annotations

import click

from ._cli_utils import PATH, Arg, group

__all__ = ["bank"]


@group(
    help="A learngene's bank: scalers pre-fitted per size, used by create_model at that size.",
    epilog="Examples:\n\n  wavehub bank ls dinov2s-learngene\n\n  wavehub bank add ./my-learngene "
    "--size 8x384 --steps 150",
)
def bank() -> None:
    pass


@bank.command("ls", epilog="Example: wavehub bank ls dinov2s-learngene")
@click.argument("name", cls=Arg, help="Zoo name, hf-hub:org/repo, local-dir:PATH or a folder.")
def bank_ls(name: str) -> None:
    """List the sizes a learngene's bank holds, with how each was fitted and its size in bytes."""
    from ..api import load_learngene
    from ..bank import entries

    lg = load_learngene(name, progress=False)
    ents = entries(lg.config)
    if not ents:
        click.echo(
            f"{lg.name}: no bank (format v{lg.cfg.format_version}); every size starts from the "
            "aux scalers. Add entries with `wavehub bank add`."
        )
        return
    click.echo(f"{lg.name}: {len(ents)} bank entries (sha256 {lg.cfg.bank.sha256[:12]}...)")
    click.echo(f"{'size':>8}  {'img':>4}  {'steps':>5}  {'images':>6}  {'held-out loss':>15}  {'bytes':>9}")
    for e in sorted(ents.values(), key=lambda e: (e["width"], e["depth"])):
        loss = f"{e.get('heldout_loss_before', '?')} -> {e.get('heldout_loss_after', '?')}"
        click.echo(
            f"{e['depth']:>3}x{e['width']:<4}  {e['img_size']:>4}  {e.get('steps', '?'):>5}  "
            f"{e.get('images', '?'):>6}  {loss:>15}  {e.get('bytes', 0):>9,}"
        )


@bank.command(
    "add",
    epilog="Example: wavehub bank add ./my-learngene --size 4x192 --size 8x384 --steps 150 --device cuda",
)
@click.argument(
    "folder", cls=Arg, type=PATH, help="A learngene folder (written in place: bank.safetensors, config.json)."
)
@click.option("--size", multiple=True, required=True, help="DEPTHxWIDTH to fit; repeat for several.")
@click.option("--steps", type=int, help="Fitting steps per size (default: wavehub.bank_fit.FIT_DEFAULTS).")
@click.option("--batch-size", type=int, help="Unlabeled crops per step.")
@click.option("--img-size", type=int, help="Crop size in px the entry is fitted at (its pos_embed grid).")
@click.option("--lr", type=float, help="AdamW learning rate for scalers, norms and pos_embed.")
@click.option("--device", help="cpu | cuda | cuda:N (default: CUDA when present).")
@click.option("--precision", default="auto", help="auto | fp32 | bf16 | fp16 (autocast).")
@click.option("--seed", type=int, default=0, help="Seed of the crops and of the fit.")
@click.option("--force", is_flag=True, help="Refit sizes already in the bank.")
def bank_add(folder, size, steps, batch_size, img_size, lr, device, precision, seed, force) -> None:
    """Fit scalers for each size label-free (feature distillation from the ancestry on natural-image crops,
    templates frozen) and add them to the learngene's bank. Resumable: finished sizes are kept and skipped."""
    from ..bank import parse_size
    from ..bank_fit import add_entries

    sizes = [parse_size(s) for s in size]
    opts = {
        k: v
        for k, v in dict(steps=steps, batch_size=batch_size, img_size=img_size, lr=lr).items()
        if v is not None
    }
    done = add_entries(
        folder, sizes, force=force, device=device, seed=seed, precision=precision, log=click.echo, **opts
    )
    click.echo(f"added {len(done)} entr{'y' if len(done) == 1 else 'ies'} to {folder}")
