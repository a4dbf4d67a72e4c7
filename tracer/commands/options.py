"""Options and arguments several commands share, spelled once."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
JsonOutOpt = Annotated[Optional[str], typer.Option("--json-out", help="Write the JSON to this file (- for stdout): "
                       "what the traced program prints stays apart from it.", show_default=False, metavar="FILE")]
ReportJsonOutOpt = Annotated[Optional[str], typer.Option("--json-out", help="Write the JSON to this file (- for "
                             "stdout).", show_default=False, metavar="FILE")]
TopOpt = Annotated[int, typer.Option("--top", "-n", min=1, help="How many rows in each top-N table.")]
TranslatorOpt = Annotated[bool, typer.Option("--include-translator", help="Count a binfmt_misc translator's "
                          "own bindings (qemu's) with the translated program's.")]
SessionArg = Annotated[Path, typer.Argument(help="A session directory written by `gotrace bind`.",
                                            show_default=False)]


def stdout_console():
    """stdout's console, for commands that render tables."""
    from rich.console import Console

    return Console(highlight=False)
