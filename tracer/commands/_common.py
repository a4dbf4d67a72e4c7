"""What every command shares: option aliases and the one error handler."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from .output import print_error, report_failure  # shared with the plain-bind path

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
TopOpt = Annotated[int, typer.Option("--top", "-n", min=1, help="How many rows in each top-N table.")]
SessionArg = Annotated[Path, typer.Argument(help="A session directory written by `gotrace bind`.",
                                            show_default=False)]


def stdout_console():
    """stdout's console, for commands that render tables."""
    from rich.console import Console

    return Console(highlight=False)


def fail(message: str, code: int) -> None:
    print_error(message)
    raise typer.Exit(code)


def handles_errors(func):
    """Turn anticipated failures into one line and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except (KeyboardInterrupt, Exception) as exc:  # anticipated or a bug: one line either way
            raise typer.Exit(report_failure(exc))

    return wrapper
