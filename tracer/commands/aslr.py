"""gotrace aslr: link-time base, runtime load base and slide of every image."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import GotraceError
from .options import JsonOpt, JsonOutOpt, stdout_console
from .output import check_json_out, emit_json


def aslr_command(
    command: Annotated[Optional[list[str]], typer.Argument(help="Program and its arguments.", show_default=False)] = None,
    pid: Annotated[Optional[int], typer.Option("--pid", "-p", help="A running process.", show_default=False)] = None,
    session: Annotated[Optional[Path], typer.Option("--session", help="A bind session directory.",
                                                    show_default=False)] = None,
    run: Annotated[bool, typer.Option("--run", help="Let the launched program run on instead of killing it.")] = False,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
) -> None:
    """Link-time base, load base and slide of every image, PIE or not.

    Give one of:

      gotrace aslr ./prog [-- ARGS…]   # started stopped at its entry point
      gotrace aslr --pid PID           # a running process
      gotrace aslr --session DIR       # every process of a bind session

    A program is started stopped at its entry point (every library mapped, no
    program code run), its images are read, and it is killed; --run lets it
    go on. --session fills the link_base and slide columns of the session's
    images table from the files on disk. With --run, --json-out FILE writes the
    result there instead of the table, so stdout is the program's alone.

    ASLR is used as the system has it (kernel.randomize_va_space), never
    turned off. Rules: an ELF file's link-time base is its first PT_LOAD's
    p_vaddr, page aligned; a Mach-O file's is its __TEXT vmaddr.
    """
    from ..binary import aslr  # on use: start-up stays light

    chosen = sum(x is not None and x != [] for x in (command, pid, session))
    if chosen != 1:
        raise GotraceError("give exactly one of: a program (gotrace aslr ./prog), --pid PID or --session DIR")
    check_json_out(json_out)
    exit_code = 0
    if session is not None:
        from ..analysis.images import fill_session

        rows = fill_session(session)
    elif pid is not None:
        rows = aslr.to_dicts(aslr.process_bases(pid))
    else:
        found, code = aslr.launch_bases(list(command), let_go=run)
        rows, exit_code = aslr.to_dicts(found), code or 0
    # a session may come from another machine (gotrace import): this one's setting says nothing of it
    doc = {"randomize_va_space": None if session is not None else aslr.randomize_va_space(), "images": rows}
    if not as_json and json_out is None:  # --json-out: stdout is the program's alone
        from ..render.aslr import render_aslr

        render_aslr(doc, stdout_console())
    emit_json(doc, as_json, json_out)
    raise typer.Exit(exit_code)
