"""``wavehub list | info | pull | gate | push | cache``: the zoo and the Hub from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .cli import app

__all__ = ["list_cmd", "info", "pull", "gate", "push", "cache_app"]

cache_app = typer.Typer(help="The learngenes in the Hugging Face cache (HF_HOME / HF_HUB_CACHE).",
                        no_args_is_help=True,
                        epilog="Examples:\n\n  wavehub cache ls\n\n  wavehub cache verify --repair\n\n"
                        "  wavehub cache rm hf-hub:my-org/my-learngene\n\n  wavehub cache clean")
app.add_typer(cache_app, name="cache")


def _status(e) -> str:
    """bundled | published:org/repo@rev | recipe (no weights exist yet)."""
    return f"published:{e.repo_id}@{e.revision}" if e.status == "published" else e.status


def _cached(e) -> str:
    if e.status == "recipe":
        return "-"
    if e.bundled:
        return "bundled"
    # not huggingface_hub's: importing its download client would double `list`'s time
    from .hfcache import try_to_load_from_cache

    if e.repo_id:
        hit = try_to_load_from_cache(e.repo_id, "learngene.safetensors", revision=e.revision)
        if isinstance(hit, str):
            return "cached"
    return "-"


@app.command("list", epilog="Examples:\n\n  wavehub list\n\n  wavehub list 'dinov2*'")
def list_cmd(pattern: str = typer.Argument("*", help="Glob over learngene names (a plain word matches "
                                           "anywhere in the name).")) -> None:
    """The zoo: name, status (bundled / published:repo@revision / recipe = no weights yet), method, ancestry,
    sizes served, parameters, how many sizes its bank pre-fits, and whether it is available here."""
    from .errors import LearngeneNotFoundError
    from .zoo import list_entries

    entries = list_entries(pattern if any(c in pattern for c in "*?[") else f"*{pattern}*")
    if not entries:
        raise LearngeneNotFoundError(f"no learngene in the zoo matches {pattern!r}", "Run `wavehub list`.")
    rows = [("name", "status", "method", "ancestry", "widths", "depths", "params", "bank", "available")]
    for e in entries:
        rows.append((e.name, _status(e), e.method, e.ancestry, str(e.widths or "-"), str(e.depths or "-"),
                     f"{e.params:,}" if e.params else "-", f"{len(e.bank)} sizes" if e.bank else "-", _cached(e)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@app.command(epilog="Examples:\n\n  wavehub info dinov2s-learngene\n\n  wavehub info ./my-learngene")
def info(name: str = typer.Argument(..., help="Zoo name, path, local-dir:PATH or hf-hub:org/repo[@rev].")) -> None:
    """A learngene's model-card metadata and where it resolves (a non-zoo name is loaded and described)."""
    from .zoo import get_entry

    try:
        e = get_entry(name.split("@")[0])
        meta = dict(e.metadata)
    except Exception:  # noqa: BLE001 - not a zoo name: show what the folder/repo says
        e, meta = None, {}
    if e is None:
        from .api import load_learngene, resolve_path

        lg = load_learngene(name)
        meta = {"name": lg.name, "method": lg.method, "aux": lg.aux, "sha256": lg.sha256, "source": lg.source,
                "path": str(resolve_path(name).resolve())}
    typer.echo(json.dumps(meta, indent=2, default=str))
    if e is not None:  # a folder or repo: its path is in the JSON above ("path")
        typer.echo(f"timm name: {e.timm_name}")
        typer.echo(f"status: {e.where}")
        typer.echo(f"available: {_cached(e)}")
        typer.echo(f"card: {e.card_path}")
        typer.echo(f"resolves to: {_resolves_to(name, e)}")
        typer.echo(f"bank (pre-fitted sizes): {', '.join(e.bank) if e.bank else 'none'}")


def _resolves_to(name: str, e) -> str:
    """The local folder a zoo name loads from, or what would be fetched (never downloads)."""
    if e.status == "recipe":
        return "nothing: an unpublished recipe (build it with the command in its card)"
    from . import hub

    try:
        t = hub.parse_name(name)
    except Exception as err:  # noqa: BLE001 - describe, do not fail, in an informational command
        return f"nothing ({err})"
    if t.path is not None:
        return str(t.path)
    from .hfcache import try_to_load_from_cache

    hit = try_to_load_from_cache(t.repo_id, "learngene.safetensors", revision=t.revision)
    if isinstance(hit, str):
        return str(Path(hit).parent)
    return f"hf-hub:{t.repo_id}@{t.revision} (not cached: `wavehub pull {e.name}` downloads it)"


@app.command(epilog="Examples:\n\n  wavehub pull dinov2s-learngene\n\n"
             "  wavehub pull hf-hub:my-org/my-learngene@v1.0 --quiet\n\n"
             "  wavehub pull dinov2s-learngene --depth 8 --width 384 --num-classes 10 --out vit-d8-w384\n\n"
             "Honours HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE=1 like every HF library.")
