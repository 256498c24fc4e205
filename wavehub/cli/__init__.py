"""The ``wavehub`` command line. Exit codes: 0 ok, 1 user error (one line, no traceback), 2 usage, 130 interrupt.

One module per command group, each defining plain click commands; :data:`COMMANDS` registers them here, in
the order ``wavehub --help`` lists them (a missing module is an ImportError, not a command that silently
vanishes). Heavy imports (torch, timm) happen inside the commands, so ``--help``, ``--version``, ``list``,
``info`` and an offline failure import neither. An unexpected exception is one line too (``WAVEHUB_DEBUG=1``
shows the traceback).
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import WavehubError
from . import bank, build, cache, extract, fit, gate, hub, zoo
from ._cli_utils import CONTEXT, Group

__all__ = ["app", "main", "COMMANDS"]

COMMANDS: dict[str, click.Command] = {
    "list": zoo.list_cmd,
    "info": zoo.info,
    "pull": hub.pull,
    "gate": gate.gate,
    "push": hub.push,
    "cache": cache.cache,
    "extract": extract.extract,
    "fit": fit.fit,
    "build": build.build,
    "bank": bank.bank,
}


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from .. import __version__

        click.echo(f"wavehub {__version__}")
        ctx.exit()


@click.group(
    "wavehub",
    cls=Group,
    context_settings=CONTEXT,
    no_args_is_help=True,
    help="Learngenes as a model zoo: materialize stock timm ViTs of any depth and width.",
    epilog="Examples:\n\n  wavehub list\n\n  wavehub pull dinov2s-learngene --depth 8 --width 384 --num-classes 10 "
    "--out vit-d8-w384\n\n  wavehub COMMAND --help   (every command has its own examples)",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Print wavehub's version and exit.",
)
def app() -> None:
    pass


for _name, _cmd in COMMANDS.items():
    app.add_command(_cmd, _name)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: turn wavehub errors into one line and exit code 1."""
    try:
        rc = app.main(args=argv, prog_name="wavehub", standalone_mode=False)
    except WavehubError as e:
        click.secho(f"error: {e.message}", err=True, fg="red")
        if e.remedy:
            click.echo(f"  hint: {e.remedy}", err=True)
        if os.environ.get("WAVEHUB_DEBUG"):
            raise
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.Abort as e:  # click turns Ctrl-C inside a command into Abort
        if isinstance(e.__cause__, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            return 130
        return 1
    except click.ClickException as e:  # usage errors: their own message and exit code (2)
        e.show()
        return e.exit_code
    except Exception as e:
        if os.environ.get("WAVEHUB_DEBUG"):
            raise
        return _unexpected(e)
    return rc if isinstance(rc, int) else 0  # standalone_mode=False returns --help's exit code


def _unexpected(e: BaseException) -> int:
    """The promise is one line and exit 1 for every failure: the system's (disk, memory) and wavehub's own bugs."""
    text = " ".join(str(e).split())[:300]
    if isinstance(e, (OSError, MemoryError)):
        click.secho(f"error: {type(e).__name__}: {text}", err=True, fg="red")
        click.echo("  hint: Check free disk space, memory and permissions, then retry.", err=True)
    else:
        click.secho(f"error: internal error ({type(e).__name__}: {text})", err=True, fg="red")
        click.echo(
            "  hint: This is a wavehub bug: rerun with WAVEHUB_DEBUG=1 for the traceback and report it.",
            err=True,
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
