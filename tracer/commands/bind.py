"""gotrace bind: run a command and record every dynamic-linker binding."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import JsonOpt, err_console, handles_errors
from ..errors import GotraceError

# The library modules are imported inside the command: every millisecond before
# the traced command starts is overhead on its wall time (and on `gotrace --help`).

HELP = """Run CMD, and every process it spawns, recording each symbol binding of the dynamic linker.

Put the command after `--`. Examples:

  gotrace bind -- go build ./...

  gotrace bind -o sess --backend ld-debug -- go test ./pkg

  gotrace bind --backend lldb -- ./hello        (one process, through lldb)

  gotrace bind --attach 4242                     (a running process, from now on)

  gotrace bind --arch arm64 -- ./hello-arm64     (translated: qemu-user via binfmt_misc)

  gotrace bind --arch arm64 --register-binfmt -- go build   (the arm64 go toolchain, translated)

Backends: bpftrace (root; latency, failed lookups, full process tree),
ld-debug (no root; glibc's LD_DEBUG), lldb (one process, no descendants;
latency corrected for lldb's own stop cost, calibrated in the same run;
works where uprobes cannot), auto (bpftrace if it can run, else ld-debug;
never lldb, except for --attach).
The command's exit code becomes gotrace's; Ctrl-C saves the session marked incomplete.
"""


@handles_errors
def bind_command(
    command: Annotated[Optional[list[str]], typer.Argument(help="The command and its arguments, after --.",
                                                           show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Session directory to create "
                      "[default: gotrace-sessions/<time>-<cmd>].", show_default=False)] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help="auto | bpftrace | ld-debug | lldb.")] = "auto",
    arch: Annotated[Optional[str], typer.Option("--arch", help="Run the command as this architecture (arm64, "
                    "x86_64) through its binfmt_misc translator; `go` becomes that arch's toolchain. Backend: ld-debug.",
                    show_default=False)] = None,
    register_binfmt: Annotated[bool, typer.Option("--register-binfmt", help="With --arch: register qemu-user's "
                               "binfmt_misc handler for this run if none is (root; removed afterwards).")] = False,
    attach: Annotated[Optional[int], typer.Option("--attach", "-p", help="Trace this running process from now on "
                      "(lldb backend) instead of starting a command; Ctrl-C detaches.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing session directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live status line.")] = False,
    as_json: JsonOpt = False,
) -> None:
    from .. import backends, lazy
    from ..capture import Progress, bind
    from ..live import LiveLine

    # needed once the command has run: imported by the preload thread while it runs
    lazy.also_preload("tracer.report", "tracer.render")
    lazy.after_import("pyarrow", lazy.pyarrow_without_pandas)  # this process never needs pandas

    if backend not in backends.NAMES:
        raise GotraceError(f"unknown backend {backend!r}; choose one of {', '.join(backends.NAMES)}")
    if attach is not None and command:
        raise GotraceError("give either --attach PID or a command after --, not both")
    if attach is None and not command:
        raise GotraceError("no command given: put it after --, e.g. gotrace bind -- go build")
    progress = Progress()
    live = LiveLine(progress) if (not quiet and sys.stderr.isatty()) else None

    def on_choice(text: str) -> None:
        if live is not None:  # on a terminal say it now; otherwise in the summary
            err_console.print(f"[dim]gotrace: {text}[/]")
            live.start()

    try:
        result = bind(command or [], out=output, backend=backend, force=force, progress=progress,
                      on_choice=on_choice, attach=attach, arch=arch, register_binfmt=register_binfmt)
    finally:
        if live is not None:
            live.stop()
    from ..render import render_summary

    if result.write_error:
        err_console.print(f"[bold red]gotrace:[/] session incomplete: {result.write_error}")
    try:
        report = result.report()
    except GotraceError as exc:  # the command's exit code still wins
        err_console.print(f"[bold red]gotrace:[/] cannot summarise the session: {exc.message}")
        raise typer.Exit(result.exit_code or 1)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        render_summary(report, err_console, show_choice=live is None)
    raise typer.Exit(result.exit_code)
