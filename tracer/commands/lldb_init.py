"""gotrace lldb-init: the line that loads gotrace's commands into every lldb."""
from __future__ import annotations

import json
import subprocess
import sys

import typer

from .options import JsonOpt
from ..errors import GotraceError


def lldb_init_command(
    check: bool = typer.Option(False, "--check", help="Load it into lldb now (lldb --batch) and report."),
    as_json: JsonOpt = False,
) -> None:
    """Print the line that loads gotrace's commands into lldb.

    Append it once:

      gotrace lldb-init >> ~/.lldbinit

    Inside lldb you then have `gotrace aslr`, `gotrace stubs` and `gotrace
    bind start|stop|save` (see `help gotrace` there). With --check, lldb loads
    the module now and `help gotrace` must answer.
    """
    from importlib import resources

    path = str(resources.files("tracer.lldb_plugin").joinpath("gotrace_lldb.py"))
    line = f"command script import {path}"
    checked = None
    if check:
        from ..capture.lldb.loader import FIX, lldb_binary

        lldb = lldb_binary()
        if lldb is None:
            raise GotraceError(f"lldb is not installed; {FIX}")
        out = subprocess.run([lldb, "--batch", "-o", line, "-o", "help gotrace"], capture_output=True, text=True,
                             timeout=120)
        text = out.stdout + out.stderr
        checked = "gotrace bind start" in text and "cannot load" not in text
        if not checked:
            problem = next((l for l in text.splitlines() if "gotrace:" in l or "error" in l.lower()), "no gotrace help")
            raise GotraceError(f"{lldb} could not load gotrace's commands: {problem.strip()}", 1)
    if as_json:
        sys.stdout.write(json.dumps({"line": line, "path": path, "checked": checked}) + "\n")
    else:
        sys.stdout.write(line + "\n")
        if checked:
            sys.stderr.write("gotrace: lldb loaded the commands (help gotrace answers)\n")
