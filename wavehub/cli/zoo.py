"""``wavehub list | info``: the zoo as a table, and one learngene's card metadata and where it resolves."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._cli_utils import Arg, command

__all__ = ["list_cmd", "info"]


def _status(e) -> str:
    """bundled | published:org/repo@rev | recipe (no weights exist yet)."""
    return f"published:{e.repo_id}@{e.revision}" if e.status == "published" else e.status


def _cached(e) -> str:
    if e.status == "recipe":
        return "-"
    if e.bundled:
        return "bundled"
    # not huggingface_hub's: importing its download client would double `list`'s time
    from ..hfcache import try_to_load_from_cache

    if e.repo_id:
        hit = try_to_load_from_cache(e.repo_id, "learngene.safetensors", revision=e.revision)
        if isinstance(hit, str):
            return "cached"
    return "-"


@command("list", epilog="Examples:\n\n  wavehub list\n\n  wavehub list 'dinov2*'")
@click.argument(
    "pattern",
    cls=Arg,
    default="*",
    required=False,
    help="Glob over learngene names (a plain word matches anywhere in the name).",
)
def list_cmd(pattern: str) -> None:
    """The zoo: name, status (bundled / published:repo@revision / recipe = no weights yet), method, ancestry,
    sizes served, parameters, how many sizes its bank pre-fits, and whether it is available here."""
    from ..errors import LearngeneNotFoundError
    from ..zoo import list_entries

    entries = list_entries(pattern if any(c in pattern for c in "*?[") else f"*{pattern}*")
    if not entries:
        raise LearngeneNotFoundError(f"no learngene in the zoo matches {pattern!r}", "Run `wavehub list`.")
    rows = [("name", "status", "method", "ancestry", "widths", "depths", "params", "bank", "available")]
    for e in entries:
        rows.append(
            (
                e.name,
                _status(e),
                e.method,
                e.ancestry,
                str(e.widths or "-"),
                str(e.depths or "-"),
                f"{e.params:,}" if e.params else "-",
                f"{len(e.bank)} sizes" if e.bank else "-",
                _cached(e),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@command(epilog="Examples:\n\n  wavehub info dinov2s-learngene\n\n  wavehub info ./my-learngene")
@click.argument("name", cls=Arg, help="Zoo name, path, local-dir:PATH or hf-hub:org/repo[@rev].")
def info(name: str) -> None:
    """A learngene's model-card metadata and where it resolves (a non-zoo name is loaded and described)."""
    from ..zoo import get_entry

    try:
        e = get_entry(name.split("@")[0])
        meta = dict(e.metadata)
    except Exception:  # noqa: BLE001 - not a zoo name: show what the folder/repo says
        e, meta = None, {}
    if e is None:
        from ..api import load_learngene, resolve_path

        lg = load_learngene(name)
        meta = {
            "name": lg.name,
            "method": lg.method,
            "aux": lg.aux,
            "sha256": lg.sha256,
            "source": lg.source,
            "path": str(resolve_path(name).resolve()),
        }
    click.echo(json.dumps(meta, indent=2, default=str))
    if e is not None:  # a folder or repo: its path is in the JSON above ("path")
        click.echo(f"timm name: {e.timm_name}")
        click.echo(f"status: {e.where}")
        click.echo(f"available: {_cached(e)}")
        click.echo(f"card: {e.card_path}")
        click.echo(f"resolves to: {_resolves_to(name, e)}")
        click.echo(f"bank (pre-fitted sizes): {', '.join(e.bank) if e.bank else 'none'}")


def _resolves_to(name: str, e) -> str:
    """The local folder a zoo name loads from, or what would be fetched (never downloads)."""
    if e.status == "recipe":
        return "nothing: an unpublished recipe (build it with the command in its card)"
    from .. import hub

    try:
        t = hub.parse_name(name)
    except Exception as err:  # noqa: BLE001 - describe, do not fail, in an informational command
        return f"nothing ({err})"
    if t.path is not None:
        return str(t.path)
    from ..hfcache import try_to_load_from_cache

    hit = try_to_load_from_cache(t.repo_id, "learngene.safetensors", revision=t.revision)
    if isinstance(hit, str):
        return str(Path(hit).parent)
    return f"hf-hub:{t.repo_id}@{t.revision} (not cached: `wavehub pull {e.name}` downloads it)"