def pull(
    name: str = typer.Argument(..., help="Zoo name[@revision], hf-hub:org/repo[@rev], or a path."),
    revision: str = typer.Option(None, help="Branch, tag or commit (default: the zoo's pinned revision)."),
    force: bool = typer.Option(False, "--force", help="Re-download even if cached; with --out, also replace a "
                               "folder that is not a previous wavehub export."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (like HF_HUB_OFFLINE=1)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    depth: int = typer.Option(None, help="Also write a model of this depth (needs --out)."),
    width: int = typer.Option(None, help="... and this width."),
    num_classes: int = typer.Option(None, "--num-classes", help="Classifier size of the written model."),
    img_size: int = typer.Option(None, "--img-size", help="Input size of the written model."),
    out: Path = typer.Option(None, help="Write a ready-to-train model folder here."),
    format: str = typer.Option("timm", help="timm (local-dir:/hf-hub: folder) or transformers."),
    token: str = typer.Option(None, help="Hub token for a private repo (default: HF_TOKEN or the stored login)."),
) -> None:
    """Download and verify a learngene into the HF cache; with --out, also write a ready-to-train model folder.

    Prints the local folder. The sha256 is checked against the zoo card and the blob name; a corrupted cached
    copy is re-downloaded once."""
    from . import api

    kw = {"img_size": img_size} if img_size else {}
    path = api.pull(name, revision=revision, force=force, offline=True if offline else None, progress=not quiet,
                    token=token, depth=depth, width=width, num_classes=num_classes, out=out, format=format, **kw)
    typer.echo(str(path))


@app.command(epilog="Examples:\n\n  wavehub gate ./my-learngene\n\n"
             "  wavehub gate ./my-learngene --sizes 4x192,6x384,12x384 --device cuda\n\n"
             "Exit code 1 (and a failing gate.json) when the learngene is below timm's random init.")
def gate(
    folder: Path = typer.Argument(..., help="A learngene folder (or any name `wavehub info` resolves)."),
    sizes: str = typer.Option("4x192,6x384", help="Comma-separated DEPTHxWIDTH target sizes."),
    data: str = typer.Option("fashion-mnist", help="fashion-mnist | mnist | digits | an ImageFolder PATH."),
    img_size: int = typer.Option(56, "--img-size", help="Input size in pixels (0: the learngene's)."),
    n_train: int = typer.Option(2000, "--n-train", help="Training images (probe and fine-tune)."),
    n_test: int = typer.Option(1000, "--n-test", help="Held-out test images."),
    steps: int = typer.Option(30, help="Fine-tune steps of batch 32 (AdamW, lr 1e-4) for both inits."),
    margin: float = typer.Option(0.0, help="Accuracy the learngene may trail random init by (0.01 = 1 point)."),
    device: str = typer.Option("cpu", help="auto | cpu | cuda | cuda:N."),
    write: bool = typer.Option(True, help="Write the result to FOLDER/gate.json (needed by `wavehub push`)."),
) -> None:
    """The quality gate: frozen-feature probe and a quick fine-tune vs timm's random init at each size.

    Passes only if the learngene is at least as good as random init on both, at every size; writes gate.json
    (bound to the tensor file's sha256), which `wavehub push` requires."""
    from .errors import SpecError
    from .gate import GateFailedError, run_gate, write_record

    try:
        pairs = tuple(tuple(int(v) for v in s.lower().split("x")) for s in sizes.split(",") if s.strip())
        assert pairs and all(len(p) == 2 for p in pairs)
    except (ValueError, AssertionError):
        raise SpecError(f"--sizes {sizes!r} is not a list of DEPTHxWIDTH", "Use e.g. --sizes 4x192,6x384.") from None
    res = run_gate(str(folder), sizes=pairs, dataset=data, img_size=img_size or None, n_train=n_train,
                   n_test=n_test, steps=steps, margin=margin, device=device)
    res.command = " ".join(["wavehub gate", str(folder), f"--sizes {sizes}", f"--data {data}",
                            f"--img-size {img_size}", f"--n-train {n_train}", f"--n-test {n_test}",
                            f"--steps {steps}", f"--margin {margin}"])
    typer.echo(res.table())
    if write and Path(folder).is_dir():
        typer.echo(f"wrote {write_record(folder, res)}")
    if not res.passed:
        raise GateFailedError(f"{folder} is below timm's random init at "
                              + ", ".join(f"{s.depth}x{s.width}" for s in res.sizes if not s.passed),
                              "Do not publish it: add templates, distil longer, or fit scalers (see the table).")
    typer.echo("gate passed")


@app.command(epilog="Examples:\n\n  wavehub gate ./my-learngene && wavehub push ./my-learngene my-org/my-learngene "
             "--tag v1.0\n\n  wavehub push ./my-learngene my-org/my-learngene --branch dev --private --force")
def push(
    folder: Path = typer.Argument(..., help="A learngene folder (learngene.safetensors, config.json, README.md)."),
    repo_id: str = typer.Argument(..., help="Target repo, org/name."),
    tag: str = typer.Option(None, help="Create this tag on the new commit."),
    branch: str = typer.Option(None, help="Push to this branch (created if needed)."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private."),
    token: str = typer.Option(None, help="Hub token (default: HF_TOKEN or the stored login)."),
    message: str = typer.Option(None, help="Commit message."),
    force: bool = typer.Option(False, "--force", help="Push without a passing quality-gate record (gate.json)."),
) -> None:
    """Validate a learngene folder and upload it to a Hub repo (created if needed). Refused before anything is
    sent: an artifact that fails validation, and (unless --force) one without a passing `wavehub gate` record
    for exactly this tensor file."""
    from . import hub
    from .api import load_learngene
    from .gate import require_passing

    lg = load_learngene(folder)  # validation errors first: they say what is wrong with the files
    if not force:
        require_passing(folder, lg.sha256)

    oid = hub.push(folder, repo_id, tag=tag, branch=branch, private=private, token=token, commit_message=message)
    typer.echo(f"pushed {folder} to {repo_id} at commit {oid}" + (f" (tag {tag})" if tag else ""))


@cache_app.command("ls", epilog="Example: wavehub cache ls")
def cache_ls() -> None:
    """List cached learngenes: repo, revisions and refs, size."""
    from . import hub

    rows = hub.cache_ls()
    if not rows:
        typer.echo("no learngenes in the cache")
    for r in rows:
        revs = ", ".join(f"{v['commit'][:10]}({'/'.join(v['refs']) or '-'})" for v in r["revisions"]) or "-"
        part = (f"  + {r['partial_files']} partial download(s), {r['partial_size'] / 1e6:.1f} MB"
                if r["partial_files"] else "")
        typer.echo(f"{r['repo_id']}  {r['size'] / 1e6:.1f} MB  {revs}{part}")
    n = sum(r["partial_files"] for r in rows)
    if n:
        typer.echo(f"{n} partial download(s) from interrupted pulls: `wavehub cache clean` removes them "
                   "(`wavehub cache rm NAME` removes them with the learngene)")


@cache_app.command("verify", epilog="Examples:\n\n  wavehub cache verify\n\n  wavehub cache verify --repair")
def cache_verify(repair: bool = typer.Option(False, "--repair", help="Re-download corrupted learngenes.")) -> None:
    """Check the sha256 of every cached learngene; exit 1 if any is still corrupt."""
    from . import hub
    from .errors import IntegrityError

    rows = hub.cache_verify(repair=repair)
    if not rows:
        typer.echo("no learngenes in the cache")
    for r in rows:
        typer.echo(f"{r['repo_id']}@{r['commit'][:10]}: {r['status']}")
    bad = sum(r["status"].startswith("corrupt") for r in rows)
    if bad:
        if not repair:
            remedy = "Run `wavehub cache verify --repair` (needs the Hub) or `wavehub cache rm NAME`."
        elif hub.is_offline():
            remedy = ("A repair downloads a clean copy: unset HF_HUB_OFFLINE and run `wavehub cache verify "
                      "--repair` on a connected machine, or `wavehub cache rm NAME`.")
        else:
            remedy = "Check your network and HF_ENDPOINT, then run it again; or `wavehub cache rm NAME`."
        raise IntegrityError(f"{bad} cached learngene revision(s) are corrupt", remedy)


@cache_app.command("clean", epilog="Example: wavehub cache clean")
def cache_clean() -> None:
    """Delete the partial downloads interrupted pulls left in the cache (none that a running pull is writing)."""
    from . import hub

    n, size = hub.cache_clean()
    typer.echo(f"removed {n} partial download(s), {size / 1e6:.1f} MB")


@cache_app.command("rm", epilog="Examples:\n\n  wavehub cache rm hf-hub:my-org/my-learngene\n\n"
                   "  wavehub cache rm hf-hub:my-org/my-learngene --revision v1.0")
def cache_rm(name: str = typer.Argument(..., help="Zoo name, hf-hub:org/repo, or org/repo."),
             revision: str = typer.Option(None, help="Only this revision (commit, branch or tag).")) -> None:
    """Delete a learngene from the cache (all revisions unless --revision)."""
    from . import hub

    n = hub.cache_rm(name, revision)
    typer.echo(f"removed {n} revision(s) of {name} (and its partial downloads)" if revision is None
               else f"removed {n} revision(s) of {name}")
