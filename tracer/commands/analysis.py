"""gotrace compare, plot and export: saved sessions in, tables, pictures and files out."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import JsonOpt, SessionArg, TopOpt, handles_errors
from .output import err_console


def _us(ns) -> str:
    return "-" if ns is None else (f"{ns / 1e3:,.1f} µs" if ns < 1e6 else f"{ns / 1e6:,.2f} ms")


@handles_errors
def compare_command(
    a: SessionArg, b: Annotated[Path, typer.Argument(help="The second session (e.g. the translated run).",
                                                     show_default=False)],
    as_json: JsonOpt = False, top: TopOpt = 15,
    plot_file: Annotated[Optional[Path], typer.Option("--plot", help="Also draw both sessions into this "
                         ".png/.svg (as gotrace plot A B).", show_default=False)] = None,
) -> None:
    """Two sessions side by side: processes, bindings by kind, per-symbol and per-library
    latency (median, p99, ratio B/A), resolver and relocation time per executable, and
    the bindings found in only one of them. Objects match by file name, every ld.so is
    `ld.so`, so a native and a translated run of one workload line up.

    Sessions of different commands are compared anyway, with a warning.
    """
    from rich.console import Console
    from rich.table import Table

    from ..compare import compare
    from ..session import load_session

    sa, sb = load_session(a), load_session(b)
    res = compare(sa, sb, top=top)
    if plot_file is not None:
        from ..plot import plot
        plot([sa, sb], plot_file)
    for w in res["warnings"]:
        err_console.print(f"[yellow]gotrace: warning:[/] {w}")
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
        return
    con = Console(highlight=False)
    t = Table(title="sessions", title_justify="left")
    for col in ("", "A", "B"):
        t.add_column(col)
    for key in ("path", "backend", "arch", "translator", "processes", "translated_images", "bindings", "failed"):
        t.add_row(key, str(res["a"][key]), str(res["b"][key]))
    for k in ("eager", "lazy", "dlsym"):
        t.add_row(k, f"{res['a']['by_kind'][k]:,}", f"{res['b']['by_kind'][k]:,}")
    con.print(t)
    for title, rows in (("latency by symbol", res["latency_by_symbol"]), ("latency by library", res["latency_by_library"])):
        if not rows:
            con.print(f"{title}: nothing measured in both")
            continue
        lt = Table(title=title, title_justify="left")
        for col in ("name", "A median", "B median", "B/A", "A p99", "B p99", "A n", "B n"):
            lt.add_column(col, justify="left" if col == "name" else "right")
        for r in rows:
            lt.add_row(r["name"], _us(r["a"]["median_ns"]), _us(r["b"]["median_ns"]),
                       f"{r['median_ratio']:.2f}×" if r["median_ratio"] is not None else "-",
                       _us(r["a"]["p99_ns"]), _us(r["b"]["p99_ns"]), str(r["a"]["count"]), str(r["b"]["count"]))
        con.print(lt)
    con.print(f"bindings (requester, symbol, provider) in both: {res['in_both']:,}; only in A: "
              f"{len(res['only_in_a']):,}; only in B: {len(res['only_in_b']):,}")
    for name, key in (("only in A", "only_in_a"), ("only in B", "only_in_b")):
        for row in res[key][:top]:
            con.print(f"  {name}: {row[0]} → {row[1]} from {row[2]}")
    if plot_file is not None:
        con.print(f"plot written: {plot_file}")


@handles_errors
def plot_command(
    sessions: Annotated[list[Path], typer.Argument(help="One session, or two to compare (A B).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The picture to write: .png or .svg.")],
) -> None:
    """Draw latency ECDFs (log axis), median latency per library and bindings over the
    run, for one session or two side by side (native vs translated)."""
    from ..errors import GotraceError
    from ..plot import plot
    from ..session import load_session

    if not 1 <= len(sessions) <= 2:
        raise GotraceError("give one session, or two to compare")
    plot([load_session(p) for p in sessions], output)
    err_console.print(f"gotrace: plot written: {output}")


@handles_errors
def export_command(
    session: SessionArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="chrome (Perfetto / chrome://tracing) | csv | parquet.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
) -> None:
    """Write a session's bindings for other tools: Chrome trace-event JSON (one track per
    process, each binding a slice as long as its latency), CSV, or one Parquet file."""
    from ..export import export
    from ..session import load_session

    n = export(load_session(session), fmt, output)
    err_console.print(f"gotrace: {n:,} bindings written to {output} ({fmt})")
