"""What `gotrace bind` does once its options are parsed.

Shared by the Typer command (bind.py) and the console script's plain-bind
path (plain_bind.py), so it imports neither Typer nor click: for a plain
``gotrace bind -- CMD`` they are never loaded, and the command starts ~40 ms sooner.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import GotraceError
from .output import check_json_out, emit_json, err_console, print_error


def run_bind(command: list[str] | None, output: Path | None = None, backend: str = "auto",
             arch: str | None = None, register_binfmt: bool = False, attach: int | None = None,
             force: bool = False, quiet: bool = False, as_json: bool = False,
             json_out: str | None = None) -> int:
    """Trace, save, print the summary; the exit code gotrace should end with.
    Anticipated failures raise GotraceError (one line and its code)."""
    from .. import heavy
    from ..capture.background import also_preload
    from ..capture.choose import NAMES
    from ..capture.run import bind
    from ..capture.sink import Progress
    from ..render.live import LiveLine

    # needed once the command has run: imported by the preload thread while it runs
    also_preload("tracer.analysis.report", "tracer.render.report")
    heavy.after_import("pyarrow", heavy.pyarrow_without_pandas)  # this process never needs pandas

    if backend not in NAMES:
        raise GotraceError(f"unknown backend {backend!r}; choose one of {', '.join(NAMES)}")
    if attach is not None and command:
        raise GotraceError("give either --pid PID or a command after --, not both")
    if attach is None and not command:
        raise GotraceError("no command given: put it after --, e.g. gotrace bind -- go build")
    check_json_out(json_out)
    progress = Progress()
    live = LiveLine(progress) if (not quiet and sys.stderr.isatty()) else None

    def on_choice(text: str) -> None:
        if live is not None:  # on a terminal say it now; otherwise in the summary
            err_console.print(f"[dim]gotrace: {text}[/]")
            live.start()

    def on_warning(text: str) -> None:  # before the command runs: what it will not show
        from rich.markup import escape

        err_console.print(f"[bold yellow]gotrace: warning:[/] {escape(text)}")

    try:
        result = bind(command or [], out=output, backend=backend, force=force, progress=progress,
                      on_choice=on_choice, attach=attach, arch=arch, register_binfmt=register_binfmt,
                      on_warning=on_warning)
    finally:
        if live is not None:
            live.stop()
    from ..render.report import render_summary

    if result.write_error:
        print_error(f"session incomplete: {result.write_error}")
    try:
        report = result.report()
    except GotraceError as exc:  # the command's exit code still wins
        print_error(f"cannot summarise the session: {exc.message}")
        return result.exit_code or 1
    if not as_json and json_out != "-":
        render_summary(report, err_console, show_choice=live is None)
    try:
        emit_json(report, as_json, json_out)
    except GotraceError as exc:  # the command's exit code still wins
        print_error(exc.message)
        return result.exit_code or 1
    return result.exit_code
