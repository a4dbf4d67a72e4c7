"""gotrace explain: the loader error a user pastes, explained."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import GotraceError
from .options import JsonOpt


def explain_command(
    source: Annotated[Optional[str], typer.Argument(help="A file holding the error text (a log, a CI log, a crash "
                      "report), - or nothing for stdin, or a session directory.", show_default=False,
                      metavar="[FILE|-|SESSION]")] = None,
    no_look: Annotated[bool, typer.Option("--no-look", help="Do not check the files the errors name on this "
                       "machine: explain from the text alone.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Explain what the dynamic linker refused, and what to try.

    Reads dyld's errors of every macOS (dyld2's "dyld: Library not loaded …
    Reason: image not found", dyld4's "dyld[PID]: … Reason: tried: '…' (no such
    file)", "Symbol not found", "symbol not found in flat namespace",
    "incompatible architecture (have 'arm64', need 'x86_64')", code
    signatures, crash reports' "Termination Reason: … DYLD") and glibc's
    ("error while loading shared libraries", "symbol lookup error", "version
    `GLIBC_2.34' not found", "wrong ELF class") wherever they stand in the
    text: a Python traceback, Go's plugin.Open, a CI log. For each: what the
    loader did, why it failed, the likely cause and the fix to try. Where the
    files it names are on this machine, it checks them (there or not, every
    slice's architecture, install name, LC_RPATHs, exports, glibc versions)
    and says which conclusions came from the text alone. Examples:

      pbpaste | gotrace explain
      gotrace explain ci.log
      go test ./... 2>&1 | gotrace explain --json
      gotrace explain gotrace-sessions/mac-build     # a session's load errors

    Exit status: 0 when errors were explained, 1 when the text holds none.
    """
    from ..analysis.explain import explain, explain_text
    from ..render.explain import render_explain_summary, render_explanations
    from .output import emit_json, err_console

    look = not no_look
    if source is not None and os.path.isdir(source):
        from ..session.reader import load_session

        from ..analysis.explain import session_errors

        s = load_session(Path(source))
        rows = session_errors(s)
        res = {"errors": [explain(r, look) for r in rows], "lines": 0, "error_lines": 0, "source": source}
        if not rows:
            raise GotraceError(f"{source} holds no load error (no process was refused by its loader)", 1)
    else:
        if source is None or source == "-":
            if sys.stdin.isatty():
                raise GotraceError("paste the error text on stdin (end with Ctrl-D), or name a file: "
                                   "gotrace explain FILE", 2)
            text = sys.stdin.buffer.read().decode("utf-8", "replace")
            name = "stdin"
        else:
            try:
                text = Path(source).read_bytes().decode("utf-8", "replace")
            except FileNotFoundError:
                raise GotraceError(f"no such file: {source}") from None
            except OSError as exc:
                raise GotraceError(f"cannot read {source}: {exc.strerror}") from None
            name = source
        res = explain_text(text, look)  # relative names: from the working directory
        res["source"] = name
        if not res["errors"]:
            n = res["lines"]
            raise GotraceError(f"no loader error in {name} ({n} line{'s' if n != 1 else ''}): gotrace explain reads dyld's "
                               "\"Library not loaded\", \"Symbol not found\" … and glibc's \"error while loading "
                               "shared libraries\", \"symbol lookup error\", \"version … not found\"", 1)
    if as_json:
        emit_json(res, True, None)
        return
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=True)  # a path or a reason is never broken across lines
    render_explanations(res, con)
    render_explain_summary(res, err_console)
