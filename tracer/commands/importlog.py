"""gotrace import: a dynamic linker's log captured elsewhere becomes a session."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import JsonOpt, ReportJsonOutOpt


def import_command(
    fmt: Annotated[str, typer.Argument(help="What wrote the log: dyld-print (a Mac's DYLD_PRINT_* output) or "
                   "ld-debug (glibc's LD_DEBUG).", metavar="dyld-print|ld-debug", show_default=False)],
    logs: Annotated[list[Path], typer.Argument(help="The log files; for ld-debug also directories of "
                    "LD_DEBUG_OUTPUT files (PREFIX.PID).", show_default=False, metavar="FILE|DIR…")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Session directory to create.",
                      show_default="gotrace-sessions/<time>-import-<format>")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing session directory.")] = False,
    as_json: JsonOpt = False,
    json_out: ReportJsonOutOpt = None,
) -> None:
    """Turn a dynamic linker's log captured elsewhere into a session.

    A Mac, a CI runner or a container without gotrace needs nothing but an
    environment variable to capture what its dynamic linker did; the session
    made from that log is read by report, compare, plot and export like any
    other. Examples:

      export DYLD_PRINT_TO_FILE=/tmp/dyld.log DYLD_PRINT_BINDINGS=1
      export DYLD_PRINT_LIBRARIES=1 DYLD_PRINT_SEGMENTS=1 DYLD_PRINT_APIS=1
      go build                                  # on the Mac, then anywhere:
      gotrace import dyld-print dyld.log -o mac-build
      LD_DEBUG=files,bindings,reloc LD_DEBUG_OUTPUT=/tmp/ld/ld make
      gotrace import ld-debug /tmp/ld -o ci-build
      gotrace report mac-build

    dyld-print reads every dyld: macOS 12 and later (dyld[PID]: lines, every
    process of one file: dyld appends their lines in 32-byte pieces; a line
    that could be more than one process's is counted, never guessed) and
    older Macs' dyld: lines without a pid (one process unless a library loaded
    again says another began). Load errors in the log ("Library not loaded",
    "Symbol not found" …) become the session's errors table: report leads with
    them, gotrace explain SESSION explains them. Every line is read or counted:
    the summary says how many were not read, with the first few verbatim; a
    file with no dyld line is refused (exit 1). ld-debug gives what `gotrace
    bind --backend ld-debug` records from the same files, and ld.so's fatal
    messages in a stderr capture as errors. Neither log has latencies or failed
    lookups; meta.json's "imported" says what such a log cannot tell.
    """
    from ..capture.imported import import_logs
    from ..analysis.report import report_session
    from ..render.report import render_summary
    from .output import check_json_out, emit_json, err_console

    check_json_out(json_out)
    result = import_logs(fmt, logs, output, force)
    report = report_session(result.session)
    if not as_json and json_out != "-":
        render_summary(report, err_console, show_choice=True)
    emit_json(report, as_json, json_out)
