"""stderr's rich console, made on first use, without Typer.

Shared by the Typer commands and the console script's plain-bind path
(tracer/commands/plain_bind.py), which must not import Typer or click.
"""
from __future__ import annotations


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
