"""The ``wavehub`` command line. Exit codes: 0 ok, 1 user error (one line, no traceback), 2 usage.

Subcommands live in small ``cli_*.py`` modules that register onto :data:`app`; heavy imports happen inside the
commands so ``wavehub --help`` stays fast.
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


def _register() -> None:
    # Each module adds its commands to `app` at import; import order sets the order in --help.
    for optional in ("cli_hub", "cli_extract", "cli_fit", "cli_build", "cli_bench"):
        try:
            __import__(f"{__package__}.{optional}")
        except ModuleNotFoundError as e:  # module not written yet in this checkout
            if e.name != f"{__package__}.{optional}":
                raise


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
        raise
    return rc if isinstance(rc, int) else 0  # a command's typer.Exit(n) comes back as a return value


if __name__ == "__main__":
    sys.exit(main())
