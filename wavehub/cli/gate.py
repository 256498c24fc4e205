"""``wavehub gate``: the quality gate a learngene passes before ``wavehub push`` publishes it."""

from __future__ import annotations

from pathlib import Path

import click

from ._cli_utils import PATH, Arg, command

__all__ = ["gate"]


@command(
    epilog="Examples:\n\n  wavehub gate ./my-learngene\n\n"
    "  wavehub gate ./my-learngene --sizes 4x192,6x384,12x384 --device cuda\n\n"
    "Exit code 1 (and a failing gate.json) when the learngene is below timm's random init."
)
@click.argument(
    "folder", cls=Arg, type=PATH, help="A learngene folder (or any name `wavehub info` resolves)."
)
@click.option("--sizes", default="4x192,6x384", help="Comma-separated DEPTHxWIDTH target sizes.")
@click.option("--data", default="fashion-mnist", help="fashion-mnist | mnist | digits | an ImageFolder PATH.")
@click.option("--img-size", type=int, default=56, help="Input size in pixels (0: the learngene's).")
@click.option("--n-train", type=int, default=2000, help="Training images (probe and fine-tune).")
@click.option("--n-test", type=int, default=1000, help="Held-out test images.")
@click.option(
    "--steps", type=int, default=30, help="Fine-tune steps of batch 32 (AdamW, lr 1e-4) for both inits."
)
@click.option(
    "--margin",
    type=float,
    default=0.0,
    help="Accuracy the learngene may trail random init by (0.01 = 1 point).",
)
@click.option("--device", default="cpu", help="auto | cpu | cuda | cuda:N.")
@click.option(
    "--write/--no-write",
    default=True,
    help="Write the result to FOLDER/gate.json (needed by `wavehub push`).",
)
def gate(folder, sizes, data, img_size, n_train, n_test, steps, margin, device, write) -> None:
    """The quality gate: frozen-feature probe and a quick fine-tune vs timm's random init at each size.

    Passes only if the learngene is at least as good as random init on both, at every size; writes gate.json
    (bound to the tensor file's sha256), which `wavehub push` requires."""
    from ..errors import SpecError
    from ..gate import GateFailedError, run_gate, write_record

    try:
        pairs = tuple(tuple(int(v) for v in s.lower().split("x")) for s in sizes.split(",") if s.strip())
        assert pairs and all(len(p) == 2 for p in pairs)
    except (ValueError, AssertionError):
        raise SpecError(
            f"--sizes {sizes!r} is not a list of DEPTHxWIDTH", "Use e.g. --sizes 4x192,6x384."
        ) from None
    res = run_gate(
        str(folder),
        sizes=pairs,
        dataset=data,
        img_size=img_size or None,
        n_train=n_train,
        n_test=n_test,
        steps=steps,
        margin=margin,
        device=device,
    )
    res.command = " ".join(
        [
            "wavehub gate",
            str(folder),
            f"--sizes {sizes}",
            f"--data {data}",
            f"--img-size {img_size}",
            f"--n-train {n_train}",
            f"--n-test {n_test}",
            f"--steps {steps}",
            f"--margin {margin}",
        ]
    )
    click.echo(res.table())
    if write and Path(folder).is_dir():
        click.echo(f"wrote {write_record(folder, res)}")
    if not res.passed:
        raise GateFailedError(
            f"{folder} is below timm's random init at "
            + ", ".join(f"{s.depth}x{s.width}" for s in res.sizes if not s.passed),
            "Do not publish it: add templates, distil longer, or fit scalers (see the table).",
        )
    click.echo("gate passed")
