"""``wavehub bench quality``: run the repository's init-quality benchmark (needs a source checkout).

The benchmarks are not part of the installed package, so the command loads ``benchmarks/quality.py`` by path
next to this package and passes every argument through (``wavehub bench quality --quick``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import typer

from .cli import app
from .errors import WavehubError

__all__ = ["bench_app", "quality", "benchmark_path"]

_EXAMPLES = ("Examples:\n\n  wavehub bench quality --quick\n\n  wavehub bench quality --jobs 2 --sizes 4x192 8x384\n\n"
             "  wavehub bench quality --report")
bench_app = typer.Typer(help="Run the repository's benchmarks (from a source checkout).", no_args_is_help=True,
                        epilog=_EXAMPLES)
app.add_typer(bench_app, name="bench")


def benchmark_path(name: str) -> Path:
    """``benchmarks/<name>.py`` of the checkout this package was installed from (editable installs)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    if not path.is_file():
        raise WavehubError(f"benchmark {name!r} not found at {path}",
                           "Run it from a source checkout: git clone the wavehub repository and pip install -e .")
    return path


@bench_app.command("quality", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                   add_help_option=False)
def quality(ctx: typer.Context) -> None:
    """Every init method x target size x dataset x seed: fine-tune curves, linear probes, storage, plots.

    All options go to benchmarks/quality.py: --quick, --tiny, --report, --jobs N, --sizes ..., --help."""
    if any(a in ("--help", "-h") for a in ctx.args):
        typer.echo(f"Usage: wavehub bench quality [OPTIONS of benchmarks/quality.py]\n\n{_EXAMPLES}\n")
    path = benchmark_path("quality")
    spec = importlib.util.spec_from_file_location("wavehub_bench_quality", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    try:
        rc = module.main(list(ctx.args))
    except SystemExit as e:  # argparse's --help and usage errors
        rc = e.code if isinstance(e.code, int) else 2
    if rc:
        raise typer.Exit(rc)
