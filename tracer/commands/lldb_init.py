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
    the module now, `help gotrace` must answer, and a recording of /bin/true
    is saved and read back: everything `gotrace bind save` needs must load in
    the Python lldb embeds.
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
        _check_save(lldb, line)
    if as_json:
        sys.stdout.write(json.dumps({"line": line, "path": path, "checked": checked}) + "\n")
    else:
        sys.stdout.write(line + "\n")
        if checked:
            sys.stderr.write("gotrace: lldb loaded the commands, recorded /bin/true and saved a session that "
                             "reads back\n")


def _check_save(lldb: str, line: str) -> None:
    """Record /bin/true inside lldb and save it, as a user would; the saved session must read back."""
    import tempfile

    from ..session.reader import read_meta

    from ..capture.bpftrace.launch import wait_for_bindsnoop_to_go

    wait_for_bindsnoop_to_go("hide lldb's breakpoints")  # a tracer that just ended is still detaching
    with tempfile.TemporaryDirectory(prefix="gotrace-lldb-check-") as tmp:
        dest = f"{tmp}/s"
        steps = [line, "target create /bin/true", "process launch --stop-at-entry", "gotrace bind start --no-calibrate",
                 "continue", f"gotrace bind save {dest}"]
        out = subprocess.run([lldb, "--batch", *[a for step in steps for a in ("-o", step)]], capture_output=True,
                             text=True, timeout=300)
        text = out.stdout + out.stderr
        try:
            meta = read_meta(dest)
        except GotraceError:
            meta = None
        if meta is None or not meta.get("complete") or not meta.get("events"):
            lines = [l.strip() for l in text.splitlines()]
            problem = next((l for l in lines if l.startswith("error")), None) or next(
                (l for l in lines if "Error" in l or "Traceback" in l), "no session saved")
            raise GotraceError(f"{lldb} loaded gotrace's commands, but recording and saving failed: {problem}", 1)
