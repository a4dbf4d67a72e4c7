"""Options and arguments several commands share, spelled once."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
TopOpt = Annotated[int, typer.Option("--top", "-n", min=1, help="How many rows in each top-N table.")]
SessionArg = Annotated[Path, typer.Argument(help="A session directory written by `gotrace bind`.",
                                            show_default=False)]


def stdout_console():
    """stdout's console, for commands that render tables."""
    from rich.console import Console

    return Console(highlight=False)
