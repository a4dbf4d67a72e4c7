"""stderr's rich console, made on first use, and the one failure line — without Typer.

Shared by the Typer commands and the console script's fast paths
(commands/console.py, commands/plain_bind.py), which must not import Typer or click.
"""
from __future__ import annotations

import os
import sys

from ..errors import one_line


class _LazyConsole:
    """A rich Console made on first use: importing rich.console costs ~35 ms,
    and `gotrace bind` must not spend it before the traced command starts."""

    def __init__(self, **options):
        self._options, self._console = options, None

    def __getattr__(self, name):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


err_console = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # one line per message, even in logs


def print_error(message: str) -> None:
    """``gotrace: message`` on stderr, the prefix in bold red on a terminal. Written
    directly, not through rich: no import for a failure, and a message holding
    brackets is never taken for markup."""
    color = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    sys.stderr.write(("\033[1;31mgotrace:\033[0m " if color else "gotrace: ") + f"{message}\n")
    sys.stderr.flush()


def report_failure(exc: BaseException) -> int:
    """Say what went wrong in one line (errors.one_line's rule); the exit code."""
    if isinstance(exc, BrokenPipeError):  # stdout's reader went away: nothing left to tell it
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except OSError:
            pass
        return 1
    message, code = one_line(exc)
    print_error(message)
    return code
