"""``wavehub pull | push``: a learngene from the Hub into the cache (optionally a model folder), and back.

Both call the public API (``wavehub.pull`` / ``wavehub.push``), not the hub module: writing a model folder is
the API's job, the hub only fetches."""

from __future__ import annotations

import click

from ._cli_utils import PATH, Arg, command

__all__ = ["pull", "push"]


@command(
    epilog="Examples:\n\n  wavehub pull dinov2s-learngene\n\n"
    "  wavehub pull hf-hub:my-org/my-learngene@v1.0 --quiet\n\n"
    "  wavehub pull dinov2s-learngene --depth 8 --width 384 --num-classes 10 --out vit-d8-w384\n\n"
    "Honours HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE=1 like every HF library."
)
@click.argument("name", cls=Arg, help="Zoo name[@revision], hf-hub:org/repo[@rev], or a path.")
@click.option("--revision", help="Branch, tag or commit (default: the zoo's pinned revision).")
@click.option(
    "--force",
    is_flag=True,
    help="Re-download even if cached; with --out, also replace a folder that "
    "is not a previous wavehub export.",
)
@click.option("--offline", is_flag=True, help="Never touch the network (like HF_HUB_OFFLINE=1).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--depth", type=int, help="Also write a model of this depth (needs --out).")
@click.option("--width", type=int, help="... and this width.")
@click.option("--num-classes", type=int, help="Classifier size of the written model.")
@click.option("--img-size", type=int, help="Input size of the written model.")
@click.option("--out", type=PATH, help="Write a ready-to-train model folder here.")
@click.option("--format", default="timm", help="timm (local-dir:/hf-hub: folder) or transformers.")
@click.option("--token", help="Hub token for a private repo (default: HF_TOKEN or the stored login).")
def pull(
    name, revision, force, offline, quiet, depth, width, num_classes, img_size, out, format, token
) -> None:
    """Download and verify a learngene into the HF cache; with --out, also write a ready-to-train model folder.

    Prints the local folder. The sha256 is checked against the zoo card and the blob name; a corrupted cached
    copy is re-downloaded once."""
    import wavehub

    kw = {"img_size": img_size} if img_size else {}
    path = wavehub.pull(
        name,
        revision=revision,
        force=force,
        offline=True if offline else None,
        progress=not quiet,
        token=token,
        depth=depth,
        width=width,
        num_classes=num_classes,
        out=out,
        format=format,
        **kw,
    )
    click.echo(str(path))


@command(
    epilog="Examples:\n\n  wavehub gate ./my-learngene && wavehub push ./my-learngene my-org/my-learngene "
    "--tag v1.0\n\n  wavehub push ./my-learngene my-org/my-learngene --branch dev --private --force"
)
@click.argument(
    "folder", cls=Arg, type=PATH, help="A learngene folder (learngene.safetensors, config.json, README.md)."
)
@click.argument("repo_id", cls=Arg, help="Target repo, org/name.")
@click.option("--tag", help="Create this tag on the new commit.")
@click.option("--branch", help="Push to this branch (created if needed).")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--token", help="Hub token (default: HF_TOKEN or the stored login).")
@click.option("--message", help="Commit message.")
@click.option("--force", is_flag=True, help="Push without a passing quality-gate record (gate.json).")
def push(folder, repo_id, tag, branch, private, token, message, force) -> None:
    """Validate a learngene folder and upload it to a Hub repo (created if needed). Refused before anything is
    sent: an artifact that fails validation, and (unless --force) one without a passing `wavehub gate` record
    for exactly this tensor file."""
    import wavehub

    from ..gate import require_passing

    lg = wavehub.load_learngene(folder)  # validation errors first: they say what is wrong with the files
    if not force:
        require_passing(folder, lg.sha256)

    oid = wavehub.push(
        folder, repo_id, tag=tag, branch=branch, private=private, token=token, commit_message=message
    )
    click.echo(f"pushed {folder} to {repo_id} at commit {oid}" + (f" (tag {tag})" if tag else ""))
