"""``wavehub cache ls | verify | clean | rm``: the learngenes in the Hugging Face cache."""

from __future__ import annotations

import click

from ._cli_utils import Arg, group

__all__ = ["cache"]


@group(
    help="The learngenes in the Hugging Face cache (HF_HOME / HF_HUB_CACHE).",
    epilog="Examples:\n\n  wavehub cache ls\n\n  wavehub cache verify --repair\n\n"
    "  wavehub cache rm hf-hub:my-org/my-learngene\n\n  wavehub cache clean",
)
def cache() -> None:
    pass


@cache.command("ls", epilog="Example: wavehub cache ls")
def cache_ls() -> None:
    """List cached learngenes: repo, revisions and refs, size."""
    from .. import hub

    rows = hub.cache_ls()
    if not rows:
        click.echo("no learngenes in the cache")
    for r in rows:
        revs = ", ".join(f"{v['commit'][:10]}({'/'.join(v['refs']) or '-'})" for v in r["revisions"]) or "-"
        part = (
            f"  + {r['partial_files']} partial download(s), {r['partial_size'] / 1e6:.1f} MB"
            if r["partial_files"]
            else ""
        )
        click.echo(f"{r['repo_id']}  {r['size'] / 1e6:.1f} MB  {revs}{part}")
    n = sum(r["partial_files"] for r in rows)
    if n:
        click.echo(
            f"{n} partial download(s) from interrupted pulls: `wavehub cache clean` removes them "
            "(`wavehub cache rm NAME` removes them with the learngene)"
        )


@cache.command("verify", epilog="Examples:\n\n  wavehub cache verify\n\n  wavehub cache verify --repair")
@click.option("--repair", is_flag=True, help="Re-download corrupted learngenes.")
def cache_verify(repair: bool) -> None:
    """Check the sha256 of every cached learngene; exit 1 if any is still corrupt."""
    from .. import hub
    from ..errors import IntegrityError

    rows = hub.cache_verify(repair=repair)
    if not rows:
        click.echo("no learngenes in the cache")
    for r in rows:
        click.echo(f"{r['repo_id']}@{r['commit'][:10]}: {r['status']}")
    bad = sum(r["status"].startswith("corrupt") for r in rows)
    if bad:
        if not repair:
            remedy = "Run `wavehub cache verify --repair` (needs the Hub) or `wavehub cache rm NAME`."
        elif hub.is_offline():
            remedy = (
                "A repair downloads a clean copy: unset HF_HUB_OFFLINE and run `wavehub cache verify "
                "--repair` on a connected machine, or `wavehub cache rm NAME`."
            )
        else:
            remedy = "Check your network and HF_ENDPOINT, then run it again; or `wavehub cache rm NAME`."
        raise IntegrityError(f"{bad} cached learngene revision(s) are corrupt", remedy)


@cache.command("clean", epilog="Example: wavehub cache clean")
def cache_clean() -> None:
    """Delete the partial downloads interrupted pulls left in the cache (none that a running pull is writing)."""
    from .. import hub

    n, size = hub.cache_clean()
    click.echo(f"removed {n} partial download(s), {size / 1e6:.1f} MB")


@cache.command(
    "rm",
    epilog="Examples:\n\n  wavehub cache rm hf-hub:my-org/my-learngene\n\n"
    "  wavehub cache rm hf-hub:my-org/my-learngene --revision v1.0",
)
@click.argument("name", cls=Arg, help="Zoo name, hf-hub:org/repo, or org/repo.")
@click.option("--revision", help="Only this revision (commit, branch or tag).")
def cache_rm(name: str, revision: str | None) -> None:
    """Delete a learngene from the cache (all revisions unless --revision)."""
    from .. import hub

    n = hub.cache_rm(name, revision)
    click.echo(
        f"removed {n} revision(s) of {name} (and its partial downloads)"
        if revision is None
        else f"removed {n} revision(s) of {name}"
    )
