"""gotrace aslr: link-time base, runtime load base and slide of every image."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import JsonOpt, handles_errors, stdout_console
from ..errors import GotraceError

HELP = """Link-time base, runtime load base and slide of every image, PIE or not.

  gotrace aslr ./prog [-- ARGS…]   start ./prog stopped at its entry point (every library
                                   mapped, no program code run), read its images, kill it
                                   (--run lets it go on instead)
  gotrace aslr --pid PID           a running process
  gotrace aslr --session DIR       every process of a saved bind session; fills the link_base
                                   and slide columns of its images table

ASLR is used as the system has it (kernel.randomize_va_space), never turned off.
Rules: ELF link-time base = first PT_LOAD p_vaddr, page aligned; Mach-O = __TEXT vmaddr.
"""


def _hex(v) -> str:
    return "-" if v is None else (f"-{-v:#x}" if v < 0 else f"{v:#x}")


@handles_errors
def aslr_command(
    command: Annotated[Optional[list[str]], typer.Argument(help="Program and its arguments.", show_default=False)] = None,
    pid: Annotated[Optional[int], typer.Option("--pid", help="A running process.", show_default=False)] = None,
    session: Annotated[Optional[Path], typer.Option("--session", help="A bind session directory.",
                                                    show_default=False)] = None,
    run: Annotated[bool, typer.Option("--run", help="Let the launched program run on instead of killing it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    from ..binary import aslr  # on use: start-up stays light

    chosen = sum(x is not None and x != [] for x in (command, pid, session))
    if chosen != 1:
        raise GotraceError("give exactly one of: a program (gotrace aslr ./prog), --pid PID or --session DIR")
    exit_code = 0
    if session is not None:
        rows = aslr.fill_session(session)
    elif pid is not None:
        rows = aslr.to_dicts(aslr.process_bases(pid))
    else:
        found, code = aslr.launch_bases(list(command), let_go=run)
        rows, exit_code = aslr.to_dicts(found), code or 0
    doc = {"randomize_va_space": aslr.randomize_va_space(), "images": rows}
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        from rich.table import Table

        console = stdout_console()
        level = {0: "off", 1: "partial (stack, mmap, vdso)", 2: "full"}.get(doc["randomize_va_space"], "unknown")
        console.print(f"ASLR on this system: {level} (kernel.randomize_va_space={doc['randomize_va_space']})")
        t = Table(show_edge=False, pad_edge=False)
        for c in ("pid", "image", "link-time base", "load base", "slide", "PIE/PIC", "from"):
            t.add_column(c, overflow="fold")
        for r in rows:
            pic = "-" if r["position_independent"] is None else ("yes" if r["position_independent"] else "no")
            t.add_row(str(r["pid"]), r["path"], _hex(r["link_base"]), _hex(r["load_base"]), _hex(r["slide"]),
                      pic, r["source"])
        console.print(t)
    raise typer.Exit(exit_code)
