"""gotrace why: why a symbol bound where it did, why a library was loaded from where it was."""
from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ..errors import GotraceError
from .options import JsonOpt, SessionArg


def why_command(
    session: SessionArg,
    symbol: Annotated[Optional[str], typer.Argument(help="The symbol to explain (pick, malloc, "
                                                     "__libc_start_main).", show_default=False)] = None,
    library: Annotated[Optional[str], typer.Option("--library", "-l", help="Explain a library's loading instead: "
                       "a file name, soname or path.", show_default=False, metavar="NAME")] = None,
    pid: Annotated[Optional[int], typer.Option("--pid", "-p", help="Only this process.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Why a symbol or a library came from where it did.

    For every recorded lookup of SYMBOL: the scope glibc's ld.so searched, in
    its order (the executable, LD_PRELOAD, then DT_NEEDED breadth-first; a
    dlopen'ed object's own dependencies after those), every object there that
    defines it (version, weak or global, visibility, or why it was passed
    over), the one chosen and the rule that made it win, and whether it was
    interposed — taken from another object than the requester's own
    definition or its first dependency's. Examples:

      gotrace why sess pick
      gotrace why sess malloc --pid 4242 --json
      gotrace why sess --library libssl.so.3

    On a session imported from a Mac's DYLD_PRINT_SEARCHING log, --library
    answers from dyld's own account: every path it considered in its order
    (LC_RPATH expansions and which image gave them, the install name, the
    cache) and where it ended; a symbol or library a load error names is
    answered by that error, explained.

    --library: who needed it (DT_NEEDED of which object, LD_PRELOAD, dlopen),
    the places ld.so tried in its order (DT_RPATH up the loading chain,
    LD_LIBRARY_PATH, DT_RUNPATH, ld.so.cache, the default directories;
    $ORIGIN expanded) and the one that hit — also for a library found nowhere.
    The answers replay glibc's rules on today's files with the environment
    recorded at capture, beside what the session recorded; where the two
    disagree it is said.
    """
    from ..session.reader import load_session
    from .options import stdout_console
    from .output import warn_damaged

    if (symbol is None) == (library is None):
        raise GotraceError("name a symbol (gotrace why SESSION SYMBOL) or a library (gotrace why SESSION "
                           "--library NAME), one of the two")
    s = load_session(session)
    warn_damaged(s)
    if not (library is not None and len(s.searches)) and _load_errors_answer(s, symbol, library, pid, as_json):
        return
    if library is not None and len(s.searches):  # dyld's own account of its searches (DYLD_PRINT_SEARCHING)
        from ..analysis.why_dyld_search import dyld_searches
        from ..render.why import render_dyld_searches

        res = dyld_searches(s, library, pid)
        if res["searches"]:
            if as_json:
                sys.stdout.write(json.dumps(res, indent=2, default=str) + "\n")
            else:
                render_dyld_searches(res, stdout_console())
            _load_errors_answer(s, None, library, pid, as_json)
            return
    if library is not None and (s.meta.get("backend") == "dyld-print" or s.meta.get("os") == "Darwin"):
        raise GotraceError("--library follows glibc's search, or dyld's own account of it: this macOS session has "
                           f"no search for {library} (capture with DYLD_PRINT_SEARCHING=1 to record dyld's; gotrace "
                           "inspect FILE lists the install names and LC_RPATHs)")
    if pid is not None:
        _check_pid(s, session, pid, symbol)
    if library is not None:
        from ..analysis.why_library import why_library
        from ..render.why import render_why_library

        res = why_library(s, library, pid)
        render = render_why_library
        if not res["loads"]:
            raise GotraceError(f"no process{_of(pid)} of {session} loaded or needed {library} (name it as a file "
                               "name, soname or path: gotrace report SESSION lists the libraries)", 1)
    else:
        from ..analysis.why import why_symbol
        from ..render.why import render_why_symbol

        res = why_symbol(s, symbol, pid)
        render = render_why_symbol
        if not res["lookups"]:
            raise GotraceError(f"no lookup of {symbol} recorded{_of(pid)} in {session}{_did_you_mean(s, symbol)}", 1)
    if as_json:
        if s.damaged:  # the answer leaves out the rows of these parts
            res = {**res, "damaged_parts": s.damaged}
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
    else:
        render(res, stdout_console())


def _check_pid(s, session, pid: int, symbol: str | None) -> None:
    """A --pid the session never saw is said as such, with the pids it did see: never a symbol's fault."""
    procs, ev = s.processes, s.events
    known = set(int(p) for p in procs["pid"]) | set(int(p) for p in ev["pid"].unique())
    if pid in known:
        return
    exe = {int(p): str(e).rsplit("/", 1)[-1] for p, e in zip(procs["pid"], procs["exe"]) if e is not None}
    where, what = known, "its processes"
    if symbol is not None:
        asked = set(int(p) for p in ev.loc[ev["symbol"].astype(str) == symbol, "pid"].unique())
        if asked:
            where, what = asked, f"{symbol} was looked up in"
    shown = sorted(where)[:6]
    listed = ", ".join(f"{p} ({exe[p]})" if p in exe else str(p) for p in shown)
    more = f" and {len(where) - len(shown):,} more" if len(where) > len(shown) else ""
    raise GotraceError(f"process {pid} is not in {session}" + (f"; {what}: {listed}{more}" if where else
                       ": it recorded no process") + "; gotrace report SESSION lists them by executable", 1)


def _of(pid: int | None) -> str:
    return f" (process {pid})" if pid is not None else ""


def _did_you_mean(s, symbol: str) -> str:
    import difflib

    ev = s.events
    names = [str(x) for x in (ev["symbol"].cat.categories if hasattr(ev["symbol"], "cat") else ev["symbol"].unique())]
    close = difflib.get_close_matches(symbol, names, n=3)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _load_errors_answer(s, symbol: str | None, library: str | None, pid: int | None, as_json: bool) -> bool:
    """A symbol or library a load error names is answered by that error (the loader never got to a
    lookup or a search the session could replay): what failed, why, and what to try."""
    import os

    from ..session.reader import frame_rows

    rows = frame_rows(s.errors) if len(s.errors) else []
    if symbol is not None:
        names = {symbol, "_" + symbol, symbol.removeprefix("_")}
        hits = [r for r in rows if r.get("symbol") in names]
    else:
        hits = [r for r in rows if r.get("library") and (r["library"] == library or os.path.basename(
            str(r["library"])) == os.path.basename(library))]
    hits = [r for r in hits if pid is None or r.get("pid") == pid]
    if not hits:
        return False
    from ..analysis.explain import explain

    res = {"errors": [explain(r) for r in hits]}
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2, default=str) + "\n")
    else:
        from rich.console import Console

        from ..render.explain import render_explanations

        render_explanations(res, Console(highlight=False, soft_wrap=True))
    return True
