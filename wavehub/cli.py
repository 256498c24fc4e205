"""The ``wavehub`` command line. Exit codes: 0 ok, 1 user error (one line, no traceback), 2 usage.

Subcommands live in small ``cli_*.py`` modules that register onto :data:`app`; heavy imports (torch, timm)
happen inside the commands, so ``--help``, ``--version``, ``list``, ``info`` and an offline failure import
neither. An unexpected exception is one line too (``WAVEHUB_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
import sys

import typer

from .errors import WavehubError

__all__ = ["app", "main"]

app = typer.Typer(
    name="wavehub",
    help="Learngenes as a model zoo: materialize stock timm ViTs of any depth and width.",
    epilog="Examples:\n\n  wavehub list\n\n  wavehub pull dinov2s-learngene --depth 8 --width 384 --num-classes 10 "
    "--out vit-d8-w384\n\n  wavehub COMMAND --help   (every command has its own examples)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"wavehub {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print wavehub's version and exit.")) -> None:
    pass


def _register() -> None:
    # Each module adds its commands to `app` at import; import order sets the order in --help.
    import importlib

    for name in ("cli_hub", "cli_extract", "cli_fit", "cli_build", "cli_bank", "cli_bench"):
        importlib.import_module(f"{__package__}.{name}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: turn wavehub errors into one line and exit code 1."""
    _register()
    try:
        rc = app(args=argv, standalone_mode=False)
    except WavehubError as e:
        typer.secho(f"error: {e.message}", err=True, fg="red")
        if e.remedy:
            typer.echo(f"  hint: {e.remedy}", err=True)
        if os.environ.get("WAVEHUB_DEBUG"):
            raise
        return 1
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        return 1
    except Exception as e:  # click usage errors carry their own exit code (2); typer vendors its own click
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            return e.exit_code
        if os.environ.get("WAVEHUB_DEBUG"):
            raise
        return _unexpected(e)
    return rc if isinstance(rc, int) else 0  # a command's typer.Exit(n) comes back as a return value


def _unexpected(e: BaseException) -> int:
    """The promise is one line and exit 1 for every failure: the system's (disk, memory) and wavehub's own bugs."""
    text = " ".join(str(e).split())[:300]
    if isinstance(e, (OSError, MemoryError)):
        typer.secho(f"error: {type(e).__name__}: {text}", err=True, fg="red")
        typer.echo("  hint: Check free disk space, memory and permissions, then retry.", err=True)
    else:
        typer.secho(f"error: internal error ({type(e).__name__}: {text})", err=True, fg="red")
        typer.echo("  hint: This is a wavehub bug: rerun with WAVEHUB_DEBUG=1 for the traceback and report it.",
                   err=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
