"""gotrace compare, plot and export: saved sessions in, tables, pictures and files out."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import GotraceError
from .options import JsonOpt, SessionArg, TopOpt, TranslatorOpt
from .output import err_console, warn_damaged


def compare_command(
    a: SessionArg, b: Annotated[Path, typer.Argument(help="The second session (e.g. the translated run).",
                                                     show_default=False)],
    as_json: JsonOpt = False, top: TopOpt = 10,
    plot_file: Annotated[Optional[Path], typer.Option("--plot", help="Also draw both sessions into this "
                         ".png/.svg (as gotrace plot A B).", show_default=False)] = None,
    include_translator: TranslatorOpt = False,
    fail_on: Annotated[Optional[list[str]], typer.Option(
        "--fail-on", metavar="BUDGET[,BUDGET…]",
        help="Exit 1 when B, the new run, breaks a budget against A, the baseline: bindings+10%, "
             "bindings+500, resolver+20%, resolver+5ms, relocation+20%, failed+0, fatal+0, processes+N, "
             "new-provider, new-version, new-symbol, new-fatal; on outcomes: exit-status (the command's "
             "status changed), loader-deaths+N (processes the dynamic linker stopped, exit 127), "
             "new-missing-library. resolver gates on-CPU time (latency minus the time switched out) where "
             "both sessions measured it, else wall time; resolver-oncpu, resolver-wall, resolver-median (the "
             "median lookup) and resolver-trimmed (without the slowest 1 % of lookups) name the statistic. "
             "Repeat it or separate with commas.",
        show_default=False)] = None,
) -> None:
    """Two sessions side by side; with --fail-on, a CI gate.

    Processes, bindings by kind, resolver time (wall, on a CPU, switched
    out), per-symbol and per-library latency (median,
    p99, ratio B/A), resolver and relocation time per executable, and the
    bindings found in only one of them. Objects match by file name and every
    ld.so is `ld.so`, so a native and a translated run of one workload line
    up. Examples:

      gotrace compare native-sess arm64-sess
      gotrace compare --json --plot ab.png native-sess arm64-sess

    As a CI gate, B against the baseline A: each broken budget is one line on
    stderr and the exit code is 1 (2 when a budget cannot be read or checked):

      gotrace compare base new --fail-on bindings+10%,new-provider
      gotrace compare base new --fail-on resolver+20% --fail-on new-fatal
      gotrace compare base new --fail-on resolver-median+20%,resolver-wall+5ms
      gotrace compare base new --fail-on new-version --json  # "budgets"
      gotrace compare base new --fail-on exit-status,loader-deaths+0

    A lookup's latency is wall time: a thread preempted or blocked (a page
    fault, a lock) mid-lookup counts, and one such lookup can be most of a
    build's total. The bpf and bpftrace backends record that time
    (offcpu_ns), so resolver+P% gates the on-CPU sum, which identical runs
    keep; the budget's line names the statistic it measured.

    Sessions of different commands are compared anyway, with a warning; a
    translator's own bindings are left out unless --include-translator.
    """
    from rich.console import Console

    from ..analysis.budgets import parse_budgets
    from ..analysis.compare import compare
    from ..render.compare import render_budgets, render_compare
    from ..session.reader import load_session

    budgets = parse_budgets(fail_on) if fail_on is not None else None  # a typo fails before any session is read
    sa, sb = load_session(a), load_session(b)
    warn_damaged(sa)
    warn_damaged(sb)
    res = compare(sa, sb, top=top, include_translator=include_translator, budgets=budgets)
    if plot_file is not None:
        from ..analysis.plot import plot
        plot([sa, sb], plot_file, include_translator=include_translator)
    for w in res["warnings"]:
        err_console.print(f"[yellow]gotrace: warning:[/] {w}")
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
    else:
        con = Console(highlight=False)
        render_compare(res, con, top)
        if plot_file is not None:
            con.print(f"plot written: {plot_file}")
    if budgets is not None:
        render_budgets(res["budgets"], err_console)
        if any(x["broken"] for x in res["budgets"]):
            raise typer.Exit(1)


def plot_command(
    sessions: Annotated[list[Path], typer.Argument(help="One session, or two to compare (A B).", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="The picture to write: .png or .svg; - for stdout.")],
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="png | svg.",
                                               show_default="from the file name; png for -")] = None,
    include_translator: TranslatorOpt = False,
) -> None:
    """Latency and bindings-over-time pictures of one or two sessions.

    Three panels: the latency ECDF on a log axis, the median latency per
    providing library, and bindings over the run; for one session, or two
    side by side (native against translated). Examples:

      gotrace plot sess -o latency.png
      gotrace plot native-sess arm64-sess -o ab.svg
      gotrace plot sess -o - > latency.png

    PNG or SVG by the file's extension or --format; a translator's own
    bindings are left out unless --include-translator.
    """
    from ..analysis.plot import plot
    from ..session.reader import load_session

    if not 1 <= len(sessions) <= 2:
        raise GotraceError("give one session, or two to compare")
    loaded = [load_session(p) for p in sessions]
    for s in loaded:
        warn_damaged(s)
    plot(loaded, output, fmt, include_translator)
    if output != "-":
        err_console.print(f"gotrace: plot written: {output}")


def export_command(
    session: SessionArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="chrome (Perfetto / chrome://tracing) | csv | parquet.")],
    output: Annotated[str, typer.Option("--output", "-o", help="The file to write; - for stdout.")],
) -> None:
    """A session's bindings as Chrome trace, CSV or Parquet.

    The Chrome trace-event format (Perfetto, chrome://tracing) has one track
    per process, each binding a slice as long as its latency; CSV and Parquet
    hold the events table as it is, every event included. Examples:

      gotrace export sess -f chrome -o trace.json   # open in ui.perfetto.dev
      gotrace export sess -f csv -o - | head

    -o - writes to stdout.
    """
    from ..analysis.export import export
    from ..session.reader import load_session

    s = load_session(session)
    warn_damaged(s)
    n = export(s, fmt, output)
    err_console.print(f"gotrace: {n:,} bindings written to {'stdout' if output == '-' else output} ({fmt})")
